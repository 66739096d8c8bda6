//! A compiled rule and how it judges one action.
//!
//! A rule *applies* when every condition it states holds: action name, tool, agent, host,
//! method and `when`. When a condition cannot be evaluated (a malformed URL, a CEL error), the
//! rule fails closed: a rule that could only restrict (deny, require approval) reports an
//! error, which denies; an allow rule simply does not allow.

use std::sync::Arc;

use warden_core::{Action, Match, Verdict};

use crate::condition::Condition;
use crate::domain::{self, DomainPattern, Target};
use crate::pattern::Pattern;

/// A rule ready to evaluate.
#[derive(Debug)]
pub(crate) struct Rule {
    /// Position in its document (0-based), the tie-breaker between rules of equal strength.
    pub index: usize,
    pub actions: Vec<Pattern>,
    pub tools: Option<Vec<Pattern>>,
    pub agents: Option<Vec<Pattern>>,
    /// Trust tier names; the rule applies only to an agent whose `context.tier` (written by
    /// Warden after verifying it) is one of them.
    pub tiers: Option<Vec<Box<str>>>,
    pub domains: Option<Vec<DomainPattern>>,
    /// Upper-case method names.
    pub methods: Option<Vec<Box<str>>>,
    pub when: Option<Condition>,
    /// What the rule produces when it applies; its verdict, ids and reason never change.
    pub outcome: Match,
}

/// Why a rule did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    Action,
    Tool,
    Agent,
    /// No verified tier, or one outside `tiers`.
    Tier,
    /// No `args.url`/`args.host`, or a host outside the list.
    Domain,
    /// The target was given but could not be parsed (an allow rule then does not apply).
    DomainInvalid,
    Method,
    When,
    /// The condition failed to run (an allow rule then does not apply).
    WhenError,
}

/// The result of checking one rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    Applies,
    Miss(Miss),
    /// The rule could not tell, and it is a restricting rule: the caller must deny.
    Error(String),
}

impl Rule {
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict
    }

    pub fn id(&self) -> &Arc<str> {
        &self.outcome.rule
    }

    /// Check everything but the action name (the engine's index already matched it).
    pub fn check(&self, action: &Action) -> Check {
        if let Some(tools) = &self.tools {
            match &action.tool {
                Some(t) if tools.iter().any(|p| p.matches(t)) => {}
                _ => return Check::Miss(Miss::Tool),
            }
        }
        if let Some(agents) = &self.agents {
            match &action.agent {
                Some(a) if agents.iter().any(|p| p.matches(a)) => {}
                _ => return Check::Miss(Miss::Agent),
            }
        }
        if let Some(tiers) = &self.tiers
            && !tier_matches(tiers, action)
        {
            return Check::Miss(Miss::Tier);
        }
        if let Some(domains) = &self.domains {
            match domain::target(action) {
                Target::Host { host, port } => {
                    if !domains.iter().any(|d| d.matches(&host, port)) {
                        return Check::Miss(Miss::Domain);
                    }
                }
                Target::Missing => return Check::Miss(Miss::Domain),
                Target::Invalid(why) => return self.fail(Miss::DomainInvalid, why),
            }
        }
        if let Some(methods) = &self.methods {
            match action.arg_str("method") {
                Some(m) if methods.iter().any(|want| want.eq_ignore_ascii_case(m)) => {}
                _ => return Check::Miss(Miss::Method),
            }
        }
        if let Some(when) = &self.when {
            match when.eval(action) {
                Ok(true) => {}
                Ok(false) => return Check::Miss(Miss::When),
                Err(why) => return self.fail(Miss::WhenError, why),
            }
        }
        Check::Applies
    }

    /// Check the action name too (for rules outside the exact-name index, and for explain).
    pub fn check_all(&self, action: &Action) -> Check {
        if !self.actions.iter().any(|p| p.matches(&action.action)) {
            return Check::Miss(Miss::Action);
        }
        self.check(action)
    }

    fn fail(&self, miss: Miss, why: String) -> Check {
        // INVARIANT: only allow rules may turn an error into "does not apply"; skipping a
        // restricting rule would let a weaker verdict through.
        if self.verdict() == Verdict::Allow {
            Check::Miss(miss)
        } else {
            Check::Error(why)
        }
    }

    /// A sentence saying why the rule did not apply to `action`, for `explain`.
    pub fn explain_miss(&self, miss: Miss, action: &Action) -> String {
        let quote = |o: Option<&str>| o.map_or_else(|| "none".to_string(), |s| format!("`{s}`"));
        match miss {
            Miss::Action => format!("action `{}` is not one this rule names", action.action),
            Miss::Tool => format!(
                "tool {} is not one this rule names",
                quote(action.tool.as_deref())
            ),
            Miss::Agent => format!(
                "agent {} is not one this rule names",
                quote(action.agent.as_deref())
            ),
            Miss::Domain => match domain::target(action) {
                Target::Host { host, .. } => format!("host `{host}` is not in `domains`"),
                _ => "no `args.url` or `args.host` to check against `domains`".to_string(),
            },
            Miss::DomainInvalid => match domain::target(action) {
                Target::Invalid(why) => format!("{why}, so `domains` cannot be satisfied"),
                _ => "the target host could not be read".to_string(),
            },
            Miss::Tier => format!(
                "tier {} is not in `tiers`",
                quote(
                    action
                        .context
                        .get("tier")
                        .and_then(serde_json::Value::as_str)
                )
            ),
            Miss::Method => format!(
                "method {} is not in `methods`",
                quote(action.arg_str("method"))
            ),
            Miss::When => "`when` is false".to_string(),
            Miss::WhenError => match self.when.as_ref().map(|w| w.eval(action)) {
                Some(Err(why)) => format!("{why}, so this allow rule does not apply"),
                _ => "`when` could not be evaluated".to_string(),
            },
        }
    }
}

/// The trust tiers a rule's `tiers:` may name, least trusted first (the names of
/// `warden_trust::Tier`; a test in `warden` holds the two lists equal).
pub const TIERS: &[&str] = &[
    "untrusted",
    "probationary",
    "standard",
    "trusted",
    "verified_partner",
];

fn tier_matches(tiers: &[Box<str>], action: &Action) -> bool {
    action
        .context
        .get("tier")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|t| tiers.iter().any(|want| &**want == t))
}
