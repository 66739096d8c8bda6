//! `warden saga run|resume|list|show`: multi-step work that finishes or is undone.
//!
//! `run` reads a saga file (see `warden_policy::saga` and docs/sagas.md), judges every step
//! and compensation with the policy, runs the steps' commands in the current directory, and
//! keeps the journal in the Warden database (`--db`), so `resume` can finish a saga whose
//! runner died. Exit codes: 0 every step succeeded (or, for `resume`, everything taken up
//! finished cleanly), 1 the saga failed and was compensated, 2 an error or an escalation (a
//! compensation that kept failing: `warden saga show` says which and why, `warden saga resume
//! ID` retries it once the cause is fixed).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use warden::Warden;
use warden_runtime::saga::{
    CommandWork, Journal, Saga, SagaReport, SagaSpec, SagaStatus, SagaView, StepStatus,
};

use crate::args::{AuditArgs, PolicyArgs, RuntimeArgs, builder};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{json, print_table, visible, when};

/// `warden saga …`.
#[derive(Subcommand, Debug)]
pub enum SagaCommand {
    /// Run a saga file: steps in order; on a failure, the earlier steps undone in reverse.
    Run(RunArgs),
    /// Finish sagas whose runner died (every one, or the one named; an escalated one only
    /// when named).
    Resume(ResumeArgs),
    /// List the sagas in the database, newest first.
    List(ListArgs),
    /// Show one saga's steps and history (default: the newest).
    Show(ShowArgs),
}

/// The journal's database (required: a saga without a journal cannot survive a crash).
#[derive(Args, Debug)]
pub struct DbArgs {
    /// The Warden database (the audit log's SQLite file) that keeps the saga journal.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
}

/// Arguments of `warden saga run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// The agent the steps are judged for (default: the file's `agent`).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// The saga file (YAML).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Arguments of `warden saga resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Print the outcomes as JSON.
    #[arg(long)]
    json: bool,
    /// Only this saga (which may be escalated: its failed compensation is retried).
    #[arg(value_name = "ID")]
    id: Option<String>,
}

/// Arguments of `warden saga list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArgs,
    /// At most this many (newest first).
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `warden saga show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// The saga (default: the newest).
    #[arg(value_name = "ID")]
    id: Option<String>,
}

impl SagaCommand {
    /// Whether the command was asked for JSON (errors are then printed as JSON too).
    pub fn json(&self) -> bool {
        match self {
            SagaCommand::Run(a) => a.json,
            SagaCommand::Resume(a) => a.json,
            SagaCommand::List(a) => a.json,
            SagaCommand::Show(a) => a.json,
        }
    }
}

/// `warden saga …`.
pub fn run(cmd: SagaCommand) -> Result<Exit> {
    match cmd {
        SagaCommand::Run(a) => run_saga(&a),
        SagaCommand::Resume(a) => resume(&a),
        SagaCommand::List(a) => list(&a),
        SagaCommand::Show(a) => show(&a),
    }
}

/// The Warden that judges the steps; its database is the journal's.
fn warden(policy: &PolicyArgs, audit: &AuditArgs, runtime: &RuntimeArgs) -> Result<Warden> {
    if audit.db.is_none() {
        return Err(Error::msg(
            "a saga needs --db FILE: its journal lives in the Warden database, so a crash \
             loses nothing",
        ));
    }
    if audit.audit_mode != crate::args::AuditMode::Durable {
        // A runner killed within the flush interval would leave a step that ran without
        // its committed audit record.
        return Err(Error::msg(
            "a saga records every step durably: --audit-mode buffered is not accepted here",
        ));
    }
    Ok(runtime
        .apply(builder(policy, audit))
        .shared_rate_limits(true)
        .protect_binary()
        .build()?)
}

fn journal(db: &std::path::Path) -> Result<Journal> {
    Journal::open(db).map_err(|e| Error::msg(e.to_string()))
}

fn run_saga(args: &RunArgs) -> Result<Exit> {
    let spec = SagaSpec::load(&args.file)?;
    let warden = warden(&args.policy, &args.audit, &args.runtime)?;
    let db = args.audit.db.as_deref().unwrap_or_else(|| unreachable!());
    let journal = journal(db)?;
    let cwd = std::env::current_dir()
        .map_err(|e| Error::msg(format!("cannot read the working directory: {e}")))?;
    let work = CommandWork::new(warden.runtime());
    let saga = Saga::new(&journal, &warden, &work, warden.audit(), "cli");
    let report = saga
        .run(&spec, args.agent.as_deref(), &cwd)
        .map_err(|e| Error::msg(format!("saga `{}`: {e}", visible(&spec.name))))?;
    finish(&journal, &[report], args.json)
}

fn resume(args: &ResumeArgs) -> Result<Exit> {
    let warden = warden(&args.policy, &args.audit, &args.runtime)?;
    let db = args.audit.db.as_deref().unwrap_or_else(|| unreachable!());
    let journal = journal(db)?;
    let work = CommandWork::new(warden.runtime());
    let saga = Saga::new(&journal, &warden, &work, warden.audit(), "cli");
    let (reports, failed) = match &args.id {
        Some(id) => match saga
            .resume(id, true)
            .map_err(|e| Error::msg(e.to_string()))?
        {
            Ok(report) => (vec![report], Vec::new()),
            Err(why) => return Err(Error::msg(why)),
        },
        None => {
            let out = saga
                .resume_orphans()
                .map_err(|e| Error::msg(e.to_string()))?;
            (out.reports, out.failed)
        }
    };
    if reports.is_empty() && failed.is_empty() && !args.json {
        outln!("no saga to resume");
    }
    let exit = finish(&journal, &reports, args.json)?;
    if failed.is_empty() {
        return Ok(exit);
    }
    // The others were resumed; these are left as they were, and the exit says so.
    let why = failed
        .iter()
        .map(|(id, e)| {
            format!(
                "cannot resume saga {}: {}",
                visible(id),
                visible(&e.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Err(Error::msg(why))
}

/// Print what each saga ended as; exit 0 all completed, 1 any compensated, 2 any escalated.
fn finish(journal: &Journal, reports: &[SagaReport], as_json: bool) -> Result<Exit> {
    let mut views = Vec::new();
    for r in reports {
        let view = journal
            .show(&r.id)
            .map_err(|e| Error::msg(e.to_string()))?
            .ok_or_else(|| Error::msg(format!("saga `{}` vanished from the journal", r.id)))?;
        views.push(view);
    }
    if as_json {
        outln!("{}", json(&views));
    } else {
        for view in &views {
            print_view(view);
        }
    }
    let worst = reports
        .iter()
        .map(|r| r.status)
        .fold(Exit::Ok, |exit, s| match (exit, s) {
            (_, SagaStatus::Escalated) | (Exit::Error, _) => Exit::Error,
            (_, SagaStatus::Compensated) | (Exit::Failed, _) => Exit::Failed,
            _ => exit,
        });
    Ok(worst)
}

fn list(args: &ListArgs) -> Result<Exit> {
    let journal = journal(&args.db.db)?;
    let rows = journal
        .list(args.limit)
        .map_err(|e| Error::msg(e.to_string()))?;
    if args.json {
        outln!("{}", json(&rows));
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        outln!("no sagas in {}", args.db.db.display());
        return Ok(Exit::Ok);
    }
    let mut table = vec![[
        "ID".to_string(),
        "NAME".into(),
        "STATUS".into(),
        "STARTED".into(),
        "AGENT".into(),
        "REASON".into(),
    ]];
    for r in rows {
        let status = if r.owned && !r.status.is_finished() {
            format!("{} (live)", r.status.as_str())
        } else {
            r.status.as_str().to_string()
        };
        table.push([
            visible(&r.id),
            visible(&r.name),
            status,
            when(r.created_ns),
            r.agent.as_deref().map_or_else(|| "-".into(), visible),
            r.reason.as_deref().map_or_else(|| "-".into(), visible),
        ]);
    }
    print_table(&table);
    Ok(Exit::Ok)
}

fn show(args: &ShowArgs) -> Result<Exit> {
    let journal = journal(&args.db.db)?;
    let id = match &args.id {
        Some(id) => id.clone(),
        None => journal
            .list(1)
            .map_err(|e| Error::msg(e.to_string()))?
            .into_iter()
            .next()
            .map(|r| r.id)
            .ok_or_else(|| Error::msg(format!("no sagas in {}", args.db.db.display())))?,
    };
    let view = journal
        .show(&id)
        .map_err(|e| Error::msg(e.to_string()))?
        .ok_or_else(|| {
            Error::msg(format!(
                "no saga `{}` in {}",
                visible(&id),
                args.db.db.display()
            ))
        })?;
    if args.json {
        outln!("{}", json(&view));
    } else {
        print_view(&view);
        outln!("history:");
        for e in &view.events {
            let line = format!(
                "  {}  {:<20} {:<8} {}",
                when(e.at_ns),
                visible(&e.event),
                e.step.as_deref().map_or_else(|| "-".into(), visible),
                e.detail.as_deref().map(visible).unwrap_or_default()
            );
            outln!("{}", line.trim_end());
        }
    }
    Ok(Exit::Ok)
}

fn print_view(view: &SagaView) {
    let s = &view.saga;
    match &s.reason {
        Some(reason) if s.status != SagaStatus::Completed => outln!(
            "saga `{}` ({}): {} — {}",
            visible(&s.name),
            visible(&s.id),
            s.status.as_str(),
            visible(reason)
        ),
        _ => outln!(
            "saga `{}` ({}): {}",
            visible(&s.name),
            visible(&s.id),
            s.status.as_str()
        ),
    }
    let mut table = vec![[
        "STEP".to_string(),
        "STATUS".into(),
        "RUNS".into(),
        "UNDOS".into(),
        "DETAIL".into(),
    ]];
    for step in &view.steps {
        let undo = view.spec.steps[step.index].compensate.is_some();
        let status = match step.status {
            StepStatus::Done if !undo && s.status == SagaStatus::Compensated => {
                "done (nothing to undo)".to_string()
            }
            other => other.as_str().to_string(),
        };
        table.push([
            visible(&step.id),
            status,
            step.attempts.to_string(),
            step.compensations.to_string(),
            step.detail.as_deref().map(visible).unwrap_or_default(),
        ]);
    }
    print_table(&table);
}
