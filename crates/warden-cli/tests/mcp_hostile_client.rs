//! End-to-end: a hostile MCP client in front of the real `warden mcp proxy`, with a lenient
//! server behind it (`crates/warden-mcp/tests/peers/hostile_server.js` over stdio: method
//! names trimmed and lower-cased, tool names without case, notifications executed) or a
//! recording upstream over Streamable HTTP. Every way the red team found to call the denied
//! `write_file` without a decision must be refused, reach nothing, and be on record.

mod mcp_common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcp_common::*;
use serde_json::{Value, json};

fn write_call(method: &str, id: Option<i64>, tool: &str, path: &Path) -> String {
    let mut m = json!({"jsonrpc": "2.0", "method": method,
        "params": {"name": tool, "arguments": {"path": path, "content": "pwned"}}});
    if let Some(id) = id {
        m["id"] = json!(id);
    }
    m.to_string()
}

/// The attacks: (line, id it carries, file it would write).
fn attacks(dir: &Path) -> Vec<(String, Option<i64>, PathBuf)> {
    let cases = [
        ("tools/call", None, "write_file"),
        ("Tools/Call", Some(1), "write_file"),
        ("tools/call ", Some(2), "write_file"),
        ("TOOLS/CALL", None, "write_file"),
        ("tools/call", Some(3), "Write_File"),
        ("tools/call", Some(4), " write_file"),
        // The exact call: decided, and denied by the policy.
        ("tools/call", Some(5), "write_file"),
    ];
    cases
        .iter()
        .enumerate()
        .map(|(i, (method, id, tool))| {
            let path = dir.join(format!("pwned-{i}"));
            (write_call(method, *id, tool, &path), *id, path)
        })
        .collect()
}

fn init_line() -> String {
    json!({"jsonrpc": "2.0", "id": 100, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}})
    .to_string()
}

/// A raw `POST /mcp` of `body` in `session` (HTTP/1.0 closes after the answer, HTTP/1.1 keeps
/// the connection for a test that hangs up on it), the answer left unread.
fn post_in_session(
    addr: std::net::SocketAddr,
    version: &str,
    session: &str,
    body: &str,
) -> std::net::TcpStream {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /mcp HTTP/{version}\r\nHost: {addr}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nMcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-06-18\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    conn
}

/// The id of the approval request the proxy left in `db`, once there is one (30 s at most).
fn held_approval(db: &str, log: &Log) -> String {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    loop {
        let (code, out, err) = run(&["approvals", "list", "--db", db, "-q"]);
        assert_eq!(code, 0, "{out} {err}");
        if let Some(id) = out.split_whitespace().last() {
            return id.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not held\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_lenient_server_alone_runs_every_variant() {
    // The control: without the proxy, this server writes a file for each attack, so the
    // next test passing means the proxy stopped them.
    let dir = tempfile::tempdir().unwrap();
    let mut server = hostile_server();
    let mut child = Command::new(server.remove(0))
        .args(&server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let attacks = attacks(dir.path());
    for (line, _, _) in &attacks {
        writeln!(stdin, "{line}").unwrap();
    }
    // A ping after them: once it is answered, every line before it was handled.
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":99,"method":"ping"}}"#).unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("\"id\":99") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server exited");
    }
    drop(stdin);
    let _ = child.wait();
    for (line, _, path) in &attacks {
        assert!(path.exists(), "the lenient server did not run {line}");
    }
}

#[test]
fn look_alike_calls_and_notifications_are_refused_recorded_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let db = dir.path().join("warden.db");
    let policy = gateway_policy();
    let mut p = Proxy::start(
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--agent",
            "red-team",
        ],
        &hostile_server(),
        &[("HOSTILE_LOG", &log)],
    );
    p.initialize();
    assert!(p.tool_names().contains(&"write_file".to_string()));
    let attacks = attacks(dir.path());
    for (line, id, _) in &attacks {
        p.send_raw(line);
        // Every attack is answered by the proxy: an error with its id (or null).
        let r = p.recv();
        assert_eq!(
            r["id"],
            id.map_or(Value::Null, |i| json!(i)),
            "{line} -> {r}"
        );
        let code = r["error"]["code"].as_i64().unwrap_or(0);
        assert!([-32600, -32602, -32001].contains(&code), "{line} -> {r}");
    }
    // Still working afterwards.
    let r = p.call("add", json!({"a": 1, "b": 2}));
    assert_eq!(r["result"]["content"][0]["text"], "3", "{r}");
    assert_eq!(p.finish(), 0);

    for (line, _, path) in &attacks {
        assert!(!path.exists(), "the server ran {line}");
    }
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        [r#"tools/call add {"a":1,"b":2}"#]
    );

    let mut out = Vec::new();
    warden_audit::export_jsonl(&db, &mut out).unwrap();
    let records: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["verdict"] == "deny" && r["action"] == "mcp.tools/call")
        .map(|r| {
            assert_eq!(r["agent"], "red-team", "{r}");
            (
                r["tool"].as_str().unwrap_or("").to_string(),
                r["rule"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for expected in [
        ("write_file", "warden-mcp.not-a-request"),
        ("write_file", "warden-mcp.method-variant"),
        ("Write_File", "warden-mcp.tool-variant"),
        (" write_file", "warden-mcp.tool-variant"),
        ("write_file", "no-writes"),
    ] {
        assert!(
            refused.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not on record: {refused:?}"
        );
    }
    assert_eq!(refused.len(), attacks.len(), "{refused:?}");
}

#[test]
fn over_http_the_same_attacks_never_reach_the_upstream() {
    let (upstream, seen) = upstream_with(scripted);
    let (_proxy, addr, _log) = http_proxy(&upstream, &[]);
    let init = http(addr, "POST", None, &init_line());
    let session = init.header("mcp-session-id").unwrap().to_string();
    let list = http(
        addr,
        "POST",
        Some(&session),
        &json!({"jsonrpc": "2.0", "id": 101, "method": "tools/list"}).to_string(),
    );
    assert!(list.body.contains("write_file"), "{}", list.body);
    let dir = tempfile::tempdir().unwrap();
    for (line, id, _) in attacks(dir.path()) {
        let r = http(addr, "POST", Some(&session), &line);
        match id {
            // A refused notification: 400, nothing to answer by id.
            None => assert_eq!(r.status, 400, "{line}: {}", r.body),
            Some(id) => {
                assert_eq!(r.status, 200, "{line}: {}", r.body);
                let code = r.response(id)["error"]["code"].as_i64().unwrap();
                assert!(
                    [-32600, -32602, -32001].contains(&code),
                    "{line}: {}",
                    r.body
                );
            }
        }
    }
    assert_eq!(
        methods(&seen),
        ["initialize", "tools/list"],
        "a refused message reached the upstream"
    );
}

#[test]
fn a_50_mb_request_is_answered_by_its_id_and_never_held() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let policy = gateway_policy();
    let mut p = Proxy::start(
        &["--policy", policy.to_str().unwrap()],
        &hostile_server(),
        &[("HOSTILE_LOG", &log)],
    );
    p.initialize();
    p.tool_names();
    let padding = "x".repeat(50 << 20);
    let line = format!(
        r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"add","arguments":{{"a":1,"b":2,"pad":"{padding}"}}}},"id":7}}"#
    );
    p.send_raw(&line);
    let r = p.recv();
    assert_eq!(
        (r["id"].as_i64(), r["error"]["code"].as_i64()),
        (Some(7), Some(-32005)),
        "{r}"
    );
    let r = p.call("add", json!({"a": 2, "b": 2}));
    assert_eq!(r["result"]["content"][0]["text"], "4", "{r}");
    let peak = peak_rss(p.pid());
    assert!(peak < 120 << 20, "peak RSS {} MB", peak >> 20);
    drop(p);
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !ran.contains("pad"),
        "the oversized call reached the server"
    );
}

#[test]
fn the_limit_is_configurable_and_applies_to_http_bodies() {
    let (upstream, seen) = upstream_with(scripted);
    let (_proxy, addr, _log) = http_proxy(&upstream, &["--max-message-bytes", "1024"]);
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"pad": "x".repeat(2000)}});
    let r = http(addr, "POST", None, &big.to_string());
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.messages()[0]["error"]["code"], -32005, "{}", r.body);
    assert!(seen.lock().unwrap().is_empty());
    // Zero is refused up front.
    let (code, _, err) = run(&[
        "mcp",
        "proxy",
        "--policy",
        gateway_policy().to_str().unwrap(),
        "--max-message-bytes",
        "0",
        "--",
        "true",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--max-message-bytes"), "{err}");
}

/// A session the proxy has not remembered (it restarted; the upstream still knows the
/// session): every POST in it gets a fresh conversation until the upstream accepts one.
/// A call held there must still be reachable by the client's cancel, sent in the same
/// session — else, approved later, it is forwarded although the client gave it up.
#[test]
fn over_http_a_cancel_reaches_a_call_held_in_a_session_the_proxy_has_not_remembered() {
    use std::io::Read;
    use std::time::Duration;

    let (upstream, seen) = upstream_with(scripted);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let (_proxy, addr, log) = http_proxy(&upstream, &["--db", db, "--approval-wait", "60s"]);
    // The upstream's session, never opened through this proxy.
    let session = "scripted-session-7";
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get-env", "arguments": {}}})
    .to_string();
    let mut held = post_in_session(addr, "1.0", session, &body);
    held.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let id = held_approval(db, &log);
    // The client gives the call up, in the same session.
    let c = http(
        addr,
        "POST",
        Some(session),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"gave up"}}"#,
    );
    assert_eq!(c.status, 202, "{}", c.body);
    // A person approves it afterwards: nothing may be forwarded.
    let (code, out, err) = run(&[
        "approvals",
        "approve",
        &id,
        "--db",
        db,
        "--by",
        "alice",
        "--reason",
        "late",
    ]);
    assert_eq!(code, 0, "{out} {err}");
    let mut answer = String::new();
    let _ = held.read_to_string(&mut answer);
    assert!(
        !methods(&seen).contains(&"tools/call get-env".to_string()),
        "the cancelled call reached the upstream after its approval; its POST got: {answer}"
    );
}

/// A client that goes away while its call is held: approved later, the call goes upstream
/// and holds one of its ring's `max_concurrent` places until the upstream's answer comes
/// back — and then the place must be given back, though nobody is left to read the answer.
#[test]
fn over_http_a_client_that_hangs_up_on_a_held_call_does_not_keep_its_rings_place() {
    use std::time::{Duration, Instant};

    let (upstream, seen) = upstream_with(|msg: &Value| {
        if msg["params"]["name"] == "get-env" {
            // A slow tool: the answer comes after the client has gone.
            std::thread::sleep(Duration::from_secs(2));
        }
        scripted(msg)
    });
    let dir = tempfile::tempdir().unwrap();
    let rings = dir.path().join("rings.yaml");
    std::fs::write(
        &rings,
        "name: rings\nrules: []\nrings:\n  default: user\n  profiles:\n    user: {max_concurrent: 1, rate: none}\n",
    )
    .unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let (_proxy, addr, log) = http_proxy(
        &upstream,
        &[
            "--policy",
            rings.to_str().unwrap(),
            "--agent",
            "a1",
            "--db",
            db,
            "--approval-wait",
            "60s",
        ],
    );
    let init = http(
        addr,
        "POST",
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "red-team", "version": "0"}}})
        .to_string(),
    );
    assert_eq!(init.status, 200, "{}", init.body);
    let session = init.header("mcp-session-id").unwrap().to_string();
    let echo = |id: i64| {
        http(
            addr,
            "POST",
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": "hi"}}})
            .to_string(),
        )
        .response(id)
    };
    assert!(echo(1).get("result").is_some(), "{}", log.text());
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "get-env", "arguments": {}}})
    .to_string();
    let held = post_in_session(addr, "1.1", &session, &body);
    let id = held_approval(db, &log);
    // The client hangs up; then a person approves the call.
    drop(held);
    let (code, out, err) = run(&[
        "approvals",
        "approve",
        &id,
        "--db",
        db,
        "--by",
        "alice",
        "--reason",
        "ok",
    ]);
    assert_eq!(code, 0, "{out} {err}");
    // The approved call goes upstream, or — when the proxy saw the client leave first — it
    // is dropped with the request; either way it ends, and so must its hold on the place.
    let start = Instant::now();
    while !methods(&seen).contains(&"tools/call get-env".to_string())
        && !log.text().contains("the client went away")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "neither forwarded nor dropped\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Once the upstream has answered it (2 s), the agent's one place is free again.
    let start = Instant::now();
    let mut n = 10;
    loop {
        n += 1;
        let r = echo(n);
        if r.get("result").is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "30 s after the hung-up call was answered upstream, the agent's ring place is still taken: {r}\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The same without a hold: a client that hangs up while an allowed, slow call is
/// upstream. (Shows the leak is in the HTTP proxy's answer path, not in the hold; the hold
/// makes it likely, clients giving up on long waits.)
#[test]
fn over_http_a_client_that_hangs_up_on_a_slow_call_does_not_keep_its_rings_place() {
    use std::time::{Duration, Instant};

    let (upstream, seen) = upstream_with(|msg: &Value| {
        if msg["params"]["name"] == "get-sum" {
            std::thread::sleep(Duration::from_secs(2));
        }
        scripted(msg)
    });
    let dir = tempfile::tempdir().unwrap();
    let rings = dir.path().join("rings.yaml");
    std::fs::write(
        &rings,
        "name: rings\nrules: []\nrings:\n  default: user\n  profiles:\n    user: {max_concurrent: 1, rate: none}\n",
    )
    .unwrap();
    let (_proxy, addr, log) = http_proxy(
        &upstream,
        &["--policy", rings.to_str().unwrap(), "--agent", "a1"],
    );
    let init = http(
        addr,
        "POST",
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "red-team", "version": "0"}}})
        .to_string(),
    );
    let session = init.header("mcp-session-id").unwrap().to_string();
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "get-sum", "arguments": {"a": 1, "b": 2}}})
    .to_string();
    let slow = post_in_session(addr, "1.1", &session, &body);
    let start = Instant::now();
    while !methods(&seen).contains(&"tools/call get-sum".to_string()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never forwarded\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(slow);
    let start = Instant::now();
    let mut n = 10;
    loop {
        n += 1;
        let r = http(
            addr,
            "POST",
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": "hi"}}})
            .to_string(),
        )
        .response(n);
        if r.get("result").is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "30 s after the hung-up call went upstream, the agent's ring place is still taken: {r}\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A line to send: (name, bytes, the id it is answered by or 0, the error code expected or
/// `None` for a result).
type Shape = (&'static str, Vec<u8>, i64, Option<i64>);
/// A [`Shape`] with the file it would write.
type Attack = (&'static str, Vec<u8>, i64, Option<i64>, PathBuf);

/// Lines a reader could take for something other than what the gateway judged (issue 19:
/// the proxy writes a line it passes unchanged as it came, only when no reader can).
/// `{P}` is replaced by a file the line would write. Each: (name, line, what the proxy must
/// answer by id: `Some(code)` an error, `None` a result; `0` for a notification).
fn differential_lines() -> Vec<Shape> {
    let call = |id: &str, params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{params}}}"#)
    };
    let write = r#"{"name":"write_file","arguments":{"path":"{P}","content":"pwned"}}"#;
    let mut lines = vec![
        // serde_json keeps the last `name` (`add`: allowed); a reader keeping the first runs
        // `write_file`.
        (
            "duplicate keys",
            call(
                "21",
                r#"{"name":"write_file","arguments":{"path":"{P}","content":"pwned"},"name":"add"}"#,
            )
            .into_bytes(),
            21,
            None,
        ),
        // A notification for serde_json; for a reader that ends lines at `\r` (Node's
        // readline, Python's universal newlines), a second line with a `tools/call`.
        (
            "carriage returns",
            format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":\r{}\r}}",
                call("22", write)
            )
            .into_bytes(),
            0,
            None,
        ),
        (
            "an escaped method",
            call("23", r#"{"name":"add","arguments":{"a":1,"b":2}}"#)
                .replace("tools/call", r"tools\u002fcall")
                .into_bytes(),
            23,
            None,
        ),
        (
            "an escaped tool name",
            call("24", &write.replace("write_file", r"write\u005ffile")).into_bytes(),
            24,
            Some(-32001),
        ),
        // `2.5e1` is the id 25, and `1e0` the number 1.
        (
            "numbers in other spellings",
            call("2.5e1", r#"{"name":"add","arguments":{"a":1e0,"b":2}}"#).into_bytes(),
            25,
            None,
        ),
        (
            "white space around the object",
            format!("\t{} ", call("26", r#"{"name":"add","arguments":{"a":1,"b":2}}"#))
                .into_bytes(),
            26,
            None,
        ),
    ];
    // Refused outright, as before: not JSON serde_json reads (Node reads the first three).
    let surrogate = call("27", &write.replace("write_file", r"write_file\ud800"));
    lines.push(("a lone surrogate", surrogate.into_bytes(), 0, Some(-32700)));
    let mut invalid = call("28", write).into_bytes();
    let at = invalid.windows(5).position(|w| w == b"write").unwrap();
    invalid.insert(at + 5, 0xff);
    lines.push(("invalid UTF-8", invalid, 0, Some(-32700)));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(call("29", write).into_bytes());
    lines.push(("a byte-order mark", bom, 0, Some(-32700)));
    lines.push((
        "a batch",
        format!("[{}]", call("30", write)).into_bytes(),
        0,
        Some(-32600),
    ));
    lines
}

/// The attack lines for files in `dir`: (name, line, id, answer, file).
fn differential_attacks(dir: &Path) -> Vec<Attack> {
    differential_lines()
        .into_iter()
        .enumerate()
        .map(|(i, (name, line, id, answer))| {
            let path = dir.join(format!("differential-{i}"));
            let p = path.to_str().unwrap().as_bytes();
            let mut out = Vec::new();
            let mut rest = &line[..];
            while let Some(at) = rest.windows(3).position(|w| w == b"{P}") {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(p);
                rest = &rest[at + 3..];
            }
            out.extend_from_slice(rest);
            (name, out, id, answer, path)
        })
        .collect()
}

#[test]
fn lines_a_server_could_read_otherwise_reach_it_only_as_judged() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("HOSTILE_KEYS", "first")];

    // The control: alone, this server (first of duplicate keys, lines ended at `\r`) writes
    // the files of the first two lines.
    let alone = dir.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    let mut server = hostile_server();
    let mut child = Command::new(server.remove(0))
        .args(&server)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let attacks = differential_attacks(&alone);
    for (_, line, ..) in &attacks {
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":99,"method":"ping"}}"#).unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("\"id\":99") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server exited");
    }
    drop(stdin);
    let _ = child.wait();
    for (name, _, _, _, path) in &attacks[..2] {
        assert!(
            path.exists(),
            "control: the server alone did not run {name}"
        );
    }

    // Through the proxy: each line is judged, and the server reads what was judged.
    let log = dir.path().join("calls.log");
    let raw = dir.path().join("raw.log");
    let policy = gateway_policy();
    let mut p = Proxy::start(
        &["--policy", policy.to_str().unwrap()],
        &hostile_server(),
        &[
            ("HOSTILE_LOG", &log),
            ("HOSTILE_RAW_LOG", &raw),
            ("HOSTILE_KEYS", Path::new("first")),
        ],
    );
    p.initialize();
    p.tool_names();
    let attacks = differential_attacks(dir.path());
    for (name, line, id, answer, _) in &attacks {
        let mut bytes = line.clone();
        bytes.push(b'\n');
        p.send_bytes(&bytes);
        let r = match (id, answer) {
            // A notification: nothing comes back.
            (0, None) => continue,
            (0, Some(_)) => p.recv(),
            // The answer carries the request's id as the proxy judged it: 25.0 for `2.5e1`.
            (25, _) => p.response(&json!(25.0)).0,
            (id, _) => p.response(&json!(id)).0,
        };
        match answer {
            Some(code) => assert_eq!(r["error"]["code"], json!(code), "{name}: {r}"),
            None => assert!(r.get("result").is_some(), "{name}: {r}"),
        }
    }
    // Once the ping is answered, the server has read every line before it.
    let r = p.request("ping", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(p.finish(), 0);

    for (name, _, _, _, path) in &attacks {
        assert!(!path.exists(), "through the proxy, the server ran {name}");
    }
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    let ran: Vec<&str> = ran.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(ran, ["add", "add", "add", "add"], "{ran:?}");
    // What the server read: each line in serde_json's canonical form (the form the proxy
    // re-serializes to) — no duplicate, no escape, no other spelling of a number, nothing
    // around the object.
    let read = std::fs::read_to_string(&raw).unwrap();
    for line in read.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            line,
            v.to_string(),
            "the server read a line the proxy did not write"
        );
    }
    assert!(
        read.contains(
            r#""id":25.0,"method":"tools/call","params":{"name":"add","arguments":{"a":1.0,"b":2}}"#
        ),
        "the numbers as judged:\n{read}"
    );
}

/// The official Python SDK's stdio server (`sdk_server.py`, FastMCP) ends lines at a lone
/// `\r`: alone, it runs a `tools/call` smuggled after a `\r` inside a notification. Through
/// the proxy the notification goes on re-serialized (a line with `\r` is not plain), and the
/// server reads one notification.
#[test]
fn the_python_sdk_server_runs_a_call_after_a_carriage_return_alone_but_not_through_the_proxy() {
    let script = root().join("crates/warden-mcp/tests/peers/sdk_server.py");
    let server = vec!["python3".to_string(), script.display().to_string()];
    let dir = tempfile::tempdir().unwrap();
    let smuggled = |path: &Path| {
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "write_file", "arguments": {"path": path, "content": "pwned"}}});
        format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":\r{call}\r}}"
        )
    };
    let ping = r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;

    // Alone.
    let alone = dir.path().join("alone");
    let mut child = Command::new(&server[0])
        .args(&server[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with the mcp SDK (scripts/test-peers.sh)");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "{}", init_line()).unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("python-sdk-writer"), "{line}");
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    writeln!(stdin, "{}", smuggled(&alone)).unwrap();
    writeln!(stdin, "{ping}").unwrap();
    // The answers to the smuggled call (id 2) and the ping (id 3), in either order.
    let mut seen = String::new();
    while !(seen.contains("\"id\":3") && seen.contains("\"id\":2")) {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the server exited: {seen}"
        );
        seen.push_str(&line);
    }
    drop(stdin);
    let _ = child.wait();
    assert!(
        alone.exists(),
        "control: the Python SDK server did not run the smuggled call"
    );

    // Through the proxy.
    let through = dir.path().join("through");
    let policy = gateway_policy();
    let mut p = Proxy::start(&["--policy", policy.to_str().unwrap()], &server, &[]);
    p.initialize();
    p.send_raw(&smuggled(&through));
    let r = p.request("ping", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(p.finish(), 0);
    assert!(
        !through.exists(),
        "through the proxy, the server ran the smuggled call"
    );
}

/// Lines whose keys a Go server reads otherwise: Go's `encoding/json` matches keys to struct
/// tags ignoring case (and `ſ` as `s`), the last match winning — mark3labs/mcp-go, and the
/// official go-sdk before CVE-2026-27896. `{P}` is replaced by the file the line would
/// write: (name, line, id).
fn case_fold_lines() -> Vec<(&'static str, String, i64)> {
    let write = r#"{"name":"write_file","arguments":{"path":"{P}","content":"pwned"}}"#;
    vec![
        (
            "a ping that is a tools/call as `Method`",
            format!(
                r#"{{"jsonrpc":"2.0","id":41,"method":"ping","Method":"tools/call","params":{write}}}"#
            ),
            41,
        ),
        (
            "a second tool name as `Name`",
            r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"add","Name":"write_file","arguments":{"a":1,"b":2,"path":"{P}","content":"pwned"}}}"#
                .to_string(),
            42,
        ),
        (
            "second params as `paramſ`",
            format!(
                r#"{{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{{"name":"add","arguments":{{"a":1,"b":2}}}},"paramſ":{write}}}"#
            ),
            43,
        ),
    ]
}

/// A Go MCP server (keys matched to struct tags ignoring case) runs a `write_file` smuggled
/// in a key that differs from the judged one only in case (or by `ſ`); through the proxy,
/// such a message is refused (it is not JSON-RPC 2.0's exact keys) and never reaches it.
#[test]
fn keys_that_differ_only_in_case_do_not_reach_a_go_style_server() {
    let dir = tempfile::tempdir().unwrap();
    let lines = |dir: &Path| -> Vec<(&'static str, String, i64, PathBuf)> {
        case_fold_lines()
            .into_iter()
            .enumerate()
            .map(|(i, (name, line, id))| {
                let path = dir.join(format!("fold-{i}"));
                let line = line.replace("{P}", path.to_str().unwrap());
                (name, line, id, path)
            })
            .collect()
    };

    // The control: alone, the server (keys matched as Go matches them) writes every file.
    let alone = dir.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    let mut server = hostile_server();
    let mut child = Command::new(server.remove(0))
        .args(&server)
        .env("HOSTILE_KEYS", "fold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let attacks = lines(&alone);
    for (_, line, ..) in &attacks {
        writeln!(stdin, "{line}").unwrap();
    }
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":99,"method":"ping"}}"#).unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("\"id\":99") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server exited");
    }
    drop(stdin);
    let _ = child.wait();
    for (name, _, _, path) in &attacks {
        assert!(
            path.exists(),
            "control: the server alone did not run {name}"
        );
    }

    // Through the proxy: each is refused.
    let raw = dir.path().join("raw.log");
    let policy = gateway_policy();
    let mut p = Proxy::start(
        &["--policy", policy.to_str().unwrap()],
        &hostile_server(),
        &[
            ("HOSTILE_RAW_LOG", &raw),
            ("HOSTILE_KEYS", Path::new("fold")),
        ],
    );
    p.initialize();
    p.tool_names();
    let attacks = lines(dir.path());
    for (name, line, id, _) in &attacks {
        p.send_bytes(format!("{line}\n").as_bytes());
        let r = p.response(&json!(id)).0;
        assert_eq!(r["error"]["code"], json!(-32600), "{name}: {r}");
    }
    let r = p.request("ping", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(p.finish(), 0);
    for (name, _, _, path) in &attacks {
        assert!(!path.exists(), "through the proxy, the server ran {name}");
    }
    let read = std::fs::read_to_string(&raw).unwrap();
    assert!(!read.contains("pwned"), "the server read:\n{read}");
}

/// What held: characters some line readers treat as line ends or white space — U+2028,
/// U+2029, NEL (U+0085), DEL — raw inside a string, and the escaped slash `\/`, leave a line
/// plain: it goes on as it came, and the server (Node's `readline`, `JSON.parse`) reads it as
/// the one message the gateway judged (an `add`, answered), not as several.
#[test]
fn line_separators_inside_strings_stay_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.log");
    let mut p = Proxy::start(
        &["--policy", gateway_policy().to_str().unwrap()],
        &hostile_server(),
        &[("HOSTILE_RAW_LOG", &raw)],
    );
    p.initialize();
    p.tool_names();
    let line = "{\"jsonrpc\":\"2.0\",\"id\":51,\"method\":\"tools/call\",\"params\":{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2,\"note\":\"x\u{2028}{\\\"jsonrpc\\\":\\\"2.0\\\"}\u{2029}y\u{85}z\u{7f}a\\/b\"}}}";
    p.send_bytes(format!("{line}\n").as_bytes());
    let r = p.response(&json!(51)).0;
    assert_eq!(r["result"]["content"][0]["text"], "3", "{r}");
    assert_eq!(p.finish(), 0);
    let read = std::fs::read_to_string(&raw).unwrap();
    assert!(
        read.lines().any(|l| l == line),
        "the server did not read the line as it came:\n{read}"
    );
}
