//! Timing each step of the decision path, for `warden bench`.
//!
//! The path is written once (`Warden::judge`) and marks the end of every step with
//! `lap.lap(Step::…)`. `Warden::decide` passes `()`, whose laps are empty and inline to
//! nothing, so the governed path pays no clock reads; `Warden::decide_timed` passes a
//! [`Stopwatch`], which reads the clock at every mark. Timing a copy of the path instead would
//! measure a copy.

use std::time::Instant;

/// The steps a lap can close (the numbering of `Warden::judge`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// 0: the action's shape and Warden's own files.
    Validate,
    /// 1: the kill switch.
    Kill,
    /// 2: identity (and the kill switch again for a verified DID and those behind it).
    Identity,
    /// 3: loading the active policy set and the ring gate.
    Ring,
    /// 4: rate limits and open breakers.
    Limits,
    /// 5: the policy, and the breakers learning its verdict.
    Policy,
    /// 6: the trust update.
    Trust,
    /// 7: the audit record.
    Audit,
}

/// Nanoseconds each step of one decision took; 0 for a step the decision did not reach (an
/// earlier step answered) or that has nothing to do (no audit log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTimes {
    /// Validating the action and checking Warden's own files.
    pub validate_ns: u64,
    /// Step 1, the kill switch.
    pub kill_ns: u64,
    /// Step 2, identity (a cached credential is compared, not verified again).
    pub identity_ns: u64,
    /// Step 3, the ring gate (with loading the active policy set).
    pub ring_ns: u64,
    /// Step 4, rate limits and circuit breakers.
    pub limits_ns: u64,
    /// Step 5, the policy (and the breakers observing its verdict).
    pub policy_ns: u64,
    /// Step 6, the trust update.
    pub trust_ns: u64,
    /// Step 7, the audit record (with a durable log, until it is committed).
    pub audit_ns: u64,
}

impl StepTimes {
    /// All steps together.
    pub fn total_ns(&self) -> u64 {
        self.validate_ns
            + self.kill_ns
            + self.identity_ns
            + self.ring_ns
            + self.limits_ns
            + self.policy_ns
            + self.trust_ns
            + self.audit_ns
    }
}

/// Where the decision path marks the end of a step.
pub(crate) trait Lap {
    fn lap(&mut self, step: Step);
}

/// No timing: `Warden::decide`.
impl Lap for () {
    #[inline(always)]
    fn lap(&mut self, _: Step) {}
}

/// The clock read at every mark.
pub(crate) struct Stopwatch {
    last: Instant,
    times: StepTimes,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            last: Instant::now(),
            times: StepTimes::default(),
        }
    }

    pub fn times(&self) -> StepTimes {
        self.times
    }
}

impl Lap for Stopwatch {
    fn lap(&mut self, step: Step) {
        let now = Instant::now();
        let ns = u64::try_from(now.duration_since(self.last).as_nanos()).unwrap_or(u64::MAX);
        self.last = now;
        let t = &mut self.times;
        let slot = match step {
            Step::Validate => &mut t.validate_ns,
            Step::Kill => &mut t.kill_ns,
            Step::Identity => &mut t.identity_ns,
            Step::Ring => &mut t.ring_ns,
            Step::Limits => &mut t.limits_ns,
            Step::Policy => &mut t.policy_ns,
            Step::Trust => &mut t.trust_ns,
            Step::Audit => &mut t.audit_ns,
        };
        *slot = slot.saturating_add(ns);
    }
}
