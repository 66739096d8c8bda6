//! `warden approvals list|show|approve|deny`: the person in the loop, from the command line.
//!
//! A `require_approval` verdict made with a Warden database (`--db`) leaves a request there
//! (see `warden_runtime::approval`); these commands read and answer it. Whoever can write the
//! database is an operator, as for `warden kill`. Each answer is recorded in the audit log
//! first (`warden.approval.approve` / `warden.approval.deny`, with `--by` and `--reason`);
//! an answer whose record cannot be written is not given. Exit codes: 0 done, 1 the request
//! is already answered, used or expired, 2 anything else (unknown id, bad input, no
//! database).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use warden_audit::Timestamp;
use warden_runtime::Operator;
use warden_runtime::approval::{AnswerError, Approval, ApprovalStatus, Approvals, DEFAULT_TTL};

use crate::args::DbArgs;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{json, operator_name, print_table, visible, when};

/// `warden approvals …`.
#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// List requests, newest first (default: the pending ones).
    List(ListArgs),
    /// Show one request: the action, the rule, who answered.
    Show(ShowArgs),
    /// Approve a pending request: the same action, asked again, is allowed once.
    Approve(AnswerArgs),
    /// Deny a pending request.
    Deny(AnswerArgs),
}

/// Arguments of `warden approvals list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Every request, whatever its status.
    #[arg(long)]
    all: bool,
    /// At most this many.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    /// Print as JSON (a list of requests, each with its `id`).
    #[arg(long)]
    json: bool,
    /// Print only the ids, one per line (for scripts: `warden approvals approve $(…)`).
    #[arg(long, short = 'q', conflicts_with = "json")]
    quiet: bool,
}

/// Arguments of `warden approvals show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// The request's id.
    #[arg(value_name = "ID")]
    id: String,
}

/// Arguments of `warden approvals approve|deny`.
#[derive(Args, Debug)]
pub struct AnswerArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Who answers, for the audit record (default: `$USER`).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// Why (recorded in the audit log and shown to the agent).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Secret key that signs the audit log's checkpoints (default: `<db>.key`).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// The request's id.
    #[arg(value_name = "ID")]
    id: String,
}

impl ApprovalsCommand {
    /// Whether the command was asked for JSON.
    pub fn json(&self) -> bool {
        match self {
            ApprovalsCommand::List(a) => a.json,
            ApprovalsCommand::Show(a) => a.json,
            _ => false,
        }
    }
}

/// `warden approvals …`.
pub fn run(cmd: ApprovalsCommand) -> Result<Exit> {
    match cmd {
        ApprovalsCommand::List(a) => list(&a),
        ApprovalsCommand::Show(a) => show(&a),
        ApprovalsCommand::Approve(a) => answer(&a, true),
        ApprovalsCommand::Deny(a) => answer(&a, false),
    }
}

fn open(db: &DbArgs) -> Result<Approvals> {
    Approvals::open(db.existing()?, DEFAULT_TTL).map_err(|e| Error::msg(e.to_string()))
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> u64 {
    Timestamp::now_unix_ns()
}

fn list(args: &ListArgs) -> Result<Exit> {
    let approvals = open(&args.db)?;
    let filter = (!args.all).then_some(ApprovalStatus::Pending);
    let rows = approvals
        .list(filter, args.limit, now_ns())
        .map_err(|e| Error::msg(e.to_string()))?;
    if args.json {
        outln!("{}", json(&rows));
        return Ok(Exit::Ok);
    }
    if args.quiet {
        for a in &rows {
            outln!("{}", a.id);
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        outln!(
            "no {}approval requests in {}",
            if args.all { "" } else { "pending " },
            args.db.db.display()
        );
        return Ok(Exit::Ok);
    }
    let mut table = vec![[
        "ID".to_string(),
        "STATUS".into(),
        "EXPIRES".into(),
        "AGENT".into(),
        "ACTION".into(),
        "REASON".into(),
    ]];
    for a in &rows {
        table.push([
            a.id.clone(),
            a.status.as_str().into(),
            when(a.expires_ns),
            a.agent.as_deref().map_or_else(|| "-".into(), visible),
            visible(a.action["action"].as_str().unwrap_or("?")),
            visible(&a.reason),
        ]);
    }
    print_table(&table);
    Ok(Exit::Ok)
}

fn show(args: &ShowArgs) -> Result<Exit> {
    let approvals = open(&args.db)?;
    let a = approvals
        .get(&args.id, now_ns())
        .map_err(|e| Error::msg(e.to_string()))?
        .ok_or_else(|| Error::msg(format!("no approval request `{}`", visible(&args.id))))?;
    if args.json {
        outln!("{}", json(&a));
    } else {
        print(&a);
    }
    Ok(Exit::Ok)
}

/// One request, for people.
pub fn print(a: &Approval) {
    outln!("approval {}: {}", a.id, a.status.as_str());
    outln!("  action:  {}", visible(&a.action.to_string()));
    outln!(
        "  rule:    {} (policy {})",
        a.rule.as_deref().map_or_else(|| "-".into(), visible),
        a.policy.as_deref().map_or_else(|| "-".into(), visible)
    );
    outln!("  reason:  {}", visible(&a.reason));
    outln!("  asked:   {}", when(a.created_ns));
    outln!("  expires: {}", when(a.expires_ns));
    if let (Some(by), Some(at)) = (&a.decided_by, a.decided_ns) {
        outln!(
            "  answer:  {} by {} at {}: {}",
            if a.status == ApprovalStatus::Denied {
                "denied"
            } else {
                "approved"
            },
            visible(by),
            when(at),
            a.decided_reason.as_deref().map(visible).unwrap_or_default()
        );
    }
    if let Some(at) = a.used_ns {
        outln!("  used:    {}", when(at));
    }
}

fn answer(args: &AnswerArgs, approve: bool) -> Result<Exit> {
    let approvals = open(&args.db)?;
    let by = operator_name(args.by.as_deref());
    let log = args.db.signed_log(args.signing_key.as_deref())?;
    let operator = Operator::new(by, "cli");
    match approvals.answer_recorded(
        &args.id,
        approve,
        &operator,
        &args.reason,
        Some(&log),
        now_ns(),
    ) {
        Ok(a) => {
            outln!(
                "approval {} {} by {}",
                a.id,
                if approve { "approved" } else { "denied" },
                visible(operator.name())
            );
            Ok(Exit::Ok)
        }
        Err(e @ AnswerError::Settled { .. }) => {
            errln!("{}", visible(&e.to_string()));
            Ok(Exit::Failed)
        }
        Err(e) => Err(Error::msg(e.to_string())),
    }
}
