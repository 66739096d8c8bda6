//! `warden serve`: run the HTTP decision server until SIGTERM or SIGINT.
//!
//! The flags become a `ServerConfig`; everything else lives in the `warden-server` crate.
//! The bound address is printed on stdout (`listening on http://ADDR`) so scripts and tests
//! that ask for port 0 can find it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use warden_server::{DecisionServer, ServeError, ServerConfig};

use crate::{exit, report};

/// Arguments of `warden serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Policy files or directories (repeatable); reloaded when they change and on SIGHUP.
    #[arg(long = "policy", short = 'p', value_name = "PATH", required = true)]
    policies: Vec<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8181", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// File holding the bearer token clients must send; required off loopback.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Record every decision in this audit log (SQLite, created if missing); enables
    /// `GET /v1/audit`.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Listen off loopback without a token (anyone who reaches the port gets decisions).
    #[arg(long)]
    insecure: bool,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Most actions in one batch request.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_batch: usize,
    /// Threads answering requests (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Seconds a client may take to send its headers, and again its body.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    request_timeout: u64,
}

/// Run the server; returns the exit code (0 after a clean shutdown, 2 if it cannot start).
pub fn run(args: &ServeArgs) -> i32 {
    let mut config = ServerConfig::new(args.policies.clone(), args.listen);
    config.insecure = args.insecure;
    config.audit_db.clone_from(&args.db);
    config.worker_threads = args.threads;
    config.max_body_bytes = args.max_body_bytes;
    config.max_batch = args.max_batch;
    config.request_timeout = Duration::from_secs(args.request_timeout.max(1));
    if let Some(path) = &args.token_file {
        match std::fs::read_to_string(path) {
            // A trailing newline from `echo secret > file` is not part of the token.
            Ok(text) => config.token = Some(text.trim().to_string()),
            Err(e) => {
                report::usage_error(&format!("cannot read token file {}: {e}", path.display()));
                return exit::ERROR;
            }
        }
    }
    let result = DecisionServer::run_until_signalled(config, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    });
    match result {
        Ok(()) => exit::OK,
        Err(ServeError::Policy(e)) => {
            report::load_error(&e);
            exit::ERROR
        }
        Err(e) => {
            report::usage_error(&e.to_string());
            exit::ERROR
        }
    }
}
