//! The plumbing every endpoint shares: the server's shared state, error answers, JSON
//! answers and bounded request bodies. Below both the decision API and the handshake
//! endpoints, so neither depends on the other's module.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use warden::Warden;

use crate::metrics::Metrics;

/// What every request handler shares.
pub(crate) struct Shared {
    pub warden: Arc<Warden>,
    pub metrics: Arc<Metrics>,
    pub token: Option<String>,
    /// The token the operator's endpoints require (none: they are off).
    pub operator_token: Option<String>,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub request_timeout: Duration,
    /// The audit log's file, for `GET /v1/audit` (read-only connections beside the writer).
    pub audit_db: Option<std::path::PathBuf>,
    /// The address the server is bound to: the only `Host` a loopback server answers, and
    /// the `servers` entry of its OpenAPI document.
    pub local: SocketAddr,
    /// Set when shutdown began: `/readyz` turns 503 so load balancers stop sending.
    pub draining: AtomicBool,
    /// This server's side of the trust handshake (`--identity`), when it has one.
    pub handshake: Option<Arc<warden_trust::handshake::Responder>>,
    /// Every decision, for the dashboard's open event streams.
    pub feed: crate::feed::Feed,
    /// Dashboard logins.
    pub sessions: crate::session::Sessions,
    /// Where the dashboard may be used.
    pub dashboard: crate::config::DashboardAccess,
    /// The policy reloader, for its last outcome.
    pub reloader: Arc<crate::reload::Reloader>,
    /// Set while an on-demand audit verification runs (one at a time).
    pub verifying: AtomicBool,
    /// Turns `true` when shutdown begins, so long-lived event streams end and the drain is
    /// not held up by an open dashboard.
    pub closing: tokio::sync::watch::Sender<bool>,
}

/// An error answer: a status, and `{"error": …, "verdict": "deny"}`.
#[derive(Debug)]
pub(crate) struct Rejection {
    status: StatusCode,
    error: String,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Rejection {
            status,
            error: error.into(),
        }
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn counted(self, metrics: &Metrics) -> Response {
        metrics.record_rejected(self.status.as_u16());
        self.into_response()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    verdict: &'static str,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&ErrorBody {
            error: &self.error,
            verdict: "deny",
        })
        .unwrap_or_else(|_| r#"{"error":"internal error","verdict":"deny"}"#.to_string());
        let mut response = json_response(self.status, body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Serialize a value, or answer with a deny if that ever fails.
pub(crate) fn json_ok<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the answer: {e}"),
        )
        .into_response(),
    }
}

/// Read the whole body within the size and time limits.
pub(crate) async fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Rejection> {
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {} bytes",
                shared.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > shared.max_body_bytes as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        shared.request_timeout,
        axum::body::to_bytes(body, shared.max_body_bytes),
    )
    .await
    {
        Err(_) => Err(Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s",
                shared.request_timeout.as_secs_f64()
            ),
        )),
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
        Ok(Err(e)) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if err.to_string().contains("length limit") {
            return true;
        }
        source = err.source();
    }
    false
}

/// A request's whole body as JSON, within the size and time limits.
pub(crate) async fn read_json(
    shared: &Shared,
    request: Request,
) -> Result<serde_json::Value, Rejection> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(shared, &parts.headers, body).await?;
    parse_json(&bytes)
}

pub(crate) fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, Rejection> {
    serde_json::from_slice(bytes).map_err(|e| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })
}
