//! `warden check`: decide one action and exit with its verdict.

use clap::Args;
use warden::{Action, Warden};

use crate::action_args::ActionArgs;
use crate::args::{AuditArgs, PolicyArgs, ZeroTrustArgs, builder, read_credential};
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
    #[command(flatten)]
    zero_trust: ZeroTrustArgs,
    /// A credential or delegation chain (JSON) the action carries as `context.credential`:
    /// Warden verifies it and judges the action as the identity it names.
    #[arg(long, value_name = "FILE")]
    credential: Option<std::path::PathBuf>,
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
    let mut action = action(&args.action)?;
    if let Some(path) = &args.credential {
        action = action.with_context("credential", read_credential(path)?);
    }
    // Each `check` is its own process: its rate-limit buckets live in the database.
    let warden = args
        .zero_trust
        .apply(builder(&args.policy, &args.audit).shared_rate_limits(true))?
        .build()?;
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
