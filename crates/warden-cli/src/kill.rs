//! `warden kill`, `warden revive` and `warden ring`: the operator's controls over the runtime
//! state kept in the Warden database (kill switches, ring elevations and demotions).
//!
//! Whoever can write the database is an operator; these commands are the only way in from
//! the command line (a decision never changes this state). Every change is recorded in the
//! audit log of the same file, with `--by` (default: `$USER`) and `--reason`. A revival or
//! elevation whose record cannot be written is not made. Exit codes: 0 done (or already so
//! for `kill`), 1 nothing to revive or restore, 2 anything that went wrong — a kill that
//! could not be set never exits 0.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use warden::{AuditConfig, AuditLog, Ring};
use warden_audit::Timestamp;
use warden_runtime::{KillView, Operator, Runtime, RuntimeError, RuntimeOptions, Scope};

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{self, visible};

/// The database and who is acting: every operator command takes these.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// The Warden database (the audit log's SQLite file; created if missing).
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Who is acting, for the audit record (default: `$USER`).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// Secret key that signs the audit log's checkpoints (default: `<db>.key`).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

/// What a kill or revival applies to: exactly one of these.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("scope").required(true).args(["agent", "all", "action"])))]
pub struct ScopeArgs {
    /// One agent (its name or DID, exactly).
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,
    /// Every agent.
    #[arg(long)]
    all: bool,
    /// One capability: every action whose name matches the glob (`payments.*`).
    #[arg(long, value_name = "GLOB")]
    action: Option<String>,
}

/// Arguments of `warden kill`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["agent", "all", "action", "list"])))]
pub struct KillArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Stop one agent (its name or DID, exactly).
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,
    /// Stop every agent.
    #[arg(long)]
    all: bool,
    /// Stop one capability: every action whose name matches the glob (`payments.*`).
    #[arg(long, value_name = "GLOB")]
    action: Option<String>,
    /// List the kill switches in force instead.
    #[arg(long)]
    list: bool,
    /// Why (recorded in the audit log and shown in every deny).
    #[arg(long, value_name = "TEXT", default_value = "no reason given")]
    reason: String,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `warden revive`.
#[derive(Args, Debug)]
pub struct ReviveArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Why (recorded in the audit log).
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// `warden ring …`.
#[derive(Subcommand, Debug)]
pub enum RingCommand {
    /// Raise an agent's ring for a while (an operator's approval; recorded).
    Elevate(ElevateArgs),
    /// Lower an agent's ring until it is restored (recorded).
    Demote(DemoteArgs),
    /// Remove an agent's elevation and demotion (recorded).
    Restore(RestoreArgs),
    /// List elevations and demotions in force.
    List(ListArgs),
}

/// Arguments of `warden ring elevate`.
#[derive(Args, Debug)]
pub struct ElevateArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// The agent.
    #[arg(long, value_name = "AGENT")]
    agent: String,
    /// The ring: kernel, supervisor, user or untrusted.
    #[arg(long, value_name = "RING", value_parser = parse_ring)]
    to: Ring,
    /// How long (`30m`, `2h`; at most 30 days).
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    ttl: Duration,
    /// Why (recorded in the audit log).
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// Arguments of `warden ring demote`.
#[derive(Args, Debug)]
pub struct DemoteArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// The agent.
    #[arg(long, value_name = "AGENT")]
    agent: String,
    /// The ring (default: untrusted).
    #[arg(long, value_name = "RING", value_parser = parse_ring, default_value = "untrusted")]
    to: Ring,
    /// Why (recorded in the audit log).
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// Arguments of `warden ring restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// The agent.
    #[arg(long, value_name = "AGENT")]
    agent: String,
    /// Why (recorded in the audit log).
    #[arg(long, value_name = "TEXT")]
    reason: String,
}

/// Arguments of `warden ring list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_ring(s: &str) -> std::result::Result<Ring, String> {
    s.parse()
}

fn parse_ttl(s: &str) -> std::result::Result<Duration, String> {
    warden_policy::runtime::parse_duration(s)
}

/// The database opened for an operator: its audit log (opened first: a file that is not
/// Warden's, or whose log cannot be written, changes nothing) and the runtime state.
struct Opened {
    log: AuditLog,
    runtime: Runtime,
    by: Operator,
}

impl OperatorArgs {
    fn open(&self) -> Result<Opened> {
        let key = self
            .signing_key
            .clone()
            .unwrap_or_else(|| warden_audit::default_key_path(&self.db));
        let log = AuditLog::open_signed(&self.db, AuditConfig::default(), Some(&key))?;
        let options = RuntimeOptions {
            db: Some(self.db.clone()),
            poll: None,
            ..RuntimeOptions::default()
        };
        let runtime = Runtime::open(options).map_err(runtime_error)?;
        let name = self
            .by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "unknown operator".to_string());
        Ok(Opened {
            log,
            runtime,
            by: Operator::new(name, "cli"),
        })
    }
}

impl Opened {
    /// Close the log so every record is committed before the command reports success.
    fn close(self) -> Result<()> {
        drop(self.runtime);
        self.log.close()?;
        Ok(())
    }
}

fn runtime_error(e: RuntimeError) -> Error {
    match e {
        RuntimeError::Open(e) => Error::Audit(e),
        other => Error::msg(other.to_string()),
    }
}

fn scope_of(agent: &Option<String>, all: bool, action: &Option<String>) -> Result<Scope> {
    match (agent, all, action) {
        (Some(a), false, None) => Scope::agent(a).map_err(|e| Error::msg(format!("--agent: {e}"))),
        (None, true, None) => Ok(Scope::All),
        (None, false, Some(g)) => {
            Scope::action(g).map_err(|e| Error::msg(format!("--action: {e}")))
        }
        _ => Err(Error::msg("give exactly one of --agent, --all, --action")),
    }
}

/// `warden kill`.
pub fn kill(args: &KillArgs) -> Result<Exit> {
    let opened = args.operator.open()?;
    if args.list {
        let kills = opened.runtime.kills();
        if args.json {
            let views: Vec<KillView> = kills.iter().map(KillView::from).collect();
            outln!("{}", report::json(&views));
        } else if kills.is_empty() {
            outln!("no kill switch is set");
        } else {
            let rows: Vec<Vec<String>> = kills
                .iter()
                .map(|k| {
                    let target = k.scope.target();
                    vec![
                        k.scope.kind().to_string(),
                        visible(if target.is_empty() { "-" } else { target }),
                        time(k.at_ns),
                        visible(&k.by),
                        visible(&k.reason),
                    ]
                })
                .collect();
            table(&["SCOPE", "TARGET", "SINCE", "BY", "REASON"], &rows);
        }
        opened.close()?;
        return Ok(Exit::Ok);
    }
    let scope = scope_of(&args.agent, args.all, &args.action)?;
    let set = opened
        .runtime
        .kill(scope.clone(), &args.reason, &opened.by, Some(&opened.log))
        .map_err(runtime_error)?;
    opened.close()?;
    if set {
        outln!(
            "kill switch set for {}: {}",
            visible(&scope.to_string()),
            visible(args.reason.trim())
        );
    } else {
        outln!(
            "kill switch already set for {}",
            visible(&scope.to_string())
        );
    }
    Ok(Exit::Ok)
}

/// `warden revive`.
pub fn revive(args: &ReviveArgs) -> Result<Exit> {
    let scope = scope_of(&args.scope.agent, args.scope.all, &args.scope.action)?;
    let opened = args.operator.open()?;
    let lifted = opened
        .runtime
        .revive(&scope, &args.reason, &opened.by, Some(&opened.log))
        .map_err(runtime_error)?;
    let others = opened.runtime.kills();
    opened.close()?;
    if !lifted {
        errln!(
            "no kill switch is set for {} (see `warden kill --list`)",
            visible(&scope.to_string())
        );
        return Ok(Exit::Failed);
    }
    outln!("kill switch lifted for {}", visible(&scope.to_string()));
    if !others.is_empty() {
        outln!(
            "{} other kill switch(es) still set (see `warden kill --list`)",
            others.len()
        );
    }
    Ok(Exit::Ok)
}

/// `warden ring …`.
pub fn ring(cmd: &RingCommand) -> Result<Exit> {
    match cmd {
        RingCommand::Elevate(a) => {
            let opened = a.operator.open()?;
            let o = opened
                .runtime
                .elevate(
                    &a.agent,
                    a.to,
                    a.ttl,
                    &a.reason,
                    &opened.by,
                    Some(&opened.log),
                )
                .map_err(runtime_error)?;
            opened.close()?;
            let until = Timestamp::from_unix_nanos(
                i64::try_from(o.expires_ns.unwrap_or(0)).unwrap_or(i64::MAX),
            );
            outln!(
                "agent `{}` elevated to ring `{}` until {until}",
                visible(&a.agent),
                a.to
            );
            Ok(Exit::Ok)
        }
        RingCommand::Demote(a) => {
            let opened = a.operator.open()?;
            let o = opened
                .runtime
                .demote(&a.agent, a.to, &a.reason, &opened.by, Some(&opened.log))
                .map_err(runtime_error)?;
            opened.close()?;
            outln!(
                "agent `{}` demoted to ring `{}` until restored",
                visible(&a.agent),
                o.ring
            );
            Ok(Exit::Ok)
        }
        RingCommand::Restore(a) => {
            let opened = a.operator.open()?;
            let n = opened
                .runtime
                .restore(&a.agent, &a.reason, &opened.by, Some(&opened.log))
                .map_err(runtime_error)?;
            opened.close()?;
            if n == 0 {
                errln!("agent `{}` has no elevation or demotion", visible(&a.agent));
                return Ok(Exit::Failed);
            }
            outln!(
                "agent `{}` restored to its configured ring",
                visible(&a.agent)
            );
            Ok(Exit::Ok)
        }
        RingCommand::List(a) => {
            let opened = a.operator.open()?;
            let list = opened.runtime.overrides();
            let now = opened.runtime.now_ns();
            opened.close()?;
            if a.json {
                outln!("{}", report::json(&list));
            } else if list.is_empty() {
                outln!("no elevation or demotion is recorded");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|o| {
                        let until = match o.expires_ns {
                            None => "restored".to_string(),
                            Some(e) if e <= now => "expired".to_string(),
                            Some(e) => time(e),
                        };
                        vec![
                            visible(&o.agent),
                            o.kind.as_str().to_string(),
                            o.ring.to_string(),
                            until,
                            visible(&o.by),
                            visible(&o.reason),
                        ]
                    })
                    .collect();
                table(&["AGENT", "KIND", "RING", "UNTIL", "BY", "REASON"], &rows);
            }
            Ok(Exit::Ok)
        }
    }
}

fn time(ns: u64) -> String {
    Timestamp::from_unix_nanos(i64::try_from(ns).unwrap_or(i64::MAX)).to_string()
}

/// Rows under `head`, each column but the last padded to its widest cell.
fn table(head: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    outln!("{}", line(head.to_vec()));
    for row in rows {
        outln!("{}", line(row.iter().map(String::as_str).collect()));
    }
}
