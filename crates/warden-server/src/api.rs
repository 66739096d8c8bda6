//! The HTTP endpoints: routing, bearer-token check, request limits, and the JSON shapes of
//! answers and errors.
//!
//! Every answer that is not a decision carries `"verdict": "deny"`, so a client that only looks
//! at `verdict` can never read an error as permission.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use warden::{Action, Decision};

use crate::exchange::{Rejection, Shared, json_ok, json_response, parse_json, read_body};
use crate::metrics::Gauges;

mod approvals;
mod dashboard;
mod operator;

/// Every endpoint the server answers. The router is built from [`Route::ALL`] alone, so a
/// route cannot be served without being listed here; a test holds this list and the OpenAPI
/// document to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/decide`
    Decide,
    /// `POST /v1/decide/batch`
    DecideBatch,
    /// `GET /v1/audit`
    Audit,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET /openapi.json`
    OpenApi,
    /// `POST /v1/handshake/challenge`
    HandshakeChallenge,
    /// `POST /v1/handshake/complete`
    HandshakeComplete,
    /// `POST /v1/handshake/initiate`
    HandshakeInitiate,
    /// `GET /v1/identity`
    Identity,
    /// `GET /v1/trust`
    Trust,
    /// `GET /v1/kills` (operator token)
    Kills,
    /// `POST /v1/kill` (operator token)
    Kill,
    /// `POST /v1/revive` (operator token)
    Revive,
    /// `GET /v1/approvals` (operator token)
    Approvals,
    /// `GET /v1/approvals/{id}` (long-polls with `?wait=`)
    Approval,
    /// `POST /v1/approvals/{id}/approve` (operator token)
    Approve,
    /// `POST /v1/approvals/{id}/deny` (operator token)
    DenyApproval,
    /// `GET /`: the dashboard's page
    Dashboard,
    /// `GET /dashboard/app.js`
    DashboardScript,
    /// `GET /dashboard/app.css`
    DashboardStyle,
    /// `POST /dashboard/login` (operator token in the body → session cookie)
    Login,
    /// `POST /dashboard/logout` (session)
    Logout,
    /// `GET /dashboard/session` (session cookie → its CSRF token)
    Session,
    /// `GET /dashboard/state` (session)
    DashboardState,
    /// `GET /dashboard/events`: decisions as server-sent events (session cookie)
    Events,
    /// `GET /dashboard/audit/verify` (session)
    AuditVerify,
    /// `GET /dashboard/agents` (session): ring, trust and kill switch per agent
    DashboardAgents,
    /// `GET /dashboard/findings` (session): what the MCP proxies found, from the audit log
    DashboardFindings,
}

impl Route {
    /// Every route, in the order of the OpenAPI document.
    pub const ALL: [Route; 30] = [
        Route::Decide,
        Route::DecideBatch,
        Route::Audit,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::OpenApi,
        Route::HandshakeChallenge,
        Route::HandshakeComplete,
        Route::HandshakeInitiate,
        Route::Identity,
        Route::Trust,
        Route::Kills,
        Route::Kill,
        Route::Revive,
        Route::Approvals,
        Route::Approval,
        Route::Approve,
        Route::DenyApproval,
        Route::Dashboard,
        Route::DashboardScript,
        Route::DashboardStyle,
        Route::Login,
        Route::Logout,
        Route::Session,
        Route::DashboardState,
        Route::Events,
        Route::DashboardAgents,
        Route::DashboardFindings,
        Route::AuditVerify,
    ];

    /// The HTTP method, lower case as in OpenAPI.
    pub fn method(self) -> &'static str {
        match self {
            Route::Decide
            | Route::DecideBatch
            | Route::HandshakeChallenge
            | Route::HandshakeComplete
            | Route::HandshakeInitiate
            | Route::Kill
            | Route::Revive
            | Route::Approve
            | Route::DenyApproval
            | Route::Login
            | Route::Logout => "post",
            _ => "get",
        }
    }

    /// The path.
    pub fn path(self) -> &'static str {
        match self {
            Route::Decide => "/v1/decide",
            Route::DecideBatch => "/v1/decide/batch",
            Route::Audit => "/v1/audit",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::HandshakeChallenge => "/v1/handshake/challenge",
            Route::HandshakeComplete => "/v1/handshake/complete",
            Route::HandshakeInitiate => "/v1/handshake/initiate",
            Route::Identity => "/v1/identity",
            Route::Trust => "/v1/trust",
            Route::Kills => "/v1/kills",
            Route::Kill => "/v1/kill",
            Route::Revive => "/v1/revive",
            Route::Approvals => "/v1/approvals",
            Route::Approval => "/v1/approvals/{id}",
            Route::Approve => "/v1/approvals/{id}/approve",
            Route::DenyApproval => "/v1/approvals/{id}/deny",
            Route::Dashboard => "/",
            Route::DashboardScript => "/dashboard/app.js",
            Route::DashboardStyle => "/dashboard/app.css",
            Route::Login => "/dashboard/login",
            Route::Logout => "/dashboard/logout",
            Route::Session => "/dashboard/session",
            Route::DashboardState => "/dashboard/state",
            Route::Events => "/dashboard/events",
            Route::AuditVerify => "/dashboard/audit/verify",
            Route::DashboardAgents => "/dashboard/agents",
            Route::DashboardFindings => "/dashboard/findings",
        }
    }

    /// Whether the bearer token (when configured) is required. Probes never need it, the
    /// operator's endpoints need the operator token instead, and the dashboard's its session.
    pub fn needs_token(self) -> bool {
        !matches!(self, Route::Healthz | Route::Readyz)
            && !self.is_operator()
            && !self.is_dashboard()
    }

    /// Whether the route belongs to the dashboard (served per [`crate::DashboardAccess`];
    /// a browser cannot send the bearer token, so they check a session instead).
    pub fn is_dashboard(self) -> bool {
        matches!(
            self,
            Route::Dashboard
                | Route::DashboardScript
                | Route::DashboardStyle
                | Route::Login
                | Route::Logout
                | Route::Session
                | Route::DashboardState
                | Route::Events
                | Route::AuditVerify
                | Route::DashboardAgents
                | Route::DashboardFindings
        )
    }

    /// Whether the route is the operator's (kill switch, answering approvals), guarded by
    /// the operator token.
    pub fn is_operator(self) -> bool {
        matches!(
            self,
            Route::Kills
                | Route::Kill
                | Route::Revive
                | Route::Approvals
                | Route::Approve
                | Route::DenyApproval
        )
    }

    fn handler(self) -> MethodRouter<AppState> {
        match self {
            Route::Decide => post(decide),
            Route::DecideBatch => post(decide_batch),
            Route::Audit => get(audit),
            Route::Healthz => get(healthz),
            Route::Readyz => get(readyz),
            Route::Metrics => get(metrics),
            Route::OpenApi => get(openapi),
            Route::HandshakeChallenge => post(crate::handshake::challenge),
            Route::HandshakeComplete => post(crate::handshake::complete),
            Route::HandshakeInitiate => post(crate::handshake::initiate),
            Route::Identity => get(crate::handshake::identity),
            Route::Trust => get(crate::handshake::trust),
            Route::Kills => get(operator::kills),
            Route::Kill => post(operator::kill),
            Route::Revive => post(operator::revive),
            Route::Approvals => get(approvals::list),
            Route::Approval => get(approvals::show),
            Route::Approve => post(approvals::approve),
            Route::DenyApproval => post(approvals::deny),
            Route::Dashboard => get(dashboard::page),
            Route::DashboardScript => get(dashboard::script),
            Route::DashboardStyle => get(dashboard::style),
            Route::Login => post(dashboard::login),
            Route::Logout => post(dashboard::logout),
            Route::Session => get(dashboard::session),
            Route::DashboardState => get(dashboard::state),
            Route::Events => get(dashboard::events),
            Route::AuditVerify => get(dashboard::verify),
            Route::DashboardAgents => get(dashboard::agents),
            Route::DashboardFindings => get(dashboard::findings),
        }
    }
}

/// The context key Warden's MCP gateway marks its decisions with (`warden-mcp`); callers of
/// this API may not set it.
pub const GATEWAY_CONTEXT: &str = "gateway";

/// The OpenAPI 3.1 document served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

type AppState = Arc<Shared>;

/// The router with every endpoint, the token check and JSON fallbacks.
pub(crate) fn router(shared: AppState) -> Router {
    let mut open = Router::new();
    let mut protected = Router::new();
    for route in Route::ALL {
        if route.needs_token() {
            protected = protected.route(route.path(), route.handler());
        } else {
            open = open.route(route.path(), route.handler());
        }
    }
    // Without a token the layer would only cost time on every request.
    if shared.token.is_some() {
        protected = protected.route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ));
    }
    open.merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), same_origin))
        .layer(middleware::from_fn(request_log))
        .with_state(shared)
}

/// One line per request at `debug` (`RUST_LOG=warden_server=debug`): method, path, status
/// and time taken. Off by default: at 100k decisions/s a log line each is its own load.
async fn request_log(request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    tracing::debug!(
        "{method} {path} {} {} us",
        response.status().as_u16(),
        started.elapsed().as_micros()
    );
    response
}

/// Refuse what a web page could make a browser send (DNS rebinding, cross-site forms):
///
/// - on a loopback address, a `Host` that is not a loopback name for this port — a page on
///   `evil.example` rebound to 127.0.0.1 arrives with `Host: evil.example`;
/// - an `Origin` that is not this server (browsers send it with every cross-site POST);
/// - a POST whose body is not declared `application/json` — the only bodies a page can send
///   cross-site without asking first (a preflight, which this server never grants) are
///   `text/plain`, form data and multipart.
async fn same_origin(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(why) = check_origin(&shared, request.headers(), request.method()) {
        return why.counted(&shared.metrics);
    }
    next.run(request).await
}

fn check_origin(
    shared: &Shared,
    headers: &HeaderMap,
    method: &axum::http::Method,
) -> Result<(), Rejection> {
    let forbidden = |m: String| Rejection::new(StatusCode::FORBIDDEN, m);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if shared.local.ip().is_loopback() {
        match host {
            Some(h) if loopback_host(h, shared.local.port()) => {}
            Some(h) => {
                return Err(forbidden(format!(
                    "Host `{}` is not this server: a loopback server answers only                      localhost, 127.0.0.1 or [::1] on port {}",
                    h.escape_debug(),
                    shared.local.port()
                )));
            }
            None => return Err(forbidden("a Host header is required".to_string())),
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        // Behind a TLS proxy, this server's pages are `https://` to the browser.
        let scheme = if shared.dashboard == crate::config::DashboardAccess::BehindTls {
            "https://"
        } else {
            "http://"
        };
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix(scheme))
            .zip(host)
            .is_some_and(|(o, h)| o.eq_ignore_ascii_case(h));
        if !same {
            return Err(forbidden(format!(
                "cross-origin requests are refused (Origin `{}`)",
                String::from_utf8_lossy(origin.as_bytes()).escape_debug()
            )));
        }
    }
    if method == axum::http::Method::POST {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be sent as `Content-Type: application/json`",
            ));
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1` (any 127/8 address) or `[::1]`, with this port or none.
fn loopback_host(host: &str, port: u16) -> bool {
    let (name, given_port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && (n.starts_with('[') || !n.contains(':')) => {
            (n, Some(p))
        }
        _ => (host, None),
    };
    if given_port.is_some_and(|p| p.parse::<u16>() != Ok(port)) {
        return false;
    }
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost")
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn require_token(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &shared.token
        && !token_matches(request.headers(), expected)
    {
        return Rejection::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (send `Authorization: Bearer <token>`)",
        )
        .counted(&shared.metrics);
    }
    next.run(request).await
}

fn token_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Constant time in the token's content, so response timing does not reveal how many
    // leading bytes were right. (A length mismatch returns early; the length is not secret.)
    given.trim().as_bytes().ct_eq(expected.as_bytes()).into()
}

fn parse_action(value: serde_json::Value, what: &str) -> Result<Action, Rejection> {
    let action: Action = serde_json::from_value(value).map_err(|e| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("{what}: invalid action: {e}"),
        )
    })?;
    action
        .validate()
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("{what}: {e}")))?;
    Ok(action)
}

/// One action straight from the bytes (one pass; no intermediate JSON tree).
fn parse_one(bytes: &[u8]) -> Result<Action, Rejection> {
    let action: Action = serde_json::from_slice(bytes).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("body: invalid action: {e}"),
            _ => format!("the body is not valid JSON: {e}"),
        };
        Rejection::new(StatusCode::BAD_REQUEST, message)
    })?;
    action
        .validate()
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
    Ok(action)
}

impl Shared {
    fn decide(&self, action: &Action, started: Instant) -> Decision {
        let decision = match action.context.get(GATEWAY_CONTEXT) {
            Some(_) => self.refuse_gateway_context(action),
            None => self.warden.decide(action),
        };
        self.decided(action, &decision, started);
        decision
    }

    /// Count and publish a decision once it is final.
    fn decided(&self, action: &Action, decision: &Decision, started: Instant) {
        let took = started.elapsed();
        self.metrics.record_decision(decision.verdict, took);
        self.feed.publish(action, decision, took);
    }

    /// A caller claimed to be Warden's MCP gateway (`context.gateway`, which marks the
    /// proxy's records, so the dashboard can tell what a proxy found from what a caller of
    /// this API wrote): denied, and recorded without the claim.
    fn refuse_gateway_context(&self, action: &Action) -> Decision {
        let mut d = Decision::deny(format!(
            "denied: `context.{GATEWAY_CONTEXT}` marks the decisions of Warden's MCP gateway; a caller of this API cannot set it"
        ));
        d.rule = Some("warden-server.reserved-context".into());
        if let Some(audit) = self.warden.audit() {
            let mut recorded = action.clone();
            if let Some(m) = recorded.context.as_object_mut() {
                m.remove(GATEWAY_CONTEXT);
            }
            match audit.append(warden_audit::Entry::new(&recorded, &d)) {
                Ok(seq) => d.audit_seq = seq,
                Err(e) => tracing::error!("could not record a refused decision: {e}"),
            }
        }
        d
    }

    /// Before a request commits the audit group its records wait in, let the runtime read
    /// and decide the requests that arrived meanwhile (tokio's yield polls for I/O first), so
    /// their records join this commit instead of the next one. While recent commits carried
    /// more than one record (clients are concurrent) that is up to [`GATHER_ROUNDS`] rounds,
    /// ended once as many records wait as the largest recent group, or once another
    /// request's commit took these; alone, one round (~1 µs). Measured with 8 clients on one
    /// server thread: groups of ~4.3 records became ~7.9 and the audited rate went from ~38k
    /// to ~46k decisions/s (before the WAL restarts of `warden-audit`'s `log/wal.rs`, which
    /// brought it to ~49k; stopping at the recent group size, to ~51k).
    async fn gather(&self, deciding: &[warden::Deciding]) {
        let Some(log) = self.warden.audit() else {
            return;
        };
        if !deciding.iter().any(warden::Deciding::commits_on_await) {
            return;
        }
        // Alone (recent commits carried one record): one round, for whatever arrived.
        let recent = log.recent_group();
        let rounds = if recent > 1 { GATHER_ROUNDS } else { 1 };
        for _ in 0..rounds {
            tokio::task::yield_now().await;
            if !deciding.iter().any(warden::Deciding::commits_on_await)
                || log.uncommitted() >= recent as u64
            {
                break;
            }
        }
    }

    /// Decide `actions` in order. A decision that only computes takes a microsecond and runs
    /// right here, and so does one that only waits for its audit record to be committed: it
    /// is handed to the log's writer and awaited ([`warden::Warden::decide_async`]), so
    /// waiting holds no thread and the records of concurrent requests share one group
    /// commit. One that may wait before that — for the file system while paths are checked
    /// against Warden's own files, a verifier, the model, the trust store — runs on a
    /// blocking thread where waiting does not stall other connections; so does one whose
    /// audit queue is full when the log waits for room.
    async fn decide_all(self: &Arc<Self>, actions: Vec<Action>, started: Instant) -> Vec<Decision> {
        if !actions.iter().any(|a| self.warden.may_wait(a)) {
            return actions.iter().map(|a| self.decide(a, started)).collect();
        }
        let n = actions.len();
        if actions.iter().any(|a| {
            self.warden.may_wait_before_audit(a) || a.context.get(GATEWAY_CONTEXT).is_some()
        }) {
            let shared = self.clone();
            let decided = tokio::task::spawn_blocking(move || {
                actions
                    .iter()
                    .map(|a| shared.decide(a, started))
                    .collect::<Vec<_>>()
            })
            .await;
            return decided.unwrap_or_else(|e| failed_task(n, &e));
        }
        // Every record is queued before the first is awaited: one commit for the batch.
        let deciding: Vec<warden::Deciding> = actions
            .iter()
            .map(|a| self.warden.decide_async(a))
            .collect();
        let decisions = if deciding.iter().any(warden::Deciding::must_block) {
            let decided = tokio::task::spawn_blocking(move || {
                deciding
                    .into_iter()
                    .map(warden::Deciding::wait)
                    .collect::<Vec<_>>()
            })
            .await;
            decided.unwrap_or_else(|e| failed_task(n, &e))
        } else {
            self.gather(&deciding).await;
            let mut decisions = Vec::with_capacity(n);
            for d in deciding {
                decisions.push(d.await);
            }
            decisions
        };
        for (action, decision) in actions.iter().zip(&decisions) {
            self.decided(action, decision, started);
        }
        decisions
    }
}

/// At most this many rounds of [`Shared::gather`].
const GATHER_ROUNDS: usize = 5;

/// The decisions of a blocking task that failed. INVARIANT: a failed task never becomes an
/// allow.
fn failed_task(n: usize, e: &tokio::task::JoinError) -> Vec<Decision> {
    (0..n)
        .map(|_| Decision::deny(format!("denied: the decision task failed: {e}")))
        .collect()
}

async fn decide(State(shared): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = shared.metrics.start_request();
    let (parts, body) = request.into_parts();
    let action = read_body(&shared, &parts.headers, body)
        .await
        .and_then(|bytes| parse_one(&bytes));
    match action {
        Ok(action) => match shared.decide_all(vec![action], started).await.pop() {
            Some(decision) => json_ok(&decision),
            None => json_ok(&Decision::deny("denied: no decision was made")),
        },
        Err(rejection) => rejection.counted(&shared.metrics),
    }
}

async fn decide_batch(State(shared): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = shared.metrics.start_request();
    let (parts, body) = request.into_parts();
    let actions = read_body(&shared, &parts.headers, body)
        .await
        .and_then(|bytes| parse_json(&bytes))
        .and_then(|value| parse_batch(&shared, value));
    match actions {
        Ok(actions) => json_ok(&shared.decide_all(actions, started).await),
        Err(rejection) => rejection.counted(&shared.metrics),
    }
}

fn parse_batch(shared: &Shared, value: serde_json::Value) -> Result<Vec<Action>, Rejection> {
    let serde_json::Value::Array(items) = value else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON array of actions",
        ));
    };
    if items.len() > shared.max_batch {
        return Err(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a batch holds at most {} actions; this one has {}",
                shared.max_batch,
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse_action(v, &format!("actions[{i}]")))
        .collect()
}

/// The query parameters of `GET /v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    agent: Option<String>,
    action: Option<String>,
    verdict: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// Most records one `GET /v1/audit` returns, so one request cannot ask for the whole log.
const MAX_AUDIT_RECORDS: usize = 10_000;
/// Records returned when no `limit` is given.
const DEFAULT_AUDIT_RECORDS: usize = 100;

fn audit_filter(request: &Request) -> Result<warden_audit::Filter, Rejection> {
    let bad = |m: String| Rejection::new(StatusCode::BAD_REQUEST, m);
    let Query(q) = Query::<AuditQuery>::try_from_uri(request.uri())
        .map_err(|e| bad(format!("invalid query: {}", e.body_text())))?;
    let time = |t: Option<String>| {
        t.map(|t| warden_audit::Timestamp::parse_rfc3339(&t))
            .transpose()
            .map_err(|e| bad(e.to_string()))
    };
    let limit = q.limit.unwrap_or(DEFAULT_AUDIT_RECORDS);
    if limit > MAX_AUDIT_RECORDS {
        return Err(bad(format!("limit is at most {MAX_AUDIT_RECORDS}")));
    }
    Ok(warden_audit::Filter {
        agent: q.agent,
        action: q.action,
        verdict: q.verdict.map(|v| v.parse()).transpose().map_err(bad)?,
        since: time(q.since)?,
        until: time(q.until)?,
        limit: Some(limit),
        ..Default::default()
    })
}

async fn audit(State(shared): State<AppState>, request: Request) -> Response {
    let Some(db) = shared.audit_db.clone() else {
        return Rejection::new(
            StatusCode::NOT_FOUND,
            "this server keeps no audit log (start it with --db FILE)",
        )
        .counted(&shared.metrics);
    };
    let filter = match audit_filter(&request) {
        Ok(f) => f,
        Err(rejection) => return rejection.counted(&shared.metrics),
    };
    let records = tokio::task::spawn_blocking(move || warden_audit::query(db, &filter)).await;
    match records {
        Ok(Ok(records)) => json_ok(&records),
        Ok(Err(e)) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the audit log: {e}"),
        )
        .into_response(),
        Err(e) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the audit query failed: {e}"),
        )
        .into_response(),
    }
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_string())
}

async fn readyz(State(shared): State<AppState>) -> Response {
    if shared.draining.load(Ordering::Relaxed) {
        return Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    json_response(
        StatusCode::OK,
        format!(
            r#"{{"status":"ready","policy_version":{}}}"#,
            shared.warden.policy_version()
        ),
    )
}

async fn metrics(State(shared): State<AppState>) -> Response {
    let stats = shared.warden.audit().map(|log| log.stats());
    let text = shared.metrics.render(Gauges {
        policy_version: shared.warden.policy_version(),
        audit_queue_depth: stats.as_ref().map(|s| s.queue_depth as u64),
        audit_committed: stats.as_ref().map_or(0, |s| s.committed),
        audit_checkpoints: stats.as_ref().map_or(0, |s| s.checkpoints),
        audit_wal_restarts: stats.as_ref().map_or(0, |s| s.wal_restarts),
    });
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn openapi(State(shared): State<AppState>) -> Response {
    // The document names the address this server really listens on.
    let text = OPENAPI.replacen(
        "http://127.0.0.1:8181",
        &format!("http://{}", shared.local),
        1,
    );
    json_response(StatusCode::OK, text)
}

async fn not_found(State(shared): State<AppState>, request: Request) -> Response {
    Rejection::new(
        StatusCode::NOT_FOUND,
        format!("no endpoint {} (see /openapi.json)", request.uri().path()),
    )
    .counted(&shared.metrics)
}

async fn method_not_allowed(State(shared): State<AppState>, request: Request) -> Response {
    Rejection::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
    .counted(&shared.metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_describes_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        let paths = doc["paths"].as_object().expect("paths");
        let mut described = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    described.push((method.clone(), path.clone()));
                }
            }
        }
        let mut served: Vec<(String, String)> = Route::ALL
            .iter()
            .map(|r| (r.method().to_string(), r.path().to_string()))
            .collect();
        described.sort();
        served.sort();
        assert_eq!(described, served);
    }

    #[test]
    fn only_loopback_names_for_this_port() {
        for ok in [
            "localhost:8181",
            "127.0.0.1:8181",
            "[::1]:8181",
            "localhost",
            "127.0.0.2:8181",
            "LOCALHOST.:8181",
        ] {
            assert!(loopback_host(ok, 8181), "{ok}");
        }
        for bad in [
            "evil.example:8181",
            "localhost:8182",
            "127.0.0.1.evil.example",
            "[::2]:8181",
            "",
            "localhost:x",
            "0.0.0.0:8181",
        ] {
            assert!(!loopback_host(bad, 8181), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        let mut h = HeaderMap::new();
        assert!(!token_matches(&h, "abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(token_matches(&h, "abc"));
        assert!(!token_matches(&h, "abcd"));
        assert!(!token_matches(&h, "ab"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(!token_matches(&h, "abc"));
    }
}
