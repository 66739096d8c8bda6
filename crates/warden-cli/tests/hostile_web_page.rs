//! The attacker is a web page open in a browser on the same machine as `warden serve`. It can
//! make the browser send requests to 127.0.0.1 — with its own `Host` after DNS rebinding, its
//! own `Origin`, and only the bodies a page may send cross-site without a preflight
//! (`text/plain`, forms). It must neither read the audit log nor write records.

use crate::util::*;

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let server = Server::start(&[
        "--policy",
        &example("brief.yaml"),
        "--db",
        db.to_str().unwrap(),
    ]);
    (dir, server)
}

const ACTION: &str = r#"{"agent":"forged","action":"execute_code"}"#;

#[test]
fn a_rebound_host_is_refused() {
    let (_d, s) = server();
    // `evil.example` resolved to 127.0.0.1: the browser still says `Host: evil.example`.
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("evil.example:{}", s.addr.port()),
        "localhost:1",
    ] {
        let h = format!("Host: {host}");
        request(s.addr, "GET", "/v1/audit", &[&h], b"").assert_rejected(403, "is not this server");
        request(
            s.addr,
            "POST",
            "/v1/decide",
            &[&h, "Content-Type: application/json"],
            ACTION.as_bytes(),
        )
        .assert_rejected(403, "is not this server");
    }
    request(s.addr, "GET", "/healthz", &["Host: evil.example"], b"").assert_rejected(403, "Host");
    // The loopback names for this port are served.
    for host in [
        "localhost",
        &format!("localhost:{}", s.addr.port()),
        &format!("127.0.0.1:{}", s.addr.port()),
    ] {
        let h = format!("Host: {host}");
        assert_eq!(
            request(s.addr, "GET", "/v1/audit", &[&h], b"").status,
            200,
            "{host}"
        );
    }
}

#[test]
fn cross_site_posts_write_nothing() {
    let (_d, s) = server();
    // A cross-site form or fetch without a preflight: text/plain, or no type at all.
    for ty in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
    ] {
        request(s.addr, "POST", "/v1/decide", &[ty], ACTION.as_bytes())
            .assert_rejected(415, "application/json");
    }
    request(s.addr, "POST", "/v1/decide", &[], ACTION.as_bytes())
        .assert_rejected(415, "application/json");
    // A foreign Origin, even with the right type (a preflight would have been refused first).
    for origin in [
        "Origin: https://evil.example",
        "Origin: null",
        "Origin: http://localhost:1",
    ] {
        request(
            s.addr,
            "POST",
            "/v1/decide",
            &[origin, "Content-Type: application/json"],
            ACTION.as_bytes(),
        )
        .assert_rejected(403, "cross-origin");
    }
    // Nothing forged reached the log.
    let records = s.get("/v1/audit").json();
    assert_eq!(records.as_array().unwrap().len(), 0, "{records}");
    // The server's own origin is fine.
    let origin = format!("Origin: http://{}", s.addr);
    let ok = request(
        s.addr,
        "POST",
        "/v1/decide",
        &[&origin, "Content-Type: application/json; charset=utf-8"],
        ACTION.as_bytes(),
    );
    assert_eq!(ok.status, 200, "{ok:?}");
}

#[test]
fn limits_answer_in_the_deny_shape() {
    let (_d, s) = server();
    // A Content-Length too large for any body: a deny-shaped answer, not an empty one.
    let huge = request(
        s.addr,
        "POST",
        "/v1/decide",
        &[
            "Content-Type: application/json",
            "Content-Length: 99999999999",
        ],
        b"",
    );
    huge.assert_rejected(413, "larger than");
    // What hyper itself refuses before any handler runs: still the deny shape.
    for (headers, status, needle) in [
        (
            vec!["Content-Length: 99999999999999999999999"],
            400,
            "malformed HTTP request",
        ),
        (
            vec!["Content-Length: 5", "Content-Length: 6"],
            400,
            "malformed HTTP request",
        ),
    ] {
        let mut all = vec!["Content-Type: application/json"];
        all.extend(headers);
        request(s.addr, "POST", "/v1/decide", &all, b"").assert_rejected(status, needle);
    }
    let many: Vec<String> = (0..1000).map(|i| format!("X-{i}: a")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    request(s.addr, "GET", "/healthz", &many, b"").assert_rejected(431, "too large");
    // The OpenAPI document names the address actually listened on.
    let doc = s.get("/openapi.json").json();
    assert_eq!(doc["servers"][0]["url"], format!("http://{}", s.addr));
}

#[test]
fn zero_threads_is_an_error_not_a_panic() {
    let out = warden(
        &[
            "serve",
            "-p",
            &example("brief.yaml"),
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "0",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--threads"), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
}

/// The same page against the dashboard: it cannot log in, cannot use an operator's session
/// through the browser (a foreign `Origin`, a form body, a rebound `Host`), and cannot read
/// the session's CSRF token.
#[test]
fn the_dashboard_cannot_be_driven_from_another_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write(
        d,
        "p.yaml",
        "rules:\n  - action: payments.send\n    effect: require_approval\n    reason: r\n",
    );
    write(d, "op.token", "operator-secret\n");
    let s = Server::start(&[
        "--policy",
        policy.to_str().unwrap(),
        "--db",
        d.join("w.db").to_str().unwrap(),
        "--operator-token-file",
        d.join("op.token").to_str().unwrap(),
    ]);
    let json = "Content-Type: application/json";
    let evil = "Origin: http://evil.example";
    let creds = br#"{"token":"operator-secret"}"#;
    // A page that knows the token still cannot plant a session from its origin.
    request(s.addr, "POST", "/dashboard/login", &[json, evil], creds)
        .assert_rejected(403, "cross-origin");
    let login = request(s.addr, "POST", "/dashboard/login", &[json], creds);
    let cookie = login
        .head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .map(|c| format!("Cookie: {c}"))
        .expect("a session cookie");
    let csrf = format!("X-Warden-CSRF: {}", login.json()["csrf"].as_str().unwrap());
    let decided = request(
        s.addr,
        "POST",
        "/v1/decide",
        &[json],
        br#"{"agent":"bot","action":"payments.send"}"#,
    );
    let id = decided.json()["approval_id"].as_str().unwrap().to_string();
    let approve = format!("/v1/approvals/{id}/approve");
    // The browser attaches the operator's cookie; the page cannot know the CSRF token.
    request(
        s.addr,
        "POST",
        &approve,
        &["Content-Type: text/plain", &cookie],
        br#"{"reason":"forged"}"#,
    )
    .assert_rejected(415, "application/json");
    request(
        s.addr,
        "POST",
        &approve,
        &[json, &cookie, evil],
        br#"{"reason":"forged"}"#,
    )
    .assert_rejected(403, "cross-origin");
    request(
        s.addr,
        "POST",
        &approve,
        &[json, &cookie],
        br#"{"reason":"forged"}"#,
    )
    .assert_rejected(403, "CSRF");
    // After DNS rebinding the page is same-origin with itself, but its Host is foreign: it
    // cannot read the token (nor would the browser send it 127.0.0.1's cookie).
    request(
        s.addr,
        "GET",
        "/dashboard/session",
        &["Host: evil.example", &cookie],
        b"",
    )
    .assert_rejected(403, "not this server");
    request(s.addr, "GET", "/", &["Host: evil.example"], b"")
        .assert_rejected(403, "not this server");
    // Nothing was answered.
    let still = request(s.addr, "GET", "/v1/approvals", &[&cookie, &csrf], b"");
    assert_eq!(still.json()[0]["status"], "pending", "{still:?}");
}
