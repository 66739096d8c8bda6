//! The request an agent makes: who wants to do what, with which arguments.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ActionError;

/// One thing an agent wants to do.
///
/// `args` and `context` are JSON objects (an absent one is an empty object). `args` is what
/// the agent supplied (a URL, a command, tool arguments); `context` is what the caller knows
/// about the situation (session, environment, ring, tier, the MCP server…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Who asks: a DID or a plain agent name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What kind of action: `http_request`, `execute_code`, `mcp.tools/call`, …
    pub action: String,
    /// The tool being called, when the action is a tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Arguments of the action (always a JSON object).
    #[serde(default = "empty_object", deserialize_with = "object")]
    pub args: Value,
    /// What the action touches, when that is not already in `args` (a path, a table, a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What the caller knows about the situation (always a JSON object).
    #[serde(default = "empty_object", deserialize_with = "object")]
    pub context: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(empty_object()),
        v @ Value::Object(_) => Ok(v),
        other => Err(serde::de::Error::custom(format!(
            "expected a JSON object, found {}",
            json_kind(&other)
        ))),
    }
}

/// The JSON type name of a value with its article (`a string`, `null`), for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Action {
    /// An action with this name and nothing else.
    pub fn new(action: impl Into<String>) -> Self {
        Action {
            agent: None,
            action: action.into(),
            tool: None,
            args: empty_object(),
            resource: None,
            context: empty_object(),
        }
    }

    /// Set the agent.
    pub fn with_agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// Set the tool.
    pub fn with_tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    /// Set the resource.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Add one argument.
    pub fn with_arg(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        insert(&mut self.args, key.into(), value.into());
        self
    }

    /// Add one context entry.
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        insert(&mut self.context, key.into(), value.into());
        self
    }

    /// Parse an action from JSON text, with a message that names what was wrong.
    pub fn from_json(text: &str) -> Result<Self, ActionError> {
        let action: Action = serde_json::from_str(text).map_err(ActionError::from_json)?;
        action.validate()?;
        Ok(action)
    }

    /// Check the invariants serde cannot express: a non-empty action name.
    pub fn validate(&self) -> Result<(), ActionError> {
        // The common case first: printable ASCII without spaces is neither blank nor hiding
        // anything.
        if !self.action.is_empty() && self.action.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(());
        }
        if self.action.trim().is_empty() {
            return Err(ActionError::new("`action` must be a non-empty string"));
        }
        // A name that prints like another (`payments.transfer` with a leading space, a
        // zero-width character or a control character inside) would slip past a kill switch
        // or a rule written for the name it looks like; no honest caller sends one.
        if let Some(c) = self.action.chars().find(|c| deceptive(*c)) {
            return Err(ActionError::new(format!(
                "`action` contains the invisible or control character U+{:04X}",
                u32::from(c)
            )));
        }
        if self.action.trim() != self.action {
            return Err(ActionError::new(
                "`action` must not begin or end with white space",
            ));
        }
        Ok(())
    }

    /// A string argument, if present and a string.
    pub fn arg_str(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(Value::as_str)
    }
}

/// Control characters, and the invisible "format" characters that change how text reads
/// without showing: zero-width spaces and joiners, direction marks and overrides, the BOM,
/// soft hyphen, word joiners and invisible operators.
fn deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

fn insert(target: &mut Value, key: String, value: Value) {
    // INVARIANT: `args` and `context` are objects; constructors and serde keep them so.
    if !target.is_object() {
        *target = empty_object();
    }
    if let Value::Object(map) = target {
        map.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_and_round_trips() {
        let a = Action::new("http_request")
            .with_agent("agent-1")
            .with_arg("url", "https://api.github.com/")
            .with_context("env", "prod");
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(Action::from_json(&text).unwrap(), a);
        assert_eq!(a.arg_str("url"), Some("https://api.github.com/"));
    }

    #[test]
    fn absent_or_null_objects_become_empty() {
        let a = Action::from_json(r#"{"action":"x","args":null}"#).unwrap();
        assert_eq!(a.args, json!({}));
        assert_eq!(a.context, json!({}));
    }

    #[test]
    fn rejects_unknown_fields_wrong_types_and_empty_names() {
        let e = Action::from_json(r#"{"action":"x","argz":{}}"#).unwrap_err();
        assert!(e.to_string().contains("argz"), "{e}");
        let e = Action::from_json(r#"{"action":"x","args":[1]}"#).unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let e = Action::from_json(r#"{"action":"  "}"#).unwrap_err();
        assert!(e.to_string().contains("non-empty"), "{e}");
        let e = Action::from_json(r#"{"agent":"a"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `action`"), "{e}");
    }

    #[test]
    fn names_that_print_like_others_are_invalid() {
        for bad in [
            " payments.transfer",
            "payments.transfer ",
            "payments\u{200b}.transfer",
            "pay\u{202e}ments",
            "\u{feff}payments.transfer",
            "payments\u{0}",
            "payments\n.transfer",
        ] {
            let err = Action::new(bad).validate().expect_err(bad);
            assert!(err.to_string().contains("action"), "{bad:?}: {err}");
        }
        for good in ["payments.transfer", "mcp.tools/call", "ünïcode.名前", "a b"] {
            assert!(Action::new(good).validate().is_ok(), "{good:?}");
        }
    }
}
