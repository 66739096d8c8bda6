//! `warden trust show|events`: trust scores and their history, read from the Warden
//! database (scores as of now: decay applied, revoked agents at 0).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use warden_identity::Revocations;
use warden_trust::TrustStore;

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report;

/// `warden trust …`
#[derive(Subcommand, Debug)]
pub enum TrustCommand {
    /// Scores and tiers: of one agent, or of every agent with a score.
    Show(ShowArgs),
    /// An agent's trust changes, oldest first.
    Events(EventsArgs),
}

/// Where the scores are, and how they are computed.
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The Warden database (the audit log's file).
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The settings the scores were kept with (initial score, floor, decay).
    #[arg(long, value_name = "FILE")]
    trust_config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `warden trust show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The agent's DID (default: every agent).
    agent: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Arguments of `warden trust events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The agent's DID.
    agent: String,
    /// The most recent N events.
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    #[command(flatten)]
    store: StoreArgs,
}

fn open(args: &StoreArgs) -> Result<TrustStore> {
    if !args.db.exists() {
        return Err(Error::msg(format!(
            "{}: no such database",
            args.db.display()
        )));
    }
    let config = match &args.trust_config {
        Some(p) => {
            warden_trust::Config::load(p)
                .map_err(|e| Error::msg(e.to_string()))?
                .trust
        }
        None => warden_trust::TrustConfig::default(),
    };
    let revocations = Revocations::open(&args.db).map_err(|e| Error::msg(e.to_string()))?;
    Ok(TrustStore::open(&args.db, config)
        .map_err(|e| Error::msg(e.to_string()))?
        .with_revocations(Arc::new(revocations)))
}

pub fn run(cmd: TrustCommand) -> Result<Exit> {
    match cmd {
        TrustCommand::Show(a) => show(&a),
        TrustCommand::Events(a) => events(&a),
    }
}

fn show(args: &ShowArgs) -> Result<Exit> {
    let store = open(&args.store)?;
    let rows = match &args.agent {
        Some(a) => vec![(
            a.clone(),
            store
                .score(a, 1000)
                .map_err(|e| Error::msg(e.to_string()))?,
        )],
        None => store
            .agents(10_000)
            .map_err(|e| Error::msg(e.to_string()))?,
    };
    if args.store.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(a, s)| serde_json::json!({"agent": a, "score": s.value, "tier": s.tier, "revoked": s.revoked, "events": s.events}))
            .collect();
        outln!("{}", report::json(&list));
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        outln!("no trust scores in {}", args.store.db.display());
        return Ok(Exit::Ok);
    }
    outln!("{:<5}  {:<16}  {:<6}  AGENT", "SCORE", "TIER", "EVENTS");
    for (agent, s) in rows {
        let tier = if s.revoked {
            "revoked".to_string()
        } else {
            s.tier.to_string()
        };
        outln!(
            "{:<5}  {:<16}  {:<6}  {}",
            s.value,
            tier,
            s.events,
            report::visible(&agent)
        );
    }
    Ok(Exit::Ok)
}

fn events(args: &EventsArgs) -> Result<Exit> {
    let store = open(&args.store)?;
    let events = store
        .events(&args.agent, args.limit)
        .map_err(|e| Error::msg(e.to_string()))?;
    if args.store.json {
        outln!("{}", report::json(&events));
        return Ok(Exit::Ok);
    }
    if events.is_empty() {
        outln!("no trust events for {}", report::visible(&args.agent));
        return Ok(Exit::Ok);
    }
    outln!(
        "{:<20}  {:<10}  {:>4} -> {:<4}  ACTION / REASON",
        "TIME",
        "OUTCOME",
        "FROM",
        "TO"
    );
    for e in events {
        let time = warden_audit::Timestamp::from_unix_nanos(
            i64::try_from(e.at)
                .unwrap_or(0)
                .saturating_mul(1_000_000_000),
        )
        .to_string();
        let time = time.get(..19).unwrap_or(&time).to_string() + "Z";
        outln!(
            "{:<20}  {:<10}  {:>4} -> {:<4}  {}{}",
            time,
            e.outcome,
            e.from,
            e.to,
            report::visible(e.action.as_deref().unwrap_or("-")),
            e.reason
                .as_deref()
                .map(|r| format!(": {}", report::visible(r)))
                .unwrap_or_default()
                + &if e.times > 1 {
                    format!(" ({} times)", e.times)
                } else {
                    String::new()
                }
        );
    }
    Ok(Exit::Ok)
}
