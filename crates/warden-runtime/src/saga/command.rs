//! Steps that are commands (`warden saga run`): each attempt is one process, started without
//! a shell in the saga's directory, with its input closed and its output passed through.
//!
//! The process is told where it stands in its environment — `WARDEN_SAGA_ID`,
//! `WARDEN_SAGA_STEP`, `WARDEN_SAGA_PHASE` (`run` or `compensate`), `WARDEN_SAGA_ATTEMPT` and
//! `WARDEN_IDEMPOTENCY_KEY` — and runs under the step's time limit (SIGTERM, then SIGKILL
//! after the grace period: `TimedOut`). A step also runs under the kill switch (a kill that
//! stops the saga's agent terminates it: `Stopped`); a compensation does not, since it is
//! what undoes the agent's work.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Attempt, Phase, StepContext, Work, shell_line};
use crate::Runtime;

/// How often a running attempt is checked for its end or its time limit.
const POLL: Duration = Duration::from_millis(10);

/// Runs steps and compensations as commands, under `runtime`'s kill switch.
pub struct CommandWork<'a> {
    runtime: &'a Runtime,
}

impl<'a> CommandWork<'a> {
    /// Commands supervised by `runtime` (for the kill switch).
    pub fn new(runtime: &'a Runtime) -> Self {
        CommandWork { runtime }
    }
}

impl Work for CommandWork<'_> {
    fn perform(&self, ctx: &StepContext<'_>) -> Attempt {
        let argv = match ctx.phase {
            Phase::Run => &ctx.step.run[..],
            Phase::Compensate => ctx.step.compensate.as_deref().unwrap_or_default(),
        };
        let Some((program, rest)) = argv.split_first() else {
            return Attempt::Failed("no command".into());
        };
        let line = shell_line(argv);
        let child = Command::new(program)
            .args(rest)
            .current_dir(ctx.cwd)
            .stdin(Stdio::null())
            .env("WARDEN_SAGA_ID", ctx.saga)
            .env("WARDEN_SAGA_STEP", &ctx.step.id)
            .env("WARDEN_SAGA_PHASE", ctx.phase.as_str())
            .env("WARDEN_SAGA_ATTEMPT", ctx.attempt.to_string())
            .env("WARDEN_IDEMPOTENCY_KEY", &ctx.idempotency_key)
            .spawn();
        let child = match child {
            Ok(child) => child,
            // Not started: it changed nothing.
            Err(e) => return Attempt::Failed(format!("cannot run `{line}`: {e}")),
        };
        // A step runs under the kill switch; a compensation must run even for a stopped agent.
        let child = match ctx.phase {
            Phase::Run => self.runtime.supervise(child, ctx.agent),
            Phase::Compensate => self.runtime.unsupervised(child, ctx.agent),
        };
        let deadline = Instant::now() + ctx.step.timeout();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    child.kill();
                    return Attempt::Stopped(format!("cannot wait for `{line}`: {e}"));
                }
            }
            if !timed_out && Instant::now() >= deadline {
                timed_out = true;
                child.terminate(format!(
                    "step `{}` ran past its time limit of {:?}",
                    ctx.step.id,
                    ctx.step.timeout()
                ));
            }
            std::thread::sleep(POLL);
        };
        if let Some(why) = child.terminated_because() {
            return if timed_out {
                Attempt::TimedOut(why)
            } else {
                Attempt::Stopped(format!("`{line}` was terminated: {why}"))
            };
        }
        match (status.code(), status.signal()) {
            (Some(0), _) => Attempt::Done,
            (Some(code), _) => Attempt::Failed(format!("`{line}` exited with status {code}")),
            // Killed by a signal Warden did not send: cut off mid-way.
            (None, Some(signal)) => {
                Attempt::Stopped(format!("`{line}` was killed by signal {signal}"))
            }
            (None, None) => Attempt::Stopped(format!("`{line}` ended without a status")),
        }
    }
}
