//! `tiers:` in YAML rules: the rule applies only when the agent's trust tier — written by
//! Warden into `context.tier` after verifying the agent — is listed; unknown names are load
//! errors with a hint.

use warden_core::{Action, Verdict};
use warden_policy::PolicySet;

const POLICY: &str = "rules:\n  - id: partners\n    action: pay\n    allow: true\n    tiers: [trusted, verified_partner]\n";

#[test]
fn a_tier_rule_applies_only_to_listed_tiers() {
    let set = PolicySet::from_yaml("t.yaml", POLICY).unwrap();
    let pay = |tier: Option<&str>| {
        let mut a = Action::new("pay");
        if let Some(t) = tier {
            a = a.with_context("tier", t);
        }
        set.decide(&a).verdict
    };
    assert_eq!(pay(Some("trusted")), Verdict::Allow);
    assert_eq!(pay(Some("verified_partner")), Verdict::Allow);
    assert_eq!(pay(Some("standard")), Verdict::Deny);
    assert_eq!(pay(None), Verdict::Deny);
    let e = set.explain(&Action::new("pay").with_context("tier", "standard"));
    let text = format!("{e:?}");
    assert!(text.contains("tier `standard` is not in `tiers`"), "{text}");
}

#[test]
fn unknown_tiers_are_load_errors() {
    let e = PolicySet::from_yaml("t.yaml", &POLICY.replace("trusted,", "trustd,")).unwrap_err();
    assert!(
        e.to_string().contains("t.yaml:5:13: unknown tier `trustd`"),
        "{e}"
    );
    let debug = format!("{e:?}");
    assert!(debug.contains("did you mean `trusted`?"), "{debug}");
}
