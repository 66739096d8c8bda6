//! `warden memory quarantine list|show|release|drop`: the operator's side of the memory
//! guard (`warden::memory`, docs/memory.md).
//!
//! A `memory.write` whose content the injection detector flagged is kept in the Warden
//! database instead of being written. An operator reads it here and either releases it —
//! the same write by the same agent then passes once (its provenance is recorded then) — or
//! drops it. Each answer is recorded in the audit log first (`warden.memory.release` /
//! `warden.memory.drop`, with `--by` and `--reason`); an answer whose record cannot be
//! written is not given. Exit codes: 0 done, 1 the write is already released, used or
//! dropped, 2 anything else (unknown id, no database).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;
use warden::memory::{MemoryError, MemoryGuard, Quarantined, Store, Vouch};
use warden::{Action, Decision, Verdict};
use warden_audit::{Entry, Timestamp};

use crate::args::DbArgs;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{operator_name, print_table, visible, when};

/// `warden memory …`.
#[derive(Subcommand, Debug)]
pub enum MemoryCommand {
    /// Writes held in quarantine: list, show, release, drop.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Check one text read back from a memory store: exit 0 when it was written through
    /// Warden unchanged (its signed provenance record is printed), 1 when not.
    Provenance(ProvenanceArgs),
}

/// Arguments of `warden memory provenance`.
#[derive(Args, Debug)]
pub struct ProvenanceArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Secret key the records were signed with (default: `<db>.key`).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// The text, exactly as stored.
    #[arg(value_name = "TEXT")]
    text: String,
}

/// `warden memory quarantine …`.
#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// List quarantined writes, newest first (default: those still held).
    List(ListArgs),
    /// Show one: agent, source, findings, content.
    Show(ShowArgs),
    /// Let it through once: the same write by the same agent is allowed next time.
    Release(AnswerArgs),
    /// Drop it: it stays on record and is never let through.
    Drop(AnswerArgs),
}

/// Arguments of `warden memory quarantine list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Every write, whatever its status.
    #[arg(long)]
    all: bool,
    /// At most this many.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// Print only the ids, one per line.
    #[arg(long, short = 'q', conflicts_with = "json")]
    quiet: bool,
}

/// Arguments of `warden memory quarantine show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// The quarantined write's id.
    #[arg(value_name = "ID")]
    id: String,
}

/// Arguments of `warden memory quarantine release|drop`.
#[derive(Args, Debug)]
pub struct AnswerArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Who answers, for the audit record (default: `$USER`).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// Why (recorded in the audit log).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Secret key that signs the audit log's checkpoints (default: `<db>.key`).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// The quarantined write's id.
    #[arg(value_name = "ID")]
    id: String,
}

impl MemoryCommand {
    /// Whether the command was asked for JSON.
    pub fn json(&self) -> bool {
        match self {
            MemoryCommand::Quarantine(QuarantineCommand::List(a)) => a.json,
            MemoryCommand::Quarantine(QuarantineCommand::Show(a)) => a.json,
            MemoryCommand::Provenance(a) => a.json,
            _ => false,
        }
    }
}

/// `warden memory …`.
pub fn run(cmd: MemoryCommand) -> Result<Exit> {
    let cmd = match cmd {
        MemoryCommand::Quarantine(cmd) => cmd,
        MemoryCommand::Provenance(a) => return provenance(&a),
    };
    match cmd {
        QuarantineCommand::List(a) => list(&a),
        QuarantineCommand::Show(a) => show(&a),
        QuarantineCommand::Release(a) => answer(&a, true),
        QuarantineCommand::Drop(a) => answer(&a, false),
    }
}

fn open(db: &DbArgs) -> Result<Store> {
    Store::open(db.existing()?).map_err(|e| Error::msg(e.to_string()))
}

fn list(args: &ListArgs) -> Result<Exit> {
    let store = open(&args.db)?;
    let rows = store
        .list(args.all, args.limit)
        .map_err(|e| Error::msg(e.to_string()))?;
    if args.json {
        outln!("{}", crate::report::json(&rows));
        return Ok(Exit::Ok);
    }
    if args.quiet {
        for q in &rows {
            outln!("{}", q.id);
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        outln!(
            "no {}quarantined writes in {}",
            if args.all { "" } else { "held " },
            args.db.db.display()
        );
        return Ok(Exit::Ok);
    }
    let mut table = vec![[
        "ID".to_string(),
        "STATUS".into(),
        "WHEN".into(),
        "AGENT".into(),
        "SOURCE".into(),
        "FINDINGS".into(),
    ]];
    for q in &rows {
        table.push([
            q.id.clone(),
            q.status.as_str().into(),
            when(q.created_ns),
            q.agent.as_deref().map_or_else(|| "-".into(), visible),
            visible(&q.source),
            visible(&q.findings.join(", ")),
        ]);
    }
    print_table(&table);
    Ok(Exit::Ok)
}

fn show(args: &ShowArgs) -> Result<Exit> {
    let store = open(&args.db)?;
    let q = get(&store, &args.id)?;
    if args.json {
        outln!("{}", crate::report::json(&q));
        return Ok(Exit::Ok);
    }
    outln!("quarantined write {}: {}", q.id, q.status.as_str());
    outln!(
        "  agent:    {}",
        q.agent.as_deref().map_or_else(|| "-".into(), visible)
    );
    outln!(
        "  session:  {}",
        q.session.as_deref().map_or_else(|| "-".into(), visible)
    );
    outln!("  source:   {}", visible(&q.source));
    if let Some(tool) = &q.tool {
        outln!("  tool:     {}", visible(tool));
    }
    outln!("  findings: {}", visible(&q.findings.join(", ")));
    outln!("  when:     {}", when(q.created_ns));
    outln!("  hash:     {}", q.write_hash);
    outln!(
        "  content:  {}{}",
        visible(&q.content),
        if q.truncated { " …(cut)" } else { "" }
    );
    if let (Some(by), Some(at)) = (&q.decided_by, q.decided_ns) {
        outln!(
            "  answered: by {} at {}: {}",
            visible(by),
            when(at),
            q.decided_why.as_deref().map(visible).unwrap_or_default()
        );
    }
    Ok(Exit::Ok)
}

fn provenance(args: &ProvenanceArgs) -> Result<Exit> {
    let store = open(&args.db)?;
    let key = args
        .signing_key
        .clone()
        .unwrap_or_else(|| warden_audit::default_key_path(&args.db.db));
    let key = warden_audit::load_signing_key(&key)?;
    let guard = MemoryGuard::new(warden_mcp::proxy::memory_detector()).with_records(store, key);
    let vouch = guard.vouch(&args.text);
    let hash = MemoryGuard::item_hash(&args.text);
    match &vouch {
        Vouch::Valid(p) if args.json => outln!(
            "{}",
            crate::report::json(&json!({"valid": true, "record": p}))
        ),
        Vouch::Valid(p) => {
            outln!("valid: written through Warden, unchanged");
            outln!("  hash:    {}", p.hash);
            outln!("  source:  {}", visible(&p.source));
            outln!(
                "  agent:   {}",
                p.agent.as_deref().map_or_else(|| "-".into(), visible)
            );
            outln!(
                "  session: {}",
                p.session.as_deref().map_or_else(|| "-".into(), visible)
            );
            outln!("  when:    {}", when(p.created_ns));
            outln!("  key:     {}", p.key_id);
        }
        other if args.json => outln!(
            "{}",
            crate::report::json(&json!({"valid": false, "hash": hash, "why": other.why()}))
        ),
        other => outln!("not valid ({hash}): {}", other.why()),
    }
    Ok(if vouch.is_valid() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn get(store: &Store, id: &str) -> Result<Quarantined> {
    store
        .get(id)
        .map_err(|e| Error::msg(e.to_string()))?
        .ok_or_else(|| Error::msg(format!("no quarantined write `{}`", visible(id))))
}

fn answer(args: &AnswerArgs, release: bool) -> Result<Exit> {
    let store = open(&args.db)?;
    let by = operator_name(args.by.as_deref());
    let q = get(&store, &args.id)?;
    let verb = if release { "release" } else { "drop" };
    if q.status != warden::memory::QuarantineStatus::Quarantined {
        errln!(
            "quarantined write {} is already {}",
            q.id,
            q.status.as_str()
        );
        return Ok(Exit::Failed);
    }
    // The record first: an answer that is not on the record is not given.
    let log = args.db.signed_log(args.signing_key.as_deref())?;
    let mut action = Action::new(format!("warden.memory.{verb}"))
        .with_agent(by.clone())
        .with_resource(q.id.as_str())
        .with_arg("write_hash", q.write_hash.as_str())
        .with_arg("writer", json!(q.agent))
        .with_arg("findings", json!(q.findings))
        .with_context("via", "cli");
    action.args["reason"] = json!(args.reason);
    let mut d = Decision::deny(Arc::<str>::from(format!(
        "{by} {verb}d quarantined write {}: {}",
        q.id, args.reason
    )));
    d.verdict = Verdict::Allow;
    d.policy = Some(Arc::from("warden"));
    d.rule = Some(Arc::from(format!("warden.memory.{verb}").as_str()));
    log.append(Entry::new(&action, &d))?;
    log.flush()?;
    match store.settle(&q.id, release, &by, &args.reason, Timestamp::now_unix_ns()) {
        Ok(Some(_)) => {
            outln!("quarantined write {} {verb}d by {}", q.id, visible(&by));
            Ok(Exit::Ok)
        }
        Ok(None) => Err(Error::msg(format!(
            "no quarantined write `{}`",
            visible(&q.id)
        ))),
        Err(e @ MemoryError::Settled { .. }) => {
            errln!("{}", visible(&e.to_string()));
            Ok(Exit::Failed)
        }
        Err(e) => Err(Error::msg(e.to_string())),
    }
}
