//! An agent with nothing but a decision token, against the dashboard's Agents and MCP
//! findings pages: it names itself as it likes and writes any context into its decisions,
//! both of which end up in the audit log the pages read. What an operator sees there about
//! *other* agents and about what the MCP proxies found must not be its to shape.

use serde_json::{Value, json};

use crate::dashboard::{Setup, login, start_with};
use crate::util::{Server, request};

const POLICY: &str = "rules:\n  - action: \"*\"\n    allow: true\n";
const JSON: &str = "Content-Type: application/json";
const AGENT_TOKEN: &str = "Authorization: Bearer decision-secret";
const OPERATOR: &str = "Authorization: Bearer operator-secret";

fn start() -> Setup {
    start_with(POLICY, &[])
}

/// The dashboard session headers (cookie, CSRF).
fn session(s: &Server) -> (String, String) {
    login(s, "operator-secret").unwrap_or_else(|r| panic!("{r:?}"))
}

fn dashboard(s: &Server, path: &str) -> Value {
    let (cookie, csrf) = session(s);
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
    let setup = start();
    let s = &setup.server;
    // The operator stops `zed-exfil` (it acted before: it is in the audit log too).
    decide_all(s, &[json!({"agent": "zed-exfil", "action": "http.get"})]);
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
    decide_all(s, &names);
    let page = dashboard(s, "/dashboard/agents");
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
    let setup = start();
    let s = &setup.server;
    // Through the decision API, an agent claims an MCP proxy flagged a result of server
    // `github` — the page's fields are the record's action, tool and context.
    decide_all(
        s,
        &[
            json!({"agent": "bot", "action": "mcp.tools/result", "tool": "create_issue",
            "context": {"server": "github", "findings": ["injection.ignore-previous"]}}),
        ],
    );
    let page = dashboard(s, "/dashboard/findings");
    assert_eq!(
        page["findings"],
        json!([]),
        "a decision-token caller forged a proxy finding on the MCP findings page"
    );
}

/// The server's peak resident memory so far (bytes).
fn peak_rss(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

/// 120 MCP tool-call decisions, each with ~900 kB of arguments (under the 1 MiB body
/// limit): ~108 MB in the last records of the audit log. Then what one read of `path` adds
/// to the server's peak memory, in bytes.
fn peak_growth_of_reading(path: &str) -> u64 {
    let setup = start();
    let s = &setup.server;
    let blob = "x".repeat(900_000);
    for i in 0..120 {
        let body = json!({"agent": format!("bulk-{i}"), "action": "mcp.tools/call",
            "tool": "write_file", "args": {"content": blob}})
        .to_string();
        let r = request(
            s.addr,
            "POST",
            "/v1/decide",
            &[JSON, AGENT_TOKEN],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (cookie, csrf) = session(s);
    let before = peak_rss(s);
    let r = request(s.addr, "GET", path, &[&cookie, &csrf], b"");
    assert_eq!(r.status, 200, "{r:?}");
    peak_rss(s).saturating_sub(before)
}

/// The Agents page needs the agents' names from the recent records, not their arguments.
#[test]
fn the_agents_page_does_not_load_the_arguments_of_a_thousand_records() {
    let grew = peak_growth_of_reading("/dashboard/agents");
    assert!(
        grew < 32 << 20,
        "one GET /dashboard/agents raised the server's peak memory by {} MB (the last records' arguments, read whole)",
        grew >> 20
    );
}

/// The findings page needs each record's findings and rule, not its arguments.
#[test]
fn the_findings_page_does_not_load_the_arguments_of_five_thousand_records() {
    let grew = peak_growth_of_reading("/dashboard/findings");
    assert!(
        grew < 32 << 20,
        "one GET /dashboard/findings raised the server's peak memory by {} MB (the last MCP records' arguments, read whole)",
        grew >> 20
    );
}
