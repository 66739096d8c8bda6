//! Verdicts, the rule matches that produce them, and the decision handed back to the caller.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What Warden says about an action.
///
/// The order is the combining order: a stronger verdict overrides a weaker one
/// (`Deny` > `RequireApproval` > `Allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The action may go ahead.
    Allow,
    /// A person must approve the action first.
    RequireApproval,
    /// The action must not happen.
    Deny,
}

impl Verdict {
    /// The name used in policies, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::RequireApproval => "require_approval",
            Verdict::Deny => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Verdict::Allow),
            "deny" => Ok(Verdict::Deny),
            "require_approval" => Ok(Verdict::RequireApproval),
            other => Err(format!(
                "unknown verdict `{other}` (expected allow, deny or require_approval)"
            )),
        }
    }
}

/// A rule that applies to an action, as reported by a policy engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// What the rule says.
    pub verdict: Verdict,
    /// The policy document the rule is in (its `name`, or the file it came from).
    pub policy: Arc<str>,
    /// The rule's id (its `id`, or its position such as `rules[2]`).
    pub rule: Arc<str>,
    /// Why, in words a person can act on.
    pub reason: Arc<str>,
    /// What the caller must also do (e.g. `redact`), in the rule's order.
    pub obligations: Arc<[Arc<str>]>,
}

/// The answer to one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow, deny or require approval.
    pub verdict: Verdict,
    /// Why, in words a person can act on.
    pub reason: Arc<str>,
    /// The deciding policy document, when a rule or a document default decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Arc<str>>,
    /// The deciding rule's id; `None` when a default or an error decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Arc<str>>,
    /// Obligations of the deciding rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<Arc<str>>,
    /// Version of the policy set that decided (starts at 1, grows with every reload; 0 when
    /// the decision was made outside a `Warden`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub policy_version: u64,
    /// Sequence number of the audit record, when the decision was audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
    /// Time spent deciding, in nanoseconds.
    pub elapsed_ns: u64,
    /// For `require_approval`: the approval request a person can answer (`warden approvals
    /// approve ID`); once approved, the same action asked again is allowed, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<Arc<str>>,
}

impl Decision {
    /// The decision a matching rule produces.
    pub fn from_match(m: &Match) -> Self {
        Decision {
            verdict: m.verdict,
            reason: m.reason.clone(),
            policy: Some(m.policy.clone()),
            rule: Some(m.rule.clone()),
            obligations: m.obligations.to_vec(),
            policy_version: 0,
            audit_seq: None,
            elapsed_ns: 0,
            approval_id: None,
        }
    }

    /// Whether a document's default decided (no rule applied): a policy said nothing about
    /// this action. Doors that can abstain (the Claude Code hook) treat such an allow as
    /// "no opinion" rather than as permission.
    pub fn is_default(&self) -> bool {
        self.rule.is_none() && self.policy.is_some()
    }

    /// A deny for a reason that is not a rule: an error, a broken policy, a failed step.
    pub fn deny(reason: impl Into<Arc<str>>) -> Self {
        Decision {
            verdict: Verdict::Deny,
            reason: reason.into(),
            policy: None,
            rule: None,
            obligations: Vec::new(),
            policy_version: 0,
            audit_seq: None,
            elapsed_ns: 0,
            approval_id: None,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stronger_verdicts_win() {
        assert!(Verdict::Deny > Verdict::RequireApproval);
        assert!(Verdict::RequireApproval > Verdict::Allow);
        let all = [Verdict::Allow, Verdict::Deny, Verdict::RequireApproval];
        assert_eq!(all.iter().max(), Some(&Verdict::Deny));
    }

    #[test]
    fn names_are_stable() {
        for (v, name) in [
            (Verdict::Allow, "allow"),
            (Verdict::Deny, "deny"),
            (Verdict::RequireApproval, "require_approval"),
        ] {
            assert_eq!(v.as_str(), name);
            assert_eq!(name.parse::<Verdict>().unwrap(), v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{name}\""));
        }
        assert!("Allow".parse::<Verdict>().is_err());
    }

    #[test]
    fn decision_json_omits_empty_parts() {
        let d = Decision::deny("policy failed to load");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"verdict":"deny","reason":"policy failed to load","elapsed_ns":0})
        );
    }
}
