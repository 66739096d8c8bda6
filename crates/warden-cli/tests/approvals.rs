//! Approvals: a `require_approval` verdict leaves a request in the database; a person answers
//! it (CLI or operator HTTP); the same action asked again is allowed once. The waiting client
//! is a real `warden check --wait` process or a real HTTP long-poll.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{Server, eventually, request, warden_in, write};

const POLICY: &str = "rules:\n  - action: payments.send\n    effect: require_approval\n    reason: payments need a person\n  - action: \"*\"\n    allow: true\n";

pub(crate) fn run(dir: &Path, args: &[&str]) -> crate::util::Out {
    warden_in(Some(dir), args, None, &[])
}

/// The arguments of `warden check` of a payment of `amount` by `bot` against `p.yaml`, with
/// the approvals in `w.db`.
fn pay_args(amount: &str) -> Vec<String> {
    let fixed = [
        "check",
        "-p",
        "p.yaml",
        "--db",
        "w.db",
        "-a",
        "payments.send",
        "--agent",
        "bot",
        "--arg",
    ];
    let mut args: Vec<String> = fixed.iter().map(|a| a.to_string()).collect();
    args.push(format!("amount={amount}"));
    args
}

fn pending(dir: &Path) -> Vec<Value> {
    run(dir, &["approvals", "list", "--db", "w.db", "--json"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// `warden check … --wait` started in the background, for `amount`.
fn waiting_check(dir: &Path, amount: &str, wait: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(pay_args(amount))
        .args(["--wait", wait])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn check(dir: &Path, amount: &str) -> crate::util::Out {
    check_with(dir, amount, &[])
}

/// `warden check --json` of a payment of `amount`, with `extra` flags.
pub(crate) fn check_with(dir: &Path, amount: &str, extra: &[&str]) -> crate::util::Out {
    let mut args = pay_args(amount);
    args.push("--json".into());
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, &args)
}

#[test]
fn a_waiting_check_is_allowed_once_a_person_approves_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.yaml", POLICY);
    let child = waiting_check(d, "500", "60s");
    eventually("the request is recorded", || {
        d.join("w.db").exists() && pending(d).len() == 1
    });
    let request = &pending(d)[0];
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(request["action"]["args"]["amount"], 500);
    assert_eq!(request["reason"], "payments need a person");
    let approve = run(
        d,
        &[
            "approvals",
            "approve",
            &id,
            "--db",
            "w.db",
            "--reason",
            "invoice checked",
            "--by",
            "alice",
        ],
    );
    assert_eq!(approve.code, 0, "{approve:?}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("allowed once by approval") && stdout.contains("alice"),
        "{stdout}"
    );
    // Used: the same action needs a new approval; an answered request cannot be answered again.
    let again = check(d, "500");
    assert_eq!(again.code, 3, "{again:?}");
    assert_ne!(again.json()["approval_id"].as_str().unwrap(), id);
    let twice = run(
        d,
        &["approvals", "deny", &id, "--db", "w.db", "--reason", "late"],
    );
    assert_eq!(twice.code, 1, "{twice:?}");
    assert!(twice.stderr.contains("used"), "{twice:?}");
    let show = run(d, &["approvals", "show", &id, "--db", "w.db", "--json"]).json();
    assert_eq!(show["status"], "used");
    assert_eq!(show["decided_by"], "alice");
    // The audit log holds the request, the answer (by whom, why) and the allowed use.
    let q = run(d, &["audit", "query", "w.db", "--json"]).json();
    let rows: Vec<(String, String)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |a: &str, v: &str| (a.to_string(), v.to_string());
    assert_eq!(
        rows[..3],
        [
            s("payments.send", "require_approval"),
            s("warden.approval.approve", "allow"),
            s("payments.send", "allow")
        ]
    );
    assert_eq!(run(d, &["audit", "verify", "w.db"]).code, 0);
}

#[test]
fn a_denial_an_expiry_or_silence_is_a_deny() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.yaml", POLICY);
    let child = waiting_check(d, "900", "60s");
    eventually("the request is recorded", || {
        d.join("w.db").exists() && pending(d).len() == 1
    });
    let id = pending(d)[0]["id"].as_str().unwrap().to_string();
    let deny = run(
        d,
        &[
            "approvals",
            "deny",
            &id,
            "--db",
            "w.db",
            "--reason",
            "too much",
            "--by",
            "bob",
        ],
    );
    assert_eq!(deny.code, 0, "{deny:?}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("denied by bob: too much"), "{stdout}");
    // Nobody answers within the wait.
    let silent = run(
        d,
        &[
            "check",
            "-p",
            "p.yaml",
            "--db",
            "w.db",
            "-a",
            "payments.send",
            "--agent",
            "bot",
            "--arg",
            "amount=901",
            "--wait",
            "300ms",
        ],
    );
    assert_eq!(silent.code, 1, "{silent:?}");
    assert!(silent.stdout.contains("nobody answered"), "{silent:?}");
    // Without --wait the verdict stays require_approval (exit 3), with its request's id.
    let plain = check(d, "901");
    assert_eq!(plain.code, 3);
    // --wait needs the database the requests live in.
    let no_db = run(
        d,
        &[
            "check",
            "-p",
            "p.yaml",
            "-a",
            "payments.send",
            "--wait",
            "1s",
        ],
    );
    assert_eq!(no_db.code, 2, "{no_db:?}");
}

#[test]
fn an_approval_covers_that_exact_action_and_never_outranks_a_deny() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.yaml", POLICY);
    let first = check(d, "100");
    assert_eq!(first.code, 3);
    let id = first.json()["approval_id"].as_str().unwrap().to_string();
    // Asking again before an answer gives the same request, not a pile of them.
    assert_eq!(check(d, "100").json()["approval_id"], id.as_str());
    assert_eq!(pending(d).len(), 1);
    assert_eq!(
        run(
            d,
            &[
                "approvals",
                "approve",
                &id,
                "--db",
                "w.db",
                "--reason",
                "ok"
            ]
        )
        .code,
        0
    );
    // Another amount, another agent: not covered.
    assert_eq!(check(d, "101").code, 3);
    let other_agent = run(
        d,
        &[
            "check",
            "-p",
            "p.yaml",
            "--db",
            "w.db",
            "-a",
            "payments.send",
            "--agent",
            "eve",
            "--arg",
            "amount=100",
        ],
    );
    assert_eq!(other_agent.code, 3, "{other_agent:?}");
    // A kill switch outranks the approval, and the approval is not spent on a denied call.
    assert_eq!(
        run(
            d,
            &[
                "kill", "--db", "w.db", "--agent", "bot", "--reason", "incident"
            ]
        )
        .code,
        0
    );
    assert_eq!(check(d, "100").code, 1);
    let show = run(d, &["approvals", "show", &id, "--db", "w.db", "--json"]).json();
    assert_eq!(show["status"], "approved");
    assert_eq!(
        run(
            d,
            &[
                "revive", "--db", "w.db", "--agent", "bot", "--reason", "fixed"
            ]
        )
        .code,
        0
    );
    assert_eq!(check(d, "100").code, 0);
    // Unknown ids and a missing database are errors.
    assert_eq!(
        run(
            d,
            &[
                "approvals",
                "approve",
                "nope",
                "--db",
                "w.db",
                "--reason",
                "x"
            ]
        )
        .code,
        2
    );
    assert_eq!(run(d, &["approvals", "list", "--db", "missing.db"]).code, 2);
}

fn op(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

#[test]
fn over_http_the_client_long_polls_and_only_the_operator_token_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write(d, "p.yaml", POLICY);
    let db = d.join("w.db");
    write(d, "op.token", "operator-secret\n");
    write(d, "dec.token", "decision-secret\n");
    let server = Server::start(&[
        "--policy",
        policy.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--operator-token-file",
        d.join("op.token").to_str().unwrap(),
        "--token-file",
        d.join("dec.token").to_str().unwrap(),
    ]);
    let dec = op("decision-secret");
    let opr = op("operator-secret");
    let json = "Content-Type: application/json";
    let body = r#"{"agent":"bot","action":"payments.send","args":{"amount":42}}"#;
    let decided = request(
        server.addr,
        "POST",
        "/v1/decide",
        &[json, &dec],
        body.as_bytes(),
    );
    assert_eq!(decided.status, 200, "{decided:?}");
    let v = decided.json();
    assert_eq!(v["verdict"], "require_approval");
    let id = v["approval_id"].as_str().unwrap().to_string();
    // The decision token can read its request but not list or answer any.
    let mine = request(
        server.addr,
        "GET",
        &format!("/v1/approvals/{id}"),
        &[&dec],
        b"",
    );
    assert_eq!(mine.json()["status"], "pending", "{mine:?}");
    request(server.addr, "GET", "/v1/approvals", &[&dec], b"").assert_rejected(401, "operator");
    let answer = br#"{"reason":"fine","by":"carol"}"#;
    let path = format!("/v1/approvals/{id}/approve");
    request(server.addr, "POST", &path, &[json, &dec], answer).assert_rejected(401, "operator");
    let listed = request(server.addr, "GET", "/v1/approvals", &[&opr], b"");
    assert_eq!(listed.json()[0]["id"], id.as_str(), "{listed:?}");
    // A client long-polls; the operator approves meanwhile.
    let addr = server.addr;
    let poll = {
        let dec = dec.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            request(
                addr,
                "GET",
                &format!("/v1/approvals/{id}?wait=30s"),
                &[&dec],
                b"",
            )
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let approved = request(server.addr, "POST", &path, &[json, &opr], answer);
    assert_eq!(approved.status, 200, "{approved:?}");
    let polled = poll.join().unwrap();
    assert_eq!(polled.json()["status"], "approved", "{polled:?}");
    assert_eq!(polled.json()["decided_by"], "carol");
    let allowed = request(
        server.addr,
        "POST",
        "/v1/decide",
        &[json, &dec],
        body.as_bytes(),
    );
    assert_eq!(allowed.json()["verdict"], "allow", "{allowed:?}");
    // Answering twice conflicts; unknown ids are 404; a bad wait is 400.
    request(server.addr, "POST", &path, &[json, &opr], answer).assert_rejected(409, "used");
    request(
        server.addr,
        "POST",
        "/v1/approvals/nope/deny",
        &[json, &opr],
        answer,
    )
    .assert_rejected(404, "no approval request");
    request(
        server.addr,
        "GET",
        &format!("/v1/approvals/{id}?wait=forever"),
        &[&dec],
        b"",
    )
    .assert_rejected(400, "wait");
    request(
        server.addr,
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        &[json, &opr],
        b"{}",
    )
    .assert_rejected(400, "reason");
}

/// A loopback bridge: answers 500 to the first POST and 200 after, keeping each body.
fn bridge() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let mut s = stream.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    if buf.len() >= end + 4 + len {
                        seen.lock()
                            .unwrap()
                            .push(text[end + 4..end + 4 + len].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let status = if seen.lock().unwrap().len() == 1 {
                "500 Oops"
            } else {
                "200 OK"
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, bodies)
}

#[test]
fn each_new_request_is_posted_to_the_webhook_retried_until_it_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write(d, "p.yaml", POLICY);
    let db = d.join("w.db");
    let (url, bodies) = bridge();
    let server = Server::start(&[
        "--policy",
        policy.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--approval-webhook",
        &url,
    ]);
    let body = r#"{"agent":"bot","action":"payments.send","args":{"amount":7}}"#;
    let v = server.post("/v1/decide", body).json();
    assert_eq!(v["verdict"], "require_approval", "{v}");
    let id = v["approval_id"].as_str().unwrap().to_string();
    // The same request asked again is not a new request: no second delivery.
    assert_eq!(
        server.post("/v1/decide", body).json()["approval_id"],
        id.as_str()
    );
    eventually("delivered after one failed attempt", || {
        bodies.lock().unwrap().len() >= 2
    });
    let got: Vec<Value> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(
        got.len(),
        2,
        "one request, delivered on the second try: {got:?}"
    );
    for b in &got {
        assert_eq!(b["event"], "approval.requested");
        assert_eq!(b["approval"]["id"], id.as_str());
        assert_eq!(b["approval"]["action"]["args"]["amount"], 7);
        assert_eq!(b["approval"]["status"], "pending");
    }
    // Only plain http:// targets are taken, and only with a database.
    let out = crate::util::warden(
        &[
            "serve",
            "-p",
            policy.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--approval-webhook",
            "https://x/",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("only http://"), "{out:?}");
}
