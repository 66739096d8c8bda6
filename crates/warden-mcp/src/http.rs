//! A minimal MCP client over Streamable HTTP, for scanning a server by URL: initialize, list
//! tools, done. `http://` and `https://` (rustls, through the shared [`crate::tls::client`]:
//! the OS trust store plus `--ca-cert`).
//!
//! A body ends at its end or as soon as the answer to our request has arrived (servers hold
//! SSE streams open). It may be JSON or a Server-Sent Events stream (read per [`crate::sse`])
//! whose events carry JSON-RPC messages. Neither may grow past [`MAX_ANSWER_BYTES`].

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Request, Uri};
use serde_json::{Value, json};

use crate::client::ToolPages;
use crate::client::{ClientError, PROTOCOL_VERSION};
use crate::jsonrpc::id::same_id;
use crate::scan::ServerTools;
use crate::sse;
use crate::tls::{self, HttpClient};

/// The largest JSON answer or SSE event the scanner reads (16 MiB).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
struct Endpoint {
    uri: Uri,
    url: String,
}

fn endpoint(url: &str) -> Result<Endpoint, ClientError> {
    let uri = tls::http_uri(url).map_err(|why| ClientError::Http {
        url: url.into(),
        why: why.into(),
    })?;
    Ok(Endpoint {
        uri,
        url: url.into(),
    })
}

struct Reply {
    status: u16,
    session: Option<String>,
    messages: Vec<Value>,
}

struct Conn<'a> {
    ep: &'a Endpoint,
    client: &'a HttpClient<Full<Bytes>>,
    timeout: Duration,
}

impl Conn<'_> {
    fn err(&self, why: String) -> ClientError {
        ClientError::Http {
            url: self.ep.url.clone(),
            why,
        }
    }

    async fn post(&self, body: &Value, session: Option<&str>) -> Result<Reply, ClientError> {
        let mut req = Request::post(self.ep.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(s) = session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| self.err(format!("cannot build the request: {e}")))?;
        let want = body.get("id").cloned();
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("cannot connect: {}", tls::describe(&e)))?;
            let status = resp.status().as_u16();
            let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
            let session = header("mcp-session-id").map(String::from);
            let sse = header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
            // Servers keep SSE connections open whatever we ask, so the body is complete
            // at its end or once our answer is in it.
            let mut body = resp.into_body();
            let mut answer = Answer::new(sse);
            loop {
                let answered = want.as_ref().is_some_and(|id| {
                    answer
                        .messages
                        .iter()
                        .any(|m| m.get("id").is_some_and(|a| same_id(id, a)))
                });
                let frame = if answered { None } else { body.frame().await };
                match frame {
                    None => {
                        return Ok(Reply {
                            status,
                            session,
                            messages: answer.finish(),
                        });
                    }
                    Some(Ok(f)) => {
                        if let Some(data) = f.data_ref() {
                            answer.feed(data)?;
                        }
                    }
                    Some(Err(e)) => {
                        return Err(format!("cannot read the answer: {}", tls::describe(&e)));
                    }
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.err(format!("no answer within {} s", self.timeout.as_secs())))?
            .map_err(|why| self.err(why))
    }
}

/// An answer body being read: the messages of each complete SSE event, or the JSON bytes.
struct Answer {
    sse: Option<sse::Parser>,
    raw: Vec<u8>,
    messages: Vec<Value>,
}

impl Answer {
    fn new(sse: bool) -> Answer {
        Answer {
            sse: sse.then(|| sse::Parser::new(MAX_ANSWER_BYTES)),
            raw: Vec::new(),
            messages: Vec::new(),
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        match &mut self.sse {
            Some(parser) => {
                let events = parser.feed(data).map_err(|e| e.to_string())?;
                self.messages.extend(
                    events
                        .iter()
                        .filter_map(sse::Event::data)
                        .filter_map(|d| serde_json::from_str::<Value>(&d).ok()),
                );
            }
            None if self.raw.len() + data.len() > MAX_ANSWER_BYTES => {
                return Err(format!(
                    "the answer is larger than the limit of {MAX_ANSWER_BYTES} bytes"
                ));
            }
            None => self.raw.extend_from_slice(data),
        }
        Ok(())
    }

    /// Every message: the SSE events' so far, or the JSON body's one.
    fn finish(self) -> Vec<Value> {
        if self.sse.is_some() {
            return self.messages;
        }
        serde_json::from_slice::<Value>(&self.raw)
            .ok()
            .into_iter()
            .collect()
    }
}

impl Conn<'_> {
    async fn call(
        &self,
        id: u64,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<(Value, Option<String>), ClientError> {
        let reply = self
            .post(
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
                session,
            )
            .await?;
        if !(200..300).contains(&reply.status) {
            return Err(self.err(format!("`{method}` answered HTTP {}", reply.status)));
        }
        let msg = reply
            .messages
            .into_iter()
            .find(|m| m.get("id").is_some_and(|a| same_id(&json!(id), a)))
            .ok_or_else(|| self.err(format!("no answer to `{method}` in the response")))?;
        if let Some(error) = msg.get("error") {
            return Err(ClientError::Rpc {
                command: self.ep.url.clone(),
                method: method.into(),
                error: error.clone(),
            });
        }
        Ok((
            msg.get("result").cloned().unwrap_or(Value::Null),
            reply.session,
        ))
    }

    /// Initialize and list the tools; also the `initialize` answer, the session and the last
    /// request id used, for the requests that follow.
    async fn list_tools(&self) -> Result<(ServerTools, Value, Option<String>, u64), ClientError> {
        let (init, session) = self
            .call(
                1,
                "initialize",
                json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "warden-mcp-scan", "version": env!("CARGO_PKG_VERSION")}}),
                None,
            )
            .await?;
        let session_id = session.clone();
        let session = session.as_deref();
        self.post(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            session,
        )
        .await?;
        let server = init
            .pointer("/serverInfo/name")
            .and_then(Value::as_str)
            .unwrap_or(&self.ep.url)
            .to_string();
        let mut pages = ToolPages::default();
        let mut id = 1;
        while let Some(params) = pages.next_params() {
            id += 1;
            let (page, _) = self.call(id, "tools/list", params, session).await?;
            pages.add(&page);
        }
        Ok((pages.finish(&init, server), init, session_id, id))
    }
}

/// Initialize a Streamable HTTP server and list every tool (named by its `serverInfo.name`).
/// `https://` servers are verified against the OS trust store plus `ca_cert` (PEM), when
/// given.
pub fn list_tools(
    url: &str,
    timeout: Duration,
    ca_cert: Option<&Path>,
) -> Result<ServerTools, ClientError> {
    let ep = endpoint(url)?;
    let err = |why: String| ClientError::Http {
        url: url.into(),
        why,
    };
    let client = tls::client(ca_cert).map_err(|e| err(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(format!("cannot start the client runtime: {e}")))?;
    let conn = Conn {
        ep: &ep,
        client: &client,
        timeout,
    };
    let (mut found, init, session, mut id) = runtime.block_on(conn.list_tools())?;
    let deadline = std::time::Instant::now() + timeout;
    crate::client::read_the_rest(&init, &mut found, deadline, &mut |method, params| {
        id += 1;
        runtime
            .block_on(conn.call(id, method, params, session.as_deref()))
            .map(|(result, _)| result)
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_and_https_urls() {
        let ep = endpoint("http://127.0.0.1:3001/mcp").unwrap();
        assert_eq!(
            (ep.uri.host(), ep.uri.port_u16(), ep.uri.path()),
            (Some("127.0.0.1"), Some(3001), "/mcp")
        );
        assert_eq!(endpoint("http://localhost").unwrap().uri.path(), "/");
        assert!(endpoint("https://example.com/mcp").is_ok());
        assert!(
            endpoint("ftp://example.com/mcp")
                .unwrap_err()
                .to_string()
                .contains("only http:// and https://")
        );
    }

    #[test]
    fn answers_are_read_as_events_or_json_and_bounded() {
        let mut a = Answer::new(true);
        a.feed(b"\xEF\xBB\xBFevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n")
            .unwrap();
        assert_eq!(
            a.messages.len(),
            1,
            "a byte-order mark does not hide the first event"
        );
        a.feed(b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\r\r")
            .unwrap();
        let messages = a.finish();
        assert_eq!(messages[1]["id"], 7);
        let mut a = Answer::new(false);
        a.feed(b"{\"id\": 1").unwrap();
        a.feed(b"}").unwrap();
        assert_eq!(a.finish().len(), 1);
        let mut a = Answer::new(false);
        assert!(a.feed(&vec![b' '; MAX_ANSWER_BYTES + 1]).is_err());
    }
}
