//! `warden check`: decide one action and exit with its verdict.

use std::path::PathBuf;

use clap::Args;
use warden::{Action, Warden};

use crate::action_args::ActionArgs;
use crate::audit_args::AuditArgs;
use crate::{exit, report};

/// Arguments of `warden check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    action: ActionArgs,
    #[command(flatten)]
    audit: AuditArgs,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

/// The action the flags describe, or the exit code after saying what is wrong with them.
pub fn action(args: &ActionArgs) -> Result<Action, i32> {
    args.action().map_err(|e| {
        report::usage_error(&e);
        exit::ERROR
    })
}

/// A Warden judging with `policies` (recording to the audit log when `audit` asks for one),
/// or the exit code after reporting every problem.
pub fn warden(policies: &[PathBuf], audit: &AuditArgs) -> Result<Warden, i32> {
    let warden = Warden::from_paths(policies).map_err(|e| {
        report::load_error(&e);
        exit::ERROR
    })?;
    audit.attach(warden).map_err(|e| {
        report::usage_error(&e);
        exit::ERROR
    })
}

pub fn run(args: &CheckArgs) -> i32 {
    let (action, warden) = match action(&args.action)
        .and_then(|a| Ok((a, warden(&args.action.policies, &args.audit)?)))
    {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let decision = warden.decide(&action);
    // Dropping the Warden closes the log: buffered records are committed before exit.
    drop(warden);
    if args.json {
        outln!("{}", report::json(&decision));
    } else {
        outln!("{}", report::decision_text(&decision));
    }
    decision.verdict.exit_code()
}
