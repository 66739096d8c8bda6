//! `warden delegate` (issue a credential, or extend a chain by one link) and
//! `warden verify-chain` (walk a chain: exit 0 valid, 1 invalid with the reason, 2 error).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use warden_identity::{
    Chain, Did, Grant, NoRevocations, RevocationCheck, Revocations, Verified, VerifyOptions,
    parse_duration, unix_now, verify_chain,
};

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::identity::load_key;
use crate::report;

/// Arguments of `warden delegate`.
#[derive(Args, Debug)]
pub struct DelegateArgs {
    /// The issuer's secret key: a root (without --chain) or the subject of --chain.
    #[arg(long, value_name = "KEY")]
    from: PathBuf,
    /// Who receives the grant.
    #[arg(long, value_name = "DID")]
    to: String,
    /// An action pattern granted: a name, a prefix ending in `*`, or `*` (repeatable).
    #[arg(long = "capability", value_name = "PATTERN", required = true)]
    capabilities: Vec<String>,
    /// The highest trust score the receiver can have under this link (0–1000).
    #[arg(long, default_value_t = 500, value_name = "N")]
    ceiling: u16,
    /// Lifetime: 90s, 10m, 2h, 1d (default 15m, or what is left of --chain if less). Never
    /// beyond the chain being extended.
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,
    /// The one verifier this is for (a Warden's audience name); inherited from --chain.
    #[arg(long, value_name = "NAME")]
    audience: Option<String>,
    /// Extend this chain (issued to --from) instead of starting one.
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,
    /// Where to write the whole chain (JSON).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `warden verify-chain`.
#[derive(Args, Debug)]
pub struct VerifyChainArgs {
    /// The chain file.
    chain: PathBuf,
    /// Require the chain to be rooted at this DID (repeatable). Without it the chain is
    /// checked through and the root is reported as not pinned.
    #[arg(long = "root", value_name = "DID")]
    roots: Vec<String>,
    /// Check revocations in this Warden database.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Accept classical-only (did:key) identities.
    #[arg(long)]
    allow_classical: bool,
    /// The verifier's audience names (repeatable).
    #[arg(long = "audience", value_name = "NAME")]
    audiences: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Read a chain file: unreadable or not JSON is an error (exit 2); a chain that fails its
/// checks is the caller's to report (exit 1).
pub fn read_chain(
    path: &std::path::Path,
) -> Result<std::result::Result<Chain, warden_identity::ChainError>> {
    let value = crate::args::read_credential(path)?;
    Ok(Chain::from_value(&value))
}

pub fn delegate(args: &DelegateArgs) -> Result<Exit> {
    let key = load_key(&args.from)?;
    let to = Did::parse(&args.to).map_err(|e| Error::msg(format!("--to: {e}")))?;
    let ttl = args
        .ttl
        .as_deref()
        .map(|t| parse_duration(t).map_err(|e| Error::msg(format!("--ttl: {e}"))))
        .transpose()?;
    if args.ceiling > warden_identity::MAX_CEILING {
        return Err(Error::msg("--ceiling is 0–1000"));
    }
    let mut grant = Grant {
        subject: to,
        capabilities: args.capabilities.clone(),
        ceiling: args.ceiling,
        ttl: ttl.unwrap_or(warden_identity::DEFAULT_TTL),
        audience: args.audience.clone(),
    };
    let now = unix_now();
    let chain = match &args.chain {
        None => {
            warden_identity::Capabilities::parse(&args.capabilities)
                .map_err(|e| Error::msg(format!("--capability: {e}")))?;
            Chain::issue(&key, &grant, now)
        }
        Some(path) => {
            let parent =
                read_chain(path)?.map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
            // Extending a chain that no longer verifies would only make a longer invalid one.
            let v = verify_chain(&parent, &VerifyOptions::unpinned(), now, &NoRevocations)
                .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
            if ttl.is_none() {
                let left = std::time::Duration::from_secs(v.expires_at.saturating_sub(now));
                grant.ttl = grant.ttl.min(left);
            }
            parent.delegate(&key, &grant, now)
        }
    }
    .map_err(|e| Error::msg(e.to_string()))?;
    write_new_or_replace(&args.out, &chain.to_json_pretty())?;
    let last = chain.last().claims();
    outln!(
        "delegated {} to {} (ceiling {}, expires in {} s); the chain has {} link{} -> {}",
        last.capabilities.join(", "),
        last.subject,
        last.ceiling,
        last.expires_at.saturating_sub(now),
        chain.links().len(),
        if chain.links().len() == 1 { "" } else { "s" },
        args.out.display()
    );
    Ok(Exit::Ok)
}

fn write_new_or_replace(path: &std::path::Path, text: &str) -> Result<()> {
    // Written beside and renamed into place, so a reader never sees half a chain.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{text}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))
}

pub fn verify(args: &VerifyChainArgs) -> Result<Exit> {
    let chain = read_chain(&args.chain)?;
    let mut options = if args.roots.is_empty() {
        VerifyOptions::unpinned()
    } else {
        let roots = args
            .roots
            .iter()
            .map(|r| Did::parse(r).map_err(|e| Error::msg(format!("--root: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        VerifyOptions::trusting(roots)
    };
    options.allow_classical = args.allow_classical;
    options.audiences = args.audiences.clone();
    let revocations: Option<Arc<Revocations>> = match &args.db {
        Some(db) => Some(Arc::new(
            Revocations::open(db).map_err(|e| Error::msg(e.to_string()))?,
        )),
        None => None,
    };
    let check: &dyn RevocationCheck = match &revocations {
        Some(r) => r.as_ref(),
        None => &NoRevocations,
    };
    let result = chain.and_then(|c| verify_chain(&c, &options, unix_now(), check));
    match result {
        Ok(v) => {
            if args.json {
                outln!("{}", report::json(&verified_json(&v)));
            } else {
                print_valid(&v);
            }
            Ok(Exit::Ok)
        }
        Err(e) => {
            if args.json {
                outln!(
                    "{}",
                    report::json(
                        &serde_json::json!({"valid": false, "link": e.link(), "reason": e.to_string()})
                    )
                );
            } else {
                outln!("invalid: {e}");
            }
            Ok(Exit::Failed)
        }
    }
}

fn verified_json(v: &Verified) -> serde_json::Value {
    serde_json::json!({
        "valid": true,
        "subject": v.subject.as_str(),
        "root": v.root.as_str(),
        "root_pinned": v.root_pinned,
        "capabilities": v.capabilities.to_strings(),
        "ceiling": v.ceiling,
        "expires_at": v.expires_at,
        "audience": v.audience,
        "links": v.depth(),
    })
}

fn print_valid(v: &Verified) {
    outln!(
        "valid: {} link{}",
        v.depth(),
        if v.depth() == 1 { "" } else { "s" }
    );
    outln!("  subject:      {}", v.subject);
    if v.root_pinned {
        outln!("  root:         {}", v.root);
    } else {
        outln!(
            "  root:         {} (not pinned: give --root to require it)",
            v.root
        );
    }
    outln!("  capabilities: {}", v.capabilities);
    outln!("  ceiling:      {} (the lowest along the chain)", v.ceiling);
    outln!(
        "  expires in:   {} s",
        v.expires_at.saturating_sub(unix_now())
    );
}
