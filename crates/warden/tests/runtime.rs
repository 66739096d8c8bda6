//! The runtime steps inside `Warden::decide`: kill switch (1), ring gate (3), rate limits and
//! breakers (4), on real SQLite files. Each of the reference toolkit's failures named in the
//! rings issue is a test here (or in `hostile_agent_runtime.rs` for what an agent can send).

use std::sync::Arc;
use std::time::Duration;

use warden::{Action, AuditConfig, PolicySet, Verdict, Warden};
use warden_runtime::{ManualClock, Operator, OrderedTier, Outcome, Runtime, RuntimeOptions, Scope};

const ALLOW_ALL: &str = "rules:\n  - action: \"*\"\n    allow: true\n";

fn set(yaml: &str) -> PolicySet {
    PolicySet::from_yaml("p.yaml", yaml).unwrap()
}

fn operator() -> Operator {
    Operator::new("alice", "library")
}

/// A Warden on `yaml` whose runtime lives in `db` (audited there too), on a manual clock.
fn warden_on(db: &std::path::Path, yaml: &str, clock: Arc<ManualClock>) -> Warden {
    let mut options = RuntimeOptions::with_db(db);
    options.clock = clock;
    Warden::builder()
        .policy_set(set(yaml))
        .audit_log(db, AuditConfig::default())
        .runtime(options)
        .build()
        .unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_800_000_000_000_000_000))
}

fn verdict(w: &Warden, a: &Action) -> Verdict {
    w.decide(a).verdict
}

const RINGS: &str = r#"
rules:
  - action: "*"
    allow: true
rings:
  default: user
  agents: {"bot-*": untrusted, "ops-agent": supervisor}
  profiles:
    untrusted: {rate: none}
    user: {rate: none}
  demote: {below: standard, to: untrusted}
"#;

#[test]
fn a_ring_breach_is_denied_even_under_an_allow_all_policy() {
    let w = Warden::new(set(RINGS));
    let d = w.decide(
        &Action::new("shell.exec")
            .with_agent("bot-7")
            .with_arg("command", "ls"),
    );
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("ring `untrusted` (3)"), "{}", d.reason);
    assert!(d.reason.contains("subprocess"), "{}", d.reason);
    assert_eq!(d.rule.as_deref(), Some("ring-gate"));
    // Reads are within the untrusted ring; the supervisor may run programs.
    assert_eq!(
        verdict(&w, &Action::new("file.read").with_agent("bot-7")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&w, &Action::new("shell.exec").with_agent("ops-agent")),
        Verdict::Allow
    );
    // A user-ring agent may use the network but not run programs or do unknown things.
    assert_eq!(
        verdict(&w, &Action::new("http_request").with_agent("someone")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&w, &Action::new("execute_code").with_agent("someone")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&w, &Action::new("payments.transfer").with_agent("someone")),
        Verdict::Deny
    );
}

/// Reference toolkit: `/usr/bin/curl` and `env curl` passed a command denylist. A ring gate
/// classifies the action, not the spelling of the command.
#[test]
fn any_spelling_of_a_command_is_a_subprocess() {
    let w = Warden::new(set(RINGS));
    for cmd in [
        "curl",
        "/usr/bin/curl",
        "env curl",
        "sh -c 'curl x'",
        "CURL",
        "\tcurl",
    ] {
        let d = w.decide(
            &Action::new("shell.exec")
                .with_agent("bot-1")
                .with_arg("command", cmd),
        );
        assert_eq!(d.verdict, Verdict::Deny, "{cmd}");
    }
}

/// Reference toolkit: a ring-1 action allowed at an effective trust of 0.0. Falling trust
/// demotes: the trust step's tier is an input to the ring gate.
#[test]
fn falling_trust_demotes_below_the_bar() {
    let w = Warden::new(set(RINGS));
    let rt = w.runtime();
    let action = Action::new("shell.exec").with_agent("ops-agent");
    w.with_policies(|s| {
        let ok = rt.check_ring(
            s,
            w.policy_version(),
            &action,
            Some(&OrderedTier::new("trusted")),
        );
        assert!(ok.is_ok());
        for low in ["untrusted", "probationary", "zero-point-zero"] {
            let d = rt
                .check_ring(s, w.policy_version(), &action, Some(&OrderedTier::new(low)))
                .unwrap_err();
            assert!(d.reason.contains("ring `untrusted`"), "{}", d.reason);
            assert!(d.reason.contains("trust tier"), "{}", d.reason);
        }
    });
}

#[test]
fn the_policy_sees_wardens_ring_not_the_callers() {
    let yaml = r#"
rules:
  - id: supervisors-only
    action: file.read
    allow: true
    when: 'context.ring == "supervisor"'
rings: {default: untrusted, agents: {ops-agent: supervisor}}
"#;
    let w = Warden::new(set(yaml));
    let forged = Action::new("file.read")
        .with_agent("stranger")
        .with_context("ring", "supervisor")
        .with_context("trust", 1000)
        .with_context("tier", "verified");
    assert_eq!(verdict(&w, &forged), Verdict::Deny);
    assert_eq!(
        verdict(&w, &Action::new("file.read").with_agent("ops-agent")),
        Verdict::Allow
    );
    // Without `rings:`, a claimed ring is removed before the policy reads the context.
    let no_rings = Warden::new(set(
        "rules:\n  - action: file.read\n    allow: true\n    when: 'has(context.ring)'\n",
    ));
    assert_eq!(verdict(&no_rings, &forged), Verdict::Deny);
}

#[test]
fn elevation_is_an_operators_temporary_audited_act() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let c = clock();
    let w = warden_on(&db, RINGS, c.clone());
    let exec = Action::new("shell.exec").with_agent("bot-1");
    // Asking does nothing, however it is phrased.
    for ask in [
        Action::new("warden.ring.elevate")
            .with_agent("bot-1")
            .with_arg("ring", "kernel"),
        exec.clone().with_context("attestation", "trust me"),
        exec.clone()
            .with_arg("attestation", "trust me")
            .with_context("elevated", true),
    ] {
        w.decide(&ask);
    }
    assert_eq!(verdict(&w, &exec), Verdict::Deny);
    // An operator grants it for ten minutes; it ends by itself.
    let o = w
        .runtime()
        .elevate(
            "bot-1",
            warden::Ring::Supervisor,
            Duration::from_secs(600),
            "incident 42",
            &operator(),
            w.audit(),
        )
        .unwrap();
    assert_eq!(o.expires_ns, Some(c.now_ns() + 600_000_000_000));
    assert_eq!(verdict(&w, &exec), Verdict::Allow);
    c.advance(Duration::from_secs(599));
    assert_eq!(verdict(&w, &exec), Verdict::Allow);
    c.advance(Duration::from_secs(1));
    assert_eq!(verdict(&w, &exec), Verdict::Deny);
    let records = records(&db, "warden.ring.elevate");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].agent.as_deref(), Some("alice"));
    assert!(records[0].reason.contains("incident 42"));
}

use warden_runtime::Clock as _;

fn records(db: &std::path::Path, action: &str) -> Vec<warden_audit::Record> {
    let filter = warden_audit::Filter {
        action: Some(action.to_string()),
        ..Default::default()
    };
    let mut found = warden_audit::query(db, &filter).unwrap();
    // State changes are Warden's own records (an agent's action of the same name is not).
    found.retain(|r| r.policy.as_deref() == Some("warden-runtime"));
    found
}

#[test]
fn a_kill_stops_the_agent_on_the_next_decision_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let c = clock();
    let w = warden_on(&db, ALLOW_ALL, c.clone());
    let a1 = Action::new("http_request").with_agent("a1");
    let a2 = Action::new("http_request").with_agent("a2");
    assert_eq!(verdict(&w, &a1), Verdict::Allow);
    assert!(
        w.runtime()
            .kill(Scope::agent("a1").unwrap(), "test", &operator(), w.audit())
            .unwrap()
    );
    let d = w.decide(&a1);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason.contains("kill switch") && d.reason.contains("test"),
        "{}",
        d.reason
    );
    assert_eq!(d.rule.as_deref(), Some("kill-switch"));
    assert_eq!(verdict(&w, &a2), Verdict::Allow);
    drop(w);

    // Reference toolkit: a killed agent re-registered and rejoined; a daily cost-guard reset
    // revived killed agents. A new Warden on the same file, a new session, days later, a
    // reloaded policy: still killed.
    let w = warden_on(&db, ALLOW_ALL, c.clone());
    c.advance(Duration::from_secs(3 * 86_400));
    w.replace_policies(set(ALLOW_ALL));
    for a in [
        a1.clone(),
        a1.clone().with_context("session", "fresh-session"),
        Action::new("agent.register").with_agent("a1"),
        a1.clone().with_context("registered", true),
    ] {
        assert_eq!(verdict(&w, &a), Verdict::Deny, "{a:?}");
    }
    assert_eq!(w.runtime().kills().len(), 1);
    // Only an operator revives, and it is recorded with who and why.
    assert!(
        w.runtime()
            .revive(
                &Scope::agent("a1").unwrap(),
                "fixed",
                &operator(),
                w.audit()
            )
            .unwrap()
    );
    assert_eq!(verdict(&w, &a1), Verdict::Allow);
    let revived = records(&db, "warden.revive");
    assert_eq!(revived.len(), 1);
    assert_eq!(revived[0].agent.as_deref(), Some("alice"));
    assert!(revived[0].reason.contains("fixed"));
    assert_eq!(records(&db, "warden.kill").len(), 1);
}

#[test]
fn fleet_and_capability_kills() {
    let w = Warden::new(set(ALLOW_ALL));
    let rt = w.runtime();
    rt.kill(
        Scope::action("payments.*").unwrap(),
        "fraud",
        &operator(),
        None,
    )
    .unwrap();
    assert_eq!(
        verdict(&w, &Action::new("payments.transfer").with_agent("x")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&w, &Action::new("file.read").with_agent("x")),
        Verdict::Allow
    );
    rt.kill(Scope::All, "stop everything", &operator(), None)
        .unwrap();
    for agent in ["x", "y", ""] {
        assert_eq!(
            verdict(&w, &Action::new("file.read").with_agent(agent)),
            Verdict::Deny
        );
    }
    assert_eq!(verdict(&w, &Action::new("file.read")), Verdict::Deny);
    // Reviving the fleet leaves the capability kill in place.
    rt.revive(&Scope::All, "ok", &operator(), None).unwrap();
    assert_eq!(verdict(&w, &Action::new("file.read")), Verdict::Allow);
    assert_eq!(verdict(&w, &Action::new("payments.refund")), Verdict::Deny);
    // An empty reason is refused and changes nothing.
    assert!(rt.kill(Scope::All, "  ", &operator(), None).is_err());
    assert_eq!(rt.kills().len(), 1);
}

/// Reference toolkit: rotating 100 session ids got 1,000 requests past a burst of 10. Buckets
/// are kept per agent; the session is not part of the key.
#[test]
fn rotating_sessions_does_not_refill_the_bucket() {
    let yaml = r#"
rules: [{action: "*", allow: true}]
rate_limits:
  - {action: http_request, per: agent, limit: 100/minute, burst: 10}
"#;
    let c = clock();
    let options = RuntimeOptions {
        clock: c.clone(),
        ..Default::default()
    };
    let w = Warden::new(set(yaml)).with_runtime(Runtime::open(options).unwrap());
    let mut allowed = 0;
    for session in 0..100 {
        for _ in 0..10 {
            let a = Action::new("http_request")
                .with_agent("a1")
                .with_context("session", format!("s{session}"));
            if verdict(&w, &a) == Verdict::Allow {
                allowed += 1;
            }
        }
    }
    assert_eq!(allowed, 10);
    let d = w.decide(&Action::new("http_request").with_agent("a1"));
    assert!(d.reason.contains("retry after 600 ms"), "{}", d.reason);
    // Another agent has its own bucket; 600 ms later one token is back for a1.
    assert_eq!(
        verdict(&w, &Action::new("http_request").with_agent("a2")),
        Verdict::Allow
    );
    c.advance(Duration::from_millis(599));
    assert_eq!(
        verdict(&w, &Action::new("http_request").with_agent("a1")),
        Verdict::Deny
    );
    c.advance(Duration::from_millis(1));
    assert_eq!(
        verdict(&w, &Action::new("http_request").with_agent("a1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&w, &Action::new("http_request").with_agent("a1")),
        Verdict::Deny
    );
    // Explain shows the bucket and takes nothing.
    assert_eq!(
        verdict(&w, &Action::new("http_request").with_agent("a3")),
        Verdict::Allow
    );
    let e = w.explain(&Action::new("http_request").with_agent("a3"));
    let t = e
        .rules
        .iter()
        .find(|t| t.rule.contains("rate_limits[0]"))
        .unwrap();
    assert!(t.detail.contains("9 of 10 left"), "{}", t.detail);
}

/// Reference toolkit: a breaker with 80% failures stayed closed (consecutive failures only).
#[test]
fn a_breaker_opens_on_the_failure_ratio_and_closes_after_probes() {
    let yaml = r#"
rules:
  - {action: "mcp.tools/call", tool: flaky, allow: true}
breakers:
  - {action: "mcp.tools/call", per: tool, window: 10, min_calls: 10, failure_ratio: 0.5, cooldown: 30s, probes: 1}
"#;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let c = clock();
    let w = warden_on(&db, yaml, c.clone());
    let call = Action::new("mcp.tools/call")
        .with_tool("flaky")
        .with_agent("a");
    // Four failures, one success, twice: 80% failures, never five in a row.
    for i in 0..10 {
        assert_eq!(verdict(&w, &call), Verdict::Allow, "call {i}");
        let outcome = if i % 5 == 4 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        w.with_policies(|s| {
            w.runtime()
                .record_outcome(s, w.policy_version(), &call, outcome, w.audit())
        });
    }
    let d = w.decide(&call);
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason.contains("circuit breaker") && d.reason.contains("open"),
        "{}",
        d.reason
    );
    assert_eq!(records(&db, "warden.breaker.open").len(), 1);
    // Another tool is not affected.
    let other = Action::new("mcp.tools/call").with_tool("other");
    assert!(!w.decide(&other).reason.contains("breaker"));
    // Cool-down, then one probe goes through; the policy allows it, so it closes.
    c.advance(Duration::from_secs(30));
    assert_eq!(verdict(&w, &call), Verdict::Allow);
    assert_eq!(verdict(&w, &call), Verdict::Allow);
    assert_eq!(records(&db, "warden.breaker.close").len(), 1);
}

#[test]
fn denials_alone_open_a_breaker_per_agent() {
    let yaml = r#"
rules:
  - {action: "file.read", allow: true}
breakers:
  - {per: agent, window: 4, min_calls: 4, failure_ratio: 0.75, cooldown: 1m}
"#;
    let c = clock();
    let options = RuntimeOptions {
        clock: c.clone(),
        ..Default::default()
    };
    let w = Warden::new(set(yaml)).with_runtime(Runtime::open(options).unwrap());
    for _ in 0..3 {
        assert_eq!(
            verdict(&w, &Action::new("secrets.read").with_agent("probe")),
            Verdict::Deny
        );
    }
    assert_eq!(
        verdict(&w, &Action::new("file.read").with_agent("probe")),
        Verdict::Allow
    );
    // 3 of 4 denied: open, and now even reads are refused for a minute.
    let d = w.decide(&Action::new("file.read").with_agent("probe"));
    assert!(d.reason.contains("circuit breaker"), "{}", d.reason);
    assert_eq!(
        verdict(&w, &Action::new("file.read").with_agent("other")),
        Verdict::Allow
    );
}

#[test]
fn an_anomalous_agent_is_killed_when_the_policy_says_so() {
    let yaml = r#"
rules: [{action: "*", allow: true}]
anomaly: {factor: 10, window: 10s, min_actions: 2, response: kill}
"#;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let c = clock();
    let w = warden_on(&db, yaml, c.clone());
    let a = Action::new("file.read").with_agent("burst");
    let mut allowed = 0;
    for _ in 0..50 {
        if verdict(&w, &a) == Verdict::Allow {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 20, "flagged at 10 × the floor of 2");
    assert_eq!(w.runtime().kills().len(), 1);
    assert_eq!(records(&db, "warden.anomaly").len(), 1);
    let kills = records(&db, "warden.kill");
    assert_eq!(kills.len(), 1);
    assert!(kills[0].agent.as_deref().unwrap().contains("anomaly"));
    // A day later it is still killed: only an operator revives.
    c.advance(Duration::from_secs(86_400));
    assert_eq!(verdict(&w, &a), Verdict::Deny);
}

#[test]
fn an_unreadable_kill_switch_state_denies_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let mut options = RuntimeOptions::with_db(&db);
    options.poll = Some(Duration::from_millis(10));
    let w = Warden::builder()
        .policy_set(set(ALLOW_ALL))
        .audit_log(&db, AuditConfig::default())
        .runtime(options)
        .build()
        .unwrap();
    let a = Action::new("file.read").with_agent("a");
    assert_eq!(verdict(&w, &a), Verdict::Allow);
    // Someone writes a row Warden never writes (an agent kill without an agent).
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO kill_switches VALUES ('agent', '', 'x', 'y', 0); UPDATE kill_version SET version = version + 1;",
    )
    .unwrap();
    let mut reason = String::new();
    for _ in 0..500 {
        let d = w.decide(&a);
        if d.verdict == Verdict::Deny {
            reason = d.reason.to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(reason.contains("cannot be read"), "{reason}");
}

/// Red team: when two breakers matched one call, the first handed out its half-open probe
/// and the second refused; the call never ran, the probe never came back, and the tool's
/// breaker refused every later call ("its probes are still out") until a restart.
#[test]
fn a_probe_given_to_a_call_another_breaker_refused_comes_back() {
    let yaml = r#"
rules:
  - {action: "mcp.tools/call", tool: u, allow: false}
  - {action: "mcp.tools/call", tool: t, allow: false}
breakers:
  - {id: per-tool, action: "mcp.tools/call", per: tool, window: 2, min_calls: 2, failure_ratio: 1.0, cooldown: 2s, probes: 1}
  - {id: per-agent, action: "mcp.tools/call", per: agent, window: 2, min_calls: 2, failure_ratio: 1.0, cooldown: 10m}
"#;
    let c = clock();
    let options = RuntimeOptions {
        clock: c.clone(),
        ..Default::default()
    };
    let w = Warden::new(set(yaml)).with_runtime(Runtime::open(options).unwrap());
    let call = |agent: &str, tool: &str| {
        w.decide(
            &Action::new("mcp.tools/call")
                .with_tool(tool)
                .with_agent(agent),
        )
    };
    // a2 fails twice on t (t's breaker and a2's open); a1 fails twice on u (a1's opens).
    for _ in 0..2 {
        call("a2", "t");
        call("a1", "u");
    }
    c.advance(Duration::from_secs(3));
    // t's breaker is half-open: a1's call takes its probe, then a1's own breaker refuses.
    let d = call("a1", "t");
    assert!(d.reason.contains("per-agent"), "{}", d.reason);
    // The probe is back: a3's call is admitted (and judged by the policy, which denies).
    let d = call("a3", "t");
    assert!(!d.reason.contains("probes are still out"), "{}", d.reason);
    assert!(!d.reason.contains("circuit breaker"), "{}", d.reason);
}

/// Red team: a flood of distinct tool names, each failing once, filled the breaker table;
/// a tool seen after it was never watched (its breaker never opened). Closed breakers now
/// make room; and when every place holds an open breaker, a new key is refused, not let
/// through unwatched.
#[test]
fn a_flood_of_keys_does_not_leave_a_tool_unwatched() {
    let yaml = r#"
rules:
  - {action: "mcp.tools/call", tool: "junk-*", allow: false}
  - {action: "mcp.tools/call", tool: victim, allow: false}
  - {action: "mcp.tools/call", tool: fine, allow: true}
breakers:
  - {id: per-tool, action: "mcp.tools/call", per: tool, window: 4, min_calls: 2, failure_ratio: 1.0, cooldown: 1m}
"#;
    let options = RuntimeOptions {
        clock: clock(),
        max_breakers: 4,
        ..Default::default()
    };
    let w = Warden::new(set(yaml)).with_runtime(Runtime::open(options).unwrap());
    let call = |tool: &str| w.decide(&Action::new("mcp.tools/call").with_tool(tool));
    for i in 0..10 {
        call(&format!("junk-{i}"));
    }
    call("victim");
    call("victim");
    let d = call("victim");
    assert!(
        d.reason.contains("circuit breaker `per-tool`"),
        "{}",
        d.reason
    );

    // Four open breakers fill the table: a new tool is refused (fail closed).
    for i in 0..4 {
        call(&format!("open-{i}"));
        call(&format!("open-{i}"));
    }
    let d = call("fine");
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("breakers are open"), "{}", d.reason);
}

/// Sagas through the real decision path: a compensation is judged by everything but the kill
/// switch, and a step is judged by everything.
#[test]
fn a_kill_mid_saga_refuses_the_next_step_its_undos_pass_the_policy_and_a_retry_waits_for_revival() {
    use warden_runtime::saga::{CommandWork, Journal, Saga, SagaSpec, SagaStatus, StepSpec};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let cwd = dir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    // Undoing step one is allowed; undoing step two is denied by the policy.
    let policy = "rules:\n  - action: \"*\"\n    allow: true\n  - action: execute_code\n    when: \"args.command == 'rm two'\"\n    allow: false\n";
    let w = warden_on(&db, policy, clock());
    let cmd = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let marker = dir.path().join("killed");
    // Step two sets the kill switch for its own agent (as an operator would, mid-saga).
    let kill = format!("touch two && touch {} && true", marker.display());
    let mut spec = SagaSpec::new(
        "k",
        vec![
            StepSpec::new("one", cmd("touch one")).compensated_by(cmd("rm one")),
            StepSpec::new("two", vec!["sh".into(), "-c".into(), kill])
                .compensated_by(cmd("rm two")),
            StepSpec::new("three", cmd("touch three")).compensated_by(cmd("rm three")),
        ],
    );
    spec.backoff_ms = 1;
    spec.steps[1].compensate_retries = 0;
    let journal = Journal::open(&db).unwrap();
    // After step two, an operator sets the kill switch for the saga's agent.
    let work = KillAfter {
        inner: CommandWork::new(w.runtime()),
        warden: &w,
        after: "two",
    };
    let saga = Saga::new(&journal, &w, &work, w.audit(), "library");
    let r = saga.run(&spec, Some("a1"), &cwd).unwrap();
    // Three was refused by the kill switch; two's undo was refused by the policy (escalated),
    // so one's undo waits for a person.
    assert_eq!(r.status, SagaStatus::Escalated, "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("denied"), "{r:?}");
    assert!(cwd.join("one").exists() && cwd.join("two").exists());
    assert!(!cwd.join("three").exists());
    let view = journal.show(&r.id).unwrap().unwrap();
    let three = view
        .events
        .iter()
        .find(|e| e.step.as_deref() == Some("three"))
        .unwrap();
    assert!(
        three.detail.as_deref().unwrap().contains("kill switch"),
        "{three:?}"
    );
    // With the policy fixed (a Warden without the deny), a retry is a resume, not this run's
    // own undo: under the kill switch it is refused (the killed agent's undos wait)…
    let w2 = warden_on(&db, ALLOW_ALL, clock());
    assert_eq!(
        verdict(&w2, &Action::new("file.read").with_agent("a1")),
        Verdict::Deny
    );
    let work = CommandWork::new(w2.runtime());
    let saga = Saga::new(&journal, &w2, &work, w2.audit(), "library");
    let again = saga.resume(&r.id, true).unwrap().unwrap();
    assert_eq!(again.status, SagaStatus::Escalated, "{again:?}");
    assert!(
        again.reason.as_deref().unwrap().contains("kill switch"),
        "{again:?}"
    );
    // …and once the operator revives the agent, it undoes two, then one.
    w2.runtime()
        .revive(
            &Scope::agent("a1").unwrap(),
            "contained",
            &operator(),
            w2.audit(),
        )
        .unwrap();
    let r = saga.resume(&r.id, true).unwrap().unwrap();
    assert_eq!(r.status, SagaStatus::Compensated, "{r:?}");
    assert!(!cwd.join("one").exists() && !cwd.join("two").exists());
    // Every step and compensation is in the audit log, judged: the step after the kill was
    // refused; two's undo was refused by the policy (in the run), then by the kill switch
    // (the retry), then allowed after the revival.
    let filter = warden_audit::Filter {
        action: Some("execute_code".into()),
        ..Default::default()
    };
    let decided = warden_audit::query(&db, &filter).unwrap();
    let phases: Vec<(String, String, String)> = decided
        .iter()
        .map(|r| {
            (
                r.context.as_ref().unwrap()["step"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r.context.as_ref().unwrap()["phase"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r.verdict.to_string(),
            )
        })
        .collect();
    let p = |s: &str, ph: &str, v: &str| (s.to_string(), ph.to_string(), v.to_string());
    assert_eq!(
        phases,
        [
            p("one", "run", "allow"),
            p("two", "run", "allow"),
            p("three", "run", "deny"),
            p("two", "compensate", "deny"),
            p("two", "compensate", "deny"),
            p("two", "compensate", "allow"),
            p("one", "compensate", "allow"),
        ]
    );
    assert_eq!(records(&db, "warden.saga.escalate").len(), 2);
    assert_eq!(records(&db, "warden.saga.compensate").len(), 2);
}

/// Command work that sets the kill switch for the saga's agent after one step.
struct KillAfter<'a> {
    inner: warden_runtime::saga::CommandWork<'a>,
    warden: &'a Warden,
    after: &'static str,
}

impl warden_runtime::saga::Work for KillAfter<'_> {
    fn perform(
        &self,
        ctx: &warden_runtime::saga::StepContext<'_>,
    ) -> warden_runtime::saga::Attempt {
        let r = self.inner.perform(ctx);
        if ctx.step.id == self.after && ctx.phase == warden_runtime::saga::Phase::Run {
            self.warden
                .runtime()
                .kill(
                    Scope::agent("a1").unwrap(),
                    "mid-saga",
                    &operator(),
                    self.warden.audit(),
                )
                .unwrap();
        }
        r
    }
}

/// `decide_timed` (what `warden bench --steps` runs) is `decide` with a clock: the same
/// decisions, and no time charged to a step the path never reached.
#[test]
fn timed_decisions_are_the_same_decisions_and_stop_where_the_path_stops() {
    let policy =
        "rules:\n  - action: execute_code\n    allow: false\n  - action: read\n    allow: true\n";
    let w = Warden::new(PolicySet::from_yaml("p.yaml", policy).unwrap());
    for name in ["read", "execute_code", "unnamed"] {
        let a = Action::new(name).with_agent("a1");
        let (timed, times) = w.decide_timed(&a);
        let plain = w.decide(&a);
        assert_eq!(
            (timed.verdict, &timed.reason, &timed.rule),
            (plain.verdict, &plain.reason, &plain.rule)
        );
        // No audit log: nothing to time there.
        assert_eq!(times.audit_ns, 0, "{name}");
    }
    assert!(
        w.runtime()
            .kill(Scope::agent("a1").unwrap(), "test", &operator(), None)
            .unwrap()
    );
    let (d, times) = w.decide_timed(&Action::new("read").with_agent("a1"));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    // The kill switch answered: identity, ring, limits, policy and trust never ran.
    assert_eq!(
        (
            times.identity_ns,
            times.ring_ns,
            times.limits_ns,
            times.policy_ns,
            times.trust_ns
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(times.total_ns(), times.validate_ns + times.kill_ns);
    // An empty action name is denied before any step.
    let (d, times) = w.decide_timed(&Action::new(""));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(times, warden::StepTimes::default());
}
