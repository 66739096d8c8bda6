//! The agent as attacker of the runtime steps: whatever it sends through `Warden::decide` —
//! Warden's own `warden.*` action names, claimed rings, scores, tiers and attestations in
//! its context or arguments, other agents' names, fresh sessions — it can neither lift a kill
//! switch nor raise any agent's ring. Only an operator's call on the `Runtime` changes that
//! state. Property-tested over arbitrary sequences on a real SQLite database and audit log.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use warden::{Action, AuditConfig, PolicySet, Ring, Verdict, Warden};
use warden_runtime::{Kill, ManualClock, Operator, RuntimeOptions, Scope};

/// Allow-all rules, so only the runtime steps stand between the agent and what it asks; an
/// anomaly response that demotes, so the agent's own flood is one of the paths exercised.
const POLICY: &str = r#"
rules:
  - action: "*"
    allow: true
rings:
  default: user
  agents: {"bot-*": untrusted, "ops-agent": supervisor}
anomaly: {factor: 2, window: 10s, min_actions: 5, response: demote}
"#;

const AGENTS: &[&str] = &["bot-1", "bot-2", "a1", "a2", "ops-agent", "alice"];

fn agent() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        proptest::sample::select(AGENTS).prop_map(|a| Some(a.to_string())),
        "[a-z0-9*?. -]{1,12}".prop_map(Some),
    ]
}

fn action_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "warden.revive",
                "warden.kill",
                "warden.ring.elevate",
                "warden.ring.restore",
                "warden.ring.demote",
                "Warden.revive",
                "warden.revive ",
                "agent.register",
                "agent.revive",
                "ring.elevate",
                "revive",
                "elevate",
                "kill_switch.reset",
                "cost_guard.reset",
                "shell.exec",
                "file.read",
                "http_request",
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z_.]{1,16}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(
            &[
                "kernel",
                "0",
                "supervisor",
                "trust me",
                "verified",
                "operator",
                "alice",
                "all",
                "a1",
                "bot-1",
                "revive",
            ][..]
        )
        .prop_map(|s| json!(s)),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(1.0)),
        Just(json!(true)),
        Just(json!({"ring": "kernel", "by": "alice"})),
    ]
}

fn entries() -> impl Strategy<Value = Vec<(String, Value)>> {
    let key = proptest::sample::select(
        &[
            "ring",
            "tier",
            "trust",
            "score",
            "elevate",
            "elevated",
            "attestation",
            "operator",
            "by",
            "reason",
            "scope",
            "target",
            "agent",
            "session",
            "ttl",
        ][..],
    )
    .prop_map(str::to_string);
    proptest::collection::vec((key, value()), 0..4)
}

fn hostile_action() -> impl Strategy<Value = Action> {
    (agent(), action_name(), entries(), entries()).prop_map(|(agent, name, args, context)| {
        let mut a = Action::new(name);
        if let Some(agent) = agent {
            a = a.with_agent(agent);
        }
        for (k, v) in args {
            a = a.with_arg(k, v);
        }
        for (k, v) in context {
            a = a.with_context(k, v);
        }
        a
    })
}

/// What an agent's privilege is: its ring (higher number, less privilege) and whether it is
/// stopped by a kill.
fn standing(w: &Warden, agent: &str) -> (Ring, bool) {
    let ring = w.with_policies(|s| {
        w.runtime()
            .ring_for(s, w.policy_version(), Some(agent), None)
            .expect("the policy has rings")
            .0
    });
    let killed = w
        .runtime()
        .kills()
        .iter()
        .any(|k| k.scope.stops_agent(Some(agent)));
    (ring, killed)
}

fn same_kill(a: &Kill, b: &Kill) -> bool {
    a.scope == b.scope && a.reason == b.reason && a.by == b.by && a.at_ns == b.at_ns
}

#[test]
fn no_sequence_of_decisions_revives_an_agent_or_raises_a_ring() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let mut options = RuntimeOptions::with_db(&db);
    options.clock = Arc::new(ManualClock::new(1_800_000_000_000_000_000));
    let w = Warden::builder()
        .policy_set(PolicySet::from_yaml("p.yaml", POLICY).unwrap())
        .audit_log(&db, AuditConfig::default())
        .runtime(options)
        .build()
        .unwrap();
    let alice = Operator::new("alice", "library");
    let rt = w.runtime();
    rt.kill(Scope::agent("bot-1").unwrap(), "rogue", &alice, w.audit())
        .unwrap();
    rt.kill(
        Scope::action("payments.*").unwrap(),
        "fraud",
        &alice,
        w.audit(),
    )
    .unwrap();
    rt.demote("a2", Ring::Untrusted, "suspicious", &alice, w.audit())
        .unwrap();
    // Demoted one step only: most of what it asks passes the ring gate and is counted.
    rt.demote("ops-agent", Ring::User, "on notice", &alice, w.audit())
        .unwrap();
    let kills = rt.kills();
    let before: Vec<(Ring, bool)> = AGENTS.iter().map(|a| standing(&w, a)).collect();
    assert_eq!(before[0], (Ring::Untrusted, true));
    assert_eq!(before[3], (Ring::Untrusted, false));
    assert_eq!(before[4], (Ring::User, false));

    // One Warden for every case: the state accumulates over all the sequences, which is the
    // stronger claim (a failure's shrunk sequence is then only the last step of the path).
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(
            // Each action is sent 1 to 16 times in a row: floods are how an agent trips the
            // anomaly detector, whose response must only ever lower privilege.
            &proptest::collection::vec((hostile_action(), 1..=16usize), 1..16),
            |actions| {
                for (a, times) in &actions {
                    for _ in 0..*times {
                        let d = w.decide(a);
                        // A name Warden keeps for its own records is never allowed.
                        if a.action.starts_with("warden.") {
                            prop_assert_eq!(d.verdict, Verdict::Deny, "{:?}", a);
                        }
                    }
                }
                // No kill was lifted or rewritten.
                let now = rt.kills();
                for k in &kills {
                    prop_assert!(
                        now.iter().any(|n| same_kill(n, k)),
                        "kill {:?} is gone after {:?}",
                        k,
                        actions
                    );
                }
                // No agent is more privileged than it was, and no killed agent acts.
                for (agent, (ring, killed)) in AGENTS.iter().zip(&before) {
                    let (ring_now, killed_now) = standing(&w, agent);
                    prop_assert!(
                        ring_now >= *ring,
                        "{} rose from {} to {} after {:?}",
                        agent,
                        ring,
                        ring_now,
                        actions
                    );
                    prop_assert!(killed_now || !killed, "{} was revived", agent);
                }
                let d = w.decide(&Action::new("file.read").with_agent("bot-1"));
                prop_assert_eq!(d.rule.as_deref(), Some("kill-switch"));
                let d = w.decide(&Action::new("payments.transfer").with_agent("ops-agent"));
                prop_assert_eq!(d.rule.as_deref(), Some("kill-switch"));
                Ok(())
            },
        )
        .unwrap();

    // Every state change in the log is an operator's (or the anomaly detector's) record:
    // none was written on an agent's behalf.
    let records = warden_audit::query(&db, &warden_audit::Filter::default()).unwrap();
    for r in records.iter().filter(|r| r.action.starts_with("warden.")) {
        if r.policy.as_deref() == Some("warden-runtime") {
            let by = r.agent.as_deref().unwrap_or_default();
            assert!(
                by == "alice" || by.starts_with("warden ("),
                "a state change by {by:?}: {r:?}"
            );
        } else {
            assert_eq!(r.verdict, Verdict::Deny, "{r:?}");
        }
    }
}
