//! What `warden policy explain` reports: every rule, whether it applied, and why.

use std::sync::Arc;

use serde::Serialize;
use warden_core::{Decision, Verdict};

/// Whether a rule applied to the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every condition of the rule held.
    Matched,
    /// Some condition did not hold; `detail` says which.
    NotMatched,
    /// A condition could not be evaluated; the rule restricts, so this denies.
    Error,
}

/// One rule's part in a decision.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    /// The document the rule is in.
    pub policy: Arc<str>,
    /// The rule id.
    pub rule: Arc<str>,
    /// What the rule says when it applies.
    pub verdict: Verdict,
    /// Whether it applied.
    pub status: Status,
    /// Why (or why not), in words.
    pub detail: String,
    /// True for the rule that decided.
    pub decided: bool,
}

/// A decision with the trace of every rule that was considered.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The decision, exactly as `decide` makes it.
    pub decision: Decision,
    /// Every rule of every document, in order.
    pub rules: Vec<RuleTrace>,
    /// What was read from the action (commands, paths, intent labels), when it has a command
    /// or path arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub understood: Option<crate::understand::Understanding>,
    /// Goal drift (`context.drift`: 1 − cosine similarity of the declared task and the
    /// action, in [0, 2]) when Warden measured it (a task was declared and a model is
    /// configured); the policy engines do not compute it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<f64>,
    /// What cross-model verification would do with an allow by a rule with `verify:`, filled
    /// in by Warden (the engines do not ask verifiers): `{quorum, max_drift, verifiers:
    /// [{verifier, vote, reason}]}`, where `vote` is `yes`/`no` for the verifiers Warden asks
    /// without the network (`rules`, `local_model`) and `not asked` for an endpoint (explain
    /// never calls the network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<serde_json::Value>,
    /// What Warden's memory guard would do with a `memory.write` (or check for a
    /// `memory.read`), filled in by Warden without writing anything: see `docs/memory.md`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<serde_json::Value>,
}
