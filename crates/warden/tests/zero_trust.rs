//! Steps 2 and 6 of `Warden::decide` on a real database: identity required or not, the
//! fields only Warden writes, capabilities, tiers in policies, trust that falls with denials
//! and never rises above the ceiling, revocation reaching a running Warden, and the audit
//! record saying who really asked.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::{Action, AuditConfig, PolicySet, Verdict, Warden};
use warden_audit::{Filter, query};
use warden_identity::{Chain, Grant, KeyPair, Revocations, unix_now};
use warden_trust::Config;

const POLICY: &str = r#"
name: zt
rules:
  - id: no-code
    action: execute_code
    allow: false
  - id: fetch
    action: http_request
    allow: true
  - id: partners-pay
    action: payments.transfer
    allow: true
    tiers: [trusted, verified_partner]
  - id: trust-gate
    action: deploy
    allow: true
    when: "context.trust >= 700"
"#;

struct Setup {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    root: KeyPair,
    agent: KeyPair,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    Setup {
        _dir: dir,
        db,
        root: KeyPair::generate().unwrap(),
        agent: KeyPair::generate().unwrap(),
    }
}

fn credential(s: &Setup, caps: &[&str], ceiling: u16) -> Value {
    Chain::issue(
        &s.root,
        &Grant {
            subject: s.agent.did().clone(),
            capabilities: caps.iter().map(ToString::to_string).collect(),
            ceiling,
            ttl: Duration::from_secs(600),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
    .to_value()
}

fn warden(s: &Setup, required: bool, trust_yaml: &str) -> Warden {
    let mut config = Config::from_yaml(trust_yaml).unwrap();
    config.identity.roots = vec![s.root.did().clone()];
    config.identity.required = required;
    Warden::builder()
        .policy_set(PolicySet::from_yaml("zt.yaml", POLICY).unwrap())
        .audit_log(&s.db, AuditConfig::default())
        .zero_trust(config)
        .build()
        .unwrap()
}

/// A Warden on `policy`, trusting `s`'s root, with the trust settings `trust_yaml`.
fn warden_with(s: &Setup, policy: &str, trust_yaml: &str) -> Warden {
    let mut config = Config::from_yaml(trust_yaml).unwrap();
    config.identity.roots = vec![s.root.did().clone()];
    Warden::builder()
        .policy_set(PolicySet::from_yaml("policy.yaml", policy).unwrap())
        .audit_log(&s.db, AuditConfig::default())
        .zero_trust(config)
        .build()
        .unwrap()
}

fn with_credential(a: Action, c: &Value) -> Action {
    a.with_context("credential", c.clone())
}

/// What a stopped agent tries: `own` (its chain) extended with a link from the agent to a
/// key it just made, with every capability it has. The link lives 300 s, inside the
/// parent's 600 s whatever second it is now.
fn delegate_to_fresh_key(s: &Setup, own: &Chain) -> Value {
    let fresh = KeyPair::generate().unwrap();
    own.delegate(
        &s.agent,
        &Grant {
            subject: fresh.did().clone(),
            capabilities: vec!["*".into()],
            ceiling: 1000,
            ttl: Duration::from_secs(300),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
    .to_value()
}

#[test]
fn required_identity_denies_without_and_allows_with_a_credential() {
    let s = setup();
    let w = warden(&s, true, "");
    let d = w.decide(&Action::new("http_request").with_agent("bot-7"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason.contains("requires a verified identity"),
        "{}",
        d.reason
    );

    let c = credential(&s, &["http_request"], 800);
    let d = w.decide(&with_credential(
        Action::new("http_request").with_agent("bot-7"),
        &c,
    ));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    drop(w);

    // The record names the verified DID, not the claimed name, and keeps no credential.
    let records = query(&s.db, &Filter::default()).unwrap();
    assert_eq!(records[0].agent.as_deref(), Some("bot-7"));
    let r = &records[1];
    assert_eq!(r.agent.as_deref(), Some(s.agent.did().as_str()));
    let ctx = r.context.as_ref().unwrap();
    assert!(ctx.get("credential").is_none(), "{ctx}");
    assert_eq!(ctx["identity"]["did"], s.agent.did().as_str());
    assert_eq!(ctx["identity"]["root"], s.root.did().as_str());
    // Every field of the identity object, and nothing else.
    let mut keys: Vec<&str> = ctx["identity"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["ceiling", "chain", "depth", "did", "expires_at", "root"]
    );
    assert_eq!(ctx["identity"]["depth"], 1);
    assert_eq!(ctx["identity"]["ceiling"], 800);
    assert!(
        ctx["identity"]["chain"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );
    assert!(ctx["identity"]["expires_at"].as_u64().is_some());
    assert_eq!(ctx["trust"], 500);
    assert_eq!(
        ctx["trust_change"],
        json!({"from": 500, "to": 501, "outcome": "allowed"})
    );
}

#[test]
fn callers_cannot_set_trust_tier_or_identity() {
    let s = setup();
    // Without any identity configuration, a caller's `context.trust` is simply gone.
    let w = Warden::new(PolicySet::from_yaml("zt.yaml", POLICY).unwrap());
    let forged = Action::new("deploy")
        .with_context("trust", 1000)
        .with_context("tier", "verified_partner")
        .with_context("identity", json!({"did": "did:warden:zAdmin"}));
    assert_eq!(w.decide(&forged).verdict, Verdict::Deny);
    assert_eq!(
        w.decide(&Action::new("payments.transfer").with_context("tier", "verified_partner"))
            .verdict,
        Verdict::Deny
    );
    // With a verified credential, Warden's values replace the caller's.
    let w = warden(&s, false, "");
    let c = credential(&s, &["*"], 1000);
    let d = w.decide(&with_credential(forged.clone(), &c));
    assert_eq!(
        d.verdict,
        Verdict::Deny,
        "trust is 500, not the caller's 1000"
    );
    drop(w);
    let records = query(&s.db, &Filter::default()).unwrap();
    let ctx = records.last().unwrap().context.clone().unwrap();
    assert_eq!(
        (ctx["trust"].clone(), ctx["tier"].clone()),
        (json!(500), json!("standard"))
    );
    assert_eq!(ctx["identity"]["did"], s.agent.did().as_str());
}

#[test]
fn actions_outside_the_credential_are_denied_and_cost_trust() {
    let s = setup();
    let w = warden(&s, false, "");
    let c = credential(&s, &["http_request"], 900);
    let d = w.decide(&with_credential(Action::new("execute_code"), &c));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason
            .contains("outside the credential's capabilities (http_request)"),
        "{}",
        d.reason
    );
    let score = w
        .zero_trust()
        .trust()
        .unwrap()
        .score(s.agent.did().as_str(), 900)
        .unwrap();
    assert_eq!(score.value, 475);
}

#[test]
fn trust_falls_with_denials_and_tiers_follow() {
    let s = setup();
    let w = warden(&s, false, "trust:\n  initial: 750\n  floor: 300\n");
    let c = credential(&s, &["*"], 1000);
    let pay = with_credential(Action::new("payments.transfer"), &c);
    assert_eq!(w.decide(&pay).verdict, Verdict::Allow, "750 is trusted");
    for _ in 0..3 {
        let d = w.decide(&with_credential(Action::new("execute_code"), &c));
        assert_eq!(d.verdict, Verdict::Deny);
    }
    // 750 + 1 − 3 × 25 = 676: standard now, and `tiers: [trusted, …]` no longer applies.
    let trust = w.zero_trust().trust().unwrap();
    let score = trust.score(s.agent.did().as_str(), 1000).unwrap();
    assert_eq!((score.value, score.tier), (676, warden::Tier::Standard));
    let d = w.decide(&pay);
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    let events = trust.events(s.agent.did().as_str(), 10).unwrap();
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["allowed", "violation", "violation", "violation", "denied"]
    );
}

#[test]
fn the_ceiling_of_the_chain_caps_trust() {
    let s = setup();
    let w = warden(&s, false, "");
    let c = credential(&s, &["*"], 200);
    for _ in 0..50 {
        assert_eq!(
            w.decide(&with_credential(Action::new("http_request"), &c))
                .verdict,
            Verdict::Allow
        );
    }
    let score = w
        .zero_trust()
        .trust()
        .unwrap()
        .score(s.agent.did().as_str(), 200)
        .unwrap();
    assert_eq!((score.value, score.tier), (200, warden::Tier::Untrusted));
}

#[test]
fn a_revocation_reaches_a_running_warden() {
    let s = setup();
    let w = warden(&s, true, "");
    let c = credential(&s, &["http_request"], 800);
    let a = with_credential(Action::new("http_request"), &c);
    assert_eq!(w.decide(&a).verdict, Verdict::Allow);
    // Another process revokes the agent.
    Revocations::open(&s.db)
        .unwrap()
        .revoke(
            s.agent.did().as_str(),
            "did",
            Some("compromised"),
            unix_now(),
        )
        .unwrap();
    let start = Instant::now();
    let d = loop {
        let d = w.decide(&a);
        if d.verdict == Verdict::Deny || start.elapsed() > Duration::from_secs(10) {
            break d;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(d.verdict, Verdict::Deny, "did not take effect");
    assert!(
        d.reason.contains("was revoked (compromised)"),
        "{}",
        d.reason
    );
}

#[test]
fn a_credential_without_roots_or_a_bad_one_is_denied() {
    let s = setup();
    let w = Warden::new(PolicySet::from_yaml("zt.yaml", POLICY).unwrap());
    let c = credential(&s, &["http_request"], 800);
    let d = w.decide(&with_credential(Action::new("http_request"), &c));
    assert!(d.reason.contains("trusts no roots"), "{}", d.reason);

    let w = warden(&s, false, "");
    let mut bad = c.clone();
    bad["links"][0]["claims"]["ceiling"] = json!(1000);
    let d = w.decide(&with_credential(Action::new("http_request"), &bad));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason
            .contains("does not verify: link 0: the Ed25519 signature"),
        "{}",
        d.reason
    );
}

#[test]
fn required_identity_without_roots_does_not_build() {
    let mut config = Config::default();
    config.identity.required = true;
    let e = Warden::builder()
        .policy_set(PolicySet::from_yaml("zt.yaml", POLICY).unwrap())
        .zero_trust(config)
        .build()
        .err()
        .unwrap();
    assert!(e.to_string().contains("no trusted roots"), "{e}");
}

#[test]
fn policy_tier_names_are_the_trust_tiers() {
    let names: Vec<&str> = warden::Tier::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(names, warden_policy::TIERS);
}

/// Steps 2 and 3 together: a verified agent whose trust tier falls below a ring's
/// `demote: {below: …}` bar is demoted, and an action beyond the lower ring is denied
/// whatever the rules say. Its tier is Warden's (from the score), never the caller's.
#[test]
fn falling_trust_demotes_a_verified_agent_to_a_lower_ring() {
    let s = setup();
    let policy = r#"
name: rings
rules:
  - action: "*"
    allow: true
rings:
  default: user
  demote: {below: standard, to: untrusted}
"#;
    let build = |initial: u16| warden_with(&s, policy, &format!("trust:\n  initial: {initial}\n"));
    let c = credential(&s, &["file.write", "file.read"], 1000);
    let write = || {
        with_credential(
            Action::new("file.write")
                .with_agent("bot-7")
                .with_context("tier", json!("verified_partner")),
            &c,
        )
    };

    // Standard tier: the user ring, so writes pass.
    let w = build(600);
    let d = w.decide(&write());
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    drop(w);

    // Another agent's key, starting probationary: demoted to untrusted, writes denied
    // naming the ring, though the caller claims the top tier; reads still pass.
    let other = Setup {
        _dir: tempfile::tempdir().unwrap(),
        db: s.db.clone(),
        root: KeyPair::generate().unwrap(),
        agent: KeyPair::generate().unwrap(),
    };
    let c = Chain::issue(
        &s.root,
        &Grant {
            subject: other.agent.did().clone(),
            capabilities: vec!["file.write".into(), "file.read".into()],
            ceiling: 1000,
            ttl: Duration::from_secs(600),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
    .to_value();
    let w = build(350);
    let d = w.decide(&with_credential(
        Action::new("file.write")
            .with_agent("bot-7")
            .with_context("tier", json!("verified_partner")),
        &c,
    ));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("untrusted"), "{}", d.reason);
    let d = w.decide(&with_credential(
        Action::new("file.read").with_agent("bot-7"),
        &c,
    ));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

/// A kill switch set for an agent's DID stops it whatever name the action claims: the
/// kill is checked again once step 2 has replaced the claimed name with the verified DID.
#[test]
fn a_kill_for_a_did_stops_the_agent_under_any_claimed_name() {
    use warden_runtime::{Operator, Scope};
    let s = setup();
    let w = warden(&s, false, "");
    let c = credential(&s, &["http_request"], 800);
    let act = || with_credential(Action::new("http_request").with_agent("innocent-name"), &c);
    assert_eq!(w.decide(&act()).verdict, Verdict::Allow);

    w.runtime()
        .kill(
            Scope::agent(s.agent.did().as_str()).unwrap(),
            "compromised key",
            &Operator::new("alice", "library"),
            w.audit(),
        )
        .unwrap();
    let d = w.decide(&act());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("kill switch"), "{}", d.reason);
    // Without the credential, the claimed name alone is not the killed DID.
    let d = w.decide(&Action::new("http_request").with_agent("innocent-name"));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

/// Red team: a killed or demoted agent delegated its own credential to a fresh key it made
/// and carried on. The kill, an operator's demotion and a low trust score of any agent
/// behind the subject now hold for the subject too.
#[test]
fn a_fresh_key_delegated_by_a_stopped_agent_inherits_its_kill_demotion_and_trust() {
    use warden_runtime::{Operator, Scope};
    let s = setup();
    let policy = r#"
name: rings
rules:
  - action: "*"
    allow: true
rings:
  default: user
  demote: {below: standard, to: untrusted}
"#;
    let w = warden_with(&s, policy, "trust:\n  initial: 600\n");
    let own = Chain::from_value(&credential(&s, &["*"], 1000)).unwrap();
    let evading = delegate_to_fresh_key(&s, &own);
    let write = || with_credential(Action::new("file.write"), &evading);
    assert_eq!(w.decide(&write()).verdict, Verdict::Allow);

    // Trust: the agent falls to probationary (asking beyond its ring is a violation); its
    // fresh key starts no higher.
    for _ in 0..5 {
        let d = w.decide(&with_credential(
            Action::new("execute_code"),
            &own.to_value(),
        ));
        assert_eq!(d.verdict, Verdict::Deny);
    }
    let trust = w.zero_trust().trust().unwrap();
    let mine = trust.score(s.agent.did().as_str(), 1000).unwrap();
    assert!(mine.value < 500, "{mine:?}");
    let d = w.decide(&write());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("ring `untrusted`"), "{}", d.reason);

    // An operator's demotion and kill of the agent hold for the key it delegated to.
    let alice = Operator::new("alice", "library");
    let read = || with_credential(Action::new("file.read"), &evading);
    assert_eq!(w.decide(&read()).verdict, Verdict::Allow);
    w.runtime()
        .kill(
            Scope::agent(s.agent.did().as_str()).unwrap(),
            "compromised",
            &alice,
            w.audit(),
        )
        .unwrap();
    let d = w.decide(&read());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("kill switch"), "{}", d.reason);
}

/// An operator's demotion of the agent that delegated holds for its delegate.
#[test]
fn an_operators_demotion_reaches_the_keys_an_agent_delegated_to() {
    use warden_runtime::Operator;
    let s = setup();
    let policy =
        "name: rings\nrules:\n  - action: \"*\"\n    allow: true\nrings:\n  default: user\n";
    let w = warden_with(&s, policy, "");
    let own = Chain::from_value(&credential(&s, &["*"], 1000)).unwrap();
    let evading = delegate_to_fresh_key(&s, &own);
    let write = || with_credential(Action::new("file.write"), &evading);
    assert_eq!(w.decide(&write()).verdict, Verdict::Allow);
    w.runtime()
        .demote(
            s.agent.did().as_str(),
            warden::Ring::Untrusted,
            "suspicious",
            &Operator::new("alice", "library"),
            w.audit(),
        )
        .unwrap();
    let d = w.decide(&write());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(
        d.reason.contains("which delegated to this agent"),
        "{}",
        d.reason
    );
}

/// Red team: with identities configured, an action without a credential named by a DID
/// took over that DID's ring elevation, drained its rate bucket and could get it killed.
#[test]
fn a_did_is_a_name_only_a_credential_can_claim() {
    let s = setup();
    let w = warden(&s, false, "");
    for name in [
        s.agent.did().as_str(),
        "did:web:example.com",
        " DID:warden:zX",
    ] {
        let d = w.decide(&Action::new("http_request").with_agent(name));
        assert_eq!(d.verdict, Verdict::Deny, "{name}: {}", d.reason);
        assert!(d.reason.contains("no credential"), "{}", d.reason);
    }
    // Plain names still decide as before, and the credential still works.
    assert_eq!(
        w.decide(&Action::new("http_request").with_agent("bot-7"))
            .verdict,
        Verdict::Allow
    );
    let c = credential(&s, &["http_request"], 800);
    let d = w.decide(&with_credential(
        Action::new("http_request").with_agent(s.agent.did().as_str()),
        &c,
    ));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

/// Red team: a ring-gate denial never moved trust. It is a violation, like a rule's deny.
#[test]
fn a_ring_gate_denial_costs_trust() {
    let s = setup();
    let policy =
        "name: rings\nrules:\n  - action: \"*\"\n    allow: true\nrings:\n  default: untrusted\n";
    let w = warden_with(&s, policy, "");
    let c = credential(&s, &["*"], 1000);
    let d = w.decide(&with_credential(Action::new("execute_code"), &c));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    let trust = w.zero_trust().trust().unwrap();
    let events = trust.events(s.agent.did().as_str(), 10).unwrap();
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["violation"]);
}

/// Red team: with a credential, tool failures the MCP proxy reported were keyed on the
/// claimed name while decisions were keyed on the DID, so a per-agent breaker never opened.
/// A reported outcome is now keyed as its decision was.
#[test]
fn reported_failures_count_against_the_verified_agent() {
    let s = setup();
    let policy = r#"
name: brk
rules:
  - action: "mcp.tools/call"
    allow: true
breakers:
  - {id: per-agent, action: "mcp.tools/call", per: agent, window: 4, min_calls: 2, failure_ratio: 1.0, cooldown: 10m}
"#;
    let w = warden_with(&s, policy, "");
    let c = credential(&s, &["mcp.*"], 1000);
    assert_eq!(
        w.verified_agent(&c).as_deref(),
        Some(s.agent.did().as_str())
    );
    let call = || {
        with_credential(
            Action::new("mcp.tools/call")
                .with_tool("flaky")
                .with_agent("proxy-name"),
            &c,
        )
    };
    for _ in 0..2 {
        assert_eq!(w.decide(&call()).verdict, Verdict::Allow);
        w.record_outcome(&call(), warden::Outcome::Failure);
    }
    let d = w.decide(&call());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("per-agent"), "{}", d.reason);
}

/// Red team: per-agent rate limits keyed on the subject alone, so an agent that spent its
/// budget delegated to a fresh key and carried on. The delegator's bucket is spent too.
#[test]
fn a_fresh_key_spends_its_delegators_rate_budget() {
    let s = setup();
    let policy = r#"
name: rl
rules:
  - action: http_request
    allow: true
rate_limits:
  - {action: http_request, per: agent, limit: 2/hour, burst: 2}
"#;
    let w = warden_with(&s, policy, "");
    let own = Chain::from_value(&credential(&s, &["*"], 1000)).unwrap();
    for _ in 0..2 {
        let d = w.decide(&with_credential(
            Action::new("http_request"),
            &own.to_value(),
        ));
        assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    }
    let evading = delegate_to_fresh_key(&s, &own);
    let d = w.decide(&with_credential(Action::new("http_request"), &evading));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("rate limit"), "{}", d.reason);
    assert!(d.reason.contains(s.agent.did().as_str()), "{}", d.reason);
    // Another agent of the same root keeps its own budget (the root's is not shared).
    let other = Setup {
        _dir: tempfile::tempdir().unwrap(),
        db: s.db.clone(),
        root: KeyPair::generate().unwrap(),
        agent: KeyPair::generate().unwrap(),
    };
    let theirs = Chain::issue(
        &s.root,
        &Grant {
            subject: other.agent.did().clone(),
            capabilities: vec!["*".into()],
            ceiling: 1000,
            ttl: Duration::from_secs(300),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
    .to_value();
    let d = w.decide(&with_credential(Action::new("http_request"), &theirs));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}
