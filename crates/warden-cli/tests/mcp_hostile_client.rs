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
