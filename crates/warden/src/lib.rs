#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod builder;
pub mod drift;
pub mod memory;
pub mod protect;
mod steps;
pub mod verify;
mod zero_trust;

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;

pub use warden_audit::{AuditConfig, AuditLog};
pub use warden_core::{Action, Decision, Match, Place, Places, Policy, PolicyError, Verdict};
pub use warden_policy::{Explanation, LoadError, PolicySet};

pub use builder::{BuildError, WardenBuilder};
use protect::Protection;
pub use steps::StepTimes;
use steps::{Lap, Step, Stopwatch};
pub use warden_policy::runtime::Ring;
pub use warden_runtime::approval::{Approval, ApprovalStatus, Approvals};
pub use warden_runtime::{CallPermit, Outcome, Runtime, RuntimeOptions};
pub use warden_trust::Tier;
pub use zero_trust::{AgentStatus, AgentTrust, RESERVED_CONTEXT, ZeroTrust};

use warden_audit::Entry;
use warden_runtime::approval::Resolution;

/// The gate every action passes: policies in, one [`Decision`] out.
///
/// `decide` takes `&self` and locks nothing: the active [`PolicySet`] sits behind an
/// [`ArcSwap`], so a reload swaps it atomically while decisions keep running on the old one
/// until they finish. There is never a moment without a set.
pub struct Warden {
    policies: ArcSwap<Versioned>,
    reload: Mutex<()>,
    audit: Option<AuditLog>,
    /// Where the policies came from, for [`Warden::reload`].
    policy_paths: Vec<PathBuf>,
    /// Warden's own files, which no action may change (see [`protect`]).
    protection: Protection,
    /// Identity and trust (steps 2 and 6).
    zero_trust: ZeroTrust,
    /// Kill switch, rings, rate limits, breakers (steps 1, 3 and 4; see `warden-runtime`).
    runtime: Runtime,
    /// Where `require_approval` verdicts go (step 5b), when there is a database.
    approvals: Option<Approvals>,
    /// Told of each new approval request (a webhook's queue).
    approval_listener: Option<ApprovalListener>,
    /// Quarantine and provenance for `memory.write` (step 5c; see [`memory`]).
    memory: Option<memory::MemoryGuard>,
    /// Goal drift (`context.drift`), when a model is configured (see [`drift`]).
    drift: Option<drift::Drift>,
    /// Rate limits take their tokens from buckets in the database (a write per limited
    /// decision), so deciding may wait on SQLite.
    shared_buckets: bool,
}

/// Called with each new approval request; must not block the decision that made it.
pub type ApprovalListener = Arc<dyn Fn(&Approval) + Send + Sync>;

/// Which steps of the decision path an action takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// All of them.
    Full,
    /// All but the kill switch: a saga's compensation.
    Compensation,
}

impl warden_runtime::saga::Gate for Warden {
    fn decide(&self, action: &Action) -> Decision {
        Warden::decide(self, action)
    }

    fn decide_compensation(&self, action: &Action) -> Decision {
        Warden::decide_compensation(self, action)
    }
}

/// A policy set and its version number (1 for the first set, +1 per replacement).
struct Versioned {
    set: PolicySet,
    version: u64,
}

impl Warden {
    /// A Warden judging with `policies`.
    pub fn new(policies: PolicySet) -> Self {
        Warden {
            policies: ArcSwap::from_pointee(Versioned {
                set: policies,
                version: 1,
            }),
            reload: Mutex::new(()),
            audit: None,
            policy_paths: Vec::new(),
            protection: Protection::new(),
            zero_trust: ZeroTrust::default(),
            runtime: Runtime::in_memory(),
            approvals: None,
            approval_listener: None,
            memory: None,
            drift: None,
            shared_buckets: false,
        }
    }

    /// Measure goal drift with `embedder`: an action whose context declares its task
    /// (`context.task`) is judged with `context.drift` (see [`drift`]).
    pub fn with_drift(mut self, embedder: Arc<dyn drift::Embedder>) -> Self {
        self.drift = Some(drift::Drift::new(embedder));
        self
    }

    /// The goal-drift measure, when one is configured.
    pub fn drift(&self) -> Option<&drift::Drift> {
        self.drift.as_ref()
    }

    /// Contain agents with `runtime` (its kill switch, ring overrides and buckets) instead
    /// of the in-memory one a new Warden starts with.
    pub fn with_runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// The kill switch, rings, rate limits and breakers: operators change their state here
    /// (`kill`, `revive`, `elevate`, …); doors report call outcomes and supervise processes.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The one way the doors build a Warden: policies, audit log, protected files.
    pub fn builder() -> WardenBuilder {
        WardenBuilder::new()
    }

    /// Record every decision in `log`. From then on a decision that cannot be recorded is
    /// a deny (with `durable` logs, `decide` returns only once its record is committed).
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// The audit log, when decisions are recorded.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Load policy files or directories; any problem in any file is an error. (No audit
    /// log and no self-protection: doors use [`Warden::builder`].)
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        let mut w = PolicySet::load(paths).map(Warden::new)?;
        w.policy_paths = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        Ok(w)
    }

    /// The policy files and directories this Warden was built from (empty when it was
    /// given a compiled set).
    pub fn policy_paths(&self) -> &[PathBuf] {
        &self.policy_paths
    }

    /// Whether deciding `action` may wait on I/O: for its audit record, for the file system
    /// while its paths are checked against Warden's own files, or for verifiers a rule asks
    /// (or run the goal-drift model). Async callers run such
    /// decisions on a blocking thread; the rest take about a microsecond.
    pub fn may_wait(&self, action: &Action) -> bool {
        self.audit.is_some() || self.may_wait_before_audit(action)
    }

    /// Whether deciding `action` may wait on I/O *before* its audit record: for the file
    /// system (paths checked against Warden's own files), verifiers, the goal-drift model, a
    /// trust score read and moved in the database (a verified agent), rate-limit buckets
    /// shared through the database, or the memory guard's quarantine. When this is `false`,
    /// [`Warden::decide_async`] computes the decision on the calling thread in about a
    /// microsecond and only the audit record is waited for, without holding a thread.
    ///
    /// Not counted: a `require_approval` verdict stores its request (one small SQLite write),
    /// and kills, revivals or breaker trips append their own records; those are rare and
    /// bounded by one commit.
    pub fn may_wait_before_audit(&self, action: &Action) -> bool {
        self.protection.names_paths(action)
            // Goal drift runs the model (milliseconds of CPU) when a task is declared.
            || (self.drift.is_some() && action.context.get(drift::TASK_CONTEXT).is_some())
            || self.shared_buckets
            || (self.memory.is_some() && action.action == memory::WRITE_ACTION)
            || (self.zero_trust.trust().is_some() && action.context.get("credential").is_some())
            || self.policies.load().set.verifies()
    }

    /// Judge `action` now and hand its audit record to the log without waiting for it: the
    /// returned [`Deciding`] is a future of the same decision [`Warden::decide`] returns —
    /// with a durable log it completes once the record is committed (a record that cannot be
    /// committed makes it a deny), so an async server answers only then, without a blocking
    /// thread per request. Meant for actions where [`Warden::may_wait_before_audit`] is
    /// `false`: the rest of the path runs on the calling thread.
    pub fn decide_async(&self, action: &Action) -> Deciding {
        let start = Instant::now();
        let (judged, decision) = self.decide_unrecorded(action, Route::Full, None, &mut (), start);
        let appended = self.audit.as_ref().map(|log| {
            log.submit(Entry::new(&judged, &decision).with_policy_version(decision.policy_version))
        });
        Deciding {
            decision: Some(decision),
            start,
            appended,
        }
    }

    /// The files no action may change.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// Judge one action. Never fails and never panics outward: a malformed action, an
    /// evaluation error or a panic inside an engine is a `Deny` whose reason names the cause.
    pub fn decide(&self, action: &Action) -> Decision {
        self.decide_as(action, Route::Full, None, &mut ())
    }

    /// [`Warden::decide`] for a door that performs a `memory.write` itself and learns whether
    /// it succeeded (the MCP proxy): a clean allowed write's provenance is signed but not
    /// recorded; it comes back to be recorded with [`memory::MemoryGuard::commit`] once the
    /// store accepted the write. A write refused afterwards (the call denied or held and
    /// never approved, the server's error) then leaves no record vouching for a text that
    /// was never stored. Any other action is decided as by `decide` (and `None` comes back).
    pub fn decide_deferring_provenance(
        &self,
        action: &Action,
    ) -> (Decision, Option<memory::PendingProvenance>) {
        let mut pending = None;
        let d = self.decide_as(action, Route::Full, Some(&mut pending), &mut ());
        // Only an allow is ever written.
        let pending = pending.filter(|_| d.verdict == Verdict::Allow);
        (d, pending)
    }

    /// [`Warden::decide`], with the time each step took (for `warden bench`). Each step's
    /// time includes one read of the clock (~20 ns); a step the path did not reach is 0.
    pub fn decide_timed(&self, action: &Action) -> (Decision, StepTimes) {
        let mut watch = Stopwatch::start();
        let decision = self.decide_as(action, Route::Full, None, &mut watch);
        (decision, watch.times())
    }

    /// Judge the compensation of a saga step (see `warden_runtime::saga`): every step of
    /// [`Warden::decide`] but the kill switch — stopping an agent must not stop Warden from
    /// undoing what it already did — with the same audit record. Only the saga runner calls
    /// this; no door takes it from a caller.
    pub fn decide_compensation(&self, action: &Action) -> Decision {
        self.decide_as(action, Route::Compensation, None, &mut ())
    }

    fn decide_as(
        &self,
        action: &Action,
        route: Route,
        defer: Option<&mut Option<memory::PendingProvenance>>,
        lap: &mut impl Lap,
    ) -> Decision {
        let start = Instant::now();
        let (judged, mut decision) = self.decide_unrecorded(action, route, defer, lap, start);
        if let Some(log) = &self.audit {
            // The record carries the policy's own latency; the caller's `elapsed_ns` then
            // grows to include the time the audit took.
            let entry = Entry::new(&judged, &decision).with_policy_version(decision.policy_version);
            recorded(&mut decision, log.append(entry), start);
            lap.lap(Step::Audit);
        }
        decision
    }

    /// Every step before the audit record: the action as judged (what the record holds) and
    /// the decision, its `elapsed_ns` set (counted from `start`).
    fn decide_unrecorded<'a>(
        &self,
        action: &'a Action,
        route: Route,
        defer: Option<&mut Option<memory::PendingProvenance>>,
        lap: &mut impl Lap,
        start: Instant,
    ) -> (Cow<'a, Action>, Decision) {
        // The action as judged: Warden's own fields (verified agent, trust) in place of the
        // caller's, so the audit record says who really asked.
        let mut judged = Cow::Borrowed(action);
        strip_warden_context(&mut judged);
        let mut decision = match self.with_drift_context(&mut judged) {
            Ok(reading) => self.judge(&mut judged, route, &reading, defer, lap),
            Err((d, _)) => d,
        };
        decision.elapsed_ns = elapsed_ns(start);
        (judged, decision)
    }

    /// Write `context.drift` when a task is declared and a model is configured (a caller's
    /// own was removed before); what the model read is the local model's vote if a rule asks
    /// for it (step 5a). `Err`: the deny for a drift that could not be measured, and that
    /// reading.
    fn with_drift_context(
        &self,
        judged: &mut Cow<'_, Action>,
    ) -> Result<verify::Reading, (Decision, verify::Reading)> {
        let Some(measure) = &self.drift else {
            return Ok(verify::Reading::NotLoaded);
        };
        match measure.measure_whole(judged) {
            Ok(None) => Ok(verify::Reading::NoTask),
            Ok(Some(m)) => {
                if let serde_json::Value::Object(map) = &mut judged.to_mut().context {
                    map.insert(drift::DRIFT_CONTEXT.into(), m.drift.into());
                }
                Ok(verify::Reading::Measured(m))
            }
            Err(e) => Err((
                Decision::deny(format!("denied: goal drift could not be measured: {e}")),
                verify::Reading::Failed(e.to_string()),
            )),
        }
    }

    /// The decision path before the audit log, step by step, each failing closed. The first
    /// step that answers ends the path; its answer is the decision.
    fn judge(
        &self,
        action: &mut Cow<'_, Action>,
        route: Route,
        reading: &verify::Reading,
        defer: Option<&mut Option<memory::PendingProvenance>>,
        lap: &mut impl Lap,
    ) -> Decision {
        // 0. A malformed action is denied, and so is any that would touch Warden's own files.
        if let Err(e) = action.validate() {
            return Decision::deny(format!("denied: {e}"));
        }
        if let Some(d) = self.protection.check(action) {
            return d;
        }
        lap.lap(Step::Validate);

        // 1. kill switch (a stopped agent, capability or fleet is denied, no further work).
        let kill = route == Route::Full;
        if kill && let Some(d) = self.runtime.check_kill(action) {
            return d;
        }
        lap.lap(Step::Kill);

        // 2. identity (a credential or delegation chain, verified, when one is required):
        //    the verified DID becomes the agent; Warden writes context.identity/trust/tier.
        let subject = match self.zero_trust.admit(action) {
            Ok(subject) => subject,
            Err(d) => return d,
        };
        // A verified agent is its DID from here on: a kill switch set for the DID holds too,
        // and so does one set for any identity behind it (the root, or an agent that
        // delegated to it: a killed agent cannot carry on under a key it made itself).
        let behind = subject.as_ref().map(|s| s.behind()).unwrap_or_default();
        if kill
            && subject.is_some()
            && let Some(d) = self
                .runtime
                .check_kill(action)
                .or_else(|| self.runtime.check_kill_behind(&behind))
        {
            return d;
        }
        lap.lap(Step::Identity);

        // 3. ring gate (an action beyond the agent's ring is denied, whatever the policy).
        //    A verified agent's trust tier from step 2 can demote it (`rings: demote:`); the
        //    policy then sees the ring Warden computed in `context.ring`, never one the
        //    caller sent.
        let tier = subject.as_ref().and_then(|s| s.tier());
        let active = self.policies.load();
        let version = active.version;
        let steps = self.runtime.steps(&active.set, version);
        let ring = match steps.check_ring_behind(action, tier, &behind) {
            Ok(ring) => ring,
            Err(mut d) => {
                // Asking beyond one's ring is a violation Warden observed: it costs trust.
                if let Some(subject) = &subject {
                    self.zero_trust.penalize(
                        subject,
                        action,
                        &mut d,
                        warden_trust::Outcome::Violation,
                    );
                }
                return d;
            }
        };
        let computed = steps.computed_action(action, ring);
        let judged: &Action = computed.as_ref().unwrap_or(action);
        lap.lap(Step::Ring);

        // 4. rate limit (a token bucket per agent, tool or action; then circuit breakers).
        let audit = self.audit.as_ref();
        // The agents that delegated to a verified agent (not the root, which is the
        // operator's) share its per-agent budgets.
        let delegators = behind.get(1..).unwrap_or_default();
        if let Some(mut d) = steps.check_limits_behind(judged, ring, audit, delegators) {
            if let Some(subject) = &subject {
                self.zero_trust
                    .penalize(subject, action, &mut d, warden_trust::Outcome::Denied);
            }
            return d;
        }
        lap.lap(Step::Limits);

        // 5. policy: the active set, deny-overrides across its documents.
        let mut d =
            catch_unwind(AssertUnwindSafe(|| active.set.decide(judged))).unwrap_or_else(|_| {
                Decision::deny("denied: the policy engine failed internally (panic)")
            });
        d.policy_version = active.version;
        // 4, after the policy: breakers count its denials as failures.
        steps.observe(judged, &d, audit);
        lap.lap(Step::Policy);

        // 5a. verification: an allow by a rule with `verify:` stands only if a quorum of its
        //     verifiers says yes; every vote goes into the record.
        let mut verification = None;
        if let Some(spec) = active.set.verification(&d) {
            let votes = verify::ask(&spec, judged, reading);
            verification = Some(verify::record(&spec, &votes));
            d = verify::apply(d, &spec, &votes);
        }
        lap.lap(Step::Policy);

        // 5b. approvals: a `require_approval` becomes a request a person can answer; an
        //     approved, unused request for this exact action allows it, once.
        if d.verdict == Verdict::RequireApproval
            && let Some(approvals) = &self.approvals
        {
            let resolution = approvals.resolve(judged, &d, warden_audit::Timestamp::now_unix_ns());
            d = self.approval_decision(action, d, resolution);
        }

        // 5c. memory guard: a `memory.write` whose content the injection detector flags is
        //     quarantined (deny); one that passes gets signed provenance records.
        if action.action == memory::WRITE_ACTION
            && let Some(guard) = &self.memory
        {
            let mut noted = serde_json::Map::new();
            d = guard.judge_write_deferring(action, d, &mut noted, defer);
            if !noted.is_empty() {
                let context = &mut action.to_mut().context;
                if context.is_null() {
                    *context = serde_json::Value::Object(Default::default());
                }
                if let serde_json::Value::Object(m) = context {
                    m.extend(noted);
                }
            }
        }
        lap.lap(Step::Policy);

        // 6. trust update (the score moves on what Warden itself observed).
        if let Some(subject) = &subject {
            self.zero_trust.update(subject, action, &mut d);
        }
        lap.lap(Step::Trust);

        if let Some(record) = verification {
            let context = &mut action.to_mut().context;
            if context.is_null() {
                *context = serde_json::Value::Object(Default::default());
            }
            if let serde_json::Value::Object(m) = context {
                m.insert("verification".into(), record);
            }
        }

        d
    }

    /// The decision once the approval step has answered: allowed once by a grant, or still
    /// waiting with the request's id (in the decision and in the audit record's context).
    fn approval_decision(
        &self,
        action: &mut Cow<'_, Action>,
        mut d: Decision,
        resolution: Result<Resolution, warden_runtime::RuntimeError>,
    ) -> Decision {
        let id = match resolution {
            Err(e) => {
                let mut deny = Decision::deny(format!(
                    "denied: the action needs approval, and no request could be recorded: {e}"
                ));
                deny.policy_version = d.policy_version;
                return deny;
            }
            Ok(Resolution::Pending { id, created }) => {
                if created
                    && let (Some(listener), Some(store)) =
                        (&self.approval_listener, &self.approvals)
                    && let Ok(Some(request)) =
                        store.get(&id, warden_audit::Timestamp::now_unix_ns())
                {
                    listener(&request);
                }
                id
            }
            Ok(Resolution::Granted(grant)) => {
                d.verdict = Verdict::Allow;
                d.reason = format!(
                    "allowed once by approval {} ({}: {}); the rule says: {}",
                    grant.id,
                    grant.decided_by.as_deref().unwrap_or("?"),
                    grant.decided_reason.as_deref().unwrap_or(""),
                    d.reason
                )
                .into();
                grant.id
            }
        };
        let context = &mut action.to_mut().context;
        if context.is_null() {
            *context = serde_json::Value::Object(Default::default());
        }
        if let serde_json::Value::Object(m) = context {
            m.insert("approval_id".into(), id.clone().into());
        }
        d.approval_id = Some(id.into());
        d
    }

    /// The memory guard (when one was configured): readers ask it about texts read back
    /// from a memory store.
    pub fn memory(&self) -> Option<&memory::MemoryGuard> {
        self.memory.as_ref()
    }

    /// Guard `memory.write` actions with `guard` (the builder does this for every door).
    pub fn with_memory(mut self, guard: memory::MemoryGuard) -> Self {
        self.memory = Some(guard);
        self
    }

    /// Take the memory guard out (to adjust it and put it back with
    /// [`Warden::with_memory`]); the Warden has none until then.
    pub fn take_memory(&mut self) -> Option<memory::MemoryGuard> {
        self.memory.take()
    }

    /// The approval requests (when this Warden has a database).
    pub fn approvals(&self) -> Option<&Approvals> {
        self.approvals.as_ref()
    }

    /// Judge an action and report every rule's part in the decision.
    pub fn explain(&self, action: &Action) -> Explanation {
        let start = Instant::now();
        // The action as the policy would see it: without the caller's spelling of what is
        // Warden's to write (as decide), with Warden's `context.drift`.
        let mut judged = Cow::Borrowed(action);
        strip_warden_context(&mut judged);
        let (reading, drift_error) = match self.with_drift_context(&mut judged) {
            Ok(r) => (r, None),
            Err((d, r)) => (r, Some(d)),
        };
        let action: &Action = &judged;
        let active = self.policies.load();
        // The runtime steps (kill switch, ring gate, buckets, breakers) come first, as
        // traces of policy `warden`; the first that blocks decides. Nothing is taken.
        let runtime = self
            .runtime
            .explain(&active.set, active.version, action, None);
        let ring = self
            .runtime
            .ring_for(&active.set, active.version, action.agent.as_deref(), None)
            .map(|(r, _)| r);
        let computed = self
            .runtime
            .steps(&active.set, active.version)
            .computed_action(action, ring);
        let policy_view = computed.as_ref().unwrap_or(action);
        let mut e = active.set.explain(policy_view);
        e.decision.policy_version = active.version;
        // 5a, without the network: which verifiers an allow by a `verify:` rule would ask,
        // and the votes Warden casts itself.
        if let Some(spec) = active.set.verification(&e.decision) {
            let votes = verify::ask_offline(&spec, policy_view, &reading);
            e.verification = Some(verify::plan(&spec, &votes));
            // Every verifier answered offline: the decision is exactly what decide makes.
            if let Some(votes) = votes.into_iter().collect::<Option<Vec<_>>>() {
                e.decision = verify::apply(e.decision.clone(), &spec, &votes);
            }
        }
        if let Some(t) = runtime
            .iter()
            .find(|t| t.status == warden_policy::Status::Matched)
        {
            e.decision = Decision::deny(t.detail.clone());
            e.decision.rule = Some(t.rule.clone());
            e.decision.policy_version = active.version;
        }
        e.rules.splice(0..0, runtime);
        if let Err(err) = action.validate() {
            e.decision = Decision::deny(format!("denied: {err}"));
        } else if let Some(d) = self.protection.check(action) {
            e.decision = d;
        } else if let Some(d) = drift_error {
            e.decision = d;
        }
        // 5c, without writing: what the memory guard would do (quarantine, provenance).
        if let Some(guard) = &self.memory
            && let Some((step, decision)) = guard.explain(action, &e.decision)
        {
            e.memory = Some(step);
            if let Some(d) = decision {
                // The guard decided, not the rule that allowed: no trace is the decider.
                for t in &mut e.rules {
                    t.decided = false;
                }
                e.decision = d;
            }
        }
        e.drift = action
            .context
            .get(drift::DRIFT_CONTEXT)
            .and_then(serde_json::Value::as_f64);
        e.decision.elapsed_ns = elapsed_ns(start);
        e
    }

    /// Report how an allowed call went, after it ran: a failure (the tool's error) counts
    /// against the breakers watching `action` under the active policies (step 4); a success
    /// changes nothing (the allow was already counted).
    pub fn record_outcome(&self, action: &Action, outcome: Outcome) {
        let active = self.policies.load();
        // Keyed as the decision was: a credential's verified DID, not the claimed name.
        let (action, _) = self.as_verified(action);
        self.runtime.record_outcome(
            &active.set,
            active.version,
            &action,
            outcome,
            self.audit.as_ref(),
        );
    }

    /// The agent a credential names once verified (its DID), for callers that key their own
    /// state by agent (the MCP proxy's supervised server); `None` when it does not verify or
    /// no identities are configured.
    pub fn verified_agent(&self, credential: &serde_json::Value) -> Option<String> {
        let probe =
            Action::new("warden-identity-probe").with_context("credential", credential.clone());
        let mut judged = Cow::Borrowed(&probe);
        match self.zero_trust.identify(&mut judged, false) {
            Some(_) => judged.agent.clone(),
            None => None,
        }
    }

    /// `action` as step 2 rewrites it when it carries a credential that verifies (agent :=
    /// DID), with the verified subject; otherwise `action` as it is.
    fn as_verified<'a>(
        &self,
        action: &'a Action,
    ) -> (Cow<'a, Action>, Option<zero_trust::Subject>) {
        let mut judged = Cow::Borrowed(action);
        match self.zero_trust.identify(&mut judged, true) {
            Some(subject) => (judged, Some(subject)),
            None => (Cow::Borrowed(action), None),
        }
    }

    /// Begin a tool call `action` (after it was allowed): `Ok(Some(permit))` to hold while it
    /// runs, `Ok(None)` when no `rings:` limits concurrency, or a deny naming the ring when the
    /// agent already has its ring's `max_concurrent` calls running.
    pub fn begin_call(&self, action: &Action) -> Result<Option<CallPermit>, Decision> {
        let active = self.policies.load();
        // Counted as the decision was keyed: a credential's verified DID, with its tier.
        let (action, subject) = self.as_verified(action);
        let tier = subject.as_ref().and_then(|s| s.tier());
        self.runtime
            .begin_call_under(&active.set, active.version, action.agent.as_deref(), tier)
    }

    /// Run `f` with the active policy set.
    pub fn with_policies<R>(&self, f: impl FnOnce(&PolicySet) -> R) -> R {
        f(&self.policies.load().set)
    }

    /// The active policy set's version: 1 at start, +1 per replacement.
    pub fn policy_version(&self) -> u64 {
        self.policies.load().version
    }

    /// Load the policies again from the paths this Warden was built from and swap them in;
    /// returns the new version. A set that fails to load changes nothing: the last good one
    /// keeps deciding.
    pub fn reload(&self) -> Result<u64, LoadError> {
        if self.policy_paths.is_empty() {
            return Ok(self.policy_version());
        }
        let set = PolicySet::load(&self.policy_paths)?;
        Ok(self.replace_policies(set))
    }

    /// Replace the active policy set atomically (hot reload) and return the new version.
    /// Decisions already running finish on the set they started with.
    pub fn replace_policies(&self, policies: PolicySet) -> u64 {
        // Writers take turns so two reloads cannot both claim the same version; readers
        // never touch this lock.
        let _turn = self
            .reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = self.policies.load().version + 1;
        self.policies.store(Arc::new(Versioned {
            set: policies,
            version,
        }));
        version
    }
}

/// Put the audit log's answer into `decision`: its sequence number, or a deny when the
/// record could not be written (the action must not happen unrecorded).
fn recorded(
    decision: &mut Decision,
    result: Result<Option<u64>, warden_audit::AuditError>,
    start: Instant,
) {
    match result {
        Ok(seq) => decision.audit_seq = seq,
        Err(e) => {
            let version = decision.policy_version;
            *decision = Decision::deny(format!(
                "denied: the decision could not be recorded in the audit log: {e}"
            ));
            decision.policy_version = version;
        }
    }
    decision.elapsed_ns = elapsed_ns(start);
}

/// A decision made by [`Warden::decide_async`] whose audit record may still be committing:
/// await it (or [`Deciding::wait`] on a thread that may block) for the decision.
#[must_use = "the decision is only final once its record is committed"]
#[derive(Debug)]
pub struct Deciding {
    /// `None` once handed out.
    decision: Option<Decision>,
    start: Instant,
    appended: Option<warden_audit::Appended>,
}

impl Deciding {
    /// Whether finishing needs a thread that may block: the audit queue was full and the log
    /// waits for room (`when_full = block`). Then call [`Deciding::wait`] on such a thread;
    /// awaiting would block the task's thread until there is room.
    pub fn must_block(&self) -> bool {
        self.appended
            .as_ref()
            .is_some_and(warden_audit::Appended::must_block)
    }

    /// Whether awaiting this commits the audit group on the awaiting task (see
    /// [`warden_audit::Appended::commits_on_await`]).
    pub fn commits_on_await(&self) -> bool {
        self.appended
            .as_ref()
            .is_some_and(warden_audit::Appended::commits_on_await)
    }

    /// The decision, waiting on this thread for its record.
    pub fn wait(mut self) -> Decision {
        let mut decision = self.decision.take().unwrap_or_else(handed_out);
        if let Some(appended) = self.appended.take() {
            recorded(&mut decision, appended.wait(), self.start);
        }
        decision
    }
}

/// (Only reachable by polling a finished future.)
fn handed_out() -> Decision {
    Decision::deny("denied: this decision was already handed out")
}

impl std::future::Future for Deciding {
    type Output = Decision;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Decision> {
        let this = &mut *self;
        let result = match &mut this.appended {
            None => None,
            Some(appended) => match std::pin::Pin::new(appended).poll(cx) {
                std::task::Poll::Pending => return std::task::Poll::Pending,
                std::task::Poll::Ready(r) => Some(r),
            },
        };
        this.appended = None;
        let mut decision = this.decision.take().unwrap_or_else(handed_out);
        if let Some(r) = result {
            recorded(&mut decision, r, this.start);
        }
        std::task::Poll::Ready(decision)
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Remove from the caller's context what only Warden writes, so the policy (and explain)
/// never sees a caller's spelling of it.
fn strip_warden_context(judged: &mut Cow<'_, Action>) {
    // `context.approval_id` is Warden's to write (step 5b): one the caller sent would put
    // a person's approval on the record of an action nobody approved.
    // So is `context.verification` (step 5a): votes nobody cast; the memory guard's
    // `context.provenance` and `context.quarantine_id` (step 5c); and `context.drift`:
    // an agent would declare itself on task.
    for key in [
        "approval_id",
        "verification",
        "provenance",
        "quarantine_id",
        drift::DRIFT_CONTEXT,
    ] {
        if judged.context.get(key).is_some()
            && let serde_json::Value::Object(m) = &mut judged.to_mut().context
        {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRIEF: &str = r#"
rules:
  - action: "execute_code"
    allow: false
  - action: "http_request"
    allow: true
    domains: ["api.github.com"]
    methods: ["GET"]
"#;

    fn warden() -> Warden {
        Warden::new(PolicySet::from_yaml("brief.yaml", BRIEF).unwrap())
    }

    #[test]
    fn decides_and_times() {
        let w = warden();
        let d = w.decide(
            &Action::new("http_request")
                .with_arg("url", "https://api.github.com/")
                .with_arg("method", "GET"),
        );
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(d.elapsed_ns > 0);
    }

    #[test]
    fn malformed_action_is_denied_with_reason() {
        let d = warden().decide(&Action::new(""));
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.reason.contains("non-empty"), "{}", d.reason);
    }

    #[test]
    fn replacing_policies_takes_effect() {
        let w = warden();
        assert_eq!(
            w.decide(&Action::new("execute_code")).verdict,
            Verdict::Deny
        );
        let open = "rules:\n  - action: execute_code\n    allow: true\n";
        assert_eq!(w.policy_version(), 1);
        assert_eq!(
            w.replace_policies(PolicySet::from_yaml("open.yaml", open).unwrap()),
            2
        );
        let d = w.decide(&Action::new("execute_code"));
        assert_eq!((d.verdict, d.policy_version), (Verdict::Allow, 2));
    }
}
