#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use warden_core::{Action, Decision, Match, Policy, PolicyError, Verdict};
pub use warden_policy::{Explanation, LoadError, PolicySet};

/// The gate every action passes: policies in, one [`Decision`] out.
///
/// `decide` takes `&self` and locks nothing: the active [`PolicySet`] sits behind an
/// [`ArcSwap`], so a reload swaps it atomically while decisions keep running on the old one
/// until they finish. There is never a moment without a set.
pub struct Warden {
    policies: ArcSwap<PolicySet>,
}

impl Warden {
    /// A Warden judging with `policies`.
    pub fn new(policies: PolicySet) -> Self {
        Warden {
            policies: ArcSwap::from_pointee(policies),
        }
    }

    /// Load policy files or directories; any problem in any file is an error.
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        PolicySet::load(paths).map(Warden::new)
    }

    /// Judge one action. Never fails and never panics outward: a malformed action, an
    /// evaluation error or a panic inside an engine is a `Deny` whose reason names the cause.
    pub fn decide(&self, action: &Action) -> Decision {
        let start = Instant::now();
        let mut decision = match action.validate() {
            Err(e) => Decision::deny(format!("denied: {e}")),
            Ok(()) => {
                let set = self.policies.load();
                catch_unwind(AssertUnwindSafe(|| set.decide(action))).unwrap_or_else(|_| {
                    Decision::deny("denied: the policy engine failed internally (panic)")
                })
            }
        };
        decision.elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        decision
    }

    /// Judge an action and report every rule's part in the decision.
    pub fn explain(&self, action: &Action) -> Explanation {
        let start = Instant::now();
        let mut e = self.policies.load().explain(action);
        if let Err(err) = action.validate() {
            e.decision = Decision::deny(format!("denied: {err}"));
        }
        e.decision.elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        e
    }

    /// The active policy set.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.load_full()
    }

    /// Replace the active policy set atomically (hot reload). Decisions already running
    /// finish on the set they started with.
    pub fn replace_policies(&self, policies: PolicySet) {
        self.policies.store(Arc::new(policies));
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
        assert_eq!(w.decide(&Action::new("execute_code")).verdict, Verdict::Deny);
        let open = "rules:\n  - action: execute_code\n    allow: true\n";
        w.replace_policies(PolicySet::from_yaml("open.yaml", open).unwrap());
        assert_eq!(w.decide(&Action::new("execute_code")).verdict, Verdict::Allow);
    }
}
