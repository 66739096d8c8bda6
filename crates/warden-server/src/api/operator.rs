//! The operator's endpoints: `GET /v1/kills`, `POST /v1/kill`, `POST /v1/revive`.
//!
//! They need the **operator token** (`Authorization: Bearer <operator token>`) — or a
//! dashboard session cookie with its CSRF header, which only that token can open — which is
//! not the decision token: an agent that may ask for decisions must not be able to lift its own
//! kill switch. Without an operator token configured they answer 403 and change nothing. The
//! body names exactly one scope — `{"agent": "a1"}`, `{"all": true}` or
//! `{"action": "payments.*"}` — with a `reason` (required to revive) and `by` (who; recorded).
//! Changes are made on a blocking thread (a database write and a durable audit record).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use warden_runtime::{KillView, Operator, RuntimeError, Scope};

use super::{AppState, Rejection, json_ok, read_body, token_matches};

/// The body of `POST /v1/kill` and `POST /v1/revive`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

impl OperatorRequest {
    fn scope(&self) -> Result<Scope, Rejection> {
        let bad = |m: String| Rejection::new(StatusCode::BAD_REQUEST, m);
        match (&self.agent, self.all, &self.action) {
            (Some(a), false, None) => Scope::agent(a).map_err(|e| bad(format!("agent: {e}"))),
            (None, true, None) => Ok(Scope::All),
            (None, false, Some(g)) => Scope::action(g).map_err(|e| bad(format!("action: {e}"))),
            _ => Err(bad(
                "name exactly one scope: `agent`, `all: true` or `action`".to_string(),
            )),
        }
    }

    fn operator(&self) -> Operator {
        let name = self
            .by
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or("operator token holder");
        Operator::new(name, "http")
    }
}

pub(super) fn authorize(shared: &super::Shared, headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(expected) = &shared.operator_token else {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "operator endpoints are off: the server was started without an operator token",
        ));
    };
    if token_matches(headers, expected) {
        return Ok(());
    }
    // A browser logged in to the dashboard: its session cookie and CSRF header. A bearer
    // header that did not match is never rescued by a cookie.
    if headers.get(axum::http::header::AUTHORIZATION).is_none()
        && super::dashboard::has_session_cookie(headers)
    {
        return super::dashboard::require_session(shared, headers).map(|_| ());
    }
    Err(Rejection::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong operator token (send `Authorization: Bearer <operator token>`; the decision token is not one)",
    ))
}

async fn operator_request(
    shared: &AppState,
    request: Request,
) -> Result<OperatorRequest, Rejection> {
    authorize(shared, request.headers())?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(shared, &parts.headers, body).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("body: {e}")))
}

fn runtime_rejection(e: RuntimeError) -> Rejection {
    let status = match e {
        RuntimeError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Rejection::new(status, e.to_string())
}

/// `GET /v1/kills`: the kill switches in force.
pub(super) async fn kills(State(shared): State<AppState>, request: Request) -> Response {
    if let Err(r) = authorize(&shared, request.headers()) {
        return r.counted(&shared.metrics);
    }
    let views: Vec<KillView> = shared
        .warden
        .runtime()
        .kills()
        .iter()
        .map(KillView::from)
        .collect();
    json_ok(&views)
}

/// `POST /v1/kill`: set a kill switch.
pub(super) async fn kill(State(shared): State<AppState>, request: Request) -> Response {
    let req = match operator_request(&shared, request)
        .await
        .and_then(|r| r.scope().map(|s| (r, s)))
    {
        Ok(r) => r,
        Err(r) => return r.counted(&shared.metrics),
    };
    let (req, scope) = req;
    let worker = shared.clone();
    let done = tokio::task::spawn_blocking(move || {
        let reason = req
            .reason
            .clone()
            .unwrap_or_else(|| "no reason given".to_string());
        worker
            .warden
            .runtime()
            .kill(
                scope.clone(),
                &reason,
                &req.operator(),
                worker.warden.audit(),
            )
            .map(|set| (set, scope))
    })
    .await;
    match done {
        Ok(Ok((set, scope))) => json_ok(&serde_json::json!({
            "set": set,
            "scope": scope.kind(),
            "target": scope.target(),
            "kills": shared.warden.runtime().kills().iter().map(KillView::from).collect::<Vec<_>>(),
        })),
        Ok(Err(e)) => runtime_rejection(e).counted(&shared.metrics),
        Err(e) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the kill failed: {e}"),
        )
        .counted(&shared.metrics),
    }
}

/// `POST /v1/revive`: lift a kill switch (recorded first; `reason` required).
pub(super) async fn revive(State(shared): State<AppState>, request: Request) -> Response {
    let req = match operator_request(&shared, request)
        .await
        .and_then(|r| r.scope().map(|s| (r, s)))
    {
        Ok(r) => r,
        Err(r) => return r.counted(&shared.metrics),
    };
    let (req, scope) = req;
    let Some(reason) = req.reason.clone() else {
        return Rejection::new(
            StatusCode::BAD_REQUEST,
            "reason: a reason is required to revive",
        )
        .counted(&shared.metrics);
    };
    let worker = shared.clone();
    let target = scope.clone();
    let done = tokio::task::spawn_blocking(move || {
        worker
            .warden
            .runtime()
            .revive(&target, &reason, &req.operator(), worker.warden.audit())
    })
    .await;
    match done {
        Ok(Ok(true)) => json_ok(&serde_json::json!({
            "lifted": true,
            "scope": scope.kind(),
            "target": scope.target(),
            "kills": shared.warden.runtime().kills().iter().map(KillView::from).collect::<Vec<_>>(),
        })),
        Ok(Ok(false)) => Rejection::new(
            StatusCode::NOT_FOUND,
            format!("no kill switch is set for {scope}"),
        )
        .counted(&shared.metrics),
        Ok(Err(e)) => runtime_rejection(e).counted(&shared.metrics),
        Err(e) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the revival failed: {e}"),
        )
        .counted(&shared.metrics),
    }
}
