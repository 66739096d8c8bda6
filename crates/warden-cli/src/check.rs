//! `warden check`: decide one action and exit with its verdict.

use std::time::{Duration, Instant};

use clap::Args;
use warden::{Action, ApprovalStatus, Decision, Verdict, Warden};

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
    /// When a person must approve: wait up to this long (`60s`, `5m`) for the answer to the
    /// approval request, then exit with the verdict it leads to (needs `--db`, where the
    /// request lives). Nobody answering in time is a deny.
    #[arg(long, value_name = "DURATION", value_parser = wait_time, requires = "db")]
    wait: Option<Duration>,
    #[command(flatten)]
    model: crate::model::ModelArgs,
    /// Print the decision (or the error) as JSON.
    #[arg(long)]
    pub json: bool,
}

fn wait_time(s: &str) -> std::result::Result<Duration, String> {
    warden_policy::runtime::parse_duration(s)
}

/// The action the flags describe.
pub fn action(args: &ActionArgs) -> Result<Action> {
    args.action().map_err(Error::Message)
}

pub fn run(args: &CheckArgs) -> Result<Exit> {
    let mut action = action(&args.action)?;
    if let Some(path) = &args.credential {
        action = action.with_context("credential", read_credential(path)?);
    }
    // Each `check` is its own process: its rate-limit buckets live in the database.
    let builder = args
        .zero_trust
        .apply(builder(&args.policy, &args.audit).shared_rate_limits(true))?;
    let warden = crate::model::with_model(builder, &args.model)?.build()?;
    let mut decision = warden.decide(&action);
    if let (Some(wait), Verdict::RequireApproval, Some(id)) =
        (args.wait, decision.verdict, decision.approval_id.clone())
    {
        decision = wait_for_answer(&warden, &action, &id, wait, !args.json)?;
    }
    // Dropping the Warden closes the log: buffered records are committed before exit.
    drop(warden);
    if args.json {
        outln!("{}", report::json(&decision));
    } else {
        outln!("{}", report::decision_text(&decision));
    }
    Ok(decision.verdict.into())
}

/// Wait (polling the database) until request `id` is answered, used, expired, or `wait` is
/// over; then the decision it leads to: the action decided again (an approval is used by that
/// decision), or a deny naming why.
fn wait_for_answer(
    warden: &Warden,
    action: &Action,
    id: &str,
    wait: Duration,
    tell: bool,
) -> Result<Decision> {
    let approvals = warden
        .approvals()
        .ok_or_else(|| Error::msg("--wait needs --db: approval requests live there"))?;
    if tell {
        errln!(
            "waiting up to {wait:?} for approval {id} (`warden approvals approve {id} --reason … --db …`)"
        );
    }
    let deadline = Instant::now() + wait;
    loop {
        let now = crate::approvals::now_ns();
        let request = approvals
            .get(id, now)
            .map_err(|e| Error::msg(e.to_string()))?
            .ok_or_else(|| Error::msg(format!("approval request {id} vanished")))?;
        let why = match request.status {
            ApprovalStatus::Approved => return Ok(warden.decide(action)),
            ApprovalStatus::Pending if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            ApprovalStatus::Pending => format!("nobody answered approval {id} within {wait:?}"),
            ApprovalStatus::Denied => format!(
                "approval {id} was denied by {}: {}",
                request.decided_by.as_deref().unwrap_or("?"),
                request.decided_reason.as_deref().unwrap_or("")
            ),
            ApprovalStatus::Expired => format!("approval {id} expired unanswered"),
            ApprovalStatus::Used => format!("approval {id} was already used by another call"),
        };
        let mut d = Decision::deny(format!("denied: {why}"));
        d.approval_id = Some(id.into());
        return Ok(d);
    }
}
