//! Warden's runtime containment: the steps of the decision path that do not depend on the
//! model behaving — a durable **kill switch** (step 1), **execution rings** (step 3),
//! **rate limits** and **circuit breakers** (step 4), and **anomaly** responses.
//!
//! A [`Runtime`] is built once per `Warden` (the `warden` crate's builder does it) and
//! consulted by `Warden::decide` at those steps; operators change its state through the
//! methods that take an [`Operator`] (the CLI's `warden kill|revive|ring`, the server's
//! operator endpoints), never through a decision. See `docs/runtime.md` for the policy
//! sections, defaults and limits.
//!
//! Where the state lives:
//!
//! - kill switches and ring overrides: the Warden database (the audit log's SQLite file),
//!   shared by every process that opens it, watched for changes (see [`state`]); or memory,
//!   for a library user without a database;
//! - rate buckets: the process ([`Buckets`]), or the database for short-lived CLI processes
//!   sharing `--db` ([`RuntimeOptions::shared_buckets`]);
//! - breakers and anomaly baselines: the process.

#![forbid(unsafe_code)]

pub mod anomaly;
pub mod approval;
pub mod breaker;
mod clock;
mod error;
mod hash;
pub mod kill;
pub mod process;
pub mod rate;
mod record;
pub mod ring;
mod ring_override;
pub mod saga;
pub mod sandbox;
pub mod state;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::json;
use warden_audit::AuditLog;
use warden_core::{Action, Decision, Verdict};
use warden_policy::runtime::{
    AnomalyResponse, AnomalySpec, BreakerKey, BreakerSpec, RateLimitSpec, Ring,
};
use warden_policy::{PolicySet, RuleTrace, Status};

pub use anomaly::Anomaly;
pub use breaker::{Admission, Breaker, BreakerSettings, BreakerState, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::RuntimeError;
pub use kill::{Kill, KillView, Scope};
pub use process::{DEFAULT_GRACE, Supervised};
pub use rate::{Bucket, Buckets, KeyRef, Limited};
pub use record::Operator;
pub use ring::{DEFAULT_TIERS, OrderedTier, Placement, Profile, RingPlan, TrustTier};
pub use ring_override::{OverrideKind, RingOverride};
/// The ring type (defined with the policy vocabulary, where `rings:` is read).
pub use warden_policy::runtime::Ring as ExecutionRing;
pub use warden_policy::runtime::{ActionClass, ClassSet, Rate};

use record::Change;
use state::State;
use store::Store;

/// How a [`Runtime`] keeps its state.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The Warden database (the audit log's file); `None` keeps the state in memory.
    pub db: Option<PathBuf>,
    /// How often the database is checked for changes made by other processes (default
    /// 100 ms); `None` never (a process that makes one decision and exits).
    pub poll: Option<Duration>,
    /// How long a write waits for another process's write lock (default 5 s).
    pub busy_timeout: Duration,
    /// Keep rate buckets in the database, shared by every process (for CLI calls that each
    /// make one decision); otherwise in this process.
    pub shared_buckets: bool,
    /// The most rate buckets kept in the process (default 2^20).
    pub max_buckets: usize,
    /// The most circuit breakers kept (default 100 000).
    pub max_breakers: usize,
    /// Time between SIGTERM and SIGKILL for supervised processes (default 5 s).
    pub grace: Duration,
    /// The clock (default: the system's).
    pub clock: Arc<dyn Clock>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            db: None,
            poll: Some(Duration::from_millis(100)),
            busy_timeout: Duration::from_secs(5),
            shared_buckets: false,
            max_buckets: rate::DEFAULT_MAX_BUCKETS,
            max_breakers: 100_000,
            grace: DEFAULT_GRACE,
            clock: Arc::new(SystemClock::new()),
        }
    }
}

impl RuntimeOptions {
    /// State in the database at `db`.
    pub fn with_db(db: impl Into<PathBuf>) -> Self {
        RuntimeOptions {
            db: Some(db.into()),
            ..RuntimeOptions::default()
        }
    }
}

/// What a policy set asks of the runtime, merged over its documents, for one policy version.
#[derive(Debug, Default)]
struct Plan {
    version: u64,
    rings: Option<RingPlan>,
    limits: Vec<(RateLimitSpec, Bucket)>,
    breakers: Vec<(BreakerSpec, BreakerSettings)>,
    anomaly: Option<AnomalySpec>,
    /// Whether any document can read `context` (a YAML `when` that names it, or any Cedar
    /// or Rego document): only then must Warden's ring be written into a copy of it.
    reads_context: bool,
}

impl Plan {
    fn new(set: &PolicySet, version: u64) -> Plan {
        let sections: Vec<_> = set.runtime_sections().map(|(_, s)| s).collect();
        let mut plan = Plan {
            version,
            rings: RingPlan::from_sections(sections.iter().copied()),
            reads_context: set.reads_context(),
            ..Plan::default()
        };
        for s in &sections {
            for l in &s.rate_limits {
                plan.limits.push((l.clone(), Bucket::new(l.limit, l.burst)));
            }
            for b in &s.breakers {
                plan.breakers.push((b.clone(), BreakerSettings::from(b)));
            }
            if let Some(a) = &s.anomaly {
                // Two documents: the more sensitive of each setting.
                plan.anomaly = Some(match plan.anomaly.take() {
                    None => a.clone(),
                    Some(p) => AnomalySpec {
                        factor: p.factor.min(a.factor),
                        window: p.window.min(a.window),
                        min_actions: p.min_actions.min(a.min_actions),
                        response: strongest(p.response, a.response),
                    },
                });
            }
        }
        plan
    }

    fn is_quiet(&self) -> bool {
        self.limits.is_empty() && self.breakers.is_empty() && self.anomaly.is_none()
    }
}

fn strongest(a: AnomalyResponse, b: AnomalyResponse) -> AnomalyResponse {
    let rank = |r| match r {
        AnomalyResponse::Flag => 0,
        AnomalyResponse::Demote => 1,
        AnomalyResponse::Kill => 2,
    };
    if rank(a) >= rank(b) { a } else { b }
}

/// Breakers by (breaker id, tool or agent).
type BreakerMap = HashMap<(Arc<str>, Box<str>), Breaker>;

type AnomalyHook = Box<dyn Fn(&Anomaly) + Send + Sync>;

/// The runtime steps of one `Warden`, and the operator's controls over them.
pub struct Runtime {
    state: State,
    clock: Arc<dyn Clock>,
    plan: ArcSwap<Plan>,
    plan_turn: Mutex<()>,
    buckets: Buckets,
    shared_buckets: bool,
    breakers: Mutex<BreakerMap>,
    max_breakers: usize,
    detector: anomaly::Detector,
    anomaly_hook: Option<AnomalyHook>,
    in_flight: Mutex<HashMap<Box<str>, Arc<AtomicU32>>>,
    grace: Duration,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("db", &self.db_path())
            .field("shared_buckets", &self.shared_buckets)
            .finish_non_exhaustive()
    }
}

/// The action namespace of Warden's own state-change records.
pub const RESERVED_PREFIX: &str = "warden.";

/// Names used in reasons and traces.
const KILL_SWITCH: &str = "kill-switch";
const RING_GATE: &str = "ring-gate";

impl Runtime {
    /// A runtime as `options` say; with a database, the state is read before this returns
    /// (an unreadable database is an error: nothing is decided without knowing the kills).
    pub fn open(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let state = match &options.db {
            None => State::in_memory(),
            Some(db) => State::open(Store::open(db, options.busy_timeout)?, options.poll)?,
        };
        Ok(Runtime {
            state,
            clock: options.clock,
            plan: ArcSwap::from_pointee(Plan::default()),
            plan_turn: Mutex::new(()),
            buckets: Buckets::new(options.max_buckets),
            shared_buckets: options.shared_buckets && options.db.is_some(),
            breakers: Mutex::new(HashMap::new()),
            max_breakers: options.max_breakers.max(1),
            detector: anomaly::Detector::default(),
            anomaly_hook: None,
            in_flight: Mutex::new(HashMap::new()),
            grace: options.grace,
        })
    }

    /// A runtime in memory with the system clock.
    pub fn in_memory() -> Runtime {
        Runtime::open(RuntimeOptions::default()).expect("memory state cannot fail to open")
    }

    /// Call `hook` whenever an agent is flagged as anomalous (the trust step lowers its
    /// score there).
    pub fn on_anomaly(mut self, hook: impl Fn(&Anomaly) + Send + Sync + 'static) -> Self {
        self.anomaly_hook = Some(Box::new(hook));
        self
    }

    /// The database the state lives in, if any.
    pub fn db_path(&self) -> Option<&Path> {
        self.state.store().map(|s| s.path())
    }

    /// The state now (kills, overrides).
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<state::Snapshot>> {
        self.state.snapshot()
    }

    /// The time now on this runtime's clock.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn plan(&self, set: &PolicySet, version: u64) -> arc_swap::Guard<Arc<Plan>> {
        let p = self.plan.load();
        if p.version == version {
            return p;
        }
        drop(p);
        let _turn = self
            .plan_turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.plan.load().version != version {
            self.plan.store(Arc::new(Plan::new(set, version)));
        }
        self.plan.load()
    }

    // ---- the decision path ------------------------------------------------------------

    /// Step 1 again, for the identities behind a verified agent (the chain's root and every
    /// agent that delegated along it): a kill set for any of them stops this action too, so
    /// a killed agent cannot carry on under a key it delegated to itself.
    pub fn check_kill_behind(&self, identities: &[&str]) -> Option<Decision> {
        let snap = self.state.snapshot();
        let reason = identities.iter().find_map(|id| snap.killed_agent(id))?;
        let mut d = Decision::deny(reason);
        d.rule = Some(Arc::from(KILL_SWITCH));
        Some(d)
    }

    /// Step 1, the kill switch: a deny when a kill covers `action` (or the state cannot be
    /// read). A few nanoseconds when nothing is killed.
    /// Actions named `warden.*` are denied here too: that namespace is Warden's own record
    /// of state changes (`warden.kill`, `warden.revive`, …), which no agent may request or
    /// leave look-alikes of in the audit log.
    #[inline]
    pub fn check_kill(&self, action: &Action) -> Option<Decision> {
        let reason = match self.state.snapshot().killed(action) {
            Some(reason) => reason,
            None if reserved(&action.action) => format!(
                "denied: `{RESERVED_PREFIX}*` actions are Warden's own records of kills, revivals and ring changes; operators make those with `warden kill|revive|ring`, never through a decision"
            ),
            None => return None,
        };
        let mut d = Decision::deny(reason);
        d.rule = Some(Arc::from(KILL_SWITCH));
        Some(d)
    }

    /// Step 3, the ring gate. `Ok(None)` when the policy set has no `rings:` (no gate);
    /// `Ok(Some(ring))` with the agent's ring when the action is within it; `Err(deny)`
    /// naming the ring when it is not. `trust` is the agent's tier from the trust step, if
    /// any: a tier below a `demote` bar lowers the ring.
    pub fn check_ring(
        &self,
        set: &PolicySet,
        version: u64,
        action: &Action,
        trust: Option<&dyn TrustTier>,
    ) -> Result<Option<Ring>, Decision> {
        self.steps(set, version).check_ring(action, trust)
    }

    /// The runtime steps for one decision under policy set `set` (version `version`): what
    /// the set asks of the runtime is looked up once, here, for all the steps.
    pub fn steps(&self, set: &PolicySet, version: u64) -> Steps<'_> {
        Steps {
            runtime: self,
            plan: self.plan(set, version),
        }
    }
}

/// The runtime steps of one decision ([`Runtime::steps`]).
pub struct Steps<'r> {
    runtime: &'r Runtime,
    plan: arc_swap::Guard<Arc<Plan>>,
}

impl Steps<'_> {
    /// Step 3, the ring gate (see [`Runtime::check_ring`]); a deny carries the policy
    /// version.
    pub fn check_ring(
        &self,
        action: &Action,
        trust: Option<&dyn TrustTier>,
    ) -> Result<Option<Ring>, Decision> {
        self.check_ring_behind(action, trust, &[])
    }

    /// Step 3 for a verified agent: an operator's demotion of any identity `behind` it (the
    /// agents that delegated to it) demotes it too, so a demoted agent gains nothing by
    /// acting through a key it delegated to itself. Their elevations are not inherited.
    pub fn check_ring_behind(
        &self,
        action: &Action,
        trust: Option<&dyn TrustTier>,
        behind: &[&str],
    ) -> Result<Option<Ring>, Decision> {
        self.gate(action, trust, behind).map_err(|mut d| {
            d.policy_version = self.plan.version;
            d
        })
    }

    fn gate(
        &self,
        action: &Action,
        trust: Option<&dyn TrustTier>,
        behind: &[&str],
    ) -> Result<Option<Ring>, Decision> {
        let (plan, this) = (&self.plan, self.runtime);
        let Some(rings) = &plan.rings else {
            return Ok(None);
        };
        let (ring, placement) = this.ring_of_chain(rings, action.agent.as_deref(), behind, trust);
        let classes = rings.classes(&action.action);
        let profile = rings.profile(ring);
        if profile.allow.covers(classes) {
            return Ok(Some(ring));
        }
        let who = action.agent.as_deref().map_or_else(
            || "an action without an agent".to_string(),
            |a| format!("agent `{a}`"),
        );
        let mut d = Decision::deny(format!(
            "denied by ring `{ring}` ({}): {who} ({}) may not request {} actions such as `{}`; ring `{ring}` allows {}",
            ring.number(),
            placement.describe(),
            classes.without(profile.allow),
            action.action,
            profile.allow,
        ));
        d.rule = Some(Arc::from(RING_GATE));
        Err(d)
    }

    /// The action the policy must judge after the ring gate: `Some(copy)` with Warden's ring
    /// in `context.ring` (and a caller's `ring` removed) when the policy set can read the
    /// context and the action does not already say exactly that; `None` to judge `action`
    /// as it is. (A policy that never reads `context` cannot be swayed by it, so the copy —
    /// a few hundred nanoseconds — is made only when it matters.)
    pub fn computed_action(&self, action: &Action, ring: Option<Ring>) -> Option<Action> {
        if !self.plan.reads_context {
            return None;
        }
        with_computed_ring(action, ring)
    }

    /// Step 4 (see [`Runtime::check_limits`]); a deny carries the policy version.
    pub fn check_limits(
        &self,
        action: &Action,
        ring: Option<Ring>,
        audit: Option<&AuditLog>,
    ) -> Option<Decision> {
        self.check_limits_behind(action, ring, audit, &[])
    }

    /// Step 4 for a verified agent: its per-agent buckets, and those of every agent
    /// `delegators` that delegated to it (not the root's), so that acting through keys an
    /// agent delegates to itself spends the agent's own budget too.
    pub fn check_limits_behind(
        &self,
        action: &Action,
        ring: Option<Ring>,
        audit: Option<&AuditLog>,
        delegators: &[&str],
    ) -> Option<Decision> {
        let mut d = self
            .runtime
            .limits(&self.plan, action, ring, audit, delegators)?;
        d.policy_version = self.plan.version;
        Some(d)
    }

    /// After the policy (see [`Runtime::observe`]).
    pub fn observe(&self, action: &Action, decision: &Decision, audit: Option<&AuditLog>) {
        let outcome = match decision.verdict {
            Verdict::Deny => Outcome::Failure,
            Verdict::Allow | Verdict::RequireApproval => Outcome::Success,
        };
        self.runtime
            .count_outcome(&self.plan, action, outcome, false, audit);
    }
}

impl Runtime {
    /// The ring `agent` is in now, and why.
    pub fn ring_of(
        &self,
        rings: &RingPlan,
        agent: Option<&str>,
        trust: Option<&dyn TrustTier>,
    ) -> (Ring, Placement) {
        self.ring_of_chain(rings, agent, &[], trust)
    }

    /// [`Runtime::ring_of`], also demoted by any demotion of an identity `behind` the agent
    /// (see [`Steps::check_ring_behind`]).
    pub fn ring_of_chain(
        &self,
        rings: &RingPlan,
        agent: Option<&str>,
        behind: &[&str],
        trust: Option<&dyn TrustTier>,
    ) -> (Ring, Placement) {
        let (mut ring, mut why) = rings.configured(agent);
        let snap = self.state.snapshot();
        if let Some(agent) = agent
            && snap.has_overrides()
        {
            if let Some(e) = snap.elevation(agent)
                && e.ring < ring
                && e.active(self.clock.now_ns())
            {
                ring = e.ring;
                why = Placement::Elevated { by: e.by.clone() };
            }
            if let Some(d) = snap.demotion(agent)
                && d.ring > ring
            {
                ring = d.ring;
                why = Placement::Demoted {
                    by: d.by.clone(),
                    reason: d.reason.clone(),
                };
            }
        }
        // After the agent's own elevation: a demotion of whoever delegated to it wins.
        if snap.has_overrides() {
            for id in behind {
                if let Some(d) = snap.demotion(id)
                    && d.ring > ring
                {
                    ring = d.ring;
                    why = Placement::Demoted {
                        by: d.by.clone(),
                        reason: format!("{} (of `{id}`, which delegated to this agent)", d.reason),
                    };
                }
            }
        }
        if let Some(t) = trust
            && let Some((r, d)) = rings.trust_demotion(t)
            && r > ring
        {
            ring = r;
            why = Placement::Trust {
                tier: t.name().to_string(),
                below: d.below.to_string(),
            };
        }
        (ring, why)
    }

    /// The ring an agent is in under `set` (for `warden ring show` and explain); `None`
    /// without `rings:`.
    pub fn ring_for(
        &self,
        set: &PolicySet,
        version: u64,
        agent: Option<&str>,
        trust: Option<&dyn TrustTier>,
    ) -> Option<(Ring, Placement)> {
        let plan = self.plan(set, version);
        plan.rings.as_ref().map(|r| self.ring_of(r, agent, trust))
    }

    /// Step 4: rate limits (the document's `rate_limits:` and the ring's own rate), then
    /// circuit breakers, and the anomaly detector's count. A deny names the limit and when
    /// to retry.
    pub fn check_limits(
        &self,
        set: &PolicySet,
        version: u64,
        action: &Action,
        ring: Option<Ring>,
        audit: Option<&AuditLog>,
    ) -> Option<Decision> {
        self.limits(&self.plan(set, version), action, ring, audit, &[])
    }

    fn limits(
        &self,
        plan: &Plan,
        action: &Action,
        ring: Option<Ring>,
        audit: Option<&AuditLog>,
        delegators: &[&str],
    ) -> Option<Decision> {
        let ring_rate = ring.and_then(|r| {
            plan.rings
                .as_ref()
                .and_then(|p| p.profile(r).rate.map(|rate| (r, rate)))
        });
        if plan.is_quiet() && ring_rate.is_none() {
            return None;
        }
        let now = self.clock.now_ns();
        if let Some(spec) = &plan.anomaly
            && let Some(agent) = &action.agent
            && let Some(a) = self.detector.observe(spec, agent, now)
            && let Some(d) = self.respond_to_anomaly(spec, &a, audit)
        {
            return Some(d);
        }
        if let Some((r, rate)) = ring_rate {
            let id = ring_limit_id(r);
            let bucket = Bucket::new(rate, u32::try_from(rate.count).unwrap_or(u32::MAX));
            let agents = std::iter::once(action.agent.as_deref().unwrap_or(""))
                .chain(delegators.iter().copied());
            for agent in agents {
                let key = KeyRef {
                    limit: id,
                    agent: Some(agent),
                    tool: None,
                    action: None,
                };
                if let Some(d) = self.take(key, &bucket, now, || {
                    format!("the `{r}` ring's rate ({rate}, per agent)")
                }) {
                    return Some(d);
                }
            }
        }
        for (spec, bucket) in &plan.limits {
            if !applies(spec, action) {
                continue;
            }
            let key = key_of(spec, action);
            let behind: &[&str] = if key.agent.is_some() { delegators } else { &[] };
            let keys = std::iter::once(key).chain(behind.iter().map(|a| KeyRef {
                agent: Some(a),
                ..key
            }));
            for key in keys {
                if let Some(d) = self.take(key, bucket, now, || {
                    format!(
                        "rate limit `{}` ({}, burst {}, per {})",
                        spec.id, spec.limit, spec.burst, spec.per
                    )
                }) {
                    return Some(d);
                }
            }
        }
        if !plan.breakers.is_empty() {
            return self.admit_breakers(plan, action, now);
        }
        None
    }

    fn take(
        &self,
        key: KeyRef<'_>,
        bucket: &Bucket,
        now: u64,
        what: impl FnOnce() -> String,
    ) -> Option<Decision> {
        let result = if self.shared_buckets
            && let Some(store) = self.state.store()
        {
            match store.take_shared(key, bucket, now) {
                Ok(r) => r.map_err(rate::TakeError::Limited),
                Err(e) => {
                    return Some(limit_deny(
                        key.limit,
                        format!("denied: the rate limit state cannot be updated: {e}"),
                    ));
                }
            }
        } else {
            self.buckets.take(key, bucket, now)
        };
        match result {
            Ok(_) => None,
            Err(rate::TakeError::Limited(l)) => Some(limit_deny(
                key.limit,
                format!(
                    "denied by {}: {} is over the limit; retry after {}",
                    what(),
                    describe_key(&key),
                    seconds(l.retry_after_ns)
                ),
            )),
            Err(rate::TakeError::Full) => Some(limit_deny(
                key.limit,
                "denied: too many rate limit buckets are busy to start another (the limiter is full)".to_string(),
            )),
        }
    }

    fn breaker_key<'a>(spec: &BreakerSpec, action: &'a Action) -> &'a str {
        match spec.per {
            BreakerKey::Tool => action.tool.as_deref().unwrap_or(&action.action),
            BreakerKey::Agent => action.agent.as_deref().unwrap_or(""),
        }
    }

    fn admit_breakers(&self, plan: &Plan, action: &Action, now: u64) -> Option<Decision> {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Probes handed out so far: given back if a later breaker refuses the call, which
        // then never runs (nor reports an outcome that would free them).
        let mut probes: Vec<(Arc<str>, Box<str>)> = Vec::new();
        let mut refusal = None;
        for (spec, settings) in &plan.breakers {
            if !spec.action.matches(&action.action) {
                continue;
            }
            let key = Self::breaker_key(spec, action);
            let id = (spec.id.clone(), Box::from(key));
            let Some(b) = breakers.get_mut(&id) else {
                if !make_room(&mut breakers, now, self.max_breakers) {
                    // Every place is held by an open breaker: this key could not be
                    // watched, so it is not let through unwatched (fail closed).
                    let mut d = Decision::deny(format!(
                        "denied: circuit breaker `{}`: {} breakers are open, so no more calls can be watched",
                        spec.id, self.max_breakers
                    ));
                    d.rule = Some(spec.id.clone());
                    refusal = Some(d);
                    break;
                }
                continue; // a breaker that never saw an outcome is closed
            };
            b.set_settings(*settings);
            let admission = b.admit(now);
            if matches!(admission, Admission::Probe) {
                probes.push(id);
            }
            if let Admission::Refused { retry_after_ns } = admission {
                let what = match spec.per {
                    BreakerKey::Tool => format!("`{key}`"),
                    BreakerKey::Agent => format!("agent `{key}`"),
                };
                let when = if retry_after_ns == 0 {
                    "its probes are still out".to_string()
                } else {
                    format!("retry after {}", seconds(retry_after_ns))
                };
                let mut d = Decision::deny(format!(
                    "denied: circuit breaker `{}` for {what} is open after too many failures or denials; {when}",
                    spec.id
                ));
                d.rule = Some(spec.id.clone());
                refusal = Some(d);
                break;
            }
        }
        if refusal.is_some() {
            for id in &probes {
                if let Some(b) = breakers.get_mut(id) {
                    b.release_probe();
                }
            }
        }
        refusal
    }

    /// After the policy decided: the breakers learn the outcome (a deny is a failure).
    pub fn observe(
        &self,
        set: &PolicySet,
        version: u64,
        action: &Action,
        decision: &Decision,
        audit: Option<&AuditLog>,
    ) {
        let outcome = match decision.verdict {
            Verdict::Deny => Outcome::Failure,
            Verdict::Allow | Verdict::RequireApproval => Outcome::Success,
        };
        self.count_outcome(&self.plan(set, version), action, outcome, false, audit);
    }

    /// Report how an allowed call went: a failure (a tool's error) turns the allow its
    /// breakers counted into a failure; a success changes nothing.
    pub fn record_outcome(
        &self,
        set: &PolicySet,
        version: u64,
        action: &Action,
        outcome: Outcome,
        audit: Option<&AuditLog>,
    ) {
        self.count_outcome(&self.plan(set, version), action, outcome, true, audit);
    }

    fn count_outcome(
        &self,
        plan: &Plan,
        action: &Action,
        outcome: Outcome,
        amend: bool,
        audit: Option<&AuditLog>,
    ) {
        if plan.breakers.is_empty() {
            return;
        }
        let now = self.clock.now_ns();
        let mut changes = Vec::new();
        {
            let mut breakers = self
                .breakers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (spec, settings) in &plan.breakers {
                if !spec.action.matches(&action.action) {
                    continue;
                }
                let key = Self::breaker_key(spec, action);
                let id = (spec.id.clone(), Box::<str>::from(key));
                if !breakers.contains_key(&id) {
                    if outcome == Outcome::Success {
                        continue; // closed with nothing to count yet: no need to keep it
                    }
                    if !make_room(&mut breakers, now, self.max_breakers) {
                        tracing::warn!(
                            "too many circuit breakers; `{}` not kept for `{key}`",
                            spec.id
                        );
                        continue;
                    }
                }
                let b = breakers
                    .entry(id)
                    .or_insert_with(|| Breaker::new(*settings));
                b.set_settings(*settings);
                let t = if amend {
                    b.amend(outcome, now)
                } else {
                    b.record(outcome, now)
                };
                if let Some(t) = t {
                    changes.push(breaker_change(spec, key, t));
                }
            }
        }
        for c in changes {
            c.record_best_effort(audit, &Operator::warden("circuit breaker"));
        }
    }

    fn respond_to_anomaly(
        &self,
        spec: &AnomalySpec,
        a: &Anomaly,
        audit: Option<&AuditLog>,
    ) -> Option<Decision> {
        if let Some(hook) = &self.anomaly_hook {
            hook(a);
        }
        let by = Operator::warden("anomaly detector");
        let what = format!(
            "agent `{}` made {} actions in {}, more than {} times its baseline of {:.1}",
            a.agent,
            a.count,
            seconds(a.window_ns),
            spec.factor,
            a.baseline
        );
        Change {
            action: "warden.anomaly",
            rule: "anomaly",
            resource: format!("agent:{}", a.agent),
            reason: format!("anomalous rate: {what}; response: {}", spec.response.as_str()),
            args: json!({"agent": a.agent, "count": a.count, "baseline": a.baseline, "window_ns": a.window_ns, "response": spec.response.as_str()}),
        }
        .record_best_effort(audit, &by);
        match spec.response {
            AnomalyResponse::Flag => None,
            AnomalyResponse::Demote => {
                let reason = format!("anomalous rate: {what}");
                if let Err(e) = self.demote(&a.agent, Ring::Untrusted, &reason, &by, audit) {
                    tracing::error!("cannot demote anomalous agent `{}`: {e}", a.agent);
                }
                None
            }
            AnomalyResponse::Kill => {
                let reason = format!("anomalous rate: {what}");
                let scope = Scope::Agent(a.agent.clone());
                if let Err(e) = self.kill(scope, &reason, &by, audit) {
                    tracing::error!("cannot kill anomalous agent `{}`: {e}", a.agent);
                }
                let mut d = Decision::deny(format!(
                    "denied by the kill switch for agent `{}` (set by {}: {reason})",
                    a.agent,
                    by.name()
                ));
                d.rule = Some(Arc::from(KILL_SWITCH));
                Some(d)
            }
        }
    }

    /// What steps 1, 3 and 4 would say about `action`, as rule traces (policy `warden`):
    /// the kill switch, the ring gate, and every bucket the action would take from, with the
    /// tokens left. Takes nothing from any bucket.
    pub fn explain(
        &self,
        set: &PolicySet,
        version: u64,
        action: &Action,
        trust: Option<&dyn TrustTier>,
    ) -> Vec<RuleTrace> {
        let mut out = Vec::new();
        let trace = |rule: &str, status: Status, detail: String| RuleTrace {
            policy: Arc::from("warden"),
            rule: Arc::from(rule),
            verdict: Verdict::Deny,
            status,
            detail,
            decided: false,
        };
        match self.state.snapshot().killed(action) {
            Some(why) => out.push(trace(KILL_SWITCH, Status::Matched, why)),
            None => out.push(trace(
                KILL_SWITCH,
                Status::NotMatched,
                "no kill switch covers this action".into(),
            )),
        }
        let plan = self.plan(set, version);
        let now = self.clock.now_ns();
        let mut ring = None;
        if let Some(rings) = &plan.rings {
            let (r, why) = self.ring_of(rings, action.agent.as_deref(), trust);
            ring = Some(r);
            let classes = rings.classes(&action.action);
            let allow = rings.profile(r).allow;
            let (status, verb) = if allow.covers(classes) {
                (Status::NotMatched, "may")
            } else {
                (Status::Matched, "may not")
            };
            out.push(trace(
                RING_GATE,
                status,
                format!(
                    "ring `{r}` ({}, {}) {verb} request `{}` ({classes}); it allows {allow}",
                    r.number(),
                    why.describe(),
                    action.action
                ),
            ));
            if let Some(rate) = rings.profile(r).rate {
                let bucket = Bucket::new(rate, u32::try_from(rate.count).unwrap_or(u32::MAX));
                let key = KeyRef {
                    limit: ring_limit_id(r),
                    agent: Some(action.agent.as_deref().unwrap_or("")),
                    tool: None,
                    action: None,
                };
                out.push(self.bucket_trace(
                    key,
                    &bucket,
                    now,
                    format!("{rate}, burst {}, per agent", bucket.burst()),
                ));
            }
        }
        let _ = ring;
        for (spec, bucket) in &plan.limits {
            if applies(spec, action) {
                let key = key_of(spec, action);
                out.push(self.bucket_trace(
                    key,
                    bucket,
                    now,
                    format!("{}, burst {}, per {}", spec.limit, spec.burst, spec.per),
                ));
            }
        }
        let breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (spec, _) in &plan.breakers {
            if !spec.action.matches(&action.action) {
                continue;
            }
            let key = Self::breaker_key(spec, action);
            let state = breakers.get(&(spec.id.clone(), Box::from(key))).map_or(
                BreakerState::Closed {
                    failures: 0,
                    calls: 0,
                },
                |b| b.state(now),
            );
            let (status, detail) = match state {
                BreakerState::Closed { failures, calls } => (
                    Status::NotMatched,
                    format!("closed for `{key}`: {failures} failures in the last {calls} outcomes"),
                ),
                BreakerState::Open { until_ns } => (
                    Status::Matched,
                    format!(
                        "open for `{key}`: half-opens in {}",
                        seconds(until_ns.saturating_sub(now))
                    ),
                ),
                BreakerState::HalfOpen { successes } => (
                    Status::NotMatched,
                    format!("half-open for `{key}`: {successes} probes succeeded"),
                ),
            };
            out.push(trace(&spec.id, status, detail));
        }
        out
    }

    fn bucket_trace(&self, key: KeyRef<'_>, bucket: &Bucket, now: u64, shape: String) -> RuleTrace {
        let left = if self.shared_buckets {
            // The shared state is only read by taking from it; show the shape alone.
            None
        } else {
            Some(self.buckets.remaining(key, bucket, now))
        };
        let (status, detail) = match left {
            Some(0) => (
                Status::Matched,
                format!("bucket for {}: empty ({shape})", describe_key(&key)),
            ),
            Some(n) => (
                Status::NotMatched,
                format!(
                    "bucket for {}: {n} of {} left ({shape})",
                    describe_key(&key),
                    bucket.burst()
                ),
            ),
            None => (
                Status::NotMatched,
                format!(
                    "bucket for {} kept in the database ({shape})",
                    describe_key(&key)
                ),
            ),
        };
        RuleTrace {
            policy: Arc::from("warden"),
            rule: Arc::from(key.limit),
            verdict: Verdict::Deny,
            status,
            detail,
            decided: false,
        }
    }

    // ---- concurrency ------------------------------------------------------------------

    /// Begin a tool call of `agent` under policy set `set`: `Ok(None)` without `rings:`; a
    /// permit while it runs; or a deny naming the ring when its `max_concurrent` calls are
    /// already running. Doors that see a call's end (the MCP proxy) hold the permit until then.
    pub fn begin_call_under(
        &self,
        set: &PolicySet,
        version: u64,
        agent: Option<&str>,
        trust: Option<&dyn TrustTier>,
    ) -> Result<Option<CallPermit>, Decision> {
        let plan = self.plan(set, version);
        let Some(rings) = plan.rings.as_ref() else {
            return Ok(None);
        };
        let (ring, _) = self.ring_of(rings, agent, trust);
        self.begin_call(agent, ring, rings.profile(ring))
            .map(Some)
            .map_err(|reason| {
                let mut d = Decision::deny(reason);
                d.rule = Some(Arc::from(RING_GATE));
                d
            })
    }

    /// Count one running tool call of `agent` in `ring` against `profile.max_concurrent`;
    /// the returned permit is released when dropped. `Err` is the reason when the ring's
    /// limit is reached.
    pub fn begin_call(
        &self,
        agent: Option<&str>,
        ring: Ring,
        profile: &Profile,
    ) -> Result<CallPermit, String> {
        let counter = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(Box::from(agent.unwrap_or("")))
                .or_insert_with(|| Arc::new(AtomicU32::new(0)))
                .clone()
        };
        let max = profile.max_concurrent;
        let mut now = counter.load(Ordering::Acquire);
        loop {
            if now >= max {
                return Err(format!(
                    "denied by ring `{ring}`: {} already has {now} calls running (the ring allows {max} at once)",
                    agent.map_or_else(
                        || "an action without an agent".to_string(),
                        |a| format!("agent `{a}`")
                    )
                ));
            }
            match counter.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(CallPermit { counter }),
                Err(actual) => now = actual,
            }
        }
    }

    // ---- operator controls ------------------------------------------------------------

    /// Set a kill switch, then record it (`warden.kill`). The kill holds even if the record
    /// fails ([`RuntimeError::Unrecorded`]). Returns `false` when the same scope was already
    /// killed (the first reason is kept, and nothing is recorded).
    pub fn kill(
        &self,
        scope: Scope,
        reason: &str,
        by: &Operator,
        audit: Option<&AuditLog>,
    ) -> Result<bool, RuntimeError> {
        let reason = checked_reason(reason)?;
        let kill = Kill {
            scope: scope.clone(),
            reason: reason.to_string(),
            by: by.name().to_string(),
            at_ns: self.clock.now_ns(),
        };
        if !self.state.kill(kill)? {
            return Ok(false);
        }
        let change = Change {
            action: "warden.kill",
            rule: KILL_SWITCH,
            resource: scope_resource(&scope),
            reason: format!("kill switch set for {scope} by {}: {reason}", by.name()),
            args: json!({"scope": scope.kind(), "target": scope.target(), "reason": reason}),
        };
        if let Some(log) = audit {
            change.record(log, by).map_err(RuntimeError::Unrecorded)?;
        } else {
            tracing::warn!("{}", change.reason);
        }
        Ok(true)
    }

    /// Lift the kill switch of exactly `scope` (`revive --all` lifts the fleet-wide kill,
    /// not the per-agent ones). The revival is recorded **first** (`warden.revive`): with a
    /// log that cannot be written, nothing is revived. Returns whether a kill was lifted.
    pub fn revive(
        &self,
        scope: &Scope,
        reason: &str,
        by: &Operator,
        audit: Option<&AuditLog>,
    ) -> Result<bool, RuntimeError> {
        let reason = checked_reason(reason)?;
        let set = self
            .state
            .snapshot()
            .kills()
            .iter()
            .any(|k| &k.scope == scope);
        if !set {
            return Ok(false);
        }
        let change = Change {
            action: "warden.revive",
            rule: KILL_SWITCH,
            resource: scope_resource(scope),
            reason: format!("kill switch lifted for {scope} by {}: {reason}", by.name()),
            args: json!({"scope": scope.kind(), "target": scope.target(), "reason": reason}),
        };
        if let Some(log) = audit {
            change.record(log, by).map_err(RuntimeError::NotRecorded)?;
        }
        self.state.revive(scope)
    }

    /// Every kill in force.
    pub fn kills(&self) -> Vec<Kill> {
        self.state.snapshot().kills()
    }

    /// Raise `agent` to `ring` for `ttl` (an operator's approval; recorded first, as
    /// `warden.ring.elevate`). A demotion still wins over it.
    pub fn elevate(
        &self,
        agent: &str,
        ring: Ring,
        ttl: Duration,
        reason: &str,
        by: &Operator,
        audit: Option<&AuditLog>,
    ) -> Result<RingOverride, RuntimeError> {
        let reason = checked_reason(reason)?;
        if agent.trim().is_empty() {
            return Err(RuntimeError::Invalid("the agent name is empty".into()));
        }
        if ttl.is_zero() || ttl > warden_policy::runtime::MAX_DURATION {
            return Err(RuntimeError::Invalid(
                "an elevation lasts more than 0 and at most 30 days".into(),
            ));
        }
        let now = self.clock.now_ns();
        let o = RingOverride {
            agent: agent.to_string(),
            kind: OverrideKind::Elevation,
            ring,
            reason: reason.to_string(),
            by: by.name().to_string(),
            at_ns: now,
            expires_ns: Some(now.saturating_add(clock::nanos(ttl))),
        };
        let change = Change {
            action: "warden.ring.elevate",
            rule: RING_GATE,
            resource: format!("agent:{agent}"),
            reason: format!(
                "agent `{agent}` elevated to ring `{ring}` for {} by {}: {reason}",
                seconds(clock::nanos(ttl)),
                by.name()
            ),
            args: json!({"agent": agent, "ring": ring.as_str(), "ttl_ns": clock::nanos(ttl), "reason": reason}),
        };
        if let Some(log) = audit {
            change.record(log, by).map_err(RuntimeError::NotRecorded)?;
        }
        self.state.set_override(o.clone())?;
        Ok(o)
    }

    /// Lower `agent` to `ring` until an operator restores it (`warden.ring.demote`).
    pub fn demote(
        &self,
        agent: &str,
        ring: Ring,
        reason: &str,
        by: &Operator,
        audit: Option<&AuditLog>,
    ) -> Result<RingOverride, RuntimeError> {
        let reason = checked_reason(reason)?;
        if agent.trim().is_empty() {
            return Err(RuntimeError::Invalid("the agent name is empty".into()));
        }
        let o = RingOverride {
            agent: agent.to_string(),
            kind: OverrideKind::Demotion,
            ring,
            reason: reason.to_string(),
            by: by.name().to_string(),
            at_ns: self.clock.now_ns(),
            expires_ns: None,
        };
        // A demotion only ever takes privilege away: an existing one to a lower ring stays.
        if let Some(prev) = self.state.snapshot().demotion(agent)
            && prev.ring >= ring
        {
            return Ok(prev.clone());
        }
        self.state.set_override(o.clone())?;
        let change = Change {
            action: "warden.ring.demote",
            rule: RING_GATE,
            resource: format!("agent:{agent}"),
            reason: format!(
                "agent `{agent}` demoted to ring `{ring}` by {}: {reason}",
                by.name()
            ),
            args: json!({"agent": agent, "ring": ring.as_str(), "reason": reason}),
        };
        if let Some(log) = audit {
            change.record(log, by).map_err(RuntimeError::Unrecorded)?;
        }
        Ok(o)
    }

    /// Remove `agent`'s elevation and demotion (recorded first, `warden.ring.restore`);
    /// returns how many there were.
    pub fn restore(
        &self,
        agent: &str,
        reason: &str,
        by: &Operator,
        audit: Option<&AuditLog>,
    ) -> Result<usize, RuntimeError> {
        let reason = checked_reason(reason)?;
        let snap = self.state.snapshot();
        if snap.elevation(agent).is_none() && snap.demotion(agent).is_none() {
            return Ok(0);
        }
        drop(snap);
        let change = Change {
            action: "warden.ring.restore",
            rule: RING_GATE,
            resource: format!("agent:{agent}"),
            reason: format!(
                "agent `{agent}` restored to its configured ring by {}: {reason}",
                by.name()
            ),
            args: json!({"agent": agent, "reason": reason}),
        };
        if let Some(log) = audit {
            change.record(log, by).map_err(RuntimeError::NotRecorded)?;
        }
        self.state.remove_overrides(agent, None)
    }

    /// Every elevation and demotion recorded.
    pub fn overrides(&self) -> Vec<RingOverride> {
        self.state.snapshot().overrides()
    }

    /// Read the state from the database now (instead of at the next poll).
    pub fn refresh(&self) -> Result<(), RuntimeError> {
        self.state.reload()
    }

    // ---- processes --------------------------------------------------------------------

    /// Run `child` for `agent` under the kill switch: a kill that stops the agent (or the
    /// fleet) terminates it — SIGTERM, then SIGKILL after the grace period.
    pub fn supervise(&self, child: std::process::Child, agent: Option<&str>) -> Supervised {
        let s = self.unsupervised(child, agent);
        self.state.supervise(&s);
        s
    }

    /// Own `child` for `agent` (to wait, terminate it after the grace period, or kill it)
    /// without putting it under the kill switch: a saga's compensation, which must run even
    /// for a stopped agent.
    pub fn unsupervised(&self, child: std::process::Child, agent: Option<&str>) -> Supervised {
        Supervised::new(child, agent, self.grace)
    }
}

/// A running tool call, counted against its ring's `max_concurrent` until dropped.
#[derive(Debug)]
pub struct CallPermit {
    counter: Arc<AtomicU32>,
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

fn applies(spec: &RateLimitSpec, action: &Action) -> bool {
    spec.action.matches(&action.action)
        && spec
            .tool
            .as_ref()
            .is_none_or(|t| action.tool.as_deref().is_some_and(|x| t.matches(x)))
}

fn key_of<'a>(spec: &'a RateLimitSpec, action: &'a Action) -> KeyRef<'a> {
    KeyRef {
        limit: &spec.id,
        agent: spec
            .per
            .agent
            .then(|| action.agent.as_deref().unwrap_or("")),
        tool: spec.per.tool.then(|| action.tool.as_deref().unwrap_or("")),
        action: spec.per.action.then_some(action.action.as_str()),
    }
}

fn ring_limit_id(r: Ring) -> &'static str {
    match r {
        Ring::Kernel => "ring:kernel",
        Ring::Supervisor => "ring:supervisor",
        Ring::User => "ring:user",
        Ring::Untrusted => "ring:untrusted",
    }
}

fn describe_key(key: &KeyRef<'_>) -> String {
    let mut parts = Vec::new();
    if let Some(a) = key.agent {
        parts.push(if a.is_empty() {
            "actions without an agent".to_string()
        } else {
            format!("agent `{a}`")
        });
    }
    if let Some(t) = key.tool {
        parts.push(format!("tool `{t}`"));
    }
    if let Some(a) = key.action {
        parts.push(format!("action `{a}`"));
    }
    if parts.is_empty() {
        "everyone".to_string()
    } else {
        parts.join(", ")
    }
}

fn limit_deny(limit: &str, reason: String) -> Decision {
    let mut d = Decision::deny(reason);
    d.rule = Some(Arc::from(limit));
    d
}

/// `0.6 s`, `12 s`, `1.5 ms`.
fn seconds(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{} µs", ns.div_ceil(1000))
    } else if ns < 1_000_000_000 {
        format!("{} ms", ns.div_ceil(1_000_000))
    } else {
        let s = ns as f64 / 1e9;
        if s < 10.0 {
            format!("{s:.1} s")
        } else {
            format!("{} s", ns.div_ceil(1_000_000_000))
        }
    }
}

fn checked_reason(reason: &str) -> Result<&str, RuntimeError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(RuntimeError::Invalid("a reason is required".into()));
    }
    if r.len() > 4096 {
        return Err(RuntimeError::Invalid(
            "the reason is longer than 4096 bytes".into(),
        ));
    }
    Ok(r)
}

fn scope_resource(scope: &Scope) -> String {
    match scope {
        Scope::All => "all".to_string(),
        Scope::Agent(a) => format!("agent:{a}"),
        Scope::Action(p) => format!("action:{p}"),
    }
}

fn breaker_change(spec: &BreakerSpec, key: &str, t: breaker::Transition) -> Change {
    match t {
        breaker::Transition::Opened { failures, calls } => Change {
            action: "warden.breaker.open",
            rule: "breaker",
            resource: format!("breaker:{}:{key}", spec.id),
            reason: if calls == 0 {
                format!(
                    "circuit breaker `{}` for `{key}` opened again: a probe failed",
                    spec.id
                )
            } else {
                format!(
                    "circuit breaker `{}` for `{key}` opened: {failures} of the last {calls} outcomes were failures or denials",
                    spec.id
                )
            },
            args: json!({"breaker": &*spec.id, "key": key, "failures": failures, "calls": calls, "cooldown_ns": clock::nanos(spec.cooldown)}),
        },
        breaker::Transition::Closed => Change {
            action: "warden.breaker.close",
            rule: "breaker",
            resource: format!("breaker:{}:{key}", spec.id),
            reason: format!(
                "circuit breaker `{}` for `{key}` closed: its probes succeeded",
                spec.id
            ),
            args: json!({"breaker": &*spec.id, "key": key}),
        },
    }
}

/// `action` with the fields Warden computes written over whatever the caller sent:
/// `context.ring` is the ring the gate placed the agent in, or absent when there are no
/// rings (a caller's `ring` is removed, so no policy can read a claimed ring). `None` when
/// the action already says exactly that (no copy needed).
pub fn with_computed_ring(action: &Action, ring: Option<Ring>) -> Option<Action> {
    let sent = action.context.get("ring");
    match (ring, sent) {
        (None, None) => None,
        (Some(r), Some(v)) if v.as_str() == Some(r.as_str()) => None,
        (ring, _) => {
            let mut owned = action.clone();
            if let serde_json::Value::Object(map) = &mut owned.context {
                match ring {
                    Some(r) => {
                        map.insert("ring".into(), r.as_str().into());
                    }
                    None => {
                        map.remove("ring");
                    }
                }
            }
            Some(owned)
        }
    }
}

/// Whether `name` is in Warden's own `warden.*` namespace, in any letter case.
fn reserved(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

/// Room for one more breaker in a full table: first the closed ones with nothing counted
/// go, then — a flood of keys, each with a failure — every closed one (forgetting a few
/// failures is better than watching no new key). `false` when only open breakers are left.
fn make_room<K: std::hash::Hash + Eq, S: std::hash::BuildHasher>(
    breakers: &mut std::collections::HashMap<K, Breaker, S>,
    now: u64,
    max: usize,
) -> bool {
    if breakers.len() >= max {
        breakers.retain(|_, b| !matches!(b.state(now), BreakerState::Closed { failures: 0, .. }));
    }
    if breakers.len() >= max {
        breakers.retain(|_, b| !matches!(b.state(now), BreakerState::Closed { .. }));
    }
    breakers.len() < max
}
