//! `warden check`: decide one action and exit with its verdict.

use clap::Args;
use warden::{Action, Warden};

use crate::action_args::ActionArgs;
use crate::args::{AuditArgs, PolicyArgs, builder};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report;

/// Arguments of `warden check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    action: ActionArgs,
    #[command(flatten)]
    audit: AuditArgs,
    /// Print the decision (or the error) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The action the flags describe.
pub fn action(args: &ActionArgs) -> Result<Action> {
    args.action().map_err(Error::Message)
}

/// A Warden judging with `policy`, recording to the log `audit` asks for. Each `check` is
/// its own process, so its rate-limit buckets live in the database (shared by every check
/// with the same `--db`).
pub fn warden(policy: &PolicyArgs, audit: &AuditArgs) -> Result<Warden> {
    Ok(builder(policy, audit).shared_rate_limits(true).build()?)
}

pub fn run(args: &CheckArgs) -> Result<Exit> {
    let action = action(&args.action)?;
    let warden = warden(&args.policy, &args.audit)?;
    let decision = warden.decide(&action);
    // Dropping the Warden closes the log: buffered records are committed before exit.
    drop(warden);
    if args.json {
        outln!("{}", report::json(&decision));
    } else {
        outln!("{}", report::decision_text(&decision));
    }
    Ok(decision.verdict.into())
}
