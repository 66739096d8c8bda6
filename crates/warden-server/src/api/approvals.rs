//! Approval requests over HTTP: `GET /v1/approvals` and `POST /v1/approvals/{id}/approve|deny`
//! for operators (operator token), `GET /v1/approvals/{id}?wait=30s` for the client that got a
//! `require_approval` (decision token): it answers once the request is settled — approved,
//! denied, used or expired — or when the wait is over, with the request as it stands.
//!
//! The decision token cannot answer a request: an agent must not approve its own actions.
//! Answers are recorded in the audit log first (`warden.approval.approve|deny`).

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use warden_runtime::Operator;
use warden_runtime::approval::{AnswerError, ApprovalStatus, Approvals};

use super::operator::authorize;
use super::{AppState, Rejection, json_ok, read_body};

/// The longest `wait` a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting request looks at the database.
const POLL: Duration = Duration::from_millis(100);
/// The most long-polls (`?wait=`) at once in this process: each reads the database every
/// [`POLL`], so past this a waiting client is told to come back (503) rather than adding
/// reads without bound.
pub(crate) const MAX_LONG_POLLS: usize = 256;
static LONG_POLLS: warden::Places = warden::Places::new(MAX_LONG_POLLS);

fn now_ns() -> u64 {
    warden_audit::Timestamp::now_unix_ns()
}

fn store(shared: &AppState) -> Result<&Approvals, Rejection> {
    shared.warden.approvals().ok_or_else(|| {
        Rejection::new(
            StatusCode::NOT_FOUND,
            "approvals are off: the server was started without --db (requests live there)",
        )
    })
}

fn internal(e: impl std::fmt::Display) -> Rejection {
    Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `?all=true` lists every request, not only the pending ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /v1/approvals` (operator): pending requests, newest first.
pub(super) async fn list(
    State(shared): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = async {
        authorize(&shared, &headers)?;
        let Query(q) = query.map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        let worker = shared.clone();
        tokio::task::spawn_blocking(move || {
            let filter = (!q.all).then_some(ApprovalStatus::Pending);
            store(&worker)?
                .list(filter, 1000, now_ns())
                .map_err(internal)
        })
        .await
        .map_err(internal)?
    }
    .await;
    match result {
        Ok(rows) => json_ok(&rows),
        Err(r) => r.counted(&shared.metrics),
    }
}

/// `?wait=30s`: hold the answer until the request is settled, at most this long (≤ 60 s).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShowQuery {
    #[serde(default)]
    wait: Option<String>,
}

/// `GET /v1/approvals/{id}` (decision token): one request; with `wait`, long-polls.
pub(super) async fn show(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = query.map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        let wait = match q.wait.as_deref() {
            None => Duration::ZERO,
            Some(w) => warden_policy::runtime::parse_duration(w)
                .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("wait: {e}")))?
                .min(MAX_WAIT),
        };
        let _place = if wait.is_zero() {
            None
        } else {
            Some(LONG_POLLS.take().ok_or_else(|| {
                Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{MAX_LONG_POLLS} clients are already waiting on approval requests; ask again without `wait` or later"
                    ),
                )
            })?)
        };
        let deadline = Instant::now() + wait;
        loop {
            let worker = shared.clone();
            let key = id.clone();
            let found = tokio::task::spawn_blocking(move || {
                store(&worker)?.get(&key, now_ns()).map_err(internal)
            })
            .await
            .map_err(internal)??;
            let Some(approval) = found else {
                return Err(Rejection::new(
                    StatusCode::NOT_FOUND,
                    format!("no approval request `{id}`"),
                ));
            };
            if approval.status.is_settled() || Instant::now() >= deadline {
                return Ok(approval);
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
    .await;
    match result {
        Ok(a) => json_ok(&a),
        Err(r) => r.counted(&shared.metrics),
    }
}

/// The body of `POST /v1/approvals/{id}/approve|deny`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRequest {
    reason: String,
    #[serde(default)]
    by: Option<String>,
}

async fn answer(shared: AppState, id: String, request: Request, approve: bool) -> Response {
    let result = async {
        authorize(&shared, request.headers())?;
        let (parts, body) = request.into_parts();
        let bytes = read_body(&shared, &parts.headers, body).await?;
        let req: AnswerRequest = serde_json::from_slice(&bytes)
            .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
        let worker = shared.clone();
        tokio::task::spawn_blocking(move || {
            let by = req
                .by
                .as_deref()
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .unwrap_or("operator token holder");
            store(&worker)?
                .answer_recorded(
                    &id,
                    approve,
                    &Operator::new(by, "http"),
                    &req.reason,
                    worker.warden.audit(),
                    now_ns(),
                )
                .map_err(|e| match e {
                    AnswerError::Unknown(_) => Rejection::new(StatusCode::NOT_FOUND, e.to_string()),
                    AnswerError::Settled { .. } => {
                        Rejection::new(StatusCode::CONFLICT, e.to_string())
                    }
                    AnswerError::Invalid(_) => {
                        Rejection::new(StatusCode::BAD_REQUEST, e.to_string())
                    }
                    AnswerError::Runtime(e) => internal(e),
                })
        })
        .await
        .map_err(internal)?
    }
    .await;
    match result {
        Ok(a) => json_ok(&a),
        Err(r) => r.counted(&shared.metrics),
    }
}

/// `POST /v1/approvals/{id}/approve` (operator).
pub(super) async fn approve(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    answer(shared, id, request, true).await
}

/// `POST /v1/approvals/{id}/deny` (operator).
pub(super) async fn deny(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    answer(shared, id, request, false).await
}
