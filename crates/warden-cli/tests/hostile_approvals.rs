//! The agent as the attacker of the approval flow: it controls the action it asks for (name,
//! arguments, context, the agent name when identity is not verified) and runs `warden check`
//! itself; it wants an action allowed that no person approved, or a record that says so.

use std::path::Path;

use serde_json::Value;

use crate::approvals::{check_with, run};
use crate::util::write;

/// `warden check` of a payment of 500 by `bot`, with `extra` flags.
fn pay(dir: &Path, extra: &[&str]) -> crate::util::Out {
    check_with(dir, "500", extra)
}

fn audit(dir: &Path) -> Vec<Value> {
    run(dir, &["audit", "query", "w.db", "--json"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// Two rules ask for approval of the same payment, chosen by the context (which is not part of
/// what an approval covers): a developer's approval of the staging payment must not lift the
/// production rule, whose reason the developer never read.
#[test]
fn an_approval_given_under_one_rule_does_not_lift_another_rule_in_another_context() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "p.yaml",
        "rules:\n  - action: payments.send\n    effect: require_approval\n    when: \"has(context.env) && context.env == 'prod'\"\n    reason: production payments need the CFO\n  - action: payments.send\n    effect: require_approval\n    reason: other payments need any developer\n  - action: \"*\"\n    allow: true\n",
    );
    let staging = pay(d, &["--context", "env=staging"]);
    assert_eq!(staging.code, 3, "{staging:?}");
    let id = staging.json()["approval_id"].as_str().unwrap().to_string();
    let ok = run(
        d,
        &[
            "approvals",
            "approve",
            &id,
            "--db",
            "w.db",
            "--by",
            "dev",
            "--reason",
            "staging is fine",
        ],
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    // The same payment, asked in production: the CFO's rule asks, and the developer's
    // approval does not answer it.
    let prod = pay(d, &["--context", "env=prod"]);
    assert_eq!(
        prod.code, 3,
        "a staging approval allowed a production payment: {prod:?}"
    );
    let prod = prod.json();
    assert_ne!(prod["approval_id"].as_str(), Some(id.as_str()));
    assert!(prod["reason"].as_str().unwrap().contains("CFO"), "{prod}");
    // The developer's approval still covers what the developer was shown.
    let again = pay(d, &["--context", "env=staging"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["approval_id"].as_str(), Some(id.as_str()));
}

/// An answer refused for bad input (a blank reason, a name with a line break) is not given,
/// so the audit log must not say it was.
#[test]
fn a_refused_answer_leaves_no_record_of_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "p.yaml",
        "rules:\n  - action: payments.send\n    effect: require_approval\n    reason: payments need a person\n",
    );
    let asked = pay(d, &[]);
    assert_eq!(asked.code, 3, "{asked:?}");
    let id = asked.json()["approval_id"].as_str().unwrap().to_string();
    for (by, reason) in [("alice", " "), ("alice\nbob", "checked")] {
        let refused = run(
            d,
            &[
                "approvals",
                "approve",
                &id,
                "--db",
                "w.db",
                "--by",
                by,
                "--reason",
                reason,
            ],
        );
        assert_eq!(refused.code, 2, "{refused:?}");
    }
    let show = run(d, &["approvals", "show", &id, "--db", "w.db", "--json"]).json();
    assert_eq!(show["status"], "pending");
    let answers: Vec<Value> = audit(d)
        .into_iter()
        .filter(|r| {
            r["action"]
                .as_str()
                .unwrap()
                .starts_with("warden.approval.")
        })
        .collect();
    assert!(
        answers.is_empty(),
        "records of answers never given: {answers:#?}"
    );
}

/// `context.approval_id` is Warden's to write: an agent sending one with an action that needs
/// no approval must not leave a record that looks like a person approved it.
#[test]
fn an_agent_cannot_claim_an_approval_in_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.yaml", "rules:\n  - action: \"*\"\n    allow: true\n");
    let fake = "434a884467b43107a8d3b7ecc2a1775b";
    let out = pay(d, &["--context", &format!("approval_id={fake}")]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.json()["approval_id"].is_null(), "{out:?}");
    let rows = audit(d);
    let row = rows
        .iter()
        .find(|r| r["action"] == "payments.send")
        .expect("the decision's record");
    assert!(
        !row.to_string().contains(fake),
        "the record carries an approval id nobody gave: {row}"
    );
}

/// A client holding hundreds of long-polls open cannot make the server read the database
/// without bound: past 256 waiting at once, another `?wait=` is told to come back (503),
/// while a plain read still answers; the places come back when the waits end.
#[test]
fn long_polls_are_bounded() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "p.yaml",
        "rules:\n  - action: payments.send\n    effect: require_approval\n    reason: payments need a person\n",
    );
    let (p, db) = (d.join("p.yaml"), d.join("w.db"));
    let s = crate::util::Server::start(&[
        "--policy",
        p.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    let r = crate::util::request(
        s.addr,
        "POST",
        "/v1/decide",
        &["Content-Type: application/json"],
        br#"{"agent":"bot","action":"payments.send","args":{"amount":5}}"#,
    );
    let id = r.json()["approval_id"].as_str().unwrap().to_string();
    let mut held = Vec::new();
    // Each wait is the longest the server grants (60 s), longer than this test's deadline: on
    // a loaded machine the server may take seconds to take up 300 requests, and waits of 10 s
    // ended before the last ones began, so 256 were never held at once (a CI failure).
    for _ in 0..300 {
        let mut c = std::net::TcpStream::connect(s.addr).unwrap();
        write!(
            c,
            "GET /v1/approvals/{id}?wait=60s HTTP/1.1\r\nHost: {}\r\n\r\n",
            s.addr
        )
        .unwrap();
        held.push(c);
    }
    let probe = |wait: &str| {
        crate::util::request(
            s.addr,
            "GET",
            &format!("/v1/approvals/{id}{wait}"),
            &[],
            b"",
        )
        .status
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = probe("?wait=1ms");
        if status == 503 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no long-poll was ever refused (last: {status})"
        );
    }
    assert_eq!(probe(""), 200, "a plain read still answers");
    drop(held);
    while probe("?wait=1ms") != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the places never came back"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
