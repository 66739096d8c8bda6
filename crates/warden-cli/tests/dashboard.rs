//! The dashboard's doors, over real HTTP against a real `warden serve`: the login (operator
//! token only), the session cookie, the CSRF header every change needs, the live event
//! stream, and the loopback rule. (The page itself is driven in a real browser by
//! `tests/browser/test_dashboard.py`.)

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{Reply, Server, request, warden_in, write};

const POLICY: &str = "rules:\n  - action: payments.send\n    effect: require_approval\n    reason: payments need a person\n  - action: \"*\"\n    allow: true\n";
const JSON: &str = "Content-Type: application/json";

/// A running `warden serve` with an operator token (`operator-secret`) and a decision token
/// (`decision-secret`), its database in its own temporary directory.
pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    pub(crate) server: Server,
}

fn start(extra: &[&str]) -> Setup {
    start_with(POLICY, extra)
}

/// [`Setup`] serving `policy`, with `extra` flags.
pub(crate) fn start_with(policy: &str, extra: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write(d, "p.yaml", policy);
    write(d, "op.token", "operator-secret\n");
    write(d, "dec.token", "decision-secret\n");
    let (p, db, op, dec) = (
        policy.to_str().unwrap().to_string(),
        d.join("w.db").to_str().unwrap().to_string(),
        d.join("op.token").to_str().unwrap().to_string(),
        d.join("dec.token").to_str().unwrap().to_string(),
    );
    let mut args = vec![
        "--policy",
        &p,
        "--db",
        &db,
        "--operator-token-file",
        &op,
        "--token-file",
        &dec,
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    Setup { _dir: dir, server }
}

/// Log in; returns (`Cookie: …` header, `X-Warden-CSRF: …` header).
pub(crate) fn login(s: &Server, token: &str) -> Result<(String, String), Reply> {
    let body = format!(r#"{{"token":"{token}"}}"#);
    let r = request(s.addr, "POST", "/dashboard/login", &[JSON], body.as_bytes());
    if r.status != 200 {
        return Err(r);
    }
    let set = r
        .head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie")
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let pair = set["set-cookie:".len()..]
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.json()["csrf"].as_str().unwrap().to_string();
    Ok((format!("Cookie: {pair}"), format!("X-Warden-CSRF: {csrf}")))
}

fn decide(s: &Server, amount: u32) -> String {
    let body =
        format!(r#"{{"agent":"bot","action":"payments.send","args":{{"amount":{amount}}}}}"#);
    let r = request(
        s.addr,
        "POST",
        "/v1/decide",
        &[JSON, "Authorization: Bearer decision-secret"],
        body.as_bytes(),
    );
    assert_eq!(r.json()["verdict"], "require_approval", "{r:?}");
    r.json()["approval_id"].as_str().unwrap().to_string()
}

#[test]
fn only_the_operator_token_logs_in_and_the_page_is_locked_down() {
    let Setup { server: s, .. } = start(&[]);
    let page = request(s.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/dashboard/app.js"));
    let head = page.head.to_ascii_lowercase();
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self'"));
    assert!(head.contains("x-frame-options: deny"));
    assert_eq!(
        request(s.addr, "GET", "/dashboard/app.js", &[], b"").status,
        200
    );
    // The decision token, a wrong token, an empty one: no session.
    for wrong in ["decision-secret", "operator-secre", "operator-secretx", ""] {
        let r = login(&s, wrong).unwrap_err();
        r.assert_rejected(401, "operator token");
        assert!(!r.head.to_ascii_lowercase().contains("set-cookie"), "{r:?}");
    }
    // Unknown fields and non-JSON bodies are refused before the token is looked at.
    request(
        s.addr,
        "POST",
        "/dashboard/login",
        &[JSON],
        br#"{"token":"operator-secret","admin":true}"#,
    )
    .assert_rejected(400, "unknown field");
    request(
        s.addr,
        "POST",
        "/dashboard/login",
        &["Content-Type: application/x-www-form-urlencoded"],
        b"token=operator-secret",
    )
    .assert_rejected(415, "application/json");
    let (cookie, csrf) = login(&s, "operator-secret").unwrap();
    let state = request(s.addr, "GET", "/dashboard/state", &[&cookie, &csrf], b"");
    assert_eq!(state.status, 200, "{state:?}");
    assert_eq!(state.json()["policy_version"], 1);
    // A reloaded page finds its CSRF token again with the cookie.
    let again = request(s.addr, "GET", "/dashboard/session", &[&cookie], b"");
    assert_eq!(
        format!("X-Warden-CSRF: {}", again.json()["csrf"].as_str().unwrap()),
        csrf
    );
    request(s.addr, "GET", "/dashboard/session", &[], b"").assert_rejected(401, "not logged in");
}

#[test]
fn a_session_answers_approvals_only_with_its_csrf_token() {
    let Setup { server: s, .. } = start(&[]);
    let id = decide(&s, 7);
    let (cookie, csrf) = login(&s, "operator-secret").unwrap();
    let (_other_cookie, other_csrf) = login(&s, "operator-secret").unwrap();
    let path = format!("/v1/approvals/{id}/approve");
    let answer = br#"{"reason":"checked","by":"dana"}"#;
    // Cookie without the header, with another session's token, with a forged cookie.
    request(s.addr, "POST", &path, &[JSON, &cookie], answer).assert_rejected(403, "CSRF");
    request(s.addr, "POST", &path, &[JSON, &cookie, &other_csrf], answer)
        .assert_rejected(403, "CSRF");
    let forged = format!("Cookie: warden_session={}", "ab".repeat(32));
    request(s.addr, "POST", &path, &[JSON, &forged, &csrf], answer).assert_rejected(401, "expired");
    // A cross-site POST carrying the cookie (were a browser to send it) is refused first.
    request(
        s.addr,
        "POST",
        &path,
        &[JSON, &cookie, &csrf, "Origin: http://evil.example"],
        answer,
    )
    .assert_rejected(403, "cross-origin");
    // A wrong bearer token is never rescued by a good cookie.
    request(
        s.addr,
        "POST",
        &path,
        &[
            JSON,
            &cookie,
            &csrf,
            "Authorization: Bearer decision-secret",
        ],
        answer,
    )
    .assert_rejected(401, "operator token");
    assert_eq!(
        request(
            s.addr,
            "GET",
            &format!("/v1/approvals/{id}"),
            &["Authorization: Bearer decision-secret"],
            b""
        )
        .json()["status"],
        "pending"
    );
    let ok = request(s.addr, "POST", &path, &[JSON, &cookie, &csrf], answer);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json()["status"], "approved");
    assert_eq!(ok.json()["decided_by"], "dana");
    // Logging out ends the session: the same cookie and token no longer work.
    let out = request(
        s.addr,
        "POST",
        "/dashboard/logout",
        &[JSON, &cookie, &csrf],
        b"",
    );
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.head.contains("Max-Age=0"), "{out:?}");
    request(s.addr, "GET", "/v1/kills", &[&cookie, &csrf], b"").assert_rejected(401, "expired");
}

#[test]
fn a_session_sets_and_lifts_kill_switches_with_its_token() {
    let Setup { server: s, .. } = start(&[]);
    let (cookie, csrf) = login(&s, "operator-secret").unwrap();
    let kill = br#"{"agent":"bot","reason":"incident"}"#;
    request(s.addr, "POST", "/v1/kill", &[JSON, &cookie], kill).assert_rejected(403, "CSRF");
    assert_eq!(
        request(s.addr, "POST", "/v1/kill", &[JSON, &cookie, &csrf], kill).status,
        200
    );
    let kills = request(s.addr, "GET", "/v1/kills", &[&cookie, &csrf], b"").json();
    assert_eq!(kills[0]["target"], "bot");
    let revive = br#"{"agent":"bot","reason":"fixed"}"#;
    assert_eq!(
        request(
            s.addr,
            "POST",
            "/v1/revive",
            &[JSON, &cookie, &csrf],
            revive
        )
        .status,
        200
    );
}

/// Read server-sent events until one `data:` line arrives.
fn next_event(reader: &mut BufReader<TcpStream>) -> serde_json::Value {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read the stream");
        assert!(n > 0, "the stream ended");
        if let Some(json) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str(json).unwrap();
        }
    }
}

#[test]
fn decisions_stream_live_to_a_logged_in_dashboard_only() {
    let Setup { server: s, .. } = start(&[]);
    request(s.addr, "GET", "/dashboard/events", &[], b"").assert_rejected(401, "log in");
    let (cookie, _csrf) = login(&s, "operator-secret").unwrap();
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /dashboard/events HTTP/1.1\r\nHost: {}\r\n{cookie}\r\n\r\n",
        s.addr
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    // The stream is open once its first comment arrives; decide after that.
    let mut line = String::new();
    while !line.starts_with(": open") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    let id = decide(&s, 11);
    let event = next_event(&mut reader);
    assert_eq!(event["agent"], "bot");
    assert_eq!(event["action"], "payments.send");
    assert_eq!(event["verdict"], "require_approval");
    assert_eq!(event["reason"], "payments need a person");
    assert_eq!(event["rule"], "rules[0]");
    assert_eq!(event["approval_id"], id.as_str());
}

#[test]
fn off_loopback_or_off_the_dashboard_is_refused() {
    let Setup { server: s, .. } = start(&["--dashboard", "off"]);
    request(s.addr, "GET", "/", &[], b"").assert_rejected(404, "dashboard is off");
    login(&s, "operator-secret")
        .unwrap_err()
        .assert_rejected(404, "dashboard is off");
    // Off: the operator endpoints still take the operator token.
    let kills = request(
        s.addr,
        "GET",
        "/v1/kills",
        &["Authorization: Bearer operator-secret"],
        b"",
    );
    assert_eq!(kills.status, 200, "{kills:?}");
    // Without an operator token nobody can log in.
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "p.yaml", POLICY);
    let bare = Server::start(&["--policy", policy.to_str().unwrap()]);
    login(&bare, "anything")
        .unwrap_err()
        .assert_rejected(403, "operator token");
    let bad = warden_in(
        Some(dir.path()),
        &["serve", "-p", "p.yaml", "--session-minutes", "0"],
        None,
        &[],
    );
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--session-minutes"), "{bad:?}");
}

/// An agent holds the decision token: none of the dashboard's doors open with it.
#[test]
fn the_decision_token_opens_no_dashboard_door() {
    let Setup { server: s, .. } = start(&[]);
    let dec = "Authorization: Bearer decision-secret";
    for path in [
        "/dashboard/state",
        "/dashboard/events",
        "/dashboard/audit/verify",
        "/dashboard/session",
    ] {
        let r = request(s.addr, "GET", path, &[dec], b"");
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert_eq!(r.json()["verdict"], "deny");
    }
    request(s.addr, "POST", "/dashboard/logout", &[JSON, dec], b"").assert_rejected(401, "log in");
    request(s.addr, "GET", "/v1/approvals", &[dec], b"").assert_rejected(401, "operator token");
}

/// Someone guessing the operator token gets ten tries a minute; then even the right one waits.
#[test]
fn guessing_the_operator_token_is_cut_off() {
    let Setup { server: s, .. } = start(&[]);
    for i in 0..10 {
        login(&s, &format!("guess-{i}"))
            .unwrap_err()
            .assert_rejected(401, "wrong operator token");
    }
    login(&s, "guess-10")
        .unwrap_err()
        .assert_rejected(429, "too many failed logins");
    login(&s, "operator-secret")
        .unwrap_err()
        .assert_rejected(429, "too many failed logins");
    // The operator token itself still works where it always did.
    let kills = request(
        s.addr,
        "GET",
        "/v1/kills",
        &["Authorization: Bearer operator-secret"],
        b"",
    );
    assert_eq!(kills.status, 200, "{kills:?}");
}

#[test]
fn the_agents_page_shows_ring_and_kill_switch_and_the_findings_page_what_a_proxy_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write(
        d,
        "p.yaml",
        "rules:\n  - action: \"*\"\n    allow: true\nrings:\n  default: user\n  agents: {\"bot-*\": untrusted, \"ops-agent\": supervisor}\n",
    );
    write(d, "op.token", "operator-secret\n");
    let db = d.join("w.db");
    let s = Server::start(&[
        "--policy",
        policy.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--operator-token-file",
        d.join("op.token").to_str().unwrap(),
    ]);
    for agent in ["bot-7", "ops-agent"] {
        let body = format!(r#"{{"agent":"{agent}","action":"files.read","args":{{}}}}"#);
        let r = request(s.addr, "POST", "/v1/decide", &[JSON], body.as_bytes());
        assert_eq!(r.status, 200, "{r:?}");
    }
    let kill = request(
        s.addr,
        "POST",
        "/v1/kill",
        &[JSON, "Authorization: Bearer operator-secret"],
        br#"{"agent":"bot-7","reason":"looping","by":"alice"}"#,
    );
    assert_eq!(kill.status, 200, "{kill:?}");
    let (cookie, csrf) = login(&s, "operator-secret").unwrap();
    request(s.addr, "GET", "/dashboard/agents", &[&cookie], b"").assert_rejected(403, "CSRF");
    let r = request(s.addr, "GET", "/dashboard/agents", &[&cookie, &csrf], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["rings"], true);
    assert_eq!(v["trust"], false);
    let agent = |name: &str| {
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {v}"))
            .clone()
    };
    let bot = agent("bot-7");
    assert_eq!(bot["ring"], "untrusted", "{bot}");
    assert!(
        bot["placement"].as_str().unwrap().contains("bot-*"),
        "{bot}"
    );
    assert!(bot["killed"].as_str().unwrap().contains("looping"), "{bot}");
    let ops = agent("ops-agent");
    assert_eq!(ops["ring"], "supervisor", "{ops}");
    assert!(ops["killed"].is_null() && ops["trust"].is_null(), "{ops}");

    // An MCP proxy writing to the same database withholds a poisoned tool: the findings
    // page shows it, with the server and the finding's id.
    let empty = request(s.addr, "GET", "/dashboard/findings", &[&cookie, &csrf], b"");
    assert_eq!(empty.json()["findings"], serde_json::json!([]), "{empty:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = root.join("crates/warden-mcp/tests/peers/malicious_server.js");
    let gateway = root.join("crates/warden-mcp/tests/fixtures/gateway.yaml");
    let input = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
        "\n"
    );
    let out = warden_in(
        None,
        &[
            "mcp",
            "proxy",
            "-p",
            gateway.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--",
            "node",
            server.to_str().unwrap(),
        ],
        Some(input.as_bytes()),
        &[],
    );
    assert!(out.stdout.contains(r#""id":2"#), "{out:?}");
    let r = request(s.addr, "GET", "/dashboard/findings", &[&cookie, &csrf], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let found = r.json()["findings"].as_array().unwrap().clone();
    assert!(!found.is_empty(), "{r:?}");
    let f = &found[0];
    assert_eq!(f["action"], "mcp.tools/list", "{f}");
    assert_eq!(f["verdict"], "deny", "{f}");
    assert!(f["server"].is_string(), "{f}");
    assert!(
        f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().is_some_and(|id| id.contains('.'))),
        "{f}"
    );
}
