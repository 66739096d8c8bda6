//! `warden serve`: run the HTTP decision server until SIGTERM or SIGINT.
//!
//! The flags become a built `Warden` (the same builder every door uses) and a
//! `ServerConfig`; everything else lives in the `warden-server` crate. The bound address is
//! printed on stdout (`listening on http://ADDR`) so scripts and tests that ask for port 0
//! can find it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use warden_server::{DashboardAccess, DecisionServer, ServeError, ServerConfig};

use crate::args::{AuditArgs, PolicyArgs, ZeroTrustArgs, builder};
use crate::error::{Error, Result};
use crate::exit::Exit;

/// Arguments of `warden serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    zero_trust: ZeroTrustArgs,
    #[command(flatten)]
    model: crate::model::ModelArgs,
    /// This server's identity (secret key file) for the inter-agent trust handshake.
    #[arg(long, value_name = "KEY", requires_all = ["identity_credential", "db"])]
    identity: Option<PathBuf>,
    /// The credential chain issued to --identity, shown to handshake peers.
    #[arg(long, value_name = "FILE", requires = "identity")]
    identity_credential: Option<PathBuf>,
    /// Seconds a handshake challenge may be answered in.
    #[arg(long, default_value_t = 30, value_name = "SECS", requires = "identity")]
    handshake_ttl: u64,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8181", value_name = "ADDR")]
    listen: SocketAddr,
    /// File holding the bearer token clients must send; required off loopback.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// File holding the operator token that the kill switch endpoints (`/v1/kill`,
    /// `/v1/revive`, `/v1/kills`) require; without it they are off. Not the decision token.
    #[arg(long, value_name = "FILE")]
    operator_token_file: Option<PathBuf>,
    /// Listen off loopback without a token (anyone who reaches the port gets decisions).
    #[arg(long)]
    insecure: bool,
    /// Where the operator's dashboard at `/` is served: `loopback` (only when --listen is a
    /// loopback address; this server speaks plain HTTP), `behind-tls` (any address: you
    /// promise a TLS proxy fronts it; cookies get `Secure`), or `off`. Login needs
    /// --operator-token-file.
    #[arg(long, value_enum, default_value_t = DashboardFlag::Loopback, value_name = "WHERE")]
    dashboard: DashboardFlag,
    /// Minutes a dashboard login lasts.
    #[arg(long, default_value_t = 480, value_name = "MINUTES")]
    session_minutes: u64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Most actions in one batch request.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_batch: usize,
    /// Threads answering requests (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// POST each new approval request as JSON to this `http://` URL (a bridge to chat or
    /// tickets), retried with backoff, never holding a decision up. Needs --db.
    #[arg(long, value_name = "URL", requires = "db")]
    approval_webhook: Option<String>,
    /// How long an approval request waits for an answer (`15m`, `1h`).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "15m")]
    approval_ttl: std::time::Duration,
    /// Seconds a client may take to send its headers, and again its body.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    request_timeout: u64,
}

/// The values of `--dashboard`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DashboardFlag {
    /// Only when listening on loopback.
    Loopback,
    /// Anywhere, behind a TLS-terminating proxy.
    BehindTls,
    /// Never.
    Off,
}

/// Run the server; `Ok(Exit::Ok)` after a clean shutdown.
pub fn run(args: &ServeArgs) -> Result<Exit> {
    let mut config = ServerConfig::new(args.listen);
    config.insecure = args.insecure;
    config.dashboard = match args.dashboard {
        DashboardFlag::Loopback => DashboardAccess::Loopback,
        DashboardFlag::BehindTls => DashboardAccess::BehindTls,
        DashboardFlag::Off => DashboardAccess::Off,
    };
    config.session_ttl = Duration::from_secs(args.session_minutes.saturating_mul(60));
    config.worker_threads = args.threads;
    config.max_body_bytes = args.max_body_bytes;
    config.max_batch = args.max_batch;
    config.request_timeout = Duration::from_secs(args.request_timeout.max(1));
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::msg(format!("cannot read token file {}: {e}", path.display())))?;
        // A trailing newline from `echo secret > file` is not part of the token.
        config.token = Some(text.trim().to_string());
    }
    if let Some(path) = &args.operator_token_file {
        // A kill that lives only in this process is gone at the next restart, and other
        // processes never see it: the operator endpoints need the Warden database.
        if args.audit.db.is_none() {
            return Err(Error::msg(
                "--operator-token-file needs --db: kill switches must survive a restart and \
                 reach every process sharing the database",
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::msg(format!(
                "cannot read operator token file {}: {e}",
                path.display()
            ))
        })?;
        config.operator_token = Some(text.trim().to_string());
    }
    // Refuse a bad configuration before loading anything.
    config.check().map_err(serve_error)?;
    let mut builder = args
        .zero_trust
        .apply(builder(&args.policy, &args.audit))?
        .protect_binary();
    if let (Some(key), Some(chain), Some(db)) =
        (&args.identity, &args.identity_credential, &args.audit.db)
    {
        // The server's own secret key is one of Warden's files: no action may read it.
        builder = builder.protect_secret(key);
        let mut r = responder(key, chain, db)?;
        r.challenge_ttl = Duration::from_secs(args.handshake_ttl.max(1));
        config.handshake = Some(std::sync::Arc::new(r));
    }
    builder = builder.approval_ttl(args.approval_ttl);
    builder = crate::model::with_model(builder, &args.model)?;
    // Kept alive as long as the server: its thread delivers the requests.
    let _webhook = match &args.approval_webhook {
        Some(url) => {
            let hook = warden_server::webhook::Webhook::start(url)
                .map_err(|e| Error::msg(e.to_string()))?;
            builder = builder.on_approval_request(hook.listener());
            Some(hook)
        }
        None => None,
    };
    let warden = Arc::new(builder.build()?);
    if let Some(db) = &args.audit.db {
        resume_sagas(db, warden.clone())?;
    }
    DecisionServer::run_until_signalled(config, warden, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    })
    .map_err(serve_error)?;
    Ok(Exit::Ok)
}

/// Finish, in the background, the sagas in the database whose runner died (as `warden saga
/// resume` does): their compensations are judged by this server's policy.
fn resume_sagas(db: &std::path::Path, warden: Arc<warden::Warden>) -> Result<()> {
    use warden_runtime::saga::{CommandWork, Journal, Saga};
    let journal = Journal::open(db).map_err(|e| Error::msg(e.to_string()))?;
    if journal
        .orphans()
        .map_err(|e| Error::msg(e.to_string()))?
        .is_empty()
    {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("warden-saga-resume".into())
        .spawn(move || {
            let work = CommandWork::new(warden.runtime());
            let saga = Saga::new(&journal, &*warden, &work, warden.audit(), "serve");
            match saga.resume_orphans() {
                // The sagas it could not take up were logged by the runner.
                Ok(done) => {
                    for r in done.reports {
                        tracing::warn!(
                            "resumed saga {}: {}{}",
                            r.id,
                            r.status.as_str(),
                            r.reason.map(|w| format!(" ({w})")).unwrap_or_default()
                        );
                    }
                }
                Err(e) => tracing::error!("cannot resume the unfinished sagas: {e}"),
            }
        })
        .map_err(|e| Error::msg(format!("cannot start the saga resumer: {e}")))?;
    Ok(())
}

/// This server's side of the handshake: its key, its credential, the seen-nonce store.
fn responder(
    key: &std::path::Path,
    chain: &std::path::Path,
    db: &std::path::Path,
) -> Result<warden_trust::handshake::Responder> {
    let key = crate::identity::load_key(key)?;
    let chain = crate::delegate::read_chain(chain)?
        .map_err(|e| Error::msg(format!("--identity-credential {}: {e}", chain.display())))?;
    let nonces =
        warden_trust::handshake::NonceStore::open(db).map_err(|e| Error::msg(e.to_string()))?;
    warden_trust::handshake::Responder::new(key, chain, nonces)
        .map_err(|e| Error::msg(format!("--identity: {e}")))
}

/// The server's error, with the flag that fixes it where there is one.
fn serve_error(e: ServeError) -> Error {
    match e {
        ServeError::Unprotected { addr } => Error::msg(format!(
            "refusing to listen on {addr} without a token: anyone who can reach it could ask \
             for decisions; give --token-file FILE, or --insecure to accept the risk"
        )),
        ServeError::ZeroLimit => Error::msg(
            "--max-batch, --max-body-bytes, --threads and --session-minutes must be at least 1",
        ),
        ServeError::SameTokens => Error::msg(
            "--operator-token-file and --token-file hold the same token: whoever may ask for \
             decisions could then lift kill switches; use two different tokens",
        ),
        other => Error::msg(other.to_string()),
    }
}

fn duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    warden_policy::runtime::parse_duration(s)
}
