//! The identity endpoints of `warden serve --identity KEY --credential FILE`: the two steps
//! of the inter-agent trust handshake (answered here), a server-initiated handshake with
//! another Warden, the server's own DID document, and trust scores from this server's own
//! records.
//!
//! Every handshake that reaches the proof step is recorded in the audit log as an action
//! `warden.handshake` by the claimed initiator — allowed with the session, or denied with
//! the reason. Signing and verifying take about a millisecond each, so they run on blocking
//! threads.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use warden::{Action, Decision};
use warden_trust::handshake::{Initiator, Responder};

use crate::exchange::{Rejection, Shared, json_ok, read_json};

type AppState = Arc<Shared>;

fn no_identity() -> Rejection {
    Rejection::new(
        StatusCode::NOT_FOUND,
        "this server has no identity (start it with --identity KEY --credential FILE)",
    )
}

fn responder(shared: &Shared) -> Result<Arc<Responder>, Rejection> {
    shared.handshake.clone().ok_or_else(no_identity)
}

/// `POST /v1/handshake/challenge`: a hello in, a challenge out. Nothing is stored.
pub(crate) async fn challenge(State(shared): State<AppState>, request: Request) -> Response {
    let r = match responder(&shared) {
        Ok(r) => r,
        Err(e) => return e.counted(&shared.metrics),
    };
    let hello = match read_json(&shared, request).await {
        Ok(v) => v,
        Err(e) => return e.counted(&shared.metrics),
    };
    match r.challenge(&hello, warden_identity::unix_now()) {
        Ok(c) => json_ok(&c),
        Err(e) => Rejection::new(StatusCode::BAD_REQUEST, e).counted(&shared.metrics),
    }
}

/// `POST /v1/handshake/complete`: a proof in, a signed grant out (or 403 with the reason).
pub(crate) async fn complete(State(shared): State<AppState>, request: Request) -> Response {
    let r = match responder(&shared) {
        Ok(r) => r,
        Err(e) => return e.counted(&shared.metrics),
    };
    let proof = match read_json(&shared, request).await {
        Ok(v) => v,
        Err(e) => return e.counted(&shared.metrics),
    };
    let Some(verifier_warden) = shared
        .warden
        .zero_trust()
        .verifier()
        .map(|_| shared.warden.clone())
    else {
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "this server trusts no roots, so no peer can be verified (give --trust-root)",
        )
        .counted(&shared.metrics);
    };
    let done = tokio::task::spawn_blocking(move || {
        let zt = verifier_warden.zero_trust();
        // INVARIANT: checked above that a verifier exists.
        let verifier = zt.verifier().expect("verifier");
        // A killed agent (or one whose root or delegator is killed) gets no grant.
        let runtime = verifier_warden.runtime();
        let admit = |chain: &warden_identity::Verified| {
            let ids: Vec<&str> = chain.identities.iter().map(|d| d.as_str()).collect();
            match runtime.check_kill_behind(&ids) {
                Some(d) => Err(d.reason.to_string()),
                None => Ok(()),
            }
        };
        let result = r.complete_admitting(
            &proof,
            verifier,
            zt.trust(),
            warden_identity::unix_now(),
            &admit,
        );
        record(&verifier_warden, &r, &result);
        result
    })
    .await;
    match done {
        Ok(Ok((grant, _))) => json_ok(&grant),
        Ok(Err(refusal)) => {
            Rejection::new(StatusCode::FORBIDDEN, refusal.reason).counted(&shared.metrics)
        }
        Err(e) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the handshake task failed: {e}"),
        )
        .counted(&shared.metrics),
    }
}

type Completed = Result<
    (
        warden_trust::handshake::GrantMessage,
        Option<warden_trust::Score>,
    ),
    warden_trust::handshake::Refusal,
>;

/// The audit record of a handshake that reached the proof step.
fn record(warden: &warden::Warden, r: &Responder, result: &Completed) {
    let Some(log) = warden.audit() else { return };
    let (agent, decision, context) = match result {
        Ok((g, score)) => (
            Some(g.grant.initiator.clone()),
            Decision {
                verdict: warden::Verdict::Allow,
                reason: format!(
                    "handshake completed: session {} granting {} (ceiling {})",
                    g.grant.session,
                    g.grant.capabilities.join(", "),
                    g.grant.ceiling
                )
                .into(),
                ..Decision::deny("")
            },
            json!({"responder": r.did().as_str(), "session": g.grant.session,
                   "trust": score.map(|s| s.value), "tier": score.map(|s| s.tier.as_str())}),
        ),
        Err(refusal) => (
            refusal.initiator.clone(),
            Decision::deny(format!("handshake refused: {}", refusal.reason)),
            json!({"responder": r.did().as_str()}),
        ),
    };
    let mut action = Action::new("warden.handshake").with_context("handshake", context);
    action.agent = agent;
    if let Err(e) = log.append(warden_audit::Entry::new(&action, &decision)) {
        tracing::error!("handshake not recorded in the audit log: {e}");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitiateBody {
    peer: String,
    capabilities: Vec<String>,
}

/// `POST /v1/handshake/initiate`: this server runs the handshake, as itself, with the
/// `warden serve` at `peer` (loopback peers only: the server must not become a way to reach
/// other hosts).
pub(crate) async fn initiate(State(shared): State<AppState>, request: Request) -> Response {
    let r = match responder(&shared) {
        Ok(r) => r,
        Err(e) => return e.counted(&shared.metrics),
    };
    let body: InitiateBody = match read_json(&shared, request).await.and_then(|v| {
        serde_json::from_value(v)
            .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
    }) {
        Ok(b) => b,
        Err(e) => return e.counted(&shared.metrics),
    };
    if !loopback_peer(&body.peer) {
        return Rejection::new(
            StatusCode::BAD_REQUEST,
            "`peer` must be http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT",
        )
        .counted(&shared.metrics);
    }
    if shared.warden.zero_trust().verifier().is_none() {
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "this server trusts no roots, so no peer can be verified (give --trust-root)",
        )
        .counted(&shared.metrics);
    }
    let warden = shared.warden.clone();
    let timeout = shared.request_timeout;
    let done = tokio::task::spawn_blocking(move || {
        let zt = warden.zero_trust();
        let initiator = Initiator {
            key: r.key(),
            chain: r.chain(),
            verifier: zt.verifier().expect("verifier"),
            trust: zt.trust(),
            token: None,
            timeout: timeout.max(Duration::from_secs(1)),
            expect: None,
        };
        initiator.run(&body.peer, &body.capabilities)
    })
    .await;
    match done {
        Ok(Ok(session)) => json_ok(&session),
        Ok(Err(e)) => Rejection::new(StatusCode::BAD_GATEWAY, e).counted(&shared.metrics),
        Err(e) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the handshake task failed: {e}"),
        )
        .counted(&shared.metrics),
    }
}

fn loopback_peer(peer: &str) -> bool {
    let Some(authority) = peer
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
    else {
        return false;
    };
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => return false,
    };
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `GET /v1/identity`: this server's DID and W3C DID document.
pub(crate) async fn identity(State(shared): State<AppState>) -> Response {
    match &shared.handshake {
        Some(r) => json_ok(&json!({
            "did": r.did().as_str(),
            "did_document": r.key().public().did_document(),
        })),
        None => no_identity().counted(&shared.metrics),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustQuery {
    agent: String,
}

/// `GET /v1/trust?agent=DID`: the agent's trust in this server's records.
pub(crate) async fn trust(State(shared): State<AppState>, request: Request<Body>) -> Response {
    let Query(q) = match Query::<TrustQuery>::try_from_uri(request.uri()) {
        Ok(q) => q,
        Err(e) => {
            return Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("invalid query: {}", e.body_text()),
            )
            .counted(&shared.metrics);
        }
    };
    let warden = shared.warden.clone();
    let result = tokio::task::spawn_blocking(move || {
        let Some(t) = warden.zero_trust().trust() else {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "this server keeps no trust scores (start it with --db FILE and --trust-root)",
            ));
        };
        t.score(&q.agent, 1000)
            .map(|s| {
                json!({"agent": q.agent, "score": s.value, "tier": s.tier.as_str(),
                            "revoked": s.revoked, "events": s.events})
            })
            .map_err(|e| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await;
    match result {
        Ok(Ok(v)) => json_ok(&v),
        Ok(Err(e)) => e.counted(&shared.metrics),
        Err(e) => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            .counted(&shared.metrics),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_peers_are_initiated() {
        for ok in [
            "http://127.0.0.1:8181",
            "http://localhost:1/",
            "http://[::1]:9",
        ] {
            assert!(super::loopback_peer(ok), "{ok}");
        }
        for bad in [
            "https://127.0.0.1:8181",
            "http://10.0.0.1:80",
            "http://evil.example:80",
            "http://127.0.0.1",
            "http://127.0.0.1.evil:80",
        ] {
            assert!(!super::loopback_peer(bad), "{bad}");
        }
    }
}
