//! Sagas: multi-step work that either finishes or is undone, even across a crash.
//!
//! A saga is an ordered list of steps, each with a compensation (the step that undoes it).
//! [`Saga::run`] runs the steps in order; when one fails — an error, a timeout, a denial, the
//! kill switch — the steps before it are compensated **automatically**, in reverse, each
//! compensation retried with backoff. A compensation that keeps failing leaves the saga
//! `escalated`: recorded, audited, listed, and left for a person (`warden saga resume ID`
//! retries it once the cause is fixed).
//!
//! Three rules the reference toolkit gets wrong, and why they hold here:
//!
//! - **Nothing reports "compensated" before it is.** The journal (see [`journal`]) is written
//!   before each attempt starts and after it ends; a saga is `compensated` only when every
//!   step that may have taken effect was undone.
//! - **A step cut off mid-way is undone too.** A step that timed out, was terminated by the
//!   kill switch, or was running when the runner crashed is `interrupted`: it may have done
//!   part of its work, so its compensation runs (first). A step that *failed* (exited
//!   non-zero, or was denied and never started) is taken to have changed nothing and is not
//!   compensated.
//! - **A crash loses nothing.** The journal lives in the Warden database. `warden saga resume`
//!   (and the start of `warden serve`) takes over every unfinished saga whose runner is gone
//!   and compensates it. Each step and compensation gets an idempotency key that stays the
//!   same across retries and resumes (`WARDEN_IDEMPOTENCY_KEY` for commands): a compensation
//!   recorded as done is never started again, and one that was running when the runner died
//!   is started again with the same key, so a compensation that honours the key takes
//!   effect exactly once.
//!
//! Every step and every compensation is judged by Warden before it starts ([`Gate`]), as
//! `execute_code` unless the step names its action. A compensation is judged by every step of
//! the decision path except the kill switch: stopping an agent must not stop Warden from
//! undoing what the agent already did. Only compensations declared in a saga that started
//! before the kill, for steps that ran, can pass this way; rings, rate limits and the policy
//! still apply to them.

mod command;
pub mod journal;
mod owner;
mod status;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use warden_audit::AuditLog;
use warden_core::{Action, Decision, Verdict};

pub use command::CommandWork;
pub use journal::{EventRow, Journal, SagaRow, SagaView, StepRow};
use status::now_ns;
pub use status::{SagaStatus, StepStatus};
pub use warden_policy::saga::{SagaSpec, StepSpec};

use crate::error::RuntimeError;
use crate::record::{Change, Operator};
use journal::Count;

/// Doing a step or undoing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The step itself.
    Run,
    /// Its compensation.
    Compensate,
}

impl Phase {
    /// `run` or `compensate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Run => "run",
            Phase::Compensate => "compensate",
        }
    }
}

/// What a step (or compensation) is told when it runs.
#[derive(Debug, Clone)]
pub struct StepContext<'a> {
    /// The saga's id.
    pub saga: &'a str,
    /// The saga's spec.
    pub spec: &'a SagaSpec,
    /// The step.
    pub step: &'a StepSpec,
    /// Doing or undoing.
    pub phase: Phase,
    /// The attempt (0 for the first; the count goes on across resumes).
    pub attempt: u32,
    /// The same for every attempt of this step's phase, across retries and resumes: work
    /// that remembers the keys it has seen takes effect once.
    pub idempotency_key: String,
    /// The agent the saga runs for.
    pub agent: Option<&'a str>,
    /// The directory commands run in.
    pub cwd: &'a Path,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// It succeeded.
    Done,
    /// It failed and took no effect (a command that exited non-zero, a closure's error).
    Failed(String),
    /// It ran out of time and was stopped: it may have taken effect. Retried.
    TimedOut(String),
    /// It was stopped from outside (the kill switch): it may have taken effect. Not retried.
    Stopped(String),
}

/// Does the work of steps and compensations: commands ([`CommandWork`]), or a library
/// user's closures.
pub trait Work {
    /// Run one attempt of `ctx.step` in `ctx.phase`.
    fn perform(&self, ctx: &StepContext<'_>) -> Attempt;

    /// Whether `step` has a compensation (default: the spec names one).
    fn has_compensation(&self, step: &StepSpec) -> bool {
        step.compensate.is_some()
    }
}

/// Judges each step and compensation before it starts (the `warden` crate implements it for
/// `Warden`).
pub trait Gate {
    /// Judge a step: the whole decision path.
    fn decide(&self, action: &Action) -> Decision;
    /// Judge a compensation: every step of the decision path but the kill switch.
    fn decide_compensation(&self, action: &Action) -> Decision;
}

/// What a saga run (or resume) ended as.
#[derive(Debug, Clone)]
pub struct SagaReport {
    /// The saga's id (`warden saga show ID`).
    pub id: String,
    /// How it ended.
    pub status: SagaStatus,
    /// Why it failed or escalated.
    pub reason: Option<String>,
}

/// What [`Saga::resume_orphans`] did.
#[derive(Debug, Default)]
pub struct Resumed {
    /// How each saga it took up ended.
    pub reports: Vec<SagaReport>,
    /// The sagas it could not take up (their id and why), left as they were.
    pub failed: Vec<(String, RuntimeError)>,
}

/// Runs sagas: judges each step, does its work, keeps the journal, undoes on failure.
pub struct Saga<'a> {
    journal: &'a Journal,
    gate: &'a dyn Gate,
    work: &'a dyn Work,
    audit: Option<&'a AuditLog>,
    via: &'a str,
}

impl<'a> Saga<'a> {
    /// A runner writing `journal`, judging with `gate`, working with `work`, recording the
    /// saga's state changes in `audit` (as `warden.saga.*` records, door `via`).
    pub fn new(
        journal: &'a Journal,
        gate: &'a dyn Gate,
        work: &'a dyn Work,
        audit: Option<&'a AuditLog>,
        via: &'a str,
    ) -> Self {
        Saga {
            journal,
            gate,
            work,
            audit,
            via,
        }
    }

    /// Run `spec` for `agent` in directory `cwd`, to the end: completed, compensated or
    /// escalated. An error means the journal could not be written (the saga stops where it
    /// is; `resume` finishes it).
    pub fn run(
        &self,
        spec: &SagaSpec,
        agent: Option<&str>,
        cwd: &Path,
    ) -> Result<SagaReport, RuntimeError> {
        let id = new_id()?;
        let agent = agent.or(spec.agent.as_deref());
        // The audit record comes first: a saga Warden cannot record does not start. It
        // carries the digest of what the saga will run, so a resume can tell this saga from
        // one another process wrote into the journal.
        if let Some(log) = self.audit {
            self.change(
                "warden.saga.start",
                &id,
                spec,
                format!("saga `{}` started", spec.name),
            )
            .with("digest", digest(&id, spec, agent, cwd))
            .record(log, &self.operator())
            .map_err(RuntimeError::NotRecorded)?;
        }
        self.journal
            .create(&id, spec, agent, cwd, owner::me(), now_ns())?;
        self.released_on_error(&id, || {
            let view = self
                .journal
                .show(&id)?
                .ok_or_else(|| RuntimeError::Invalid(format!("saga `{id}` vanished")))?;
            self.drive(view, true)
        })
    }

    /// Work on saga `id`; when that fails (the journal could not be written), let go of it,
    /// so `resume` can finish it while this process lives on (`warden serve`, a library
    /// user): nothing of it is running then, and a saga owned by a live process that no
    /// longer works on it could never be resumed.
    fn released_on_error<T>(
        &self,
        id: &str,
        work: impl FnOnce() -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let out = work();
        if out.is_err()
            && let Err(e) = self.journal.release(id, owner::me())
        {
            tracing::error!("cannot let go of saga {id} after an error: {e}");
        }
        out
    }

    /// Finish saga `id` after its runner died (or, with `escalated`, retry an escalated
    /// one): undo every step that may have taken effect. `Ok(Err(why))` when it cannot be
    /// taken (finished, unknown, or a live process runs it).
    pub fn resume(
        &self,
        id: &str,
        escalated: bool,
    ) -> Result<Result<SagaReport, String>, RuntimeError> {
        match self.journal.claim(id, owner::me(), escalated, now_ns())? {
            Ok(view) => {
                if let Err(why) = self.started_here(&view) {
                    self.journal.release(id, owner::me())?;
                    return Err(RuntimeError::Corrupt {
                        path: self.journal.path().to_path_buf(),
                        detail: why,
                    });
                }
                self.released_on_error(id, || self.take_up(id, view))
                    .map(Ok)
            }
            Err(why) => Ok(Err(why)),
        }
    }

    /// Whether the audit log holds the `warden.saga.start` record of exactly this saga (its
    /// id, spec, agent and directory): the journal is only a working copy, and a row another
    /// process wrote there must not become commands this process runs. Without an audit log
    /// (a library user) there is nothing to hold it to.
    fn started_here(&self, view: &SagaView) -> Result<(), String> {
        let Some(log) = self.audit else {
            return Ok(());
        };
        let id = &view.saga.id;
        let want = digest(id, &view.spec, view.saga.agent.as_deref(), &view.cwd);
        let filter = warden_audit::Filter {
            action: Some("warden.saga.start".into()),
            ..Default::default()
        };
        let records = warden_audit::query(log.path(), &filter)
            .map_err(|e| format!("saga `{id}`: cannot read its start record: {e}"))?;
        let found = records.iter().any(|r| {
            r.policy.as_deref() == Some("warden-runtime")
                && r.resource.as_deref() == Some(id.as_str())
                && r.args
                    .as_ref()
                    .and_then(|a| a.get("digest"))
                    .and_then(Value::as_str)
                    == Some(want.as_str())
        });
        if found {
            Ok(())
        } else {
            Err(format!(
                "saga `{id}` is not resumed: the audit log has no start record of this saga as \
                 the journal describes it (a journal entry Warden did not write, or one changed \
                 since)"
            ))
        }
    }

    /// Finish a saga just claimed: mark the step cut off by the crash, then undo.
    fn take_up(&self, id: &str, mut view: SagaView) -> Result<SagaReport, RuntimeError> {
        let spec = view.spec.clone();
        self.note(self.change(
            "warden.saga.resume",
            id,
            &spec,
            format!(
                "saga `{}` resumed by process {}",
                spec.name,
                std::process::id()
            ),
        ));
        // A step that was running when its runner died may have taken effect.
        for step in &mut view.steps {
            if step.status == StepStatus::Running {
                self.journal.step(
                    id,
                    step.index,
                    StepStatus::Interrupted,
                    Count::None,
                    "step.interrupted",
                    Some("the runner stopped during this step"),
                )?;
                step.status = StepStatus::Interrupted;
            }
        }
        if view.saga.status == SagaStatus::Running {
            let reason = "the runner stopped before the saga finished";
            self.journal
                .saga(id, SagaStatus::Compensating, Some(reason), now_ns())?;
            view.saga.status = SagaStatus::Compensating;
            view.saga.reason = Some(reason.to_string());
        }
        self.drive(view, false)
    }

    /// Resume every unfinished saga whose runner is gone, oldest first. A saga that cannot
    /// be resumed (its journal entry is corrupt, say) is set aside in [`Resumed::failed`]
    /// and the others are still undone: one bad row must not keep every crashed saga from
    /// its compensations. An error means the journal could not be listed at all.
    pub fn resume_orphans(&self) -> Result<Resumed, RuntimeError> {
        let mut out = Resumed::default();
        for id in self.journal.orphans()? {
            match self.resume(&id, false) {
                Ok(Ok(report)) => out.reports.push(report),
                Ok(Err(_)) => {} // taken by another resumer meanwhile, or finished
                Err(e) => {
                    tracing::error!("cannot resume saga {id}: {e}");
                    out.failed.push((id, e));
                }
            }
        }
        Ok(out)
    }

    /// Take a saga from where the journal says it is to a finished state.
    fn drive(&self, mut view: SagaView, automatic: bool) -> Result<SagaReport, RuntimeError> {
        let id = view.saga.id.clone();
        let spec = view.spec.clone();
        let agent = view.saga.agent.clone();
        if view.saga.status == SagaStatus::Running {
            match self.forward(&id, &spec, agent.as_deref(), &view.cwd)? {
                None => {
                    self.journal
                        .saga(&id, SagaStatus::Completed, None, now_ns())?;
                    self.note(
                        self.change(
                            "warden.saga.end",
                            &id,
                            &spec,
                            format!("saga `{}` completed", spec.name),
                        )
                        .with("status", "completed"),
                    );
                    return Ok(SagaReport {
                        id,
                        status: SagaStatus::Completed,
                        reason: None,
                    });
                }
                Some(reason) => {
                    self.journal
                        .saga(&id, SagaStatus::Compensating, Some(&reason), now_ns())?;
                    view.saga.reason = Some(reason);
                }
            }
            view = self
                .journal
                .show(&id)?
                .ok_or_else(|| RuntimeError::Invalid(format!("saga `{id}` vanished")))?;
        }
        let reason = view.saga.reason.clone();
        let status = match self.backward(&id, &spec, agent.as_deref(), &view, automatic)? {
            None => SagaStatus::Compensated,
            Some(why) => {
                self.journal
                    .saga(&id, SagaStatus::Escalated, Some(&why), now_ns())?;
                self.note(self.change(
                    "warden.saga.escalate",
                    &id,
                    &spec,
                    format!("saga `{}` escalated: {why}", spec.name),
                ));
                return Ok(SagaReport {
                    id,
                    status: SagaStatus::Escalated,
                    reason: Some(why),
                });
            }
        };
        self.journal.saga(&id, status, None, now_ns())?;
        self.note(
            self.change(
                "warden.saga.end",
                &id,
                &spec,
                format!("saga `{}` failed and was compensated", spec.name),
            )
            .with("status", "compensated"),
        );
        Ok(SagaReport { id, status, reason })
    }

    /// Run the steps in order. `Some(reason)` when one failed.
    fn forward(
        &self,
        id: &str,
        spec: &SagaSpec,
        agent: Option<&str>,
        cwd: &Path,
    ) -> Result<Option<String>, RuntimeError> {
        for (index, step) in spec.steps.iter().enumerate() {
            let mut attempt = 0;
            // Once an attempt was cut off it may have taken effect: a later attempt that
            // fails or is refused does not make the step one with nothing to undo.
            let mut cut_off = false;
            let settled = |status: StepStatus, cut_off: bool| {
                if cut_off && status == StepStatus::Failed {
                    StepStatus::Interrupted
                } else {
                    status
                }
            };
            loop {
                let ctx = StepContext {
                    saga: id,
                    spec,
                    step,
                    phase: Phase::Run,
                    attempt,
                    idempotency_key: key(id, step, Phase::Run),
                    agent,
                    cwd,
                };
                let decision = self.judge(&ctx, false);
                if decision.verdict != Verdict::Allow {
                    let why = format!("step `{}` was not allowed: {}", step.id, decision.reason);
                    self.journal.step(
                        id,
                        index,
                        settled(StepStatus::Failed, cut_off),
                        Count::None,
                        "step.denied",
                        Some(&decision.reason),
                    )?;
                    return Ok(Some(why));
                }
                self.journal.step(
                    id,
                    index,
                    StepStatus::Running,
                    Count::Attempt,
                    "step.started",
                    None,
                )?;
                let (status, event, detail, retry) = match self.work.perform(&ctx) {
                    Attempt::Done => (StepStatus::Done, "step.done", None, false),
                    Attempt::Failed(e) => (StepStatus::Failed, "step.failed", Some(e), true),
                    Attempt::TimedOut(e) => {
                        (StepStatus::Interrupted, "step.timed_out", Some(e), true)
                    }
                    Attempt::Stopped(e) => {
                        (StepStatus::Interrupted, "step.stopped", Some(e), false)
                    }
                };
                cut_off |= status == StepStatus::Interrupted;
                self.journal.step(
                    id,
                    index,
                    settled(status, cut_off),
                    Count::None,
                    event,
                    detail.as_deref(),
                )?;
                if status == StepStatus::Done {
                    break;
                }
                if retry && attempt < step.retries {
                    std::thread::sleep(backoff(spec, attempt));
                    attempt += 1;
                    continue;
                }
                return Ok(Some(format!(
                    "step `{}` {}: {}",
                    step.id,
                    if status == StepStatus::Failed {
                        "failed"
                    } else {
                        "was interrupted"
                    },
                    detail.unwrap_or_default()
                )));
            }
        }
        Ok(None)
    }

    /// Undo, last first, every step that may have taken effect. `Some(reason)` when a
    /// compensation kept failing (the saga escalates; earlier steps are left as they are,
    /// since an undo may depend on the later ones being undone first).
    ///
    /// `automatic`: these are the undos of a run this runner just made, cut off by a failure
    /// (the kill switch among them): they pass every step of the decision path but the kill
    /// switch. A resume — after a crash, or a retry of an escalated saga — is not: a killed
    /// agent's undos then wait for the agent to be revived, so an undo that keeps failing
    /// cannot become a command the agent has run on demand after its kill.
    fn backward(
        &self,
        id: &str,
        spec: &SagaSpec,
        agent: Option<&str>,
        view: &SagaView,
        automatic: bool,
    ) -> Result<Option<String>, RuntimeError> {
        for row in view.steps.iter().rev() {
            if !row.status.may_have_taken_effect() {
                continue;
            }
            let step = &spec.steps[row.index];
            if !self.work.has_compensation(step) {
                continue;
            }
            let mut attempt = row.compensations;
            let last = row.compensations.saturating_add(step.compensate_retries);
            let mut last_error;
            loop {
                let ctx = StepContext {
                    saga: id,
                    spec,
                    step,
                    phase: Phase::Compensate,
                    attempt,
                    idempotency_key: key(id, step, Phase::Compensate),
                    agent,
                    cwd: &view.cwd,
                };
                let decision = self.judge(&ctx, automatic);
                if decision.verdict == Verdict::Allow {
                    self.journal.step(
                        id,
                        row.index,
                        StepStatus::Compensating,
                        Count::Compensation,
                        "compensation.started",
                        None,
                    )?;
                    match self.work.perform(&ctx) {
                        Attempt::Done => {
                            self.journal.step(
                                id,
                                row.index,
                                StepStatus::Compensated,
                                Count::None,
                                "compensation.done",
                                None,
                            )?;
                            self.note(
                                self.change(
                                    "warden.saga.compensate",
                                    id,
                                    spec,
                                    format!("saga `{}`: step `{}` compensated", spec.name, step.id),
                                )
                                .with("step", step.id.as_str()),
                            );
                            break;
                        }
                        Attempt::Failed(e) | Attempt::TimedOut(e) | Attempt::Stopped(e) => {
                            last_error = e;
                        }
                    }
                } else {
                    last_error = format!("not allowed: {}", decision.reason);
                }
                self.journal.step(
                    id,
                    row.index,
                    StepStatus::CompensationFailed,
                    Count::None,
                    "compensation.failed",
                    Some(&last_error),
                )?;
                if attempt >= last {
                    return Ok(Some(format!(
                        "the compensation of step `{}` failed {} time(s): {last_error}",
                        step.id,
                        attempt - row.compensations + 1
                    )));
                }
                std::thread::sleep(backoff(spec, attempt - row.compensations));
                attempt += 1;
            }
        }
        Ok(None)
    }

    /// Record a change of the saga's state in the audit log (an escalation also as a
    /// warning in the process's log; a record that cannot be written as an error there).
    fn note(&self, change: Change) {
        if change.action == "warden.saga.escalate" {
            tracing::warn!("{}", change.reason);
        } else {
            tracing::debug!("{}", change.reason);
        }
        if let Some(log) = self.audit
            && let Err(e) = change.record(log, &self.operator())
        {
            tracing::error!("cannot record `{}` in the audit log: {e}", change.action);
        }
    }

    /// Judge one attempt. A command is judged as the command it runs — `execute_code` with
    /// its words — whatever the step calls itself: a step named `web.search` that runs
    /// `sh -c …` is code execution. A step that names another action is also judged as that
    /// action; both must allow. `undo_in_run`: a compensation of this run's own failure,
    /// judged by everything but the kill switch.
    fn judge(&self, ctx: &StepContext<'_>, undo_in_run: bool) -> Decision {
        let decide = |a: &Action| {
            if undo_in_run {
                self.gate.decide_compensation(a)
            } else {
                self.gate.decide(a)
            }
        };
        let named = action(ctx);
        let runs_a_command = !argv(ctx).is_empty();
        if runs_a_command && named.action != warden_policy::saga::DEFAULT_ACTION {
            let mut command = named.clone();
            command.action = warden_policy::saga::DEFAULT_ACTION.to_string();
            command = command.with_context("saga_action", named.action.as_str());
            let d = decide(&command);
            if d.verdict != Verdict::Allow {
                return d;
            }
        }
        decide(&named)
    }

    fn operator(&self) -> Operator {
        Operator::new("warden (saga)", self.via)
    }

    fn change(&self, what: &'static str, id: &str, spec: &SagaSpec, reason: String) -> Change {
        Change {
            action: what,
            rule: "saga",
            resource: id.to_string(),
            reason,
            args: json!({"saga": id, "name": spec.name}),
        }
    }
}

/// The action a step or compensation is judged as: its action name, its extra arguments,
/// and the command (`argv`, and `command` as a shell would show it) in `args`; the
/// directory (`cwd`), saga, step, phase and attempt in `context`; `saga/step:phase` as the
/// resource.
pub fn action(ctx: &StepContext<'_>) -> Action {
    let argv = argv(ctx);
    let mut args = ctx.step.args.clone();
    if !argv.is_empty() {
        args.insert("argv".into(), json!(argv));
        args.insert("command".into(), Value::String(shell_line(argv)));
    }
    // Where the command runs, as context: relative paths in it are resolved there.
    let cwd = ctx.cwd.display().to_string();
    let mut a = Action::new(ctx.step.action.as_str())
        .with_resource(format!(
            "{}/{}:{}",
            ctx.spec.name,
            ctx.step.id,
            ctx.phase.as_str()
        ))
        .with_context("door", "saga")
        .with_context("cwd", cwd)
        .with_context("saga", ctx.spec.name.as_str())
        .with_context("saga_id", ctx.saga)
        .with_context("step", ctx.step.id.as_str())
        .with_context("phase", ctx.phase.as_str())
        .with_context("attempt", ctx.attempt);
    a.args = Value::Object(args);
    if let Some(agent) = ctx.agent {
        a = a.with_agent(agent);
    }
    a
}

/// The command an attempt runs (empty for a library step without one).
fn argv<'a>(ctx: &StepContext<'a>) -> &'a [String] {
    match ctx.phase {
        Phase::Run => &ctx.step.run,
        Phase::Compensate => ctx.step.compensate.as_deref().unwrap_or_default(),
    }
}

/// Words as a POSIX shell would need them written: bare when plain, else single-quoted.
pub fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// BLAKE3 over what a saga will run: its id, spec, agent and directory (canonical JSON).
fn digest(id: &str, spec: &SagaSpec, agent: Option<&str>, cwd: &Path) -> String {
    let value = json!({"id": id, "spec": spec, "agent": agent, "cwd": cwd.display().to_string()});
    blake3::hash(warden_audit::canonical_json(&value).as_bytes())
        .to_hex()
        .to_string()
}

fn key(id: &str, step: &StepSpec, phase: Phase) -> String {
    format!("{id}:{}:{}", step.id, phase.as_str())
}

/// The wait before retry `n + 1`: the saga's backoff, doubled each time, at most 30 s.
fn backoff(spec: &SagaSpec, n: u32) -> Duration {
    let doubled = spec.backoff().saturating_mul(1u32 << n.min(16));
    doubled.min(warden_policy::saga::MAX_BACKOFF)
}

fn new_id() -> Result<String, RuntimeError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| RuntimeError::Invalid(format!("no random source for a saga id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
