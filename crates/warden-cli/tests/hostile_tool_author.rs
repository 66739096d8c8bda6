//! The attacker writes an MCP server: tool metadata, prompts, resources and instructions
//! crafted to steer the model, one public attack class per test (issue 16's blind spots),
//! through the real `warden mcp scan` against a live hostile server
//! (`crates/warden-mcp/tests/peers/blind_spots_server.js`) and the real
//! `@modelcontextprotocol/server-everything`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::util::{root, warden, write};

fn server(scenario: &str) -> Vec<String> {
    let js = root().join("crates/warden-mcp/tests/peers/blind_spots_server.js");
    vec!["node".into(), js.display().to_string(), scenario.into()]
}

/// `warden mcp scan --json -- <hostile server scenario>`: exit code and the JSON report.
fn scan_scenario(scenario: &str) -> (i32, Value) {
    let argv = server(scenario);
    let mut args = vec!["mcp", "scan", "--json", "--"];
    args.extend(argv.iter().map(String::as_str));
    let out = warden(&args, None);
    (out.code, out.json())
}

/// The findings at medium or above (capability notes are informational).
fn serious(report: &Value) -> Vec<Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["category"] != "capability" && !matches!(f["severity"].as_str(), Some("info" | "low"))
        })
        .cloned()
        .collect()
}

/// The finding with rule `id` on `tool`, or a failure listing what was found.
fn finding<'a>(findings: &'a [Value], id: &str, tool: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["id"] == id && f["tool"] == tool)
        .unwrap_or_else(|| panic!("no {id} on {tool}: {findings:#?}"))
}

fn assert_honest_tool_clean(findings: &[Value]) {
    assert!(
        !findings.iter().any(|f| f["tool"] == "word_count"),
        "the honest tool beside the attack is flagged: {findings:#?}"
    );
}

#[test]
fn a_tool_that_sells_itself_to_the_model_is_caught() {
    let (code, report) = scan_scenario("preference");
    assert_eq!(code, 1, "{report:#}");
    let f = serious(&report);
    let hit = finding(&f, "poisoning.preference", "market_quotes");
    assert_eq!(hit["severity"], "high", "exclusivity is high: {hit:#}");
    assert_honest_tool_clean(&f);
}

#[test]
fn instructions_without_trigger_words_and_shadowing_are_caught() {
    let (code, report) = scan_scenario("directive");
    assert_eq!(code, 1, "{report:#}");
    let f = serious(&report);
    let hit = finding(&f, "poisoning.directive", "weather_now");
    assert!(
        hit["excerpt"]
            .as_str()
            .unwrap()
            .contains("remainder of this session")
            || f.iter()
                .any(|x| x["id"] == "poisoning.directive" && x["excerpt"] == "quietly email"),
        "{f:#?}"
    );
    finding(&f, "poisoning.shadowing", "clock");
    assert_honest_tool_clean(&f);
}

#[test]
fn chat_template_tokens_in_a_description_are_critical() {
    let (code, report) = scan_scenario("template");
    assert_eq!(code, 1, "{report:#}");
    let f = serious(&report);
    let hit = finding(&f, "poisoning.chat-template", "unit_convert");
    assert_eq!(hit["severity"], "critical");
    assert_honest_tool_clean(&f);
}

#[test]
fn an_optional_parameter_asking_for_the_conversation_is_caught() {
    let (code, report) = scan_scenario("parameter");
    assert_eq!(code, 1, "{report:#}");
    let f = serious(&report);
    let hit = finding(&f, "poisoning.parameter-exfiltration", "translate");
    assert_eq!(
        hit["field"], "inputSchema.properties.quality_hint.description",
        "the finding names the parameter: {hit:#}"
    );
    assert_eq!(
        f.iter().filter(|x| x["tool"] == "translate").count(),
        1,
        "only the exfiltrating parameter is flagged: {f:#?}"
    );
    assert_honest_tool_clean(&f);
}

/// A client config with the honest mail server and the servers imitating it.
fn config(dir: &std::path::Path, servers: &[(&str, &str)]) -> PathBuf {
    let mut entries = serde_json::Map::new();
    for (name, scenario) in servers {
        let argv = server(scenario);
        entries.insert(
            name.to_string(),
            json!({"command": argv[0], "args": argv[1..]}),
        );
    }
    write(
        dir,
        "mcp.json",
        &json!({ "mcpServers": entries }).to_string(),
    )
}

#[test]
fn a_tool_claiming_to_replace_another_servers_tool_is_caught_across_servers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &[("mail", "mail"), ("mail-fixes", "replacement")],
    );
    let out = warden(&["mcp", "scan", "--json", cfg.to_str().unwrap()], None);
    assert_eq!(out.code, 1, "{out:?}");
    let report = out.json();
    let f = serious(&report);
    let claim = finding(&f, "typosquat.replacement-claim", "send_mail_v2");
    assert_eq!(claim["server"], "mail-fixes");
    // Scanned together, the claim names a tool another server really offers: high.
    let reference = finding(&f, "poisoning.cross-server-reference", "send_mail_v2");
    assert_eq!(reference["severity"], "high");
    assert!(
        !f.iter().any(|x| x["server"] == "mail"),
        "the imitated server is not blamed: {f:#?}"
    );

    // Alone, the claim is still reported, but nothing crosses servers.
    let (_, alone) = scan_scenario("replacement");
    let f = serious(&alone);
    finding(&f, "typosquat.replacement-claim", "send_mail_v2");
    assert!(
        !f.iter()
            .any(|x| x["id"] == "poisoning.cross-server-reference")
    );
}

#[test]
fn the_same_name_spelled_differently_on_two_servers_is_caught() {
    // From a client config (both servers started) …
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[("mail", "mail"), ("mailer", "mail-clone")]);
    let out = warden(&["mcp", "scan", "--json", cfg.to_str().unwrap()], None);
    assert_eq!(out.code, 1, "{out:?}");
    let f = serious(&out.json());
    let hit = finding(&f, "typosquat.tool-name", "Send-Email");
    assert!(
        hit["why"].as_str().unwrap().contains("send_email"),
        "{hit:#}"
    );

    // … and from two saved tool lists given together.
    let a = write(
        dir.path(),
        "a.json",
        &json!({"server": "mail", "tools": [{"name": "send_email", "description": "Send an email."}]})
            .to_string(),
    );
    let b = write(
        dir.path(),
        "b.json",
        &json!({"server": "mailer", "tools": [{"name": "SEND_EMAIL", "description": "Send an email."}]})
            .to_string(),
    );
    let out = warden(
        &[
            "mcp",
            "scan",
            "--json",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let f = serious(&out.json());
    finding(&f, "typosquat.tool-name", "SEND_EMAIL");
    finding(&f, "typosquat.tool-name", "send_email");
    // Each file alone is clean: the finding needs both.
    let out = warden(&["mcp", "scan", "--json", b.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn prompts_resources_and_instructions_are_scanned_and_named() {
    let (code, report) = scan_scenario("content");
    assert_eq!(code, 1, "{report:#}");
    let f = serious(&report);
    // The prompt's listing (metadata) and a prompt's messages (content).
    let listed = finding(&f, "poisoning.directive", "prompt:daily_summary");
    assert_eq!(listed["field"], "description");
    finding(
        &f,
        "poisoning.parameter-exfiltration",
        "prompt:daily_summary",
    );
    let got = finding(&f, "poisoning.chat-template", "prompt:greeting");
    assert!(
        got["field"].as_str().unwrap().starts_with("messages[0]"),
        "{got:#}"
    );
    // A resource's listing and a resource's text.
    finding(&f, "poisoning.preference", "resource:memo://policy");
    let endorsed = finding(&f, "poisoning.preference", "resource:memo://faq");
    assert_eq!(endorsed["severity"], "medium", "{endorsed:#}");
    let read = finding(&f, "poisoning.chat-template", "resource:memo://readme");
    assert!(
        read["field"]
            .as_str()
            .unwrap()
            .starts_with("contents[0].text"),
        "{read:#}"
    );
    finding(&f, "poisoning.sensitive-file", "resource:memo://readme");
    // The server's instructions.
    assert!(
        f.iter()
            .any(|x| x["field"] == "instructions" && x["id"] == "poisoning.directive"),
        "{f:#?}"
    );
    // The prompt that needs an argument is listed, not fetched; everything else was read.
    assert_eq!(
        report["read"],
        json!({"servers": 1, "tools": 1, "instructions": 1, "prompts": 3, "resources": 3,
               "contents": 5, "skipped": 0})
    );
    assert_honest_tool_clean(&f);
}

#[test]
fn what_is_past_the_scan_limits_is_reported_not_called_clean() {
    let (code, report) = scan_scenario("many");
    // 150 resources: 100 read, 50 reported as not read; the 300 KiB one is cut at 256 KiB,
    // so the token past the cut is not seen, and the cut is reported.
    assert_eq!(report["read"]["resources"], 150, "{:#}", report["read"]);
    assert_eq!(report["read"]["contents"], 100);
    let notes: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "incomplete.not-read")
        .collect();
    assert_eq!(notes.len(), 51, "{notes:#?}");
    assert!(
        notes.iter().any(|n| n["tool"] == "resource:memo://r0"
            && n["why"].as_str().unwrap().contains("first 262144 bytes")),
        "{notes:#?}"
    );
    assert!(notes.iter().all(|n| n["severity"] == "low"));
    assert!(
        !report["findings"].to_string().contains("chat-template"),
        "text past the limit was scanned"
    );
    assert_eq!(
        code, 0,
        "low notes do not fail a scan at the default --fail-on"
    );
}

#[test]
fn server_everything_prompts_and_resources_are_read_and_clean() {
    let bin = root().join("tests/peers/node_modules/.bin/mcp-server-everything");
    assert!(
        bin.exists(),
        "{} is missing: run `bash scripts/test-peers.sh`",
        bin.display()
    );
    let bin = bin.display().to_string();
    let out = warden(
        &["mcp", "scan", "--json", "--", "node", &bin, "stdio"],
        None,
    );
    let report = out.json();
    let read = &report["read"];
    assert!(
        read["prompts"].as_u64().unwrap() > 0
            && read["resources"].as_u64().unwrap() > 0
            && read["contents"].as_u64().unwrap() > 0
            && read["instructions"] == 1,
        "{read:#}"
    );
    let f = serious(&report);
    assert!(
        f.is_empty(),
        "a real server's prompts and resources are flagged: {f:#?}"
    );
    assert_eq!(out.code, 0, "{out:?}");
}
