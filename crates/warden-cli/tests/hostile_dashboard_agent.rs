//! An agent with nothing but a decision token, against the dashboard's Agents and MCP
//! findings pages: it names itself as it likes and writes any context into its decisions,
//! both of which end up in the audit log the pages read. What an operator sees there about
//! *other* agents and about what the MCP proxies found must not be its to shape.

use serde_json::{Value, json};

use crate::util::{Server, request, write};

const POLICY: &str = "rules:\n  - action: \"*\"\n    allow: true\n";
const JSON: &str = "Content-Type: application/json";
const AGENT_TOKEN: &str = "Authorization: Bearer decision-secret";
const OPERATOR: &str = "Authorization: Bearer operator-secret";

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write(d, "p.yaml", POLICY);
    write(d, "op.token", "operator-secret\n");
    write(d, "dec.token", "decision-secret\n");
    let (p, db, op, dec) = (
        policy.to_str().unwrap().to_string(),
        d.join("w.db").to_str().unwrap().to_string(),
        d.join("op.token").to_str().unwrap().to_string(),
        d.join("dec.token").to_str().unwrap().to_string(),
    );
    let server = Server::start(&[
        "--policy",
        &p,
        "--db",
        &db,
        "--operator-token-file",
        &op,
        "--token-file",
        &dec,
    ]);
    (dir, server)
}

/// The dashboard session headers (cookie, CSRF).
fn login(s: &Server) -> (String, String) {
    let r = request(
        s.addr,
        "POST",
        "/dashboard/login",
        &[JSON],
        br#"{"token":"operator-secret"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let set = r
        .head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap()
        .to_string();
    let pair = set["set-cookie:".len()..]
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.json()["csrf"].as_str().unwrap().to_string();
    (format!("Cookie: {pair}"), format!("X-Warden-CSRF: {csrf}"))
}

fn dashboard(s: &Server, path: &str) -> Value {
    let (cookie, csrf) = login(s);
    let r = request(s.addr, "GET", path, &[&cookie, &csrf], b"");
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

/// Decisions for `actions`, in batches, with the agent's decision token.
fn decide_all(s: &Server, actions: &[Value]) {
    for chunk in actions.chunks(50) {
        let body = Value::from(chunk.to_vec()).to_string();
        let r = request(
            s.addr,
            "POST",
            "/v1/decide/batch",
            &[JSON, AGENT_TOKEN],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
}

#[test]
fn an_agent_naming_itself_200_times_does_not_push_a_killed_agent_off_the_agents_page() {
    let (_dir, s) = start();
    // The operator stops `zed-exfil` (it acted before: it is in the audit log too).
    decide_all(&s, &[json!({"agent": "zed-exfil", "action": "http.get"})]);
    let r = request(
        s.addr,
        "POST",
        "/v1/kill",
        &[JSON, OPERATOR],
        br#"{"agent":"zed-exfil","reason":"exfiltration"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    // Another agent decides under 200 names that sort first.
    let names: Vec<Value> = (0..200)
        .map(|i| json!({"agent": format!("!{i:03}"), "action": "noop"}))
        .collect();
    decide_all(&s, &names);
    let page = dashboard(&s, "/dashboard/agents");
    let listed: Vec<&str> = page["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["agent"].as_str())
        .collect();
    assert!(
        listed.contains(&"zed-exfil"),
        "the killed agent is not on the Agents page ({} names listed, first {:?}, last {:?})",
        listed.len(),
        listed.first(),
        listed.last()
    );
}

#[test]
fn an_agent_cannot_write_an_mcp_proxy_finding_onto_the_findings_page() {
    let (_dir, s) = start();
    // Through the decision API, an agent claims an MCP proxy flagged a result of server
    // `github` — the page's fields are the record's action, tool and context.
    decide_all(
        &s,
        &[
            json!({"agent": "bot", "action": "mcp.tools/result", "tool": "create_issue",
            "context": {"server": "github", "findings": ["injection.ignore-previous"]}}),
        ],
    );
    let page = dashboard(&s, "/dashboard/findings");
    assert_eq!(
        page["findings"],
        json!([]),
        "a decision-token caller forged a proxy finding on the MCP findings page"
    );
}
