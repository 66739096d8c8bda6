//! Steps 2 (identity) and 6 (trust update) of the decision path.
//!
//! Why here and not in the doors: every door (CLI, HTTP, hook, MCP proxy) hands `decide` an
//! action whose `context` the caller wrote. The fields that say *who* the agent is and *how
//! much it is trusted* must come from Warden alone, so this step runs inside `decide` for
//! every action, whatever the door:
//!
//! - `context.credential` (a delegation chain's JSON) is the one way an action carries an
//!   identity. It is verified (cached by content, re-checked for expiry and revocation),
//!   the action must be inside its capabilities, and then it is *removed* from the action;
//! - `agent` becomes the verified DID, and `context.identity`, `context.trust`,
//!   `context.tier` are written by Warden — whatever the caller put there is dropped, with or
//!   without a credential, so a policy reading them can never be fooled;
//! - after the policy decided, the verified agent's score moves on that decision (what
//!   Warden observed, never what the agent reports), and the change is written into the
//!   action as `context.trust_change`, so the decision's audit record carries it.
//!
//! Any failure — a bad credential, an unreadable trust score, a trust update that cannot be
//! recorded — is a deny with the reason.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use warden_core::{Action, Decision, Verdict};
use warden_identity::{Revocations, Verified, Verifier};
use warden_policy::runtime::Ring;
use warden_runtime::TrustTier;
use warden_trust::{Outcome, Score, Tier, TrustStore};

/// The context keys only Warden writes (and `credential`, which only Warden reads).
pub const RESERVED_CONTEXT: [&str; 5] = ["credential", "identity", "trust", "tier", "trust_change"];

/// Identity and trust for one Warden: what is required, whom to trust, where scores live.
#[derive(Default)]
pub struct ZeroTrust {
    pub(crate) required: bool,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) trust: Option<TrustStore>,
    pub(crate) revocations: Option<Arc<Revocations>>,
}

impl std::fmt::Debug for ZeroTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroTrust")
            .field("required", &self.required)
            .field("verifier", &self.verifier.is_some())
            .field("trust", &self.trust)
            .finish()
    }
}

/// Who step 2 verified, for step 6.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    verified: Arc<Verified>,
    /// The agent's trust tier when step 2 read its score (scores are kept).
    tier: Option<TierGate>,
}

impl Subject {
    /// The tier for the ring gate (step 3): falling trust demotes.
    pub(crate) fn tier(&self) -> Option<&dyn TrustTier> {
        self.tier.as_ref().map(|t| t as &dyn TrustTier)
    }

    /// The identities behind the agent: the chain's root and every agent that delegated
    /// along it. A kill or a demotion of any of them holds for the agent too.
    pub(crate) fn behind(&self) -> Vec<&str> {
        let ids = &self.verified.identities;
        ids[..ids.len().saturating_sub(1)]
            .iter()
            .map(|d| d.as_str())
            .collect()
    }

    /// The agent's trust as policies and the ring gate see it: its own score, but never
    /// above that of any agent that delegated to it (a fresh key an agent delegates to
    /// itself starts no higher than the agent). The root is the operator's, not scored.
    fn effective_score(&self, trust: &TrustStore) -> Result<Score, warden_trust::TrustError> {
        let v = &self.verified;
        let mut score = trust.score(v.subject.as_str(), v.ceiling)?;
        let ids = &v.identities;
        for id in ids.iter().skip(1).take(ids.len().saturating_sub(2)) {
            let theirs = trust.score(id.as_str(), v.ceiling)?;
            if theirs.value < score.value {
                score = theirs;
            }
        }
        Ok(score)
    }
}

/// A verified agent's tier as the ring gate compares it with a demotion's bar.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TierGate(Tier);

impl TrustTier for TierGate {
    fn name(&self) -> &str {
        self.0.as_str()
    }

    fn is_below(&self, bar: &str) -> bool {
        // A bar that names no tier is one the agent has not cleared (policies are checked
        // at load, so this is only a safeguard).
        bar.parse::<Tier>().ok().is_none_or(|bar| self.0 < bar)
    }
}

impl ZeroTrust {
    /// The trust store, when scores are kept.
    pub fn trust(&self) -> Option<&TrustStore> {
        self.trust.as_ref()
    }

    /// The verifier, when roots are configured.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.verifier.as_ref()
    }

    /// The revocation list, when there is a database.
    pub fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.revocations.as_ref()
    }

    /// Step 2. `Ok(Some)`: a verified agent; `Ok(None)`: no identity (allowed only when not
    /// required); `Err`: the deny. The action is rewritten as described in the module docs.
    pub(crate) fn admit(&self, action: &mut Cow<'_, Action>) -> Result<Option<Subject>, Decision> {
        let presented = action.context.get("credential");
        let Some(presented) = presented else {
            // A DID is a claim only a credential makes: without one, an agent named like a
            // DID would share that identity's kill state, ring, buckets and breakers (take
            // over its elevation, drain its rate, get it killed by the anomaly detector).
            if self.verifier.is_some()
                && let Some(agent) = action.agent.as_deref()
                && agent
                    .trim_start()
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("did:"))
            {
                return Err(Decision::deny(format!(
                    "denied: agent `{}` is named by a DID, but the action carries no credential \
                     (context.credential) proving it",
                    agent.escape_debug()
                )));
            }
            if self.required {
                return Err(Decision::deny(
                    "denied: this Warden requires a verified identity, and the action carries \
                     no credential (context.credential)",
                ));
            }
            if carries_reserved(action) {
                let clean = rewrite(action, None);
                *action = Cow::Owned(clean);
            }
            return Ok(None);
        };
        let Some(verifier) = &self.verifier else {
            return Err(Decision::deny(
                "denied: the action carries a credential, but this Warden trusts no roots, so \
                 no credential can be verified",
            ));
        };
        let now = warden_identity::unix_now();
        let verified = match verifier.verify_presented(presented, now) {
            Ok(v) => v,
            Err(e) => {
                let clean = rewrite(action, None);
                *action = Cow::Owned(clean);
                return Err(Decision::deny(format!(
                    "denied: the credential does not verify: {e}"
                )));
            }
        };
        let mut subject = Subject {
            verified,
            tier: None,
        };
        let mut judged = rewrite(action, Some(&subject.verified));
        if let Some(trust) = &self.trust {
            match subject.effective_score(trust) {
                Ok(score) => {
                    subject.tier = Some(TierGate(score.tier));
                    // Key order (see `rewrite`).
                    insert(&mut judged.context, "tier", json!(score.tier.as_str()));
                    insert(&mut judged.context, "trust", json!(score.value));
                }
                Err(e) => {
                    *action = Cow::Owned(judged);
                    return Err(Decision::deny(format!(
                        "denied: the agent's trust score cannot be read: {e}"
                    )));
                }
            }
        }
        *action = Cow::Owned(judged);
        if !subject.verified.allows(&action.action) {
            let mut d = Decision::deny(format!(
                "denied: action `{}` is outside the credential's capabilities ({})",
                action.action, subject.verified.capabilities
            ));
            // Asking beyond one's own authority is a violation Warden observed.
            self.observe(&subject, action, &mut d, Outcome::Violation);
            return Err(d);
        }
        Ok(Some(subject))
    }

    /// Step 2 without its verdicts, for the calls around a decision (a call's outcome, its
    /// place among the running calls): `Some` with the action rewritten as the verified DID
    /// when it carries a credential that verifies (and, with `covered`, whose capabilities
    /// cover the action); `None` otherwise. Nothing
    /// is counted against the agent's trust here.
    pub(crate) fn identify(&self, action: &mut Cow<'_, Action>, covered: bool) -> Option<Subject> {
        let verifier = self.verifier.as_ref()?;
        let presented = action.context.get("credential")?;
        let verified = verifier
            .verify_presented(presented, warden_identity::unix_now())
            .ok()?;
        if covered && !verified.allows(&action.action) {
            return None;
        }
        let mut subject = Subject {
            verified,
            tier: None,
        };
        if let Some(trust) = &self.trust {
            subject.tier = subject
                .effective_score(trust)
                .ok()
                .map(|s| TierGate(s.tier));
        }
        *action = Cow::Owned(rewrite(action, Some(&subject.verified)));
        Some(subject)
    }

    /// Step 6: move the verified agent's score on `decision`, note the change in the action
    /// (for the audit record), and deny if it cannot be recorded.
    pub(crate) fn update(&self, subject: &Subject, action: &mut Cow<'_, Action>, d: &mut Decision) {
        let outcome = match d.verdict {
            Verdict::Allow => Outcome::Allowed,
            Verdict::RequireApproval => Outcome::ApprovalRequired,
            // A rule said no: the agent asked for something forbidden.
            Verdict::Deny if d.rule.is_some() => Outcome::Violation,
            Verdict::Deny => Outcome::Denied,
        };
        self.observe(subject, action, d, outcome);
    }

    /// A deny before the policy (the ring gate, a rate limit) moves the verified agent's
    /// score as `outcome` says, like one the policy gave.
    pub(crate) fn penalize(
        &self,
        subject: &Subject,
        action: &mut Cow<'_, Action>,
        d: &mut Decision,
        outcome: Outcome,
    ) {
        self.observe(subject, action, d, outcome);
    }

    fn observe(
        &self,
        subject: &Subject,
        action: &mut Cow<'_, Action>,
        d: &mut Decision,
        outcome: Outcome,
    ) {
        let Some(trust) = &self.trust else {
            return;
        };
        let v = &subject.verified;
        match trust.observe(
            v.subject.as_str(),
            outcome,
            v.ceiling,
            &action.action,
            &d.reason,
        ) {
            Ok(None) => {}
            Ok(Some(change)) => {
                // Key order (see `rewrite`), maps sized up front.
                let mut note = Map::with_capacity(3);
                note.insert("from".into(), Value::from(change.from));
                note.insert("outcome".into(), Value::from(outcome.as_str()));
                note.insert("to".into(), Value::from(change.to));
                let note = Value::Object(note);
                insert(&mut action.to_mut().context, "trust_change", note);
            }
            Err(e) => {
                let version = d.policy_version;
                *d = Decision::deny(format!(
                    "denied: the agent's trust score could not be updated: {e}"
                ));
                d.policy_version = version;
            }
        }
    }
}

fn carries_reserved(action: &Action) -> bool {
    action
        .context
        .as_object()
        .is_some_and(|m| !m.is_empty() && RESERVED_CONTEXT.iter().any(|k| m.contains_key(*k)))
}

/// The action without the reserved context keys; with `verified`, as that agent.
fn rewrite(action: &Action, verified: Option<&Verified>) -> Action {
    // Maps sized up front: grown one insert at a time, the seven inserts of a verified
    // agent's rewrite rehashed and reallocated their way to a third of a cached identity
    // step's instructions (callgrind).
    // Room for `identity` here and `tier`, `trust`, `trust_change` later (step 2 and 6).
    let given = action.context.as_object();
    let mut context = Map::with_capacity(given.map_or(0, Map::len) + 4);
    if let Some(m) = given {
        for (k, v) in m {
            if !RESERVED_CONTEXT.contains(&k.as_str()) {
                context.insert(k.clone(), v.clone());
            }
        }
    }
    let mut agent = action.agent.clone();
    if let Some(v) = verified {
        agent = Some(v.subject.to_string());
        // Built once per verified chain, in key order (as the record's canonical JSON
        // writes it: an object already in order is written without sorting).
        context.insert("identity".into(), v.summary().clone());
    }
    Action {
        agent,
        action: action.action.clone(),
        tool: action.tool.clone(),
        args: action.args.clone(),
        resource: action.resource.clone(),
        context: Value::Object(context),
    }
}

fn insert(context: &mut Value, key: &str, value: Value) {
    if let Value::Object(m) = context {
        m.insert(key.to_string(), value);
    }
}

impl crate::Warden {
    /// Identity and trust: the verifier, the trust store and the revocation list this
    /// Warden uses (for doors that serve handshakes or show scores).
    pub fn zero_trust(&self) -> &ZeroTrust {
        &self.zero_trust
    }
}

/// Build steps 2 and 6 from settings. `db` is the Warden database (the audit log's file):
/// revocations and trust scores live there, so without it neither is kept. The error is
/// the reason, which the builder wraps (so this module does not depend on the builder).
pub(crate) fn build(
    config: warden_trust::Config,
    db: Option<&std::path::Path>,
    durable: bool,
) -> Result<ZeroTrust, String> {
    let id = &config.identity;
    if id.required && id.roots.is_empty() {
        return Err(
            "an identity is required, but no trusted roots are configured: no action could \
             ever be allowed"
                .into(),
        );
    }
    let revocations = match db {
        Some(path) => Some(Arc::new(
            Revocations::open(path).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let verifier = (!id.roots.is_empty()).then(|| {
        let mut options = warden_identity::VerifyOptions::trusting(id.roots.iter().cloned());
        options.audiences = id.audiences.clone();
        options.allow_classical = id.allow_classical;
        if let Some(d) = id.max_chain_depth {
            options.max_depth = d;
        }
        if let Some(l) = id.max_lifetime {
            options.max_lifetime = l.as_secs();
        }
        Verifier::new(options, revocations.clone())
    });
    let trust = match (db, &verifier) {
        (Some(path), Some(_)) => {
            let mut store = TrustStore::open(path, config.trust)
                .map_err(|e| e.to_string())?
                .durable(durable);
            if let Some(r) = &revocations {
                store = store.with_revocations(r.clone());
            }
            Some(store)
        }
        _ => None,
    };
    Ok(ZeroTrust {
        required: id.required,
        verifier,
        trust,
        revocations,
    })
}

/// What an operator sees about one agent (the dashboard's Agents page): its ring and why,
/// its trust when scores are kept and it has one, and the kill switch that stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// The agent.
    pub agent: String,
    /// Its ring now, with how it got there; `None` without `rings:`.
    pub ring: Option<(Ring, String)>,
    /// Its trust now; `None` when this Warden keeps no scores or the agent has none.
    pub trust: Option<AgentTrust>,
    /// Why a kill switch stops it, if one does.
    pub killed: Option<String>,
}

/// An agent's trust as [`AgentStatus`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTrust {
    /// 0–1000.
    pub score: u16,
    /// Its tier.
    pub tier: Tier,
    /// Revoked until an operator restores it.
    pub revoked: bool,
}

impl From<warden_trust::Score> for AgentTrust {
    fn from(s: warden_trust::Score) -> AgentTrust {
        AgentTrust {
            score: s.value,
            tier: s.tier,
            revoked: s.revoked,
        }
    }
}

impl crate::Warden {
    /// The status of `agent`: its ring as the ring gate places it (`trust`'s tier counted),
    /// its trust as given (the caller reads scores once for every agent it lists, e.g. with
    /// the trust store's `agents`; a name nobody scored has no trust to show) and its kill
    /// switch. Read-only.
    pub fn agent_status(&self, agent: &str, trust: Option<AgentTrust>) -> AgentStatus {
        let gate = trust.as_ref().map(|t| TierGate(t.tier));
        let active = self.policies.load();
        let ring = self
            .runtime()
            .ring_for(
                &active.set,
                active.version,
                Some(agent),
                gate.as_ref().map(|g| g as &dyn TrustTier),
            )
            .map(|(ring, placement)| (ring, placement.describe()));
        let killed = self.runtime().snapshot().killed_agent(agent);
        AgentStatus {
            agent: agent.to_string(),
            ring,
            trust,
            killed,
        }
    }

    /// Whether the policies in force place agents in rings (`rings:`).
    pub fn has_rings(&self) -> bool {
        let active = self.policies.load();
        self.runtime()
            .ring_for(&active.set, active.version, None, None)
            .is_some()
    }
}
