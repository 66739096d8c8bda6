//! `warden identity new|show|revoke|restore`: an agent's keys and DID, and the operator's
//! revocations. Revoking and restoring are recorded in the audit log of the database they
//! change.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use warden::{Action, Decision, Verdict};
use warden_identity::{Did, KeyPair, Revocations, ed25519_multikey, ml_dsa_65_multikey, unix_now};

use crate::args::AuditArgs;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report;

/// `warden identity …`
#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// Create an identity: a secret key file (mode 0600) and its DID.
    New(NewArgs),
    /// Print an identity's DID and public keys (or its W3C DID document).
    Show(ShowArgs),
    /// Revoke a credential (by id) or an identity (by DID) in the Warden database.
    Revoke(RevokeArgs),
    /// Lift a revocation; an identity's trust starts over at the initial score.
    Restore(RevokeArgs),
}

/// Arguments of `warden identity new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// Where to write the secret key (never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// An Ed25519-only `did:key` identity, for systems without post-quantum keys (verifiers
    /// refuse it unless configured to accept classical identities).
    #[arg(long)]
    classical: bool,
}

/// Arguments of `warden identity show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The secret key file.
    key: PathBuf,
    /// Print only the DID.
    #[arg(long, conflicts_with_all = ["did_document", "json"])]
    did: bool,
    /// Print the W3C DID document (JSON).
    #[arg(long, conflicts_with = "json")]
    did_document: bool,
    /// Print DID and keys as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `warden identity revoke|restore`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// A credential id (32 hex digits, `claims.id` of a link) or a DID.
    target: String,
    /// Why (kept with the revocation and in the audit record).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    audit: AuditArgs,
}

pub fn run(cmd: IdentityCommand) -> Result<Exit> {
    match cmd {
        IdentityCommand::New(a) => new(&a),
        IdentityCommand::Show(a) => show(&a),
        IdentityCommand::Revoke(a) => revoke(&a, true),
        IdentityCommand::Restore(a) => revoke(&a, false),
    }
}

/// Load a secret key file, with the error naming the file.
pub fn load_key(path: &Path) -> Result<KeyPair> {
    KeyPair::load(path).map_err(|e| Error::msg(e.to_string()))
}

fn new(args: &NewArgs) -> Result<Exit> {
    let key = if args.classical {
        KeyPair::generate_classical()
    } else {
        KeyPair::generate()
    }
    .map_err(|e| Error::msg(e.to_string()))?;
    key.write_new(&args.out)
        .map_err(|e| Error::msg(e.to_string()))?;
    outln!("{}", key.did());
    Ok(Exit::Ok)
}

fn show(args: &ShowArgs) -> Result<Exit> {
    let key = load_key(&args.key)?;
    let public = key.public();
    if args.did {
        outln!("{}", key.did());
    } else if args.did_document {
        outln!("{}", report::json(&public.did_document()));
    } else if args.json {
        outln!(
            "{}",
            report::json(&serde_json::json!({
                "did": key.did().as_str(),
                "ed25519": ed25519_multikey(&public.ed25519()),
                "ml_dsa_65": public.ml_dsa_65().map(ml_dsa_65_multikey),
            }))
        );
    } else {
        outln!("did:       {}", key.did());
        outln!("ed25519:   {}", ed25519_multikey(&public.ed25519()));
        match public.ml_dsa_65() {
            Some(ml) => {
                let mk = ml_dsa_65_multikey(ml);
                outln!(
                    "ml-dsa-65: {}…{} ({} bytes)",
                    &mk[..24],
                    &mk[mk.len() - 8..],
                    ml.len()
                );
            }
            None => outln!("ml-dsa-65: none (classical-only identity)"),
        }
    }
    Ok(Exit::Ok)
}

fn revoke(args: &RevokeArgs, revoking: bool) -> Result<Exit> {
    let Some(db) = &args.audit.db else {
        return Err(Error::msg(
            "revocations are kept in the Warden database: give --db FILE",
        ));
    };
    let kind = if args.target.starts_with("did:") {
        Did::parse(&args.target).map_err(|e| Error::msg(e.to_string()))?;
        "did"
    } else if args.target.len() == 32 && args.target.bytes().all(|b| b.is_ascii_hexdigit()) {
        "credential"
    } else {
        return Err(Error::msg(format!(
            "`{}` is neither a DID nor a credential id (32 hex digits)",
            args.target.escape_debug()
        )));
    };
    let target = args.target.to_ascii_lowercase();
    let target = if kind == "did" {
        args.target.clone()
    } else {
        target
    };
    let revocations = Revocations::open(db).map_err(|e| Error::msg(e.to_string()))?;
    let changed = if revoking {
        revocations
            .revoke(&target, kind, args.reason.as_deref(), unix_now())
            .map_err(|e| Error::msg(e.to_string()))?
    } else {
        let lifted = revocations
            .restore(&target)
            .map_err(|e| Error::msg(e.to_string()))?;
        if kind == "did" {
            // Revocation is terminal for trust until now: the score starts over.
            let trust = warden_trust::TrustStore::open(db, warden_trust::TrustConfig::default())
                .map_err(|e| Error::msg(e.to_string()))?;
            trust
                .restore(
                    &target,
                    args.reason.as_deref().unwrap_or("restored by an operator"),
                )
                .map_err(|e| Error::msg(e.to_string()))?;
        }
        lifted
    };
    let verb = if revoking { "revoke" } else { "restore" };
    let what = match (revoking, changed) {
        (true, true) => format!("revoked {kind} {target}"),
        (true, false) => format!("{kind} {target} was already revoked"),
        (false, true) => format!("restored {kind} {target}"),
        (false, false) => format!("{kind} {target} was not revoked"),
    };
    record(&args.audit, verb, &target, args.reason.as_deref(), &what)?;
    outln!("{what}");
    Ok(Exit::Ok)
}

/// Append the operator's action to the audit log of the same database.
fn record(
    audit: &AuditArgs,
    verb: &str,
    target: &str,
    reason: Option<&str>,
    what: &str,
) -> Result<()> {
    let Some(db) = &audit.db else { return Ok(()) };
    let mut config = warden::AuditConfig::default();
    config.allow_tampered_tail = audit.allow_tampered_log;
    let log = warden::AuditLog::open_signed(db, config, audit.signing_key.as_deref())?;
    let mut action = Action::new(format!("warden.identity.{verb}")).with_resource(target);
    if let Some(r) = reason {
        action = action.with_arg("reason", r);
    }
    let decision = Decision {
        verdict: Verdict::Allow,
        ..Decision::deny(what.to_string())
    };
    log.append(warden_audit::Entry::new(&action, &decision))?;
    log.close()?;
    Ok(())
}
