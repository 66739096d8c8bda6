//! The upstream's answers on their way to the client: a JSON body as one message, an SSE
//! stream event by event as it arrives, each message through [`Gateway::from_server`].
//!
//! The body is read the way the client will read it, or not passed on at all: a success
//! answer whose `Content-Type` mentions `text/event-stream` is an SSE stream (parsed per
//! [`crate::sse`]), one that mentions `application/json` is JSON, an empty one passes
//! (`202 Accepted`), and anything else is refused — the SDK clients look for those words
//! anywhere in the header, so a body the proxy did not read must not reach them. What goes
//! out is labelled plainly (`text/event-stream` / `application/json`).
//!
//! When the upstream's answer to the POST's request cannot be passed on (too large,
//! malformed, a batch, or a stream event over the limit), the client gets a JSON-RPC error
//! for that request instead of nothing.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;

use super::{App, Upstream, decide, forward, json_response, proxy_error};
use crate::jsonrpc::code;
use crate::proxy::{Gateway, Outbound};
use crate::sse;

/// Response headers that belong to one connection, or that the proxy sets itself.
const NOT_COPIED: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-type",
    "upgrade",
    "te",
];

/// What the filter needs besides the answer.
pub(super) struct Context {
    app: Arc<App>,
    /// Headers for the proxy's own requests upstream (its refusals of server requests).
    reply_headers: HeaderMap,
    gateway: Arc<Gateway>,
    /// The request the client POSTed, if it was one: its answer is due here.
    request: Option<Value>,
}

/// When the answer is over — delivered, failed, or abandoned because the client hung up
/// (its response future or event stream dropped) — the client's request stops waiting: a
/// request still in the table is taken out, and with it its ring place (`max_concurrent`).
/// A delivered answer took it out already; then this does nothing.
impl Drop for Context {
    fn drop(&mut self) {
        if let Some(id) = &self.request
            && self
                .gateway
                .fail_request(id, code::BAD_ANSWER, "the client went away")
                .is_some()
        {
            tracing::info!("the client went away before the answer to request {id}");
        }
    }
}

impl Context {
    pub(super) fn new(
        app: &Arc<App>,
        client_headers: &HeaderMap,
        gateway: Arc<Gateway>,
        request: Option<Value>,
    ) -> Context {
        let mut reply_headers = HeaderMap::new();
        for name in ["mcp-session-id", "mcp-protocol-version", "authorization"] {
            for v in client_headers.get_all(name) {
                reply_headers.append(name, v.clone());
            }
        }
        reply_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        reply_headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        Context {
            app: app.clone(),
            reply_headers,
            gateway,
            request,
        }
    }

    /// The client's request gets no usable answer: an error for it, when it is waiting.
    fn fail(&self, code: i64, message: &str) -> Option<Value> {
        let id = self.request.as_ref()?;
        self.gateway.fail_request(id, code, message)
    }

    /// The same, as the whole HTTP answer (`502` when there is no request to answer).
    fn fail_response(&self, code: i64, message: &str) -> Response {
        match self.fail(code, message) {
            Some(error) => json_response(StatusCode::OK, &error),
            None => proxy_error(StatusCode::BAD_GATEWAY, code, message),
        }
    }

    /// Answer a server's request upstream (a refusal), without holding up the stream.
    fn reply_upstream(&self, answer: Value) {
        let (app, headers) = (self.app.clone(), self.reply_headers.clone());
        tokio::spawn(async move {
            if let Ok(resp) =
                forward(&app, Method::POST, &headers, Body::from(answer.to_string())).await
                && !resp.status().is_success()
            {
                tracing::warn!(
                    "the upstream answered the proxy's refusal with HTTP {}",
                    resp.status()
                );
            }
        });
    }

    /// Route one message from the upstream: `Some` to pass on to the client.
    fn route(&self, raw: &[u8]) -> Option<Value> {
        match decide(|| self.gateway.from_server(raw)) {
            Outbound::Forward(msg) => Some(msg),
            Outbound::Answer(answer) => {
                self.reply_upstream(answer);
                None
            }
            Outbound::Drop => None,
        }
    }
}

/// Status and headers of the upstream's answer, with the proxy's own body and type.
fn head(parts: &axum::http::response::Parts, body: Body, kind: Option<&'static str>) -> Response {
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    for (name, v) in &parts.headers {
        if !NOT_COPIED.contains(&name.as_str()) {
            out.headers_mut().append(name.clone(), v.clone());
        }
    }
    if let Some(kind) = kind {
        out.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    out
}

/// Status, headers and body unchanged (error statuses, `DELETE`).
pub(super) fn pass_through(resp: Upstream) -> Response {
    let (parts, body) = resp.into_parts();
    let kind = parts.headers.get(header::CONTENT_TYPE).cloned();
    let mut out = head(&parts, Body::new(body), None);
    if let Some(kind) = kind {
        out.headers_mut().insert(header::CONTENT_TYPE, kind);
    }
    out
}

/// Filter the upstream's answer through the gateway.
pub(super) async fn filter(resp: Upstream, cx: Context) -> Response {
    if !resp.status().is_success() {
        // An HTTP error answers the POST; a late JSON-RPC answer must not follow it.
        cx.fail(code::BAD_ANSWER, "the upstream answered with an HTTP error");
        return pass_through(resp);
    }
    let kind = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
        .unwrap_or_default();
    if kind.contains("text/event-stream") {
        return stream(resp, cx);
    }
    let (parts, body) = resp.into_parts();
    let limit = cx.app.config.max_message_bytes;
    let Ok(bytes) = axum::body::to_bytes(Body::new(body), limit).await else {
        return cx.fail_response(
            code::TOO_LARGE,
            &format!(
                "the upstream's answer is larger than the proxy's limit of {limit} bytes, or could not be read; it was not passed on"
            ),
        );
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        // 202 Accepted for a notification or an answer, say.
        return head(&parts, Body::empty(), None);
    }
    if !kind.contains("application/json") {
        tracing::warn!("refused an upstream answer of type `{kind}`");
        return cx.fail_response(
            code::BAD_ANSWER,
            &format!("the upstream answered with `{kind}`, neither JSON nor an event stream"),
        );
    }
    if bytes.trim_ascii_start().starts_with(b"[") {
        tracing::warn!("dropped a batch from the upstream: batches are not supported");
        return cx.fail_response(code::BAD_ANSWER, "the upstream answered with a batch");
    }
    match cx.route(&bytes) {
        Some(msg) => head(
            &parts,
            Body::from(msg.to_string()),
            Some("application/json"),
        ),
        None => cx.fail_response(
            code::BAD_ANSWER,
            "the upstream's answer was not passed on (malformed, or not an answer to a waiting request)",
        ),
    }
}

/// An SSE answer, rewritten one event at a time as it streams.
fn stream(resp: Upstream, cx: Context) -> Response {
    let (parts, body) = resp.into_parts();
    let data = Body::new(body).into_data_stream();
    let parser = sse::Parser::new(cx.app.config.max_message_bytes);
    let events = futures_util::stream::unfold(Some((data, parser, cx)), |state| async move {
        let (mut data, mut parser, cx) = state?;
        loop {
            match data.next().await {
                Some(Ok(chunk)) => {
                    let (out, stop) = decide(|| filter_chunk(&chunk, &mut parser, &cx));
                    if stop {
                        return Some((Ok::<_, axum::Error>(Bytes::from(out)), None));
                    }
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((data, parser, cx))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                // An event not closed by an empty line is never dispatched: dropped.
                None => return None,
            }
        }
    });
    head(&parts, Body::from_stream(events), Some("text/event-stream"))
}

/// The filtered bytes for one chunk, and whether the stream must stop here.
fn filter_chunk(chunk: &[u8], parser: &mut sse::Parser, cx: &Context) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    match parser.feed(chunk) {
        Ok(events) => {
            for event in events.into_iter().filter_map(|e| filter_event(e, cx)) {
                event.write(&mut out);
            }
            (out, false)
        }
        Err(e) => {
            tracing::warn!("ended an upstream event stream: {e}");
            if let Some(error) = cx.fail(code::TOO_LARGE, &format!("{e}; it was not passed on")) {
                sse::Event {
                    fields: vec![sse::Field::Data(error.to_string())],
                }
                .write(&mut out);
            }
            (out, true)
        }
    }
}

/// Pass the event's message through the gateway; keep its other fields (an `id:` keeps
/// resumption working even when the message is dropped). `None`: nothing is left.
fn filter_event(mut event: sse::Event, cx: &Context) -> Option<sse::Event> {
    let Some(data) = event.data() else {
        return Some(event);
    };
    if data.trim().is_empty() {
        // A priming event (an id and empty data): no message.
        return Some(event);
    }
    let at = event
        .fields
        .iter()
        .position(|f| matches!(f, sse::Field::Data(_)))
        .unwrap_or(0);
    event.fields.retain(|f| !matches!(f, sse::Field::Data(_)));
    if let Some(msg) = cx.route(data.as_bytes()) {
        event.fields.insert(at, sse::Field::Data(msg.to_string()));
    }
    (!event.fields.is_empty()).then_some(event)
}
