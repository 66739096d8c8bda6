//! A minimal MCP client over Streamable HTTP, for scanning a server by URL: initialize, list
//! tools, done. Plain `http://` only — the scanner runs offline, so the servers it reaches by
//! URL are local ones (a gateway, a container port), and a TLS stack is not worth carrying
//! for that.
//!
//! One TCP connection per request. A body ends at its Content-Length, at its last chunk, or
//! as soon as the answer to our request has arrived (servers hold SSE streams open). It may
//! be JSON or a Server-Sent Events stream whose `data:` lines carry JSON-RPC messages.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{ClientError, PROTOCOL_VERSION};
use crate::scan::ServerTools;

#[derive(Debug)]
struct Endpoint {
    host: String,
    port: u16,
    path: String,
    url: String,
}

fn endpoint(url: &str) -> Result<Endpoint, ClientError> {
    let bad = |why: &str| ClientError::Http {
        url: url.into(),
        why: why.into(),
    };
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        bad("only plain http:// URLs are supported (local servers); https needs TLS, which the offline scanner does not carry")
    })?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is not a number"))?),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(bad("the URL has no host"));
    }
    Ok(Endpoint {
        host: host.into(),
        port,
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        url: url.into(),
    })
}

struct Reply {
    status: u16,
    session: Option<String>,
    messages: Vec<Value>,
}

fn post(
    ep: &Endpoint,
    body: &Value,
    session: Option<&str>,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let err = |why: String| ClientError::Http {
        url: ep.url.clone(),
        why,
    };
    let addr = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| err(format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| err("cannot resolve the host".into()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| err(format!("cannot connect: {e}")))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let body = body.to_string();
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        ep.path,
        ep.host,
        ep.port,
        body.len()
    );
    if let Some(s) = session {
        request.push_str(&format!(
            "Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: {PROTOCOL_VERSION}\r\n"
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| err(format!("cannot send: {e}")))?;
    // Servers keep SSE connections open whatever we ask, so the body ends when it is
    // complete (Content-Length, last chunk, or our answer seen), not at EOF.
    let want = body_id(&body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(reply) = parse_reply(&raw, want.as_ref(), false) {
            return reply.map_err(err);
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return parse_reply(&raw, want.as_ref(), true)
                    .unwrap_or_else(|| Err("the answer ended early".into()))
                    .map_err(err);
            }
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(err(format!("cannot read the answer: {e}"))),
        }
    }
}

fn body_id(body: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body).ok()?.get("id").cloned()
}

/// The reply in `raw`, once it is complete (or at `eof`); `None` while more bytes are needed.
fn parse_reply(raw: &[u8], want: Option<&Value>, eof: bool) -> Option<Result<Reply, String>> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return eof.then(|| Err("the answer is not HTTP".to_string()));
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let Some(status) = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Some(Err("the answer has no status line".into()));
    };
    let mut session = None;
    let mut chunked = false;
    let mut sse = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "mcp-session-id" => session = Some(v.to_string()),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "content-type" => sse = v.starts_with("text/event-stream"),
            "content-length" => length = v.parse::<usize>().ok(),
            _ => {}
        }
    }
    let complete_by_framing = match (length, chunked) {
        (Some(n), _) => body.len() >= n,
        (None, true) => body.ends_with(b"0\r\n\r\n"),
        (None, false) => false,
    };
    if chunked {
        body = dechunk(&body);
    }
    if let Some(n) = length {
        body.truncate(n);
    }
    let text = String::from_utf8_lossy(&body);
    let messages: Vec<Value> = if sse {
        // Each event's `data:` lines joined with newlines form one message.
        text.split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| {
                        l.strip_prefix("data:")
                            .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    })
                    .collect();
                serde_json::from_str(&data.join("\n")).ok()
            })
            .collect()
    } else {
        serde_json::from_str::<Value>(&text)
            .ok()
            .into_iter()
            .collect()
    };
    let answered = want.is_some_and(|id| messages.iter().any(|m| m.get("id") == Some(id)));
    (complete_by_framing || answered || eof).then_some(Ok(Reply {
        status,
        session,
        messages,
    }))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

fn call(
    ep: &Endpoint,
    id: u64,
    method: &str,
    params: Value,
    session: Option<&str>,
    timeout: Duration,
) -> Result<(Value, Option<String>), ClientError> {
    let reply = post(
        ep,
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        session,
        timeout,
    )?;
    if !(200..300).contains(&reply.status) {
        return Err(ClientError::Http {
            url: ep.url.clone(),
            why: format!("`{method}` answered HTTP {}", reply.status),
        });
    }
    let msg = reply
        .messages
        .into_iter()
        .find(|m| m.get("id") == Some(&json!(id)))
        .ok_or_else(|| ClientError::Http {
            url: ep.url.clone(),
            why: format!("no answer to `{method}` in the response"),
        })?;
    if let Some(error) = msg.get("error") {
        return Err(ClientError::Rpc {
            command: ep.url.clone(),
            method: method.into(),
            error: error.clone(),
        });
    }
    Ok((
        msg.get("result").cloned().unwrap_or(Value::Null),
        reply.session,
    ))
}

/// Initialize a Streamable HTTP server and list every tool (named by its `serverInfo.name`).
pub fn list_tools(url: &str, timeout: Duration) -> Result<ServerTools, ClientError> {
    let ep = endpoint(url)?;
    let (init, session) = call(
        &ep,
        1,
        "initialize",
        json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
               "clientInfo": {"name": "warden-mcp-scan", "version": env!("CARGO_PKG_VERSION")}}),
        None,
        timeout,
    )?;
    let session = session.as_deref();
    post(
        &ep,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        session,
        timeout,
    )?;
    let server = init
        .pointer("/serverInfo/name")
        .and_then(Value::as_str)
        .unwrap_or(url)
        .to_string();
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    for id in 2..1002 {
        let params = cursor
            .as_ref()
            .map_or_else(|| json!({}), |c| json!({"cursor": c}));
        let (page, _) = call(&ep, id, "tools/list", params, session, timeout)?;
        tools.extend(
            page.get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        cursor = page.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() {
            break;
        }
    }
    let instructions = init
        .get("instructions")
        .and_then(Value::as_str)
        .map(String::from);
    Ok(ServerTools {
        instructions,
        server,
        tools,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_refuses_tls() {
        let ep = endpoint("http://127.0.0.1:3001/mcp").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.path.as_str()),
            ("127.0.0.1", 3001, "/mcp")
        );
        assert_eq!(endpoint("http://localhost").unwrap().path, "/");
        assert!(
            endpoint("https://example.com/mcp")
                .unwrap_err()
                .to_string()
                .contains("TLS")
        );
    }

    #[test]
    fn an_open_sse_stream_is_complete_once_the_answer_is_in() {
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nmcp-session-id: s1\r\n\r\n";
        let partial =
            format!("{head}event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"x\"}}\n\n");
        assert!(parse_reply(partial.as_bytes(), Some(&json!(7)), false).is_none());
        let done = format!("{partial}data: {{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{{}}}}\n\n");
        let reply = parse_reply(done.as_bytes(), Some(&json!(7)), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (reply.status, reply.session.as_deref(), reply.messages.len()),
            (200, Some("s1"), 2)
        );
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n"),
            b"Wikipedia"
        );
    }
}
