//! The Streamable HTTP proxy: listens for MCP's Streamable HTTP transport and forwards to an
//! upstream Streamable HTTP server, applying exactly the stdio proxy's policy: every message
//! goes through the same [`Gateway`] (one per MCP session).
//!
//! - `POST` (one JSON-RPC message): [`Gateway::from_client`] decides. A malformed body is
//!   answered `400` with a JSON-RPC error; a refused `tools/call` is answered `200` with the
//!   JSON-RPC error, and **never reaches upstream**; anything else is forwarded. The upstream
//!   answer — `application/json` or a `text/event-stream` — is filtered message by message
//!   with [`Gateway::from_server`] (SSE events are rewritten one at a time, as they arrive;
//!   `id:`/`event:`/`retry:` lines and comments are kept).
//! - `GET` (the server-initiated SSE stream) and `DELETE` (end of session) are forwarded; the
//!   GET stream is filtered like a POST's.
//! - `Mcp-Session-Id`, `Mcp-Protocol-Version`, `Last-Event-ID`, `Accept`, `Content-Type` and
//!   `Authorization` are passed upstream; the upstream's response headers come back (minus
//!   hop-by-hop ones). The policy state (pending requests, withheld and verified tools, the
//!   server's name) is kept per session id; a server without sessions shares one.
//!
//! Every path of the listening address is the MCP endpoint; requests go to the upstream URL.
//! On a loopback address, a request whose `Host` or `Origin` names anything but a loopback
//! host is refused with `403` (DNS rebinding: a web page must not reach a local gateway).
//! Listening elsewhere needs `insecure`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use warden::Warden;

use crate::jsonrpc;
use crate::proxy::{Gateway, Inbound, ProxyConfig, ProxyError};
use crate::tls::{self, HttpClient};

/// The largest POST body accepted (one JSON-RPC message).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Request headers passed upstream.
const FORWARD_HEADERS: [&str; 6] = [
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "authorization",
];

/// Response headers that belong to one connection, not to the message.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
];

/// Where the HTTP proxy listens and what it forwards to.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The upstream MCP endpoint (`http://host:port/mcp` or `https://…`).
    pub upstream: String,
    /// A PEM file of CA certificates trusted for an `https://` upstream, besides the OS
    /// trust store.
    pub ca_cert: Option<PathBuf>,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` address.
    pub insecure: bool,
}

/// Parse and check the upstream URL: `http://` or `https://`, with a host.
fn upstream_uri(url: &str) -> Result<Uri, ProxyError> {
    let bad = |why: &str| ProxyError::Upstream {
        url: url.into(),
        why: why.into(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("only http:// and https:// upstreams are supported"));
    }
    if uri.host().is_none() {
        return Err(bad("the URL has no host"));
    }
    Ok(uri)
}

struct App {
    upstream: Uri,
    /// Listening on loopback: requests must name a loopback host (and origin).
    loopback: bool,
    client: HttpClient<Body>,
    warden: Arc<Warden>,
    config: Arc<ProxyConfig>,
    sessions: Mutex<HashMap<String, Arc<Gateway>>>,
    /// For requests without a session id (a stateless upstream).
    sessionless: Mutex<Arc<Gateway>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    fn new_gateway(&self) -> Arc<Gateway> {
        Arc::new(Gateway::new(self.warden.clone(), self.config.clone()))
    }

    /// The gateway of a session; one the proxy has not seen (say, after a proxy restart)
    /// starts fresh — with a lock, its tools must be listed again before they can be called.
    fn gateway(&self, session: Option<&str>) -> Arc<Gateway> {
        match session {
            Some(id) => lock(&self.sessions)
                .entry(id.to_string())
                .or_insert_with(|| self.new_gateway())
                .clone(),
            None => lock(&self.sessionless).clone(),
        }
    }
}

/// Run the Streamable HTTP proxy until interrupted (Ctrl-C).
pub fn run(config: ProxyConfig, http: HttpConfig, warden: Arc<Warden>) -> Result<(), ProxyError> {
    if !http.listen.ip().is_loopback() && !http.insecure {
        return Err(ProxyError::NotLoopback(http.listen));
    }
    let upstream = upstream_uri(&http.upstream)?;
    let client = tls::client(http.ca_cert.as_deref()).map_err(|e| ProxyError::Upstream {
        url: http.upstream.clone(),
        why: e.to_string(),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ProxyError::Listen {
            addr: http.listen,
            source,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .map_err(|source| ProxyError::Listen {
                addr: http.listen,
                source,
            })?;
        let local = listener.local_addr().unwrap_or(http.listen);
        let config = Arc::new(config);
        let app = Arc::new(App {
            upstream,
            loopback: http.listen.ip().is_loopback(),
            client,
            sessionless: Mutex::new(Arc::new(Gateway::new(warden.clone(), config.clone()))),
            warden,
            config,
            sessions: Mutex::new(HashMap::new()),
        });
        tracing::info!(
            "warden-mcp: listening on http://{local}/mcp, forwarding to {}",
            http.upstream
        );
        let router = axum::Router::new().fallback(handle).with_state(app);
        tokio::select! {
            r = axum::serve(listener, router) => r.map_err(|source| ProxyError::Listen { addr: local, source }),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Run part of the decision path: `Warden::decide` is synchronous and, with an audit log,
/// waits for its commit, so it must not hold up the runtime's other tasks.
fn decide<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// Is this `host[:port]` (a Host header, or an Origin's authority) a loopback name?
fn is_loopback_authority(authority: &str) -> bool {
    if let Ok(ip) = authority.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// DNS-rebinding protection for a proxy on loopback: a browser page on another site can
/// reach 127.0.0.1, but its requests carry that site's name in `Host` and `Origin`.
fn rebinding_attempt(headers: &HeaderMap) -> Option<String> {
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or("");
        if !is_loopback_authority(host) {
            return Some(format!("Host `{host}` is not a loopback name"));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .split_once("://")
            .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        if !is_loopback_authority(authority) {
            return Some(format!("Origin `{origin}` is not a loopback origin"));
        }
    }
    None
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if app.loopback
        && let Some(why) = rebinding_attempt(&parts.headers)
    {
        crate::proxy::log(&format!("refused a request: {why}"));
        return json_response(
            StatusCode::FORBIDDEN,
            &jsonrpc::error(
                &Value::Null,
                jsonrpc::code::INVALID_REQUEST,
                &format!("forbidden: {why} (DNS-rebinding protection)"),
                None,
            ),
        );
    }
    let session = session_of(&parts.headers);
    match parts.method {
        Method::POST => post(&app, &parts.headers, session, body).await,
        Method::GET => {
            let gateway = app.gateway(session.as_deref());
            match forward(&app, Method::GET, &parts.headers, Body::empty()).await {
                Ok(resp) => filter_response(resp, gateway).await,
                Err(e) => e,
            }
        }
        Method::DELETE => {
            let resp = forward(&app, Method::DELETE, &parts.headers, Body::empty()).await;
            if let Some(id) = &session
                && resp.as_ref().is_ok_and(|r| r.status().is_success())
            {
                lock(&app.sessions).remove(id);
            }
            match resp {
                Ok(resp) => pass_through(resp),
                Err(e) => e,
            }
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, POST, DELETE")],
        )
            .into_response(),
    }
}

async fn post(app: &App, headers: &HeaderMap, session: Option<String>, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &jsonrpc::error(
                &Value::Null,
                jsonrpc::code::INVALID_REQUEST,
                "the request body is too large or could not be read",
                None,
            ),
        );
    };
    let initialize = session.is_none()
        && serde_json::from_slice::<Value>(&bytes)
            .ok()
            .is_some_and(|v| v.get("method").and_then(Value::as_str) == Some("initialize"));
    // A new session starts with a fresh gateway; it is registered under the session id the
    // upstream hands out.
    let gateway = if initialize {
        app.new_gateway()
    } else {
        app.gateway(session.as_deref())
    };
    let msg = match decide(|| gateway.from_client(&bytes)) {
        Inbound::Malformed(answer) => return json_response(StatusCode::BAD_REQUEST, &answer),
        Inbound::Refused(answer) => return json_response(StatusCode::OK, &answer),
        Inbound::Forward(msg) => msg,
    };
    let resp = match forward(app, Method::POST, headers, Body::from(msg.to_string())).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    if initialize && resp.status().is_success() {
        match session_of(resp.headers()) {
            Some(id) => {
                lock(&app.sessions).insert(id, gateway.clone());
            }
            None => *lock(&app.sessionless) = gateway.clone(),
        }
    }
    filter_response(resp, gateway).await
}

type Upstream = axum::http::Response<hyper::body::Incoming>;

/// Send a request upstream; `Err` is the `502` answer for the client.
async fn forward(
    app: &App,
    method: Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Upstream, Response> {
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(app.upstream.clone());
    for name in FORWARD_HEADERS {
        for v in headers.get_all(name) {
            req = req.header(name, v);
        }
    }
    let req = req.body(body).map_err(|e| bad_gateway(&e.to_string()))?;
    app.client.request(req).await.map_err(|e| {
        let e = tls::describe(&e);
        crate::proxy::log(&format!("upstream {} failed: {e}", app.upstream));
        bad_gateway(&format!("the upstream MCP server is unreachable: {e}"))
    })
}

fn bad_gateway(why: &str) -> Response {
    json_response(
        StatusCode::BAD_GATEWAY,
        &jsonrpc::error(&Value::Null, -32603, why, None),
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, v) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            to.append(name.clone(), v.clone());
        }
    }
}

/// Status, headers and body unchanged.
fn pass_through(resp: Upstream) -> Response {
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    copy_headers(&parts.headers, out.headers_mut());
    out
}

/// Filter the upstream's answer through the gateway: a JSON body as a whole, an SSE stream
/// event by event. Other answers (202 Accepted, errors) pass unchanged.
async fn filter_response(resp: Upstream, gateway: Arc<Gateway>) -> Response {
    let kind = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !resp.status().is_success() {
        return pass_through(resp);
    }
    if kind.starts_with("text/event-stream") {
        let (parts, body) = resp.into_parts();
        let data = Body::new(body).into_data_stream();
        let stream = futures_util::stream::unfold(
            (data, SseFilter::default(), gateway, false),
            |(mut data, mut filter, gateway, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match data.next().await {
                        Some(Ok(chunk)) => {
                            let out = decide(|| filter.feed(&chunk, &gateway));
                            if !out.is_empty() {
                                return Some((
                                    Ok(Bytes::from(out)),
                                    (data, filter, gateway, false),
                                ));
                            }
                        }
                        Some(Err(e)) => return Some((Err(e), (data, filter, gateway, true))),
                        None => {
                            let out = decide(|| filter.finish(&gateway));
                            return (!out.is_empty())
                                .then(|| (Ok(Bytes::from(out)), (data, filter, gateway, true)));
                        }
                    }
                }
            },
        );
        let mut out = Response::new(Body::from_stream(stream));
        *out.status_mut() = parts.status;
        copy_headers(&parts.headers, out.headers_mut());
        return out;
    }
    if kind.starts_with("application/json") {
        let (parts, body) = resp.into_parts();
        let Ok(bytes) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
            return bad_gateway("the upstream answer could not be read");
        };
        let mut out = Response::new(Body::empty());
        *out.status_mut() = parts.status;
        copy_headers(&parts.headers, out.headers_mut());
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // 202 Accepted for a notification or response, say.
            return out;
        }
        let filtered = decide(|| match serde_json::from_slice::<Value>(&bytes) {
            // A batch answer (older protocol versions): filter each message.
            Ok(Value::Array(items)) => Some(Value::Array(
                items
                    .iter()
                    .filter_map(|m| gateway.from_server(m.to_string().as_bytes()))
                    .collect(),
            )),
            _ => gateway.from_server(&bytes),
        });
        let Some(filtered) = filtered else {
            return bad_gateway("the upstream MCP server sent a malformed message");
        };
        *out.body_mut() = Body::from(filtered.to_string());
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return out;
    }
    pass_through(resp)
}

/// Rewrites a Server-Sent Events stream one event at a time: each event's `data` (a JSON-RPC
/// message) goes through [`Gateway::from_server`]; a dropped message leaves only the event's
/// other fields (its `id:` keeps resumption working).
#[derive(Default)]
struct SseFilter {
    buf: Vec<u8>,
}

impl SseFilter {
    fn feed(&mut self, chunk: &[u8], gateway: &Gateway) -> Vec<u8> {
        // JSON never holds a raw CR, so dropping CRs normalises CRLF and CR line ends.
        self.buf.extend(chunk.iter().filter(|&&b| b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            out.extend(filter_event(&event[..end], gateway));
        }
        out
    }

    /// The stream ended: an unterminated last event is still an event.
    fn finish(&mut self, gateway: &Gateway) -> Vec<u8> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.strip_suffix(b"\n").unwrap_or(&rest);
        if rest.is_empty() {
            Vec::new()
        } else {
            filter_event(rest, gateway)
        }
    }
}

fn filter_event(event: &[u8], gateway: &Gateway) -> Vec<u8> {
    let mut other = Vec::new();
    let mut data: Vec<&[u8]> = Vec::new();
    for line in event.split(|&b| b == b'\n') {
        if let Some(d) = line.strip_prefix(b"data:") {
            data.push(d.strip_prefix(b" ").unwrap_or(d));
        } else {
            other.extend_from_slice(line);
            other.push(b'\n');
        }
    }
    let joined = data.join(&b'\n');
    if joined.iter().all(u8::is_ascii_whitespace) {
        // Comments, keep-alives, priming events with an id and no message: unchanged.
        let mut out = event.to_vec();
        out.extend_from_slice(b"\n\n");
        return out;
    }
    let mut out = other;
    match gateway.from_server(&joined) {
        Some(msg) => {
            out.extend_from_slice(format!("data: {msg}\n").as_bytes());
        }
        None if out.is_empty() => return out,
        None => {}
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "localhost:80",
            "127.0.0.1:3000",
            "[::1]:8",
            "::1",
            "LOCALHOST",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:80",
            "10.0.0.1",
            "",
            "localhost.evil",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn upstreams_must_be_http_or_https() {
        assert!(upstream_uri("http://127.0.0.1:3001/mcp").is_ok());
        assert!(upstream_uri("https://example.com/mcp").is_ok());
        assert!(upstream_uri("ftp://example.com/mcp").is_err());
        assert!(upstream_uri("not a url").is_err());
    }
}
