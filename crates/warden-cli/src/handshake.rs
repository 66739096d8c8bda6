//! `warden handshake`: run the inter-agent trust handshake, as the identity in `--key`, with
//! the `warden serve` at `--peer`. Exit 0 with the peer's DID and the granted capabilities;
//! 1 with the reason when either side refuses; 2 when it could not be attempted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use warden_identity::{Did, Revocations, Verifier, VerifyOptions};
use warden_trust::TrustStore;
use warden_trust::handshake::Initiator;

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::identity::load_key;
use crate::report;

/// Arguments of `warden handshake`.
#[derive(Args, Debug)]
pub struct HandshakeArgs {
    /// This side's secret key.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// This side's credential chain (issued to --key).
    #[arg(long, value_name = "FILE")]
    credential: PathBuf,
    /// The peer: `http://HOST:PORT` of its `warden serve --identity …`.
    #[arg(long, value_name = "URL")]
    peer: String,
    /// A capability to ask for (repeatable; default: everything this side's credential grants).
    #[arg(long = "capability", value_name = "PATTERN")]
    capabilities: Vec<String>,
    /// Accept the peer's chain only if rooted here (repeatable; default: this side's own root).
    #[arg(long = "trust-root", value_name = "DID")]
    roots: Vec<String>,
    /// Refuse any peer but this DID.
    #[arg(long, value_name = "DID")]
    expect: Option<String>,
    /// This side's Warden database: revocations, and the peer's trust in this side's records.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// File holding the peer server's bearer token.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    timeout: u64,
    /// Print the session as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &HandshakeArgs) -> Result<Exit> {
    let key = load_key(&args.key)?;
    let chain = crate::delegate::read_chain(&args.credential)?
        .map_err(|e| Error::msg(format!("{}: {e}", args.credential.display())))?;
    if chain.subject() != key.did() {
        return Err(Error::msg(format!(
            "{} is issued to {}, not to {}",
            args.credential.display(),
            chain.subject(),
            key.did()
        )));
    }
    let roots = if args.roots.is_empty() {
        vec![chain.links()[0].issuer().clone()]
    } else {
        args.roots
            .iter()
            .map(|r| Did::parse(r).map_err(|e| Error::msg(format!("--trust-root: {e}"))))
            .collect::<Result<Vec<_>>>()?
    };
    let capabilities = if args.capabilities.is_empty() {
        chain.last().claims().capabilities.clone()
    } else {
        args.capabilities.clone()
    };
    let (revocations, trust) = match &args.db {
        None => (None, None),
        Some(db) => {
            let r = Arc::new(Revocations::open(db).map_err(|e| Error::msg(e.to_string()))?);
            let t = TrustStore::open(db, warden_trust::TrustConfig::default())
                .map_err(|e| Error::msg(e.to_string()))?
                .with_revocations(r.clone());
            (Some(r), Some(t))
        }
    };
    let verifier = Verifier::new(VerifyOptions::trusting(roots), revocations);
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::msg(format!("cannot read token file {}: {e}", p.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let expect = args
        .expect
        .as_deref()
        .map(|d| Did::parse(d).map_err(|e| Error::msg(format!("--expect: {e}"))))
        .transpose()?;
    let initiator = Initiator {
        key: &key,
        chain: &chain,
        verifier: &verifier,
        trust: trust.as_ref(),
        token,
        timeout: Duration::from_secs(args.timeout.max(1)),
        expect,
    };
    match initiator.run(&args.peer, &capabilities) {
        Ok(session) => {
            if args.json {
                outln!("{}", report::json(&session));
            } else {
                outln!("handshake with {}", session.peer);
                outln!("  granted:   {}", session.capabilities.join(", "));
                outln!("  ceiling:   {}", session.ceiling);
                outln!(
                    "  session:   {} (expires in {} s)",
                    session.session,
                    session
                        .expires_at
                        .saturating_sub(warden_identity::unix_now())
                );
                if let Some(t) = session.peer_trust {
                    outln!(
                        "  its trust: {} ({}) in this side's records",
                        t.value,
                        t.tier
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Err(reason) => {
            if args.json {
                outln!(
                    "{}",
                    report::json(&serde_json::json!({"error": reason, "verdict": "deny"}))
                );
            } else {
                outln!("handshake failed: {}", report::visible(&reason));
            }
            Ok(Exit::Failed)
        }
    }
}
