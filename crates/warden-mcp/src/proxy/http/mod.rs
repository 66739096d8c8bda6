//! The Streamable HTTP transport: listens for MCP's Streamable HTTP transport and forwards
//! to an upstream Streamable HTTP server, every message through a [`Gateway`] (one per MCP
//! session).
//!
//! - `POST` (one JSON-RPC message): [`Gateway::from_client`] decides. A malformed or refused
//!   notification is answered `400`, a refused request `200` with the JSON-RPC error — and
//!   neither reaches upstream; a body over the message limit is `413`. Anything else is
//!   forwarded, and the upstream's answer — `application/json` or a `text/event-stream` — is
//!   filtered message by message ([`answer`]).
//! - `GET` (the server-initiated SSE stream) is forwarded and filtered the same way;
//!   `DELETE` (end of session) is forwarded.
//! - `Mcp-Session-Id`, `Mcp-Protocol-Version`, `Last-Event-ID`, `Accept`, `Content-Type` and
//!   `Authorization` are passed upstream; the upstream's response headers come back (minus
//!   hop-by-hop ones). The policy state is kept per session id; a server without sessions
//!   shares one. A session id is remembered once the upstream has accepted it.
//!
//! Every path of the listening address is the MCP endpoint; requests go to the upstream URL.
//! On a loopback address, a request whose `Host` or `Origin` names anything but a loopback
//! host is refused with `403` (DNS rebinding: a web page must not reach a local gateway).
//! Listening elsewhere needs `insecure`.

mod answer;
mod sessions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use warden::Warden;

use super::{Gateway, Inbound, ProxyConfig, ProxyError, Transport};
use crate::jsonrpc::{self, Kind, code};
use crate::tls::{self, HttpClient};

/// Request headers passed upstream.
const FORWARD_HEADERS: [&str; 6] = [
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "authorization",
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
    tls::http_uri(url).map_err(|why| ProxyError::Upstream {
        url: url.into(),
        why: why.into(),
    })
}

struct App {
    upstream: Uri,
    /// Listening on loopback: requests must name a loopback host (and origin).
    loopback: bool,
    client: HttpClient<Body>,
    warden: Arc<Warden>,
    config: Arc<ProxyConfig>,
    sessions: Mutex<sessions::Sessions<Arc<Gateway>>>,
    /// For requests without a session id (a stateless upstream).
    sessionless: Mutex<Arc<Gateway>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl App {
    fn new_gateway(&self, session: Option<&str>) -> Arc<Gateway> {
        let g = Gateway::new(self.warden.clone(), self.config.clone(), Transport::Http);
        if let Some(s) = session {
            g.set_session(s);
        }
        Arc::new(g)
    }

    /// The gateway of a session. One the proxy has not seen (say, after a proxy restart)
    /// starts fresh — with a lock, its tools must be listed again before they can be
    /// called — and is remembered once the upstream accepts the session ([`App::keep`]).
    fn gateway(&self, session: Option<&str>) -> Arc<Gateway> {
        match session {
            Some(id) => {
                let known = lock(&self.sessions).get(id);
                known.unwrap_or_else(|| self.new_gateway(Some(id)))
            }
            None => lock(&self.sessionless).clone(),
        }
    }

    /// Remember a session's gateway (the upstream accepted the session).
    fn keep(&self, session: Option<&str>, gateway: &Arc<Gateway>) {
        match session {
            Some(id) => {
                let forgotten = lock(&self.sessions).keep(id, gateway.clone());
                if forgotten.is_some() {
                    tracing::warn!(
                        "remembering {} sessions already: forgot the least recently used one",
                        sessions::MAX_SESSIONS
                    );
                }
            }
            None => *lock(&self.sessionless) = gateway.clone(),
        }
    }
}

/// Run the Streamable HTTP proxy until interrupted (Ctrl-C). `on_listen` is called with the
/// address once the proxy listens (with port 0, the one the system picked).
pub fn run(
    config: ProxyConfig,
    http: HttpConfig,
    warden: Arc<Warden>,
    on_listen: impl FnOnce(SocketAddr) + Send,
) -> Result<(), ProxyError> {
    if !http.listen.ip().is_loopback() && !http.insecure {
        return Err(ProxyError::NotLoopback(http.listen));
    }
    if config.max_message_bytes == 0 {
        return Err(ProxyError::NoRoom);
    }
    let upstream = upstream_uri(&http.upstream)?;
    let client = tls::client(http.ca_cert.as_deref()).map_err(|e| ProxyError::Upstream {
        url: http.upstream.clone(),
        why: e.to_string(),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(super::DECISION_STACK)
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
            sessionless: Mutex::new(Arc::new(Gateway::new(
                warden.clone(),
                config.clone(),
                Transport::Http,
            ))),
            warden,
            config,
            sessions: Mutex::new(sessions::Sessions::new(sessions::MAX_SESSIONS)),
        });
        tracing::info!(
            "listening on http://{local}/mcp, forwarding to {}",
            http.upstream
        );
        on_listen(local);
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

/// An error answer the proxy makes itself (no request id to name).
fn proxy_error(status: StatusCode, code: i64, message: &str) -> Response {
    json_response(status, &jsonrpc::error(&Value::Null, code, message, None))
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
        tracing::warn!("refused a request: {why}");
        return proxy_error(
            StatusCode::FORBIDDEN,
            code::INVALID_REQUEST,
            &format!("forbidden: {why} (DNS-rebinding protection)"),
        );
    }
    let session = session_of(&parts.headers);
    match parts.method {
        Method::POST => post(&app, &parts.headers, session, body).await,
        Method::GET => {
            let gateway = app.gateway(session.as_deref());
            match forward(&app, Method::GET, &parts.headers, Body::empty()).await {
                Ok(resp) => {
                    if resp.status().is_success() {
                        app.keep(session.as_deref(), &gateway);
                    }
                    answer::filter(
                        resp,
                        answer::Context::new(&app, &parts.headers, gateway, None),
                    )
                    .await
                }
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
                Ok(resp) => answer::pass_through(resp),
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

async fn post(
    app: &Arc<App>,
    headers: &HeaderMap,
    session: Option<String>,
    body: Body,
) -> Response {
    let limit = app.config.max_message_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        tracing::warn!("refused a POST body larger than the limit of {limit} bytes");
        return proxy_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::TOO_LARGE,
            &format!(
                "the request body is larger than the proxy's limit of {limit} bytes, or could not be read; it was not forwarded"
            ),
        );
    };
    let message = serde_json::from_slice::<Value>(&bytes).ok();
    let initialize = session.is_none()
        && message
            .as_ref()
            .is_some_and(|v| v.get("method").and_then(Value::as_str) == Some("initialize"));
    // A new session starts with a fresh gateway; it is registered under the session id the
    // upstream hands out.
    let gateway = if initialize {
        app.new_gateway(None)
    } else {
        app.gateway(session.as_deref())
    };
    let mut inbound = decide(|| gateway.from_client(&bytes));
    if let Inbound::Held(held) = inbound {
        let known = match session.as_deref() {
            Some(id) => lock(&app.sessions).contains(id),
            None => !initialize,
        };
        if !known {
            // A session this proxy does not remember gets a fresh conversation per POST
            // until the upstream accepts one: a later cancel (or a second request with this
            // id) would not find the hold. Refused at once instead, as without a wait.
            let refused = gateway.refuse_held(*held, "the proxy does not know this session yet");
            return match refused {
                Inbound::Answer(answer) => json_response(StatusCode::OK, &answer),
                _ => proxy_error(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, "cancelled"),
            };
        }
        if held.wants_progress() && accepts_events(headers) {
            return held_stream(app, headers, gateway, session, *held);
        }
        // The POST waits for the answer (its blocking thread is one of the held places).
        inbound = decide(|| gateway.settle(*held, &|_| {}));
    }
    let msg = match inbound {
        Inbound::Held(_) => {
            // INVARIANT: `settle` never holds again.
            return proxy_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::DENIED,
                "held twice",
            );
        }
        Inbound::Malformed(answer) => return json_response(StatusCode::BAD_REQUEST, &answer),
        Inbound::Dropped(why) => {
            return proxy_error(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, &why);
        }
        Inbound::Answer(answer) => return json_response(StatusCode::OK, &answer),
        Inbound::Forward(msg) => msg,
    };
    pass_on(app, headers, gateway, session, initialize, msg).await
}

/// Forward a client message the gateway let through, and filter the upstream's answer.
async fn pass_on(
    app: &Arc<App>,
    headers: &HeaderMap,
    gateway: Arc<Gateway>,
    session: Option<String>,
    initialize: bool,
    msg: Value,
) -> Response {
    // The request this POST carries, if it is one: its answer is due on this response.
    let request = match jsonrpc::classify(msg.clone()).map(|m| m.kind) {
        Ok(Kind::Request { id, .. }) => Some(id),
        _ => None,
    };
    // Made before the request goes upstream: if the client hangs up meanwhile, dropping it
    // takes the request out of the table (see `answer::Context`'s `Drop`).
    let cx = answer::Context::new(app, headers, gateway.clone(), request.clone());
    let resp = match forward(app, Method::POST, headers, Body::from(msg.to_string())).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(id) = &request {
                gateway.fail_request(id, code::BAD_ANSWER, "the upstream is unreachable");
            }
            return e;
        }
    };
    if resp.status().is_success() {
        match (initialize, session_of(resp.headers())) {
            (true, Some(id)) => {
                gateway.set_session(&id);
                app.keep(Some(&id), &gateway);
            }
            (true, None) => app.keep(None, &gateway),
            (false, _) => app.keep(session.as_deref(), &gateway),
        }
    }
    answer::filter(resp, cx).await
}

/// Whether the client takes an event stream as the answer to its POST.
fn accepts_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).contains("text/event-stream"))
}

/// A held request whose client asked for progress: the POST is answered at once with an
/// event stream that carries the progress notifications while the request is held, then
/// the answer — the upstream's (its JSON as one event, or its own filtered events), or the
/// refusal. A cancelled request's stream just ends.
fn held_stream(
    app: &Arc<App>,
    headers: &HeaderMap,
    gateway: Arc<Gateway>,
    session: Option<String>,
    held: super::Held,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let (app, headers) = (app.clone(), headers.clone());
    let id = held.id.clone();
    tokio::spawn(async move {
        let (notes, g) = (tx.clone(), gateway.clone());
        let settled = tokio::task::spawn_blocking(move || {
            g.settle(held, &|note| {
                // A client that went away stops reading; the hold goes on to its end.
                let _ = notes.blocking_send(event(note));
            })
        })
        .await;
        let answer = match settled {
            Ok(Inbound::Forward(msg)) => {
                pass_on(&app, &headers, gateway, session, false, msg).await
            }
            Ok(Inbound::Answer(answer)) => {
                let _ = tx.send(event(&answer)).await;
                return;
            }
            Ok(_) => return,
            Err(e) => {
                tracing::error!("a held request's wait failed: {e}");
                return;
            }
        };
        if !answer.status().is_success() {
            // An HTTP error (the upstream's, passed through on the ordinary path, or the
            // proxy's own 502) has no place on this stream: its body is not a filtered
            // answer. The client gets an error for its request, under its id.
            let why = format!(
                "the upstream answered the call with HTTP {}; its body was not passed on",
                answer.status()
            );
            let _ = tx
                .send(event(&jsonrpc::error(&id, code::BAD_ANSWER, &why, None)))
                .await;
            return;
        }
        let sse = answer
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let limit = app.config.max_message_bytes;
        if sse {
            let mut data = answer.into_body().into_data_stream();
            while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut data).await {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        } else if let Ok(bytes) = axum::body::to_bytes(answer.into_body(), limit).await
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        {
            let _ = tx.send(event(&v)).await;
        }
    });
    let events = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|b| b.map(Ok::<_, std::convert::Infallible>))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

/// One JSON-RPC message as a server-sent event.
fn event(msg: &Value) -> axum::body::Bytes {
    axum::body::Bytes::from(format!("event: message\ndata: {msg}\n\n"))
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
        tracing::warn!("upstream {} failed: {e}", app.upstream);
        bad_gateway(&format!("the upstream MCP server is unreachable: {e}"))
    })
}

fn bad_gateway(why: &str) -> Response {
    proxy_error(StatusCode::BAD_GATEWAY, -32603, why)
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
