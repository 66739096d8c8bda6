//! JSON-RPC 2.0 as MCP uses it: classify one message, match answers to requests
//! ([`id`]), read newline-delimited messages with a size limit ([`framing`]), and build the
//! error responses the proxy sends.
//!
//! Hand-written rather than taken from an SDK because a transparent proxy must forward what
//! it does not understand byte-for-byte in meaning, and reject what is malformed without ever
//! passing it on.
//!
//! Batches (JSON arrays) are refused in both directions: MCP 2025-06-18 removed them, the
//! proxy never forwards one from a client, so no server has a reason to send one.

pub mod framing;
pub mod id;
pub mod plain;

use serde_json::{Value, json};

/// Standard JSON-RPC error codes, and the ones Warden adds (in the server-error range).
pub mod code {
    /// The line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC 2.0 message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method's parameters are wrong (e.g. `tools/call` without a tool name).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Warden's policy denied the call.
    pub const DENIED: i64 = -32001;
    /// Warden's policy requires a person to approve the call first.
    pub const APPROVAL_REQUIRED: i64 = -32002;
    /// The tool's result was blocked (injected instructions or secrets).
    pub const RESULT_BLOCKED: i64 = -32003;
    /// The tool is withheld: poisoned, or drifted from its pin.
    pub const TOOL_WITHHELD: i64 = -32004;
    /// A message was larger than the proxy's limit.
    pub const TOO_LARGE: i64 = -32005;
    /// The server's answer could not be passed on (malformed, or not an answer at all).
    pub const BAD_ANSWER: i64 = -32006;
    /// Too many requests are waiting for an answer.
    pub const TOO_MANY_PENDING: i64 = -32007;
}

/// What kind of JSON-RPC message a line holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A request: expects a response with the same id.
    Request {
        /// The id, as JSON (string or number).
        id: Value,
        /// The method name.
        method: String,
    },
    /// A notification: no id, no response.
    Notification {
        /// The method name.
        method: String,
    },
    /// A response to an earlier request.
    Response {
        /// The id of the request it answers.
        id: Value,
    },
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The whole message.
    pub value: Value,
    /// What it is.
    pub kind: Kind,
}

/// Why a line is not a message: the error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// `PARSE_ERROR` or `INVALID_REQUEST`.
    pub code: i64,
    /// What was wrong.
    pub message: String,
    /// The request id, when one could be read (else the error goes out with id null).
    pub id: Value,
}

/// Parse and classify one line.
pub fn parse(line: &[u8]) -> Result<Message, Invalid> {
    parse_line(line).map(|(m, _)| m)
}

/// Parse and classify one line; `true` when the line is [plain](plain): a peer reads from
/// the line itself exactly the message the gateway judges.
pub fn parse_line(line: &[u8]) -> Result<(Message, bool), Invalid> {
    let parsed = plain::parse(line).map_err(|e| Invalid {
        code: code::PARSE_ERROR,
        message: format!("parse error: {e}"),
        id: Value::Null,
    })?;
    if let Some(why) = folded_key(&parsed) {
        return Err(Invalid {
            code: code::INVALID_REQUEST,
            message: format!("invalid request: {why}"),
            id: request_id_of(&parsed.value),
        });
    }
    classify(parsed.value).map(|m| (m, parsed.plain))
}

/// The keys the gateway reads, at the top of a message and in its `params`.
const PROTOCOL_KEYS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];
const PARAMS_KEYS: [&str; 4] = ["name", "arguments", "uri", "requestId"];

/// Why a message is refused for its keys' case: two keys of one object the same but for
/// case, or a key the gateway reads spelled in another case (a reader that ignores case —
/// Go's `encoding/json` — reads what the gateway did not judge).
pub(crate) fn folded_key(parsed: &plain::Parsed) -> Option<String> {
    if parsed.folded {
        return Some(
            "an object has two keys that differ only in case; JSON-RPC keys are exact".into(),
        );
    }
    let variant = |object: Option<&Value>, names: &[&str]| -> Option<String> {
        let object = object?.as_object()?;
        object.keys().find_map(|k| {
            let f = plain::fold(k);
            names
                .iter()
                .find(|n| plain::fold(n) == f && **n != k.as_str())
                .map(|n| {
                    format!(
                        "the key `{}` is not `{n}`: JSON-RPC keys are exact",
                        k.escape_debug()
                    )
                })
        })
    };
    variant(Some(&parsed.value), &PROTOCOL_KEYS)
        .or_else(|| variant(parsed.value.get("params"), &PARAMS_KEYS))
}

/// Classify a JSON value as a JSON-RPC 2.0 message.
pub fn classify(value: Value) -> Result<Message, Invalid> {
    let invalid = |message: &str, id: Value| Invalid {
        code: code::INVALID_REQUEST,
        message: format!("invalid request: {message}"),
        id,
    };
    let Some(obj) = value.as_object() else {
        let what = if value.is_array() {
            "batches are not supported (MCP 2025-06-18 removed them)"
        } else {
            "a message must be a JSON object"
        };
        return Err(invalid(what, Value::Null));
    };
    let id = obj.get("id").cloned();
    let id_ok = id::valid_request_id;
    let echo_id = request_id_of(&value);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("`jsonrpc` must be \"2.0\"", echo_id));
    }
    if let Some(method) = obj.get("method") {
        let Some(method) = method.as_str() else {
            return Err(invalid("`method` must be a string", echo_id));
        };
        if let Some(p) = obj.get("params")
            && !(p.is_object() || p.is_array())
        {
            return Err(invalid("`params` must be an object or an array", echo_id));
        }
        let kind = match id {
            None => Kind::Notification {
                method: method.to_string(),
            },
            Some(id) if id_ok(&id) => Kind::Request {
                id,
                method: method.to_string(),
            },
            Some(_) => return Err(invalid("`id` must be a string or an integer", Value::Null)),
        };
        return Ok(Message { value, kind });
    }
    let has_result = obj.contains_key("result");
    let has_error = obj.contains_key("error");
    match id {
        Some(id)
            if has_result != has_error && (id.is_string() || id.is_number() || id.is_null()) =>
        {
            Ok(Message {
                value,
                kind: Kind::Response { id },
            })
        }
        _ => Err(invalid(
            "neither a request (no `method`) nor a response (needs `id` and exactly one of `result`/`error`)",
            echo_id,
        )),
    }
}

/// The id of a message that could not be classified, when it has one a request may have
/// (the error answer then names it).
pub fn request_id_of(value: &Value) -> Value {
    value
        .get("id")
        .filter(|i| id::valid_request_id(i))
        .cloned()
        .unwrap_or(Value::Null)
}

/// An error response.
pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &str) -> Result<Kind, i64> {
        parse(line.as_bytes()).map(|m| m.kind).map_err(|e| e.code)
    }

    #[test]
    fn classifies_messages() {
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Ok(Kind::Request {
                id: json!(1),
                method: "tools/list".into()
            })
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Kind::Notification {
                method: "notifications/initialized".into()
            })
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Kind::Response { id: json!("a") })
        );
    }

    #[test]
    fn rejects_malformed_messages_with_the_right_code() {
        assert_eq!(kind("{not json"), Err(code::PARSE_ERROR));
        assert_eq!(kind("[]"), Err(code::INVALID_REQUEST));
        assert_eq!(kind("42"), Err(code::INVALID_REQUEST));
        assert_eq!(kind(r#"{"id":1,"method":"x"}"#), Err(code::INVALID_REQUEST));
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            Err(code::INVALID_REQUEST)
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            Err(code::INVALID_REQUEST)
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#),
            Err(code::INVALID_REQUEST)
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#),
            Err(code::INVALID_REQUEST)
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#),
            Err(code::INVALID_REQUEST)
        );
        let e = parse(br#"{"jsonrpc":"1.0","id":9,"method":"x"}"#).unwrap_err();
        assert_eq!(e.id, json!(9));
    }
}
