//! What a decision server needs to start, and the reasons it refuses to.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

/// How `warden serve` listens: where, how the endpoints are protected and how much a
/// client may ask of the server. (What it decides with is a built [`warden::Warden`],
/// handed to [`DecisionServer::bind`](crate::DecisionServer::bind).)
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The bearer token every non-probe endpoint requires, when set.
    pub token: Option<String>,
    /// The token the operator's endpoints (kill switch) require; without one they are off.
    /// Must differ from `token`.
    pub operator_token: Option<String>,
    /// Allow a non-loopback `listen` without a token.
    pub insecure: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most actions accepted in one `POST /v1/decide/batch`.
    pub max_batch: usize,
    /// How long a client may take to send its headers, and separately its body.
    pub request_timeout: Duration,
    /// How often the policy files' modification times are compared.
    pub poll_interval: Duration,
    /// How long shutdown waits for in-flight requests before giving up on them.
    pub drain_timeout: Duration,
    /// Threads answering requests; `None` is one per CPU.
    pub worker_threads: Option<usize>,
    /// This server's identity for the inter-agent handshake (`--identity`), if any.
    pub handshake: Option<std::sync::Arc<warden_trust::handshake::Responder>>,
    /// Where the operator's dashboard (`/`) is served.
    pub dashboard: DashboardAccess,
    /// How long a dashboard login lasts.
    pub session_ttl: Duration,
}

/// Where the dashboard at `/` may be used. The server speaks plain HTTP, so a login (the
/// operator token) and the session cookie after it cross the network in clear unless the
/// server listens on loopback or a TLS proxy fronts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DashboardAccess {
    /// No dashboard: its routes answer 404.
    Off,
    /// Served when the server listens on a loopback address; refused (403) elsewhere.
    #[default]
    Loopback,
    /// Served on any address, on the operator's word that a TLS-terminating proxy fronts
    /// this server: the session cookie is marked `Secure` and browsers' `Origin` is
    /// expected as `https://`.
    BehindTls,
}

impl ServerConfig {
    /// A configuration with the documented defaults: 1 MiB bodies, batches of 1000,
    /// 10 s request timeout, 250 ms policy polling, 10 s drain, the dashboard on loopback
    /// only with 8-hour sessions.
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            token: None,
            operator_token: None,
            insecure: false,
            max_body_bytes: 1024 * 1024,
            max_batch: 1000,
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(250),
            drain_timeout: Duration::from_secs(10),
            worker_threads: None,
            handshake: None,
            dashboard: DashboardAccess::Loopback,
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }

    /// Refuse configurations that would expose an unprotected decision endpoint.
    pub fn check(&self) -> Result<(), ServeError> {
        if let Some(token) = &self.token
            && token.trim().is_empty()
        {
            return Err(ServeError::EmptyToken);
        }
        if let Some(op) = &self.operator_token {
            if op.trim().is_empty() {
                return Err(ServeError::EmptyToken);
            }
            if self.token.as_deref().map(str::trim) == Some(op.trim()) {
                return Err(ServeError::SameTokens);
            }
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() && !self.insecure {
            return Err(ServeError::Unprotected { addr: self.listen });
        }
        if self.max_batch == 0
            || self.max_body_bytes == 0
            || self.worker_threads == Some(0)
            || self.session_ttl.is_zero()
        {
            return Err(ServeError::ZeroLimit);
        }
        Ok(())
    }
}

/// Why a decision server could not start or stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A non-loopback address without a token or `insecure`.
    #[error(
        "refusing to listen on {addr} without a token: anyone who can reach it could ask for decisions; give a bearer token, or accept the risk explicitly"
    )]
    Unprotected {
        /// The address that was asked for.
        addr: SocketAddr,
    },
    /// The token is empty or only whitespace.
    #[error("the token is empty")]
    EmptyToken,
    /// The operator token is the decision token: whoever may ask for decisions could then
    /// lift kill switches.
    #[error("the operator token must differ from the decision token")]
    SameTokens,
    /// A size limit of zero would reject every request.
    #[error("the batch size, body size, thread count and session lifetime must each be at least 1")]
    ZeroLimit,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The async runtime or a signal handler could not be set up.
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str) -> ServerConfig {
        ServerConfig::new(listen.parse().unwrap())
    }

    #[test]
    fn loopback_needs_no_token() {
        assert!(config("127.0.0.1:0").check().is_ok());
        assert!(config("[::1]:0").check().is_ok());
    }

    #[test]
    fn other_addresses_need_a_token_or_insecure() {
        let mut c = config("0.0.0.0:0");
        assert!(matches!(c.check(), Err(ServeError::Unprotected { .. })));
        c.token = Some("s3cret".into());
        assert!(c.check().is_ok());
        c.token = Some("  ".into());
        assert!(matches!(c.check(), Err(ServeError::EmptyToken)));
        c.token = None;
        c.insecure = true;
        assert!(c.check().is_ok());
    }
}
