//! The handshake's HTTP client: one JSON POST over HTTP/1.1, bounded in time and size.
//!
//! Deliberately small: plain `http://` to the peer's `warden serve` (loopback or a private
//! network; for anything else put TLS in front), one request per connection, the body read
//! up to [`MAX_MESSAGE_BYTES`]. The handshake itself authenticates both sides; the
//! transport only carries bytes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;

/// Largest handshake message, in bytes of JSON (a two-link chain is about 15 KB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Why a request to the peer failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The peer address is not one this client speaks to.
    #[error("peer `{0}`: expected http://HOST:PORT")]
    Url(String),
    /// No connection, or it broke.
    #[error("cannot reach {peer}: {detail}")]
    Connect {
        /// The peer.
        peer: String,
        /// What happened.
        detail: String,
    },
    /// The answer was not HTTP, too large, or not JSON.
    #[error("{peer} answered something that is not a handshake message: {detail}")]
    Answer {
        /// The peer.
        peer: String,
        /// What was wrong.
        detail: String,
    },
}

/// POST `body` as JSON to `peer` (`http://host:port`) + `path`; the status and the JSON
/// answer.
pub fn post_json(
    peer: &str,
    path: &str,
    body: &Value,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Value), HttpError> {
    let authority = peer
        .strip_prefix("http://")
        .map(|r| r.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/') && !a.contains('@'))
        .ok_or_else(|| HttpError::Url(peer.to_string()))?;
    let connect = |detail: String| HttpError::Connect {
        peer: peer.to_string(),
        detail,
    };
    let deadline = Instant::now() + timeout;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| connect(e.to_string()))?
        .next()
        .ok_or_else(|| connect("no address".into()))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| connect(e.to_string()))?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream.set_nodelay(true).ok();
    stream
        .set_write_timeout(Some(left()))
        .map_err(|e| connect(e.to_string()))?;
    let body = serde_json::to_vec(body).map_err(|e| connect(e.to_string()))?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(&body))
        .map_err(|e| connect(e.to_string()))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| connect(e.to_string()))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_MESSAGE_BYTES + 16 * 1024 {
                    return Err(HttpError::Answer {
                        peer: peer.to_string(),
                        detail: format!("larger than {MAX_MESSAGE_BYTES} bytes"),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(connect(format!("while reading the answer: {e}"))),
        }
        if Instant::now() >= deadline {
            return Err(connect("no complete answer in time".into()));
        }
    }
    parse_response(&raw).map_err(|detail| HttpError::Answer {
        peer: peer.to_string(),
        detail,
    })
}

fn parse_response(raw: &[u8]) -> Result<(u16, Value), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status line")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = &raw[end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    let value = serde_json::from_slice(&body).map_err(|e| format!("not JSON ({e})"))?;
    Ok((status, value))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}
