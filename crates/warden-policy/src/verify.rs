//! Cross-model verification as a policy states it: which verifiers a rule asks, how many
//! must say yes, and the chat endpoints a document configures.
//!
//! An allow rule can ask for a second opinion before its allow stands:
//! `verify: {quorum: 2, of: [rules, local_model, endpoint_a]}`. The asking itself (HTTP,
//! threads, the audit record of every vote) is the gate's (`warden::verify`); this module is
//! only the checked description, so that a policy with a bad endpoint never loads.
//!
//! Endpoints are plain `http://` URLs on a loopback address: Warden has no TLS client on the
//! decision path, and an action's arguments must not cross a network in clear text. A local
//! model server (llama.cpp, vLLM, Ollama's OpenAI-compatible API) or a local gateway to a
//! remote provider fits.

use std::sync::Arc;
use std::time::Duration;

/// The verifier that is Warden's own rule engine: yes when the action can be read and has no
/// intent label.
pub const RULES: &str = "rules";
/// The verifier that is Warden's local model: yes when the action is close enough to the
/// session's task (goal drift at most the rule's `max_drift`).
pub const LOCAL_MODEL: &str = "local_model";
/// The largest goal drift (`1 − cosine(task, action)`, in thousandths) at which the local model
/// votes yes unless the rule's `max_drift` says otherwise: 0.8. Measured with
/// all-MiniLM-L6-v2 on the pairs of `crates/warden-cli/tests/local_model_verifier.rs`, honest
/// developer actions drift 0.56–0.75 from their task and exfiltration during a coding task
/// 0.83–1.03 (docs/policy.md, "Verification").
pub const DEFAULT_MAX_DRIFT_MILLI: u16 = 800;
/// The largest `max_drift` a policy may set (drift lies in [0, 2]).
pub const MAX_DRIFT_MILLI: u16 = 2000;

/// Longest an endpoint may take unless its `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest `timeout` a policy may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read from an endpoint unless its `max_response_bytes` says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Largest `max_response_bytes` a policy may set.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Most endpoints in one document, and most verifiers in one `verify:`.
pub const MAX_VERIFIERS: usize = 16;

/// An OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its name in the document (`endpoint_a`).
    pub name: Arc<str>,
    /// The URL as written.
    pub url: Arc<str>,
    /// Loopback host (an IP address, or `localhost`) and port.
    pub host: Arc<str>,
    /// The port (80 when the URL names none).
    pub port: u16,
    /// Path and query sent in the request line.
    pub path: Arc<str>,
    /// The `model` field of the request.
    pub model: Arc<str>,
    /// The whole exchange (connect, send, answer) must end within it.
    pub timeout: Duration,
    /// Longest answer read (headers and body); a longer one counts as no.
    pub max_response_bytes: usize,
    /// An environment variable holding a bearer token (sent as `Authorization`), when set.
    pub api_key_env: Option<Arc<str>>,
}

/// One verifier a rule asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    /// Warden's rule engine ([`RULES`]).
    Rules,
    /// Warden's local model ([`LOCAL_MODEL`]).
    LocalModel,
    /// A chat endpoint of the document.
    Endpoint(Arc<Endpoint>),
}

impl Verifier {
    /// Its name as the policy writes it.
    pub fn name(&self) -> &str {
        match self {
            Verifier::Rules => RULES,
            Verifier::LocalModel => LOCAL_MODEL,
            Verifier::Endpoint(e) => &e.name,
        }
    }
}

/// A rule's `verify:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// How many verifiers must say yes (1 to `of.len()`).
    pub quorum: usize,
    /// Who is asked, in the policy's order, each once.
    pub of: Vec<Verifier>,
    /// The local model votes yes only when the goal drift is at most this, in thousandths
    /// (drift is measured to 3 decimals): `max_drift: 0.7` is 700. Default
    /// [`DEFAULT_MAX_DRIFT_MILLI`].
    pub max_drift_milli: u16,
}

/// Parse an endpoint URL: `http://<loopback host>[:port]/path`.
pub(crate) fn parse_url(text: &str) -> Result<(Arc<str>, u16, Arc<str>), String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "`{text}`: only `http://` endpoints on a loopback address are supported (no TLS on the decision path); put a local gateway in front of a remote one"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` has credentials in it; use `api_key_env`"));
    }
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => ip.to_string(),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => ip.to_string(),
        Some(url::Host::Domain("localhost")) => "localhost".to_string(),
        _ => {
            return Err(format!(
                "`{text}` is not on a loopback address (127.0.0.0/8, ::1, localhost): an action's arguments must not cross a network in clear text"
            ));
        }
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok((Arc::from(host), port, Arc::from(path)))
}
