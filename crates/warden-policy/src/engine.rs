//! The YAML policy engine: rules compiled into an index, evaluated without locks.
//!
//! Rules naming exact actions are indexed by name; rules with a glob anywhere in `action` are
//! compiled into one matcher (`glob_index`) that names the few that can apply. Both lists are sorted strongest-first (deny,
//! then require approval, then allow; file order within each), so the first rule that applies
//! is the deciding one and evaluation stops there — except that after an approval rule
//! applies, the remaining approval rules are still checked, because one of them failing to
//! evaluate means deny whatever the order of the rules.

use std::collections::HashMap;
use std::sync::Arc;

use warden_core::{Action, Match, Policy, PolicyError, Verdict};

use crate::backend::Backend;
use crate::explain::{RuleTrace, Status};
use crate::glob_index::GlobIndex;
use crate::rule::{Check, Rule};
use crate::source::Watched;
use crate::understand::Facts;

/// A compiled YAML policy document.
#[derive(Debug)]
pub struct YamlPolicy {
    name: Arc<str>,
    default: Verdict,
    rules: Vec<Rule>,
    /// Exact action name → indexes into `rules`, strongest first.
    exact: HashMap<Box<str>, Vec<u32>>,
    /// Rules with a glob in `action`, compiled into one matcher. (Boxed: a `GlobSet` is
    /// large, and documents are enum values.)
    globbed: Box<GlobIndex>,
    /// The file it was read from.
    sources: [Watched; 1],
    /// What the document says about rings, rate limits, breakers and anomalies.
    runtime: crate::runtime::RuntimeSections,
    /// Rules with `verify:` and their ids (looked up for every allow the document decides;
    /// few rules ask, and an empty list costs nothing).
    verifying: Vec<(Arc<str>, Arc<crate::verify::Verify>)>,
}

/// Strongest verdict first, then file order.
fn priority(rule: &Rule) -> (std::cmp::Reverse<Verdict>, usize) {
    (std::cmp::Reverse(rule.verdict()), rule.index)
}

impl YamlPolicy {
    pub(crate) fn new(name: Arc<str>, default: Verdict, rules: Vec<Rule>, file: Watched) -> Self {
        let mut exact: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut globbed = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 4 billion rules");
            if rule.actions.iter().all(|p| p.exact().is_some()) {
                for name in rule.actions.iter().filter_map(|p| p.exact()) {
                    let bucket = exact.entry(name.into()).or_default();
                    // `i` only grows, so a repeat can only be the last entry (a scan of the
                    // whole bucket made 20k rules on one action quadratic).
                    if bucket.last() != Some(&i) {
                        bucket.push(i);
                    }
                }
            } else {
                globbed.push(i);
            }
        }
        let by_priority = |list: &mut Vec<u32>| list.sort_by_key(|&i| priority(&rules[i as usize]));
        exact.values_mut().for_each(by_priority);
        by_priority(&mut globbed);
        let globbed = Box::new(GlobIndex::new(&rules, globbed));
        let verifying = rules
            .iter()
            .filter_map(|r| Some((r.id().clone(), r.verify.clone()?)))
            .collect();
        YamlPolicy {
            verifying,
            name,
            default,
            rules,
            exact,
            globbed,
            sources: [file],
            runtime: crate::runtime::RuntimeSections::default(),
        }
    }

    /// The `verify:` of rule `id`.
    pub(crate) fn verify_of(&self, id: &str) -> Option<Arc<crate::verify::Verify>> {
        self.verifying
            .iter()
            .find(|(rule, _)| &**rule == id)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn verifies(&self) -> bool {
        !self.verifying.is_empty()
    }

    pub(crate) fn with_runtime(mut self, runtime: crate::runtime::RuntimeSections) -> Self {
        self.runtime = runtime;
        self
    }

    /// Whether any rule's `when` reads `context`.
    pub fn reads_context(&self) -> bool {
        self.rules.iter().any(|r| {
            r.when
                .as_ref()
                .is_some_and(crate::condition::Condition::reads_context)
        })
    }

    /// What the document says about rings, rate limits, breakers and anomalies.
    pub fn runtime(&self) -> &crate::runtime::RuntimeSections {
        &self.runtime
    }
}

impl Backend for YamlPolicy {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn default_verdict(&self) -> Verdict {
        self.default
    }

    fn rule_count(&self) -> usize {
        self.rules.len()
    }

    fn sources(&self) -> &[Watched] {
        &self.sources
    }

    /// Every rule's verdict on `action`, in file order.
    fn trace(&self, action: &Action) -> Vec<RuleTrace> {
        let facts = Facts::new(action);
        self.rules
            .iter()
            .map(|rule| {
                let (status, detail) = match rule.check_all(&facts) {
                    Check::Applies => (Status::Matched, rule.outcome.reason.to_string()),
                    Check::Miss(m) => (Status::NotMatched, rule.explain_miss(m, &facts)),
                    Check::Error(e) => (Status::Error, e),
                };
                RuleTrace {
                    policy: self.name.clone(),
                    rule: rule.id().clone(),
                    verdict: rule.verdict(),
                    status,
                    detail,
                    decided: false,
                }
            })
            .collect()
    }
}

impl Policy for YamlPolicy {
    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        if self.globbed.is_empty() {
            return self.decide(action, &[]);
        }
        self.decide(action, &self.globbed.candidates(&action.action))
    }
}

impl YamlPolicy {
    /// The decision over the rules indexed under `action`'s exact name and the glob rules in
    /// `globbed` (strongest first; a superset of those whose patterns match the name).
    fn decide(&self, action: &Action, globbed: &[u32]) -> Result<Option<Match>, PolicyError> {
        let exact: &[u32] = self
            .exact
            .get(action.action.as_str())
            .map_or(&[], Vec::as_slice);
        let (mut e, mut g) = (exact.iter().peekable(), globbed.iter().peekable());
        // Parsed on first use by a rule that needs it, once for the whole document.
        let facts = Facts::new(action);
        // An approval that applied; kept while the other approval rules are checked for errors.
        let mut approval: Option<&Rule> = None;
        // Merge the two priority-sorted lists; the first rule that applies decides.
        loop {
            let (i, needs_name_check) = match (e.peek(), g.peek()) {
                (None, None) => return Ok(approval.map(|r| r.outcome.clone())),
                (Some(&&a), Some(&&b)) => {
                    if priority(&self.rules[a as usize]) <= priority(&self.rules[b as usize]) {
                        e.next();
                        (a, false)
                    } else {
                        g.next();
                        (b, true)
                    }
                }
                (Some(&&a), None) => {
                    e.next();
                    (a, false)
                }
                (None, Some(&&b)) => {
                    g.next();
                    (b, true)
                }
            };
            let rule = &self.rules[i as usize];
            if let Some(found) = approval
                && rule.verdict() != Verdict::RequireApproval
            {
                return Ok(Some(found.outcome.clone()));
            }
            let check = if needs_name_check {
                rule.check_all(&facts)
            } else {
                rule.check(&facts)
            };
            match check {
                // Errors deny, so whether one approval rule errors must not depend on whether
                // another approval rule happened to be written first: check them all.
                Check::Applies if rule.verdict() == Verdict::RequireApproval => {
                    approval = approval.or(Some(rule));
                }
                Check::Applies => return Ok(Some(rule.outcome.clone())),
                Check::Miss(_) => {}
                Check::Error(why) => {
                    return Err(PolicyError::new(&*self.name, &**rule.id(), why));
                }
            }
        }
    }

    /// The decision as it was made before the glob index: every glob rule tried in order.
    #[cfg(test)]
    pub(crate) fn evaluate_by_scan(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        self.decide(action, self.globbed.all())
    }

    #[cfg(test)]
    pub(crate) fn glob_candidates(&self, name: &str) -> Vec<u32> {
        self.globbed.candidates(name)
    }

    #[cfg(test)]
    pub(crate) fn glob_rules(&self) -> &[u32] {
        self.globbed.all()
    }

    /// Whether any `action` pattern of rule `i` matches `name` (each pattern on its own).
    #[cfg(test)]
    pub(crate) fn rule_matches_name(&self, i: u32, name: &str) -> bool {
        self.rules[i as usize]
            .actions
            .iter()
            .any(|p| p.matches(name))
    }
}
