//! The operator's dashboard: a page at `/` with its script and style (embedded in the binary;
//! no build step), a login that turns the operator token into a session cookie, and the
//! read-only views the page needs that the API does not already have — a state snapshot, the
//! live decision stream (server-sent events) and an on-demand audit verification.
//!
//! Answering approvals and setting kill switches go through the existing operator endpoints:
//! [`super::operator::authorize`] accepts a session cookie there, with its CSRF header.
//!
//! Why a session and a CSRF header, and not the token in the page: the token would then live
//! in page storage for any injected script to read. The cookie is `HttpOnly` (scripts never
//! see it) and `SameSite=Strict` (no other site's request carries it); the CSRF token, sent
//! in `X-Warden-CSRF`, is what a forged cross-site request cannot know; and the server's
//! same-origin guard refuses foreign `Origin`s, non-JSON POSTs and rebound `Host`s first.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast::error::RecvError;
use warden_core::Verdict;

use super::{AppState, Rejection, json_ok, read_body};
use crate::config::DashboardAccess;
use crate::exchange::Shared;
use crate::session::{self, SessionCheck};

const PAGE: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");

/// The page may load only its own script and style, talk only to this server, and never be
/// framed (clickjacking an approve button).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// How often an open event stream sends a keep-alive comment and re-checks its session.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether the dashboard is served here: off, or off loopback without a TLS proxy, it is not.
fn open(shared: &Shared) -> Result<(), Rejection> {
    served(shared.dashboard, shared.local.ip())
}

fn served(access: DashboardAccess, local: std::net::IpAddr) -> Result<(), Rejection> {
    match access {
        DashboardAccess::Off => Err(Rejection::new(
            StatusCode::NOT_FOUND,
            "the dashboard is off on this server",
        )),
        DashboardAccess::Loopback if !local.is_loopback() => Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "the dashboard is served only on a loopback address: this server speaks plain HTTP, \
             so a login would cross the network in clear (serve it behind a TLS proxy and say so)",
        )),
        _ => Ok(()),
    }
}

fn secure_cookies(shared: &Shared) -> bool {
    shared.dashboard == DashboardAccess::BehindTls
}

pub(super) fn has_session_cookie(headers: &HeaderMap) -> bool {
    session::cookie(headers, session::COOKIE).is_some()
}

/// A live session whose CSRF header matches; returns its id.
pub(super) fn require_session(shared: &Shared, headers: &HeaderMap) -> Result<String, Rejection> {
    open(shared)?;
    match shared.sessions.check(headers) {
        SessionCheck::Valid { id, csrf_ok: true } => Ok(id),
        SessionCheck::Valid { csrf_ok: false, .. } => Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token (the dashboard sends it in `X-Warden-CSRF`)",
        )),
        SessionCheck::Expired => Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            "the dashboard session expired or was logged out; log in again",
        )),
        SessionCheck::None => Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            "log in to the dashboard first (no session cookie)",
        )),
    }
}

fn asset(shared: &Shared, body: &'static str, content_type: &'static str) -> Response {
    if let Err(r) = open(shared) {
        return r.counted(&shared.metrics);
    }
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /`
pub(super) async fn page(State(shared): State<AppState>) -> Response {
    asset(&shared, PAGE, "text/html; charset=utf-8")
}

/// `GET /dashboard/app.js`
pub(super) async fn script(State(shared): State<AppState>) -> Response {
    asset(&shared, SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /dashboard/app.css`
pub(super) async fn style(State(shared): State<AppState>) -> Response {
    asset(&shared, STYLE, "text/css; charset=utf-8")
}

/// The body of `POST /dashboard/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    token: String,
}

/// What the page keeps after logging in: its CSRF token.
#[derive(Serialize)]
struct SessionAnswer<'a> {
    csrf: &'a str,
    expires_in_secs: u64,
}

/// `POST /dashboard/login`: the operator token (never the decision token) opens a session.
pub(super) async fn login(State(shared): State<AppState>, request: Request) -> Response {
    let result = async {
        open(&shared)?;
        let Some(expected) = shared.operator_token.clone() else {
            return Err(Rejection::new(
                StatusCode::FORBIDDEN,
                "the dashboard needs an operator token: the server was started without one",
            ));
        };
        let (parts, body) = request.into_parts();
        let bytes = read_body(&shared, &parts.headers, body).await?;
        let req: LoginRequest = serde_json::from_slice(&bytes)
            .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
        if !shared.sessions.may_try() {
            return Err(Rejection::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed logins ({} a minute); try again in a minute",
                    session::MAX_FAILURES
                ),
            ));
        }
        // Constant time in the token's content (see `token_matches`).
        if !bool::from(req.token.trim().as_bytes().ct_eq(expected.as_bytes())) {
            shared.sessions.failed();
            return Err(Rejection::new(
                StatusCode::UNAUTHORIZED,
                "wrong operator token (the decision token is not one)",
            ));
        }
        shared.sessions.create().map_err(|e| {
            Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot start a session: no randomness: {e}"),
            )
        })
    }
    .await;
    match result {
        Ok(new) => {
            let ttl = shared.sessions.ttl();
            let mut response = json_ok(&SessionAnswer {
                csrf: &new.csrf,
                expires_in_secs: ttl.as_secs(),
            });
            set_cookie(
                &mut response,
                &session::set_cookie(&new.id, ttl, secure_cookies(&shared)),
            );
            response
        }
        Err(r) => r.counted(&shared.metrics),
    }
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// `POST /dashboard/logout`: end the session (CSRF-protected like every other change).
pub(super) async fn logout(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    match require_session(&shared, &headers) {
        Ok(id) => {
            shared.sessions.remove(&id);
            let mut response = json_ok(&serde_json::json!({"logged_out": true}));
            set_cookie(
                &mut response,
                &session::clear_cookie(secure_cookies(&shared)),
            );
            response
        }
        Err(r) => r.counted(&shared.metrics),
    }
}

/// `GET /dashboard/session`: a reloaded page finds its session's CSRF token again (same-origin
/// scripts only can read the answer; the cookie is never sent cross-site).
pub(super) async fn session(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = open(&shared) {
        return r.counted(&shared.metrics);
    }
    match shared.sessions.csrf_for_cookie(&headers) {
        Some(csrf) => json_ok(&SessionAnswer {
            csrf: &csrf,
            expires_in_secs: shared.sessions.ttl().as_secs(),
        }),
        None => Rejection::new(StatusCode::UNAUTHORIZED, "not logged in").counted(&shared.metrics),
    }
}

#[derive(Serialize)]
struct Bucket {
    /// Upper bound in seconds; `None` is the overflow bucket.
    le: Option<f64>,
    count: u64,
}

/// `GET /dashboard/state`: everything cheap to read, in one answer.
pub(super) async fn state(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_session(&shared, &headers) {
        return r.counted(&shared.metrics);
    }
    let m = &shared.metrics;
    let latency: Vec<Bucket> = m
        .latency_histogram()
        .into_iter()
        .map(|(le, count)| Bucket { le, count })
        .collect();
    let audit = shared.warden.audit().map(|log| {
        serde_json::json!({
            "path": log.path().display().to_string(),
            "stats": log.stats(),
        })
    });
    json_ok(&serde_json::json!({
        "policy_version": shared.warden.policy_version(),
        "last_reload": shared.reloader.last_outcome(),
        "reloads": m.reloads(),
        "reload_failures": m.reload_failures(),
        "decisions": {
            "allow": m.decisions(Verdict::Allow),
            "deny": m.decisions(Verdict::Deny),
            "require_approval": m.decisions(Verdict::RequireApproval),
        },
        "latency": {
            "buckets": latency,
            "sum_seconds": m.latency_sum_seconds(),
        },
        "audit": audit,
        "approvals": shared.warden.approvals().is_some(),
        "listeners": shared.feed.listeners(),
    }))
}

/// `GET /dashboard/audit/verify`: walk the whole chain now (on demand: it reads every
/// record), one verification at a time.
pub(super) async fn verify(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_session(&shared, &headers) {
        return r.counted(&shared.metrics);
    }
    let Some(path) = shared.audit_db.clone() else {
        return Rejection::new(
            StatusCode::NOT_FOUND,
            "this server keeps no audit log (start it with a database)",
        )
        .counted(&shared.metrics);
    };
    if shared.verifying.swap(true, Ordering::AcqRel) {
        return Rejection::new(
            StatusCode::CONFLICT,
            "a verification is running already; try again when it is done",
        )
        .counted(&shared.metrics);
    }
    let worker = shared.clone();
    let report = tokio::task::spawn_blocking(move || {
        let report = warden_audit::verify(&path, None, |_, _| {});
        worker.verifying.store(false, Ordering::Release);
        report
    })
    .await;
    match report {
        Ok(report) => {
            let (status, summary, tampering, error) = match &report {
                warden_audit::VerifyReport::Intact(s) => ("intact", Some(s), None, None),
                warden_audit::VerifyReport::Tampered { summary, tampering } => {
                    ("tampered", Some(summary), Some(tampering), None)
                }
                warden_audit::VerifyReport::Error(e) => ("error", None, None, Some(e.to_string())),
            };
            json_ok(&serde_json::json!({
                "status": status,
                "summary": summary,
                "tampering": tampering,
                "error": error,
            }))
        }
        Err(e) => {
            shared.verifying.store(false, Ordering::Release);
            Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the verification failed: {e}"),
            )
            .counted(&shared.metrics)
        }
    }
}

/// The most agents `GET /dashboard/agents` lists.
const MAX_AGENTS: usize = 200;
/// How many recent audit records `GET /dashboard/agents` reads for agent names.
const AGENT_RECORDS: usize = 1_000;
/// How many recent audit records `GET /dashboard/findings` looks through for the proxy's
/// (their context only; never their arguments), and the most it shows.
const FINDING_RECORDS: usize = 20_000;
const MAX_FINDINGS: usize = 200;

/// `GET /dashboard/agents`: every agent this server knows of — scored by the trust store,
/// named in recent audit records, or stopped by a kill switch — with its ring and why, its
/// trust and its kill switch. Bounded ([`MAX_AGENTS`]); read off the request thread.
pub(super) async fn agents(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_session(&shared, &headers) {
        return r.counted(&shared.metrics);
    }
    let worker = shared.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let warden = &worker.warden;
        // Who makes the cut of MAX_AGENTS, in this order: agents a kill switch stops, agents
        // the trust store scored, then names from the audit log, newest first. A caller can
        // put any name it likes into the audit log, so those come last: a flood of made-up
        // names cannot push a killed or scored agent off the page.
        let mut names: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |name: String, names: &mut Vec<String>| {
            if names.len() < MAX_AGENTS && seen.insert(name.clone()) {
                names.push(name);
            }
        };
        for kill in warden.runtime().kills() {
            if let warden_runtime::Scope::Agent(agent) = kill.scope {
                add(agent, &mut names);
            }
        }
        // Every score read once; the store lists the highest first.
        let scored: Vec<(String, warden::AgentTrust)> = warden
            .zero_trust()
            .trust()
            .and_then(|t| t.agents(MAX_AGENTS).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(agent, score)| (agent, score.into()))
            .collect();
        for (agent, _) in &scored {
            add(agent.clone(), &mut names);
        }
        let mut scored: std::collections::HashMap<String, warden::AgentTrust> =
            scored.into_iter().collect();
        if let Some(path) = &worker.audit_db
            && let Ok(recent) =
                warden_audit::LogReader::open(path).and_then(|r| r.recent_agents(AGENT_RECORDS))
        {
            for agent in recent {
                add(agent, &mut names);
            }
        }
        names.sort();
        let agents: Vec<serde_json::Value> = names
            .into_iter()
            .map(|name| {
                let trust = scored.remove(&name);
                let s = warden.agent_status(&name, trust);
                serde_json::json!({
                    "agent": s.agent,
                    "ring": s.ring.as_ref().map(|(r, _)| r.to_string()),
                    "placement": s.ring.map(|(_, why)| why),
                    "trust": s.trust.map(|t| serde_json::json!({
                        "score": t.score,
                        "tier": t.tier.as_str(),
                        "revoked": t.revoked,
                    })),
                    "killed": s.killed,
                })
            })
            .collect();
        serde_json::json!({
            "agents": agents,
            "rings": warden.has_rings(),
            "trust": warden.zero_trust().trust().is_some(),
        })
    })
    .await;
    match listed {
        Ok(v) => json_ok(&v),
        Err(e) => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            .counted(&shared.metrics),
    }
}

/// `GET /dashboard/findings`: what MCP proxies that write to this server's database found —
/// withheld tools, flagged tool results and sampling requests (records whose context has
/// `findings`), and messages the proxy refused by itself (rules `warden-mcp.*`) — newest
/// first. The proxies are other processes: the audit log is where their findings meet.
pub(super) async fn findings(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_session(&shared, &headers) {
        return r.counted(&shared.metrics);
    }
    let Some(path) = shared.audit_db.clone() else {
        return Rejection::new(
            StatusCode::NOT_FOUND,
            "this server keeps no audit log (start it with a database)",
        )
        .counted(&shared.metrics);
    };
    let read = tokio::task::spawn_blocking(move || {
        // Only the proxy's records, without their arguments (see `GATEWAY_CONTEXT`).
        warden_audit::LogReader::open(&path)
            .and_then(|r| {
                r.marked(
                    crate::api::GATEWAY_CONTEXT,
                    "warden-mcp",
                    FINDING_RECORDS,
                    MAX_FINDINGS,
                )
            })
            .map(|records| {
                records
                    .into_iter()
                    .filter_map(finding_of)
                    .take(MAX_FINDINGS)
                    .collect::<Vec<_>>()
            })
    })
    .await;
    match read {
        Ok(Ok(found)) => json_ok(&serde_json::json!({ "findings": found })),
        Ok(Err(e)) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the audit log could not be read: {e}"),
        )
        .counted(&shared.metrics),
        Err(e) => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            .counted(&shared.metrics),
    }
}

/// An MCP audit record as a finding, if it is one.
fn finding_of(r: warden_audit::Record) -> Option<serde_json::Value> {
    let context = r.context.as_ref();
    // Only the proxy's records: a caller of `/v1/decide` may name any action and context,
    // but not `context.gateway` (see `GATEWAY_CONTEXT`).
    let from_gateway = context
        .and_then(|c| c.get(crate::api::GATEWAY_CONTEXT))
        .and_then(|g| g.as_str())
        == Some("warden-mcp");
    let found: Vec<serde_json::Value> = context
        .filter(|_| from_gateway)
        .and_then(|c| c.get("findings"))
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    let refused_by_proxy = r
        .rule
        .as_deref()
        .is_some_and(|rule| rule.starts_with("warden-mcp."));
    if found.is_empty() && !refused_by_proxy {
        return None;
    }
    Some(serde_json::json!({
        "seq": r.seq,
        "ts": r.ts.to_string(),
        "server": context.and_then(|c| c.get("server")).and_then(|s| s.as_str()),
        "action": r.action,
        "tool": r.tool.or(r.resource),
        "verdict": r.verdict.as_str(),
        "rule": r.rule,
        "reason": r.reason,
        "findings": found,
    }))
}

/// `GET /dashboard/events`: every decision from now on, as server-sent events. The session
/// cookie suffices (`EventSource` cannot send headers; the stream changes nothing). A client
/// that falls [`crate::feed::FEED_CAPACITY`] events behind is dropped; so is one whose
/// session ends, and every stream when the server shuts down.
pub(super) async fn events(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = open(&shared) {
        return r.counted(&shared.metrics);
    }
    let Some(id) = session::cookie(&headers, session::COOKIE)
        .filter(|_| shared.sessions.csrf_for_cookie(&headers).is_some())
        .map(str::to_string)
    else {
        return Rejection::new(StatusCode::UNAUTHORIZED, "log in to the dashboard first")
            .counted(&shared.metrics);
    };
    let Some(listener) = shared.feed.listen() else {
        return Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many dashboards are watching ({} at most)",
                crate::feed::MAX_LISTENERS
            ),
        )
        .counted(&shared.metrics);
    };
    let closing = shared.closing.subscribe();
    let cookie = format!("{}={id}", session::COOKIE);
    struct Stream {
        shared: AppState,
        listener: crate::feed::Listener,
        closing: tokio::sync::watch::Receiver<bool>,
        cookie: String,
        first: bool,
    }
    let state = Stream {
        shared,
        listener,
        closing,
        cookie,
        first: true,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.first {
            s.first = false;
            return Some((Ok::<_, Infallible>(Bytes::from_static(b": open\n\n")), s));
        }
        if *s.closing.borrow() {
            return None;
        }
        tokio::select! {
            got = s.listener.rx.recv() => match got {
                Ok(json) => {
                    let frame = Bytes::from(format!("data: {json}\n\n"));
                    Some((Ok(frame), s))
                }
                // Lagged: too slow, dropped. Closed: the server is going away.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => None,
            },
            _ = s.closing.changed() => None,
            () = tokio::time::sleep(KEEP_ALIVE) => {
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&s.cookie) {
                    h.insert(header::COOKIE, v);
                }
                // A logged-out or expired session stops receiving.
                s.shared.sessions.csrf_for_cookie(&h)?;
                Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_off_loopback_needs_the_operators_word() {
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: std::net::IpAddr = "::1".parse().unwrap();
        let wide: std::net::IpAddr = "0.0.0.0".parse().unwrap();
        let lan: std::net::IpAddr = "192.168.1.5".parse().unwrap();
        assert!(served(DashboardAccess::Loopback, lo).is_ok());
        assert!(served(DashboardAccess::Loopback, lo6).is_ok());
        for ip in [wide, lan] {
            let e = served(DashboardAccess::Loopback, ip).unwrap_err();
            assert_eq!(e.status(), StatusCode::FORBIDDEN);
            assert!(served(DashboardAccess::BehindTls, ip).is_ok());
        }
        assert_eq!(
            served(DashboardAccess::Off, lo).unwrap_err().status(),
            StatusCode::NOT_FOUND
        );
    }
}
