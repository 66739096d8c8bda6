//! `warden check`: decide one action and exit with its verdict.

use clap::Args;
use warden::Warden;

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

/// Load the policies named by `args`, reporting problems; `None` means exit 2.
pub fn load(args: &ActionArgs) -> Option<Warden> {
    match Warden::from_paths(&args.policies) {
        Ok(w) => Some(w),
        Err(e) => {
            report::load_error(&e);
            None
        }
    }
}

pub fn run(args: &CheckArgs) -> i32 {
    let action = match args.action.action() {
        Ok(a) => a,
        Err(e) => {
            report::usage_error(&e);
            return exit::ERROR;
        }
    };
    let Some(warden) = load(&args.action) else {
        return exit::ERROR;
    };
    let warden = match args.audit.attach(warden) {
        Ok(w) => w,
        Err(e) => {
            report::usage_error(&e);
            return exit::ERROR;
        }
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
