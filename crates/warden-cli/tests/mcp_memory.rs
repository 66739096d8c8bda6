//! End-to-end: memory guards with a real memory store — `@modelcontextprotocol/server-memory`
//! over stdio behind `warden mcp proxy` — and its JSONL file read back to prove what reached
//! the store. The attacks (planted and tampered items) are in `mcp_memory_poisoner.rs`.

mod mcp_common;

use mcp_common::memory::*;
use mcp_common::*;
use serde_json::{Value, json};

#[test]
fn a_clean_write_goes_through_with_a_verifiable_provenance_record() {
    let s = Setup::new();
    let mut p = s.proxy(true);
    let r = p.call("create_entities", alice());
    assert!(r.get("error").is_none(), "{r}");
    assert!(
        s.stored().contains("prefers tea over coffee"),
        "{}",
        s.stored()
    );

    // Each stored text has a record, signed with the database's key, naming where it came
    // from (the client did not state a source: the server and tool).
    let (code, out, err) = run(&[
        "memory",
        "provenance",
        "--db",
        s.db(),
        "--json",
        "prefers tea over coffee",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["record"]["source"], "mcp:memory-server/create_entities",
        "{v}"
    );
    assert_eq!(v["record"]["agent"], "agent-1");
    // A text never written through Warden has none.
    let (code, out, _) = run(&["memory", "provenance", "--db", s.db(), "prefers coffee"]);
    assert_eq!(code, 1, "{out}");

    // A source the client states is recorded as stated.
    let r = p.request(
        "tools/call",
        json!({"name": "add_observations", "arguments": {"observations": [{"entityName": "Alice", "contents": ["lives in Lyon"]}]},
               "_meta": {"warden/source": "https://wiki.example/alice"}}),
    );
    assert!(r.get("error").is_none(), "{r}");
    let (code, out, _) = run(&[
        "memory",
        "provenance",
        "--db",
        s.db(),
        "--json",
        "lives in Lyon",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("https://wiki.example/alice"), "{out}");

    // Read back with provenance required: everything written through Warden is shown.
    let r = p.call("read_graph", json!({}));
    assert_eq!(names(&r), ["Alice"], "{r}");
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("lives in Lyon")
    );
    assert_eq!(p.finish(), 0);
}

#[test]
fn an_injected_observation_is_quarantined_and_never_reaches_the_store() {
    let s = Setup::new();
    let mut p = s.proxy(false);
    assert!(p.call("create_entities", alice()).get("error").is_none());
    let poisoned = json!({"observations": [{"entityName": "Alice", "contents": [INJECTED]}]});
    let r = p.call("add_observations", poisoned.clone());
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("quarantined as q-"), "{msg}");
    assert!(
        msg.contains("poisoning."),
        "the reason names the findings: {msg}"
    );
    assert_eq!(r["error"]["data"]["rule"], "warden.memory-quarantine");
    assert!(
        !s.stored().contains("Ignore all previous"),
        "{}",
        s.stored()
    );

    // The operator sees it, with who, where from and why.
    let (code, out, err) = run(&["memory", "quarantine", "list", "--db", s.db(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let held: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held[0]["agent"], "agent-1");
    assert_eq!(held[0]["tool"], "add_observations");
    assert!(
        held[0]["content"]
            .as_str()
            .unwrap()
            .contains("Ignore all previous")
    );
    let id = held[0]["id"].as_str().unwrap().to_string();
    assert!(msg.contains(&id));

    // Released, the same write passes once (and gets provenance); a second time it is
    // quarantined again.
    let (code, _, err) = run(&[
        "memory",
        "quarantine",
        "release",
        "--db",
        s.db(),
        "--by",
        "ops",
        "--reason",
        "a quoted phishing sample, kept on purpose",
        &id,
    ]);
    assert_eq!(code, 0, "{err}");
    let r = p.call("add_observations", poisoned.clone());
    // The write reaches the store; the server's answer echoes the text, and the proxy's
    // result scan (another layer) still keeps it from the model.
    assert_eq!(r["error"]["code"], -32003, "{r}");
    assert!(s.stored().contains("Ignore all previous"), "{}", s.stored());
    let (code, out, _) = run(&["memory", "provenance", "--db", s.db(), INJECTED]);
    assert_eq!(code, 0, "{out}");
    let r = p.call("add_observations", poisoned);
    assert_eq!(
        r["error"]["code"], -32001,
        "a release lets one write through: {r}"
    );
    let (code, _, err) = run(&[
        "memory",
        "quarantine",
        "release",
        "--db",
        s.db(),
        "--reason",
        "again",
        &id,
    ]);
    assert_eq!(code, 1, "a used release cannot be given twice: {err}");
    assert_eq!(p.finish(), 0);

    // Every step is on the record, and the record verifies.
    let (code, out, err) = run(&["audit", "verify", s.db()]);
    assert_eq!(code, 0, "{out}{err}");
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let rules: Vec<String> = conn
        .prepare("SELECT rule FROM records WHERE rule LIKE 'warden.memory%' ORDER BY seq")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .unwrap_or_default();
    assert_eq!(
        rules,
        [
            "warden.memory-quarantine",
            "warden.memory.release",
            "warden.memory-quarantine"
        ],
        "audit records"
    );
}

#[test]
fn check_and_the_proxy_give_the_same_quarantine_decision() {
    let s = Setup::new();
    // The proxy quarantines an observation; its write is the call's strings, in order.
    let mut p = s.proxy(false);
    let r = p.call(
        "add_observations",
        json!({"observations": [{"entityName": "Alice", "contents": [INJECTED]}]}),
    );
    assert_eq!(
        r["error"]["data"]["rule"], "warden.memory-quarantine",
        "{r}"
    );
    let proxied = r["error"]["data"]["reason"].as_str().unwrap().to_string();
    assert_eq!(p.finish(), 0);
    // The same write by the same agent through `warden check`: the same decision, naming
    // the same quarantined write (one row for one write, whichever door it came through).
    let content = json!(["Alice", INJECTED]).to_string();
    let (code, out, err) = run(&[
        "check",
        "--policy",
        s.policy.to_str().unwrap(),
        "--db",
        s.db(),
        "--json",
        "--action",
        "memory.write",
        "--agent",
        "agent-1",
        "--arg",
        &format!("content={content}"),
        "--context",
        "source=https://evil.example/page",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["rule"], "warden.memory-quarantine", "{d}");
    assert_eq!(d["reason"], proxied.as_str(), "{d}");
    let (code, out, _) = run(&["memory", "quarantine", "list", "--db", s.db(), "-q"]);
    assert_eq!((code, out.lines().count()), (0, 1), "{out}");
    // And a clean write through `check` is vouched for like one through the proxy.
    let (code, out, err) = run(&[
        "check",
        "--policy",
        s.policy.to_str().unwrap(),
        "--db",
        s.db(),
        "--json",
        "--action",
        "memory.write",
        "--agent",
        "agent-1",
        "--arg",
        "content=Alice prefers tea",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["memory", "provenance", "--db", s.db(), "Alice prefers tea"]);
    assert_eq!(code, 0, "{out}");
    let _ = s.path();
}

/// A write the memory step allowed but that never reached the store — the call denied by
/// policy after the memory step, or failed by the server — leaves no provenance record: the
/// signed record is kept back until the server answers the call with success.
#[test]
fn a_write_refused_or_failed_after_the_memory_step_leaves_no_provenance() {
    let s = Setup::new();
    std::fs::write(
        &s.policy,
        r#"
name: memory-gateway
default: deny
rules:
  - action: mcp.tools/call
    allow: true
  - id: no-relations
    action: mcp.tools/call
    tool: create_relations
    allow: false
  - action: memory.write
    allow: true
"#,
    )
    .unwrap();
    let mut p = s.proxy(false);
    let vouched = |text: &str| {
        let (code, out, err) = run(&["memory", "provenance", "--db", s.db(), text]);
        assert!(code == 0 || code == 1, "{out}{err}");
        code == 0
    };
    assert!(p.call("create_entities", alice()).get("error").is_none());
    assert!(
        vouched("prefers tea over coffee"),
        "a stored write is vouched for"
    );

    // The memory step allows the relation; the policy then denies the call.
    let r = p.call(
        "create_relations",
        json!({"relations": [{"from": "Alice", "to": "Mallory", "relationType": "trusts blindly"}]}),
    );
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert_eq!(r["error"]["data"]["rule"], "no-relations", "{r}");
    assert!(!s.stored().contains("trusts blindly"), "{}", s.stored());
    assert!(
        !vouched("trusts blindly"),
        "a refused write has no provenance"
    );
    assert!(!vouched("Mallory"));

    // Allowed through, but the server fails it (no such entity): nothing was stored.
    let r = p.call(
        "add_observations",
        json!({"observations": [{"entityName": "Nobody", "contents": ["lives on the moon"]}]}),
    );
    let failed = r.get("error").is_some() || r["result"]["isError"] == json!(true);
    assert!(failed, "{r}");
    assert!(!s.stored().contains("lives on the moon"), "{}", s.stored());
    assert!(
        !vouched("lives on the moon"),
        "a failed write has no provenance"
    );

    // The same kind of write to an entity that exists succeeds, and is vouched for.
    let r = p.call(
        "add_observations",
        json!({"observations": [{"entityName": "Alice", "contents": ["lives in Lyon"]}]}),
    );
    assert!(
        r.get("error").is_none() && r["result"]["isError"] != json!(true),
        "{r}"
    );
    assert!(vouched("lives in Lyon"));
    assert_eq!(p.finish(), 0);
}

/// A memory write whose call is held for a person's approval: its provenance is not recorded
/// while it waits, is recorded once the call is approved and the server stores it, and never
/// when the person says no.
#[test]
fn a_held_memory_write_gets_provenance_only_once_approved_and_stored() {
    let s = Setup::new();
    std::fs::write(
        &s.policy,
        r#"
name: memory-gateway
default: deny
rules:
  - action: mcp.tools/call
    allow: true
  - id: ask-first
    action: mcp.tools/call
    tool: add_observations
    effect: require_approval
  - action: memory.write
    allow: true
"#,
    )
    .unwrap();
    let mut p = s.proxy_with(false, &["--approval-wait", "60s"], &[]);
    let vouched = |text: &str| {
        let (code, out, err) = run(&["memory", "provenance", "--db", s.db(), text]);
        assert!(code == 0 || code == 1, "{out}{err}");
        code == 0
    };
    let pending = || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (code, out, err) = run(&["approvals", "list", "--db", s.db(), "-q"]);
            if code == 0 && !out.trim().is_empty() {
                return out.lines().next().unwrap().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no request: {out} {err}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    assert!(p.call("create_entities", alice()).get("error").is_none());
    let observe = |id: &str, text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "add_observations",
               "arguments": {"observations": [{"entityName": "Alice", "contents": [text]}]}}})
        .to_string()
    };
    // Approved: recorded only after the server stored it.
    p.send_raw(&observe("held-1", "plays the cello"));
    let id = pending();
    assert!(!vouched("plays the cello"), "not recorded while held");
    let (code, out, err) = run(&[
        "approvals",
        "approve",
        &id,
        "--db",
        s.db(),
        "--by",
        "alice",
        "--reason",
        "fine",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (r, _) = p.response(&json!("held-1"));
    assert!(r.get("error").is_none(), "{r}");
    assert!(s.stored().contains("plays the cello"), "{}", s.stored());
    assert!(vouched("plays the cello"));
    // Denied: never stored, never recorded.
    p.send_raw(&observe("held-2", "owes Mallory money"));
    let id = pending();
    let (code, ..) = run(&[
        "approvals",
        "deny",
        &id,
        "--db",
        s.db(),
        "--by",
        "bob",
        "--reason",
        "no",
    ]);
    assert_eq!(code, 0);
    let (r, _) = p.response(&json!("held-2"));
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert!(!s.stored().contains("owes Mallory"), "{}", s.stored());
    assert!(!vouched("owes Mallory money"));
    assert_eq!(p.finish(), 0);
}
