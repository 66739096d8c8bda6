//! End-to-end: `warden mcp proxy --upstream URL --listen ADDR`, the Streamable HTTP proxy,
//! in front of the real server-everything (over 127.0.0.1) and of a scripted upstream that
//! records every request it gets (to prove what never reaches it).

mod mcp_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_common::*;
use serde_json::{Value, json};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nothing listens on {port} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// server-everything over Streamable HTTP on a free loopback port.
fn everything_http() -> (Killed, String) {
    let script = peers().join("@modelcontextprotocol/server-everything/dist/index.js");
    let port = free_port();
    let child = Command::new("node")
        .arg(&script)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server-everything");
    let child = Killed(child);
    wait_for_port(port);
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

fn rpc(id: i64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn initialize(addr: SocketAddr) -> (Reply, String) {
    let r = http(
        addr,
        "POST",
        None,
        &rpc(
            0,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "warden-test", "version": "0"}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r
        .header("mcp-session-id")
        .unwrap_or_else(|| panic!("no session id passed back: {:?}", r.headers))
        .to_string();
    let n = http(
        addr,
        "POST",
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(n.status, 202, "{}", n.body);
    (r, session)
}

fn call(addr: SocketAddr, session: &str, id: i64, tool: &str, args: Value) -> Value {
    http(
        addr,
        "POST",
        Some(session),
        &rpc(id, "tools/call", json!({"name": tool, "arguments": args})),
    )
    .response(id)
}

fn error_code(r: &Value) -> i64 {
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error, got {r}"))
}

#[test]
fn real_server_over_http_allowed_and_refused_calls_sessions_and_malformed_input() {
    let (_server, upstream) = everything_http();
    let (_proxy, addr, _log) = http_proxy(&upstream, &[]);

    let (init, session) = initialize(addr);
    assert_eq!(
        init.response(0)["result"]["serverInfo"]["name"],
        "mcp-servers/everything",
        "{}",
        init.body
    );

    let list = http(
        addr,
        "POST",
        Some(&session),
        &rpc(1, "tools/list", json!({})),
    );
    let tools = list.response(1);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo") && names.len() > 5, "{names:?}");

    // Allowed: reaches the server, which answers (the session id the proxy passed back
    // is the server's: the server rejects unknown sessions).
    let r = call(addr, &session, 2, "echo", json!({"message": "over http"}));
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("over http"),
        "{r}"
    );
    // Require approval and the default deny: JSON-RPC errors from the proxy.
    let r = call(addr, &session, 3, "get-env", json!({}));
    assert_eq!(error_code(&r), -32002, "{r}");
    assert_eq!(r["error"]["data"]["rule"], "env-needs-a-person");
    let r = call(
        addr,
        &session,
        4,
        "trigger-long-running-operation",
        json!({}),
    );
    assert_eq!(error_code(&r), -32001, "{r}");

    // Malformed: 400 with the JSON-RPC error, nothing forwarded.
    let r = http(addr, "POST", Some(&session), "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r.messages()[0]), -32700);
    let r = http(addr, "POST", Some(&session), "[]");
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r.messages()[0]), -32600);
    let r = http(
        addr,
        "POST",
        Some(&session),
        &rpc(5, "tools/call", json!({"arguments": {}})),
    );
    assert_eq!(error_code(&r.response(5)), -32602);

    // A method the transport does not have.
    assert_eq!(http(addr, "PUT", Some(&session), "").status, 405);

    // DELETE ends the session upstream: the server no longer knows it.
    let d = http(addr, "DELETE", Some(&session), "");
    assert!(
        d.status == 200 || d.status == 204,
        "{} {}",
        d.status,
        d.body
    );
    let r = http(
        addr,
        "POST",
        Some(&session),
        &rpc(6, "tools/list", json!({})),
    );
    assert!(
        (400..500).contains(&r.status),
        "the deleted session still works: {} {}",
        r.status,
        r.body
    );
}

#[test]
fn the_server_initiated_stream_passes_through() {
    let (_server, upstream) = everything_http();
    let (_proxy, addr, _log) = http_proxy(&upstream, &[]);
    let (_, session) = initialize(addr);
    // GET opens the server's SSE stream; it stays open, so read just the head.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-06-18\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
}

/// The scripted upstream (see `mcp_common::scripted`) on a free loopback port.
fn scripted_upstream() -> (String, Seen) {
    upstream_with(scripted)
}

#[test]
fn poisoned_tools_are_hidden_and_refused_calls_never_reach_the_upstream() {
    let (upstream, seen) = scripted_upstream();
    let (_proxy, addr, log) = http_proxy(&upstream, &[]);
    let (_, session) = initialize(addr);
    assert_eq!(session, "scripted-session-7");

    // The listing arrives as SSE; the poisoned tool is cut out of the event.
    let list = http(
        addr,
        "POST",
        Some(&session),
        &rpc(1, "tools/list", json!({})),
    );
    assert!(
        list.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(list.body.contains("id: ev-1"), "{}", list.body);
    let tools = list.response(1);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["add", "write_file"], "{tools}");
    assert!(!list.body.contains("id_rsa"));

    let r = call(addr, &session, 2, "add", json!({"a": 1, "b": 2}));
    assert_eq!(r["result"]["content"][0]["text"], "called \"add\"", "{r}");
    let r = call(addr, &session, 3, "poisoned_add", json!({"sidenote": "x"}));
    assert_eq!(error_code(&r), -32004, "{r}");
    let r = call(addr, &session, 4, "write_file", json!({"path": "/tmp/x"}));
    assert_eq!(error_code(&r), -32001, "{r}");
    assert_eq!(r["error"]["data"]["rule"], "no-writes");
    let r = http(addr, "POST", Some(&session), "{not json");
    assert_eq!(r.status, 400);

    let seen = seen.lock().unwrap().clone();
    let methods: Vec<String> = seen
        .iter()
        .map(|(_, m)| {
            format!(
                "{} {}",
                m["method"].as_str().unwrap_or("?"),
                m["params"]["name"].as_str().unwrap_or("")
            )
            .trim()
            .to_string()
        })
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/call add"
        ],
        "the upstream saw a refused or malformed request"
    );
    // The session id went upstream with every request after initialize.
    assert!(seen[0].0.is_none());
    assert!(
        seen[1..]
            .iter()
            .all(|(s, _)| s.as_deref() == Some("scripted-session-7")),
        "{seen:?}"
    );
    log.wait_for("withheld tool `poisoned_add`");
}

#[test]
fn listening_off_loopback_needs_insecure() {
    let policy = gateway_policy();
    let out = Command::new(warden())
        .args(["mcp", "proxy", "--policy", policy.to_str().unwrap()])
        .args([
            "--listen",
            "0.0.0.0:0",
            "--upstream",
            "http://127.0.0.1:9/mcp",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure"), "{err}");
    // An upstream that is neither http nor https is refused up front.
    let out = Command::new(warden())
        .args(["mcp", "proxy", "--policy", policy.to_str().unwrap()])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "ftp://example.invalid/mcp",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_web_page_cannot_reach_the_proxy_by_dns_rebinding() {
    let (upstream, seen) = scripted_upstream();
    let (_proxy, addr, _log) = http_proxy(&upstream, &[]);
    let body = rpc(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}),
    );
    for (host, origin) in [
        ("evil.example.com", None),
        ("127.0.0.1", Some("http://evil.example.com")),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        write!(
            s,
            "POST /mcp HTTP/1.0\r\nHost: {host}\r\n{origin}Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        assert!(raw.starts_with("HTTP/1.0 403"), "{raw}");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "a rebinding request reached the upstream"
    );
    // A loopback Host and Origin are fine.
    let (_, session) = initialize(addr);
    assert_eq!(session, "scripted-session-7");
}

#[test]
fn a_real_sdk_client_gets_sampling_elicitation_and_progress_through_the_http_proxy() {
    let (_server, upstream) = everything_http();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "name: http-sdk\ndefault: deny\nrules:\n  - id: ok\n    action: mcp.tools/call\n    tool: [echo, trigger-sampling-request, trigger-elicitation-request, trigger-long-running-operation]\n    allow: true\n  - id: sampling\n    action: mcp.sampling/createMessage\n    allow: true\n",
    )
    .unwrap();
    let (_proxy, addr, _log) = http_proxy(&upstream, &["--policy", policy.to_str().unwrap()]);
    let script = root().join("crates/warden-mcp/tests/peers/sdk_http_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("http://{addr}/mcp"))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sdk client failed (is the Python `mcp` package installed? run scripts/test-peers.sh)\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(v["echo"].as_str().unwrap().contains("hello http"), "{v}");
    assert!(
        v["sampled"]
            .as_str()
            .unwrap()
            .contains("sampled through warden"),
        "{v}"
    );
    assert!(
        v["elicited"].as_str().unwrap().contains("Ada Warden"),
        "{v}"
    );
    assert!(v["long"].as_str().unwrap().contains("completed"), "{v}");
    assert_eq!(v["progress"], json!([1.0, 2.0, 3.0]), "{v}");
    assert!(
        v["get_env_error"].as_str().unwrap().contains("Warden"),
        "{v}"
    );
    assert!(v["session"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
}

#[test]
fn a_held_call_over_http_streams_progress_then_the_servers_answer() {
    let (_server, upstream) = everything_http();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let (_proxy, addr, log) = http_proxy(&upstream, &["--db", db, "--approval-wait", "60s"]);
    let (_, session) = initialize(addr);
    // The client asks for progress and takes an event stream: the POST is answered at once
    // with one, and the first event says the call is held.
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "get-env", "arguments": {}, "_meta": {"progressToken": "p9"}}})
    .to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\nMcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-06-18\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut lines = BufReader::new(s).lines();
    let mut next_data = || loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the stream ended early\n{}", log.text()))
            .unwrap();
        if let Some(data) = line.strip_prefix("data:") {
            return serde_json::from_str::<Value>(data.trim()).unwrap();
        }
    };
    let first = next_data();
    assert_eq!(first["method"], "notifications/progress", "{first}");
    assert_eq!(first["params"]["progressToken"], "p9");
    let list = Command::new(warden())
        .args(["approvals", "list", "--db", db, "-q"])
        .output()
        .unwrap();
    let id = String::from_utf8(list.stdout).unwrap().trim().to_string();
    assert!(!id.is_empty(), "no pending request");
    let ok = Command::new(warden())
        .args([
            "approvals",
            "approve",
            &id,
            "--db",
            db,
            "--by",
            "alice",
            "--reason",
            "checked",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    // Then the server's real answer, on the same stream (progress may come in between).
    let answer = loop {
        let m = next_data();
        if m.get("id").is_some() {
            break m;
        }
        assert_eq!(m["method"], "notifications/progress", "{m}");
    };
    assert_eq!(answer["id"], 9, "{answer}");
    assert!(
        answer["result"]["content"][0]["text"].is_string(),
        "{answer}"
    );
}
