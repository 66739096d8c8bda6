//! What a hostile MCP client can send the gateway, and what reaches the server. A lenient
//! server reads `Tools/Call`, `"tools/call "` and a `tools/call` notification as a call; the
//! gateway must refuse each one, before the server sees it, and put the refusal on record.

mod gateway;

use gateway::*;
use serde_json::{Value, json};
use warden_mcp::ProxyConfig;
use warden_mcp::jsonrpc::framing::Oversize;
use warden_mcp::proxy::{Inbound, Transport};

fn write_call(method: &str, id: Option<Value>) -> Value {
    let mut m = json!({"jsonrpc": "2.0", "method": method,
        "params": {"name": "write_file", "arguments": {"path": "/tmp/pwned", "content": "x"}}});
    if let Some(id) = id {
        m["id"] = id;
    }
    m
}

fn refusals(t: &Talk) -> Vec<(String, String, String)> {
    t.audit()
        .iter()
        .filter(|r| r["verdict"] == "deny")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (s("action"), s("tool"), s("rule"))
        })
        .collect()
}

#[test]
fn tools_call_as_a_notification_is_refused_and_recorded() {
    let t = stdio();
    match t.client(write_call("tools/call", None)) {
        Inbound::Malformed(e) => {
            assert_eq!(code(&e), -32600, "{e}");
            assert_eq!(e["id"], Value::Null);
        }
        other => panic!("a tools/call notification was not refused: {other:?}"),
    }
    assert_eq!(
        refusals(&t),
        [(
            "mcp.tools/call".into(),
            "write_file".into(),
            "warden-mcp.not-a-request".into()
        )]
    );
}

#[test]
fn look_alike_methods_are_refused_and_recorded() {
    let variants = [
        "Tools/Call",
        "TOOLS/CALL",
        "tools/call ",
        " tools/call",
        "tools/call\n",
        "tools/call\t",
        "tools/call\u{200b}",
        "tools/\u{0441}all",
        "Resources/Read",
        "prompts/Get",
        "tools/List",
        "Initialize",
    ];
    let t = stdio();
    for (i, method) in variants.iter().enumerate() {
        for id in [Some(json!(i)), None] {
            let answer = match t.client(write_call(method, id.clone())) {
                Inbound::Answer(a) if id.is_some() => a,
                Inbound::Malformed(a) if id.is_none() => a,
                other => panic!("{method:?} (id {id:?}) was not refused: {other:?}"),
            };
            assert_eq!(code(&answer), -32600, "{answer}");
            assert_eq!(answer["id"], id.unwrap_or(Value::Null));
        }
    }
    let recorded = refusals(&t);
    assert_eq!(recorded.len(), variants.len() * 2, "{recorded:?}");
    assert!(
        recorded
            .iter()
            .all(|(_, _, rule)| rule == "warden-mcp.method-variant")
    );
    assert!(recorded.contains(&(
        "mcp.tools/call".into(),
        "write_file".into(),
        "warden-mcp.method-variant".into()
    )));
}

#[test]
fn the_exact_method_is_decided_as_before() {
    let t = stdio();
    t.list(json!([tool("write_file"), tool("read_text_file")]));
    match t.client(write_call("tools/call", Some(json!(1)))) {
        Inbound::Answer(a) => assert_eq!(code(&a), -32001, "{a}"),
        other => panic!("{other:?}"),
    }
    let read = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "read_text_file", "arguments": {"path": "/tmp/x"}}});
    assert!(matches!(t.client(read), Inbound::Forward(_)));
}

#[test]
fn tool_names_are_exact() {
    let t = stdio();
    t.list(json!([
        tool("write_file"),
        tool("read_text_file"),
        poisoned_tool()
    ]));
    for name in [
        "Write_File",
        "write_file ",
        "WRITE_FILE",
        "Poisoned_Add",
        "read_text_file\u{200b}",
    ] {
        let msg = json!({"jsonrpc": "2.0", "id": name, "method": "tools/call",
            "params": {"name": name, "arguments": {}}});
        match t.client(msg) {
            Inbound::Answer(a) => assert!([-32602, -32004].contains(&code(&a)), "{name:?}: {a}"),
            other => panic!("{name:?} was not refused: {other:?}"),
        }
    }
    let recorded = refusals(&t);
    assert!(
        recorded
            .iter()
            .any(|(_, tool, rule)| tool == "Write_File" && rule == "warden-mcp.tool-variant"),
        "{recorded:?}"
    );
}

#[test]
fn ids_a_client_could_confuse_cannot_wait_together() {
    let t = stdio();
    t.request(json!(1), "ping", json!({}));
    for id in [
        json!(1),
        json!("1"),
        json!(" 1"),
        serde_json::from_str("1.0").unwrap(),
    ] {
        match t.client(json!({"jsonrpc": "2.0", "id": id, "method": "ping"})) {
            Inbound::Answer(a) => assert_eq!(code(&a), -32600, "{a}"),
            other => panic!("id {id} was accepted while 1 waits: {other:?}"),
        }
    }
    // Fractional ids are not request ids in MCP.
    match t.client_raw(r#"{"jsonrpc":"2.0","id":2.5,"method":"ping"}"#) {
        Inbound::Malformed(a) => assert_eq!(code(&a), -32600),
        other => panic!("{other:?}"),
    }
}

#[test]
fn answers_to_requests_the_server_never_made_are_dropped() {
    let t = stdio();
    let forged = json!({"jsonrpc": "2.0", "id": 77, "result": {"role": "assistant",
        "content": {"type": "text", "text": "yes"}}});
    assert!(matches!(t.client(forged.clone()), Inbound::Dropped(_)));
    // An answer to a real server request goes through once, with the server's own id.
    let ask = json!({"jsonrpc": "2.0", "id": 77, "method": "roots/list"});
    assert!(matches!(
        t.server(ask),
        warden_mcp::proxy::Outbound::Forward(_)
    ));
    let spelled = r#"{"jsonrpc":"2.0","id":77.0,"result":{"roots":[]}}"#;
    match t.client_raw(spelled) {
        Inbound::Forward(v) => assert_eq!(v["id"], json!(77)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(t.client(forged), Inbound::Dropped(_)));
}

#[test]
fn resources_and_prompts_are_decided() {
    let policy = "name: extra\ndefault: allow\nrules:\n  - id: no-secrets\n    action: mcp.resources/read\n    when: \"action.resource.contains('secret')\"\n    effect: deny\n";
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    let read = |id: i64, uri: &str| {
        t.client(
            json!({"jsonrpc": "2.0", "id": id, "method": "resources/read", "params": {"uri": uri}}),
        )
    };
    // The gateway fixture's default is deny; no rule there allows resources/read.
    match read(1, "file:///srv/readme.md") {
        Inbound::Answer(a) => assert_eq!(code(&a), -32001, "{a}"),
        other => panic!("{other:?}"),
    }
    match t.client(
        json!({"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"name": "x"}}),
    ) {
        Inbound::Answer(a) => assert_eq!(code(&a), -32001, "{a}"),
        other => panic!("{other:?}"),
    }
    match t.client(json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {}})) {
        Inbound::Answer(a) => assert_eq!(code(&a), -32602, "{a}"),
        other => panic!("{other:?}"),
    }
    let audit = t.audit();
    assert!(
        audit.iter().any(
            |r| r["action"] == "mcp.resources/read" && r["resource"] == "file:///srv/readme.md"
        ),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "mcp.prompts/get" && r["tool"] == "x")
    );
}

#[test]
fn every_action_carries_the_agent_server_transport_and_session() {
    let policy = r#"name: context
default: deny
rules:
  - id: probe
    action: mcp.tools/call
    tool: probe
    agents: [bot-7]
    when: "context.server == 'hostile' && context.transport == 'http' && context.session == 's-42'"
    allow: true
"#;
    let config = ProxyConfig {
        agent: Some("bot-7".into()),
        ..ProxyConfig::default()
    };
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "probe"}});
    let t = talk_only(policy, config.clone(), Transport::Http);
    t.gateway.set_session("s-42");
    t.list(json!([tool("probe")]));
    assert!(
        matches!(t.client(call.clone()), Inbound::Forward(_)),
        "the action lacked its context"
    );
    let audit = t.audit();
    let record = audit
        .iter()
        .find(|r| r["action"] == "mcp.tools/call")
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(
        (&record["agent"], &record["verdict"]),
        (&json!("bot-7"), &json!("allow"))
    );
    // Over stdio, or without the session, the same rule does not apply.
    let t = talk_only(policy, config.clone(), Transport::Stdio);
    t.list(json!([tool("probe")]));
    assert!(matches!(t.client(call.clone()), Inbound::Answer(_)));
    let t = talk_only(policy, config, Transport::Http);
    t.list(json!([tool("probe")]));
    assert!(matches!(t.client(call), Inbound::Answer(_)));
}

#[test]
fn an_oversized_request_is_answered_by_its_id() {
    let t = stdio();
    let o = Oversize {
        len: 50 << 20,
        id: Some(json!(12)),
        has_method: true,
    };
    let e = t.gateway.client_too_large(&o).unwrap();
    assert_eq!((code(&e), &e["id"]), (-32005, &json!(12)));
    let o = Oversize {
        len: 50 << 20,
        id: None,
        has_method: false,
    };
    assert_eq!(t.gateway.client_too_large(&o).unwrap()["id"], Value::Null);
    // An oversized answer (no method, an id): nobody to tell.
    let o = Oversize {
        len: 50 << 20,
        id: Some(json!(3)),
        has_method: false,
    };
    assert!(t.gateway.client_too_large(&o).is_none());
}

/// With `--credential`, the proxy's own credential is what makes the client's actions those
/// of a verified agent. A client cannot supply one: whatever it sends lands in `args`, and a
/// Warden that requires identity denies the call.
#[test]
fn only_the_proxys_credential_makes_a_verified_agent() {
    use std::time::Duration;
    use warden_identity::{Chain, Grant, KeyPair, unix_now};

    let root = KeyPair::generate().unwrap();
    let agent = KeyPair::generate().unwrap();
    let credential = Chain::issue(
        &root,
        &Grant {
            subject: agent.did().clone(),
            capabilities: vec!["mcp.*".into()],
            ceiling: 800,
            ttl: Duration::from_secs(600),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
    .to_value();
    let mut zt = warden_trust::Config::default();
    zt.identity.roots = vec![root.did().clone()];
    zt.identity.required = true;
    let policy = r#"rules:
  - action: mcp.tools/call
    tool: probe
    allow: true
"#;
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "probe"}});

    let config = ProxyConfig {
        agent: Some("bot-7".into()),
        credential: Some(credential.clone()),
        ..ProxyConfig::default()
    };
    let t = talk_zero_trust(policy, zt.clone(), config, Transport::Stdio);
    t.list(json!([tool("probe")]));
    assert!(
        matches!(t.client(call.clone()), Inbound::Forward(_)),
        "{:?}",
        t.audit()
    );
    let audit = t.audit();
    let record = audit
        .iter()
        .find(|r| r["action"] == "mcp.tools/call")
        .unwrap_or_else(|| panic!("{audit:?}"));
    // Judged as the verified DID, not as the name the proxy was given.
    assert_eq!(
        (&record["agent"], &record["verdict"]),
        (&json!(agent.did().as_str()), &json!("allow"))
    );

    // No credential on the proxy: denied, even when the client offers one in its call.
    let config = ProxyConfig {
        agent: Some("bot-7".into()),
        ..ProxyConfig::default()
    };
    let t = talk_zero_trust(policy, zt, config, Transport::Stdio);
    t.list(json!([tool("probe")]));
    let forged = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "probe", "arguments": {"credential": credential},
                   "_meta": {"credential": credential}}});
    for msg in [call, forged] {
        let Inbound::Answer(answer) = t.client(msg) else {
            panic!("a call without the proxy's credential was forwarded");
        };
        assert!(answer.to_string().contains("credential"), "{answer}");
    }
}

/// A client that fires calls without waiting for answers is held to its ring's
/// `max_concurrent`: beyond it, calls are denied naming the ring (and recorded); an answer
/// or a cancellation gives the place back.
#[test]
fn running_calls_are_held_to_the_rings_max_concurrent() {
    let policy = r#"
rules:
  - action: "mcp.*"
    allow: true
rings:
  default: user
  profiles:
    user: {max_concurrent: 2, rate: none}
"#;
    let config = ProxyConfig {
        agent: Some("a1".to_string()),
        ..ProxyConfig::default()
    };
    let t = talk_only(policy, config, Transport::Stdio);
    let call = |id: i64| {
        t.client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                        "params": {"name": "slow", "arguments": {}}}))
    };
    let answer = |id: i64| {
        t.forwarded(&json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}}).to_string())
    };
    assert!(matches!(call(1), Inbound::Forward(_)));
    assert!(matches!(call(2), Inbound::Forward(_)));
    match call(3) {
        Inbound::Answer(a) => {
            let message = a["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("ring `user`"), "{a}");
            assert!(message.contains("2 calls running"), "{a}");
        }
        other => panic!("a third call ran at once: {other:?}"),
    }
    answer(1);
    assert!(matches!(call(4), Inbound::Forward(_)));
    assert!(matches!(call(5), Inbound::Answer(_)));
    t.client(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": 2}}),
    );
    assert!(matches!(call(6), Inbound::Forward(_)));
    // The refusals are on the record.
    let refused = t
        .audit()
        .iter()
        .filter(|r| r["verdict"] == "deny" && r["action"] == "mcp.tools/call")
        .count();
    assert_eq!(refused, 2);
}

/// Issue 19: a client line goes on to the server as it came only when the gateway changed
/// nothing and no server could read the line otherwise.
#[test]
fn a_client_line_goes_on_as_it_came_only_when_unchanged_and_unambiguous() {
    use warden_mcp::proxy::{Outbound, Wire};
    let t = stdio();
    let call = |id: &str, params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{params}}}"#)
    };
    let plain = call("1", r#"{"name":"add","arguments":{"a":1,"b":2}}"#);
    let (inbound, wire) = t.client_wire(&plain);
    assert_eq!(wire, Wire::AsReceived, "{inbound:?}");

    // Judged as `add` (the last `name`); a server keeping the first would run write_file.
    let dup = call(
        "2",
        r#"{"name":"write_file","arguments":{"path":"/tmp/x"},"name":"add"}"#,
    );
    match t.client_wire(&dup) {
        (Inbound::Forward(v), Wire::Canonical) => {
            assert_eq!(v["params"]["name"], "add");
            assert!(!v.to_string().contains("write_file"), "{v}");
        }
        other => panic!("{other:?}"),
    }
    for (what, line) in [
        (
            "a carriage return",
            plain.replace("\"id\":1,", "\"id\":3,\r"),
        ),
        (
            "an escaped method",
            plain
                .replace("\"id\":1,", "\"id\":4,")
                .replace("tools/call", r"tools\u002fcall"),
        ),
        ("an exponent", plain.replace("\"id\":1,", "\"id\":5e0,")),
        (
            "a fraction",
            plain
                .replace("\"id\":1,", "\"id\":6,")
                .replace("\"a\":1", "\"a\":1.5"),
        ),
        (
            "leading white space",
            format!(" {}", plain.replace("\"id\":1,", "\"id\":7,")),
        ),
    ] {
        let (inbound, wire) = t.client_wire(&line);
        assert!(
            matches!(inbound, Inbound::Forward(_)),
            "{what}: {inbound:?}"
        );
        assert_eq!(wire, Wire::Canonical, "{what}");
    }
    // An answer to the server's request under another spelling of its id goes on with the
    // server's own id.
    match t.server(json!({"jsonrpc": "2.0", "id": 40, "method": "roots/list"})) {
        Outbound::Forward(_) => {}
        other => panic!("{other:?}"),
    }
    let (inbound, wire) = t.client_wire(r#"{"jsonrpc":"2.0","id":40.0,"result":{"roots":[]}}"#);
    assert_eq!(wire, Wire::Canonical);
    assert!(matches!(inbound, Inbound::Forward(v) if v["id"] == json!(40)));
    match t.server(json!({"jsonrpc": "2.0", "id": 41, "method": "roots/list"})) {
        Outbound::Forward(_) => {}
        other => panic!("{other:?}"),
    }
    let (_, wire) = t.client_wire(r#"{"jsonrpc":"2.0","id":41,"result":{"roots":[]}}"#);
    assert_eq!(wire, Wire::AsReceived);
}

/// Go's `encoding/json` reads `Path` (or `PATH`, or `ſ` for `s`) as the parameter `path`: a
/// policy that judges `args.path` sees no path, and a Go server (mark3labs/mcp-go, the
/// official go-sdk) writes where the call says. A lone key that differs only in case from a
/// listed parameter is refused at any depth the schema describes; the exact spelling passes.
#[test]
fn an_argument_spelled_in_another_case_than_its_parameter_is_refused() {
    let policy = r#"
rules:
  - id: reads-outside-etc
    action: mcp.tools/call
    tool: fetch_file
    when: "!has(args.path) || !args.path.startsWith('/etc/')"
    allow: true
"#;
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    let fetch = json!({"name": "fetch_file", "description": "Fetches a file.",
        "inputSchema": {"type": "object", "properties": {
            "path": {"type": "string"},
            "options": {"type": "object", "properties": {"scope": {"type": "string"}}},
            "also": {"type": "array", "items": {"type": "object",
                "properties": {"path": {"type": "string"}}}}}}});
    assert_eq!(t.list(json!([fetch])), ["fetch_file"]);
    let call = |id: i64, arguments: Value| {
        t.client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "fetch_file", "arguments": arguments}}))
    };
    // The exact spelling is decided by the policy, both ways.
    assert!(matches!(
        call(1, json!({"path": "/tmp/a"})),
        Inbound::Forward(_)
    ));
    match call(2, json!({"path": "/etc/shadow"})) {
        Inbound::Answer(a) => assert_eq!(code(&a), -32001, "{a}"),
        other => panic!("{other:?}"),
    }
    // Another case, at the top, nested, in an array, and with Go's extra folds.
    for (id, arguments, given) in [
        (3, json!({"Path": "/etc/shadow"}), "Path"),
        (4, json!({"PATH": "/etc/shadow"}), "PATH"),
        (
            5,
            json!({"path": "/tmp/a", "options": {"Scope": "all"}}),
            "options.Scope",
        ),
        (6, json!({"options": {"ſcope": "all"}}), "options.ſcope"),
        (
            7,
            json!({"also": [{"path": "/tmp/b"}, {"pAth": "/etc/shadow"}]}),
            "also.pAth",
        ),
    ] {
        match call(id, arguments) {
            Inbound::Answer(a) => {
                assert_eq!(code(&a), -32602, "{a}");
                let reason = a["error"]["data"]["reason"].as_str().unwrap();
                assert!(reason.contains(&format!("`{given}`")), "{reason}");
                assert_eq!(a["error"]["data"]["rule"], "warden-mcp.argument-case");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    // Every refusal is on record.
    let refused = refusals(&t);
    assert_eq!(
        refused
            .iter()
            .filter(|(_, _, rule)| rule == "warden-mcp.argument-case")
            .count(),
        5,
        "{refused:?}"
    );
    // A key that matches no parameter in any case is the policy's business.
    assert!(matches!(
        call(8, json!({"path": "/tmp/a", "verbose": true})),
        Inbound::Forward(_)
    ));
}

/// Both sides choose how much the check folds: the server the schema's size, the client the
/// arguments'. Past the budget the call is refused, not passed unchecked.
#[test]
fn arguments_too_many_to_check_against_the_schema_are_refused() {
    let policy = "rules:\n  - action: mcp.tools/call\n    tool: wide\n    allow: true\n";
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    // 1,000 branches, each with its own properties: every row's key is looked up in each.
    let branches: Vec<Value> = (0..1_000)
        .map(|i| json!({"properties": {format!("p{i}"): {"type": "string"}}}))
        .collect();
    let wide = json!({"name": "wide", "description": "Wide.",
        "inputSchema": {"type": "object", "properties": {
            "rows": {"type": "array", "items": {"type": "object", "anyOf": branches}}}}});
    assert_eq!(t.list(json!([wide])), ["wide"]);
    let call = |id: i64, rows: usize| {
        let rows: Vec<Value> = (0..rows).map(|_| json!({"unknown": 1})).collect();
        t.client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "wide", "arguments": {"rows": rows}}}))
    };
    assert!(matches!(call(1, 10), Inbound::Forward(_)));
    match call(2, 600) {
        Inbound::Answer(a) => {
            assert_eq!(code(&a), -32602, "{a}");
            assert!(
                a["error"]["data"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("too large to check"),
                "{a}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The shapes Go schema generators and hand-written schemas give a parameter besides a plain
/// `properties` entry: invopop/jsonschema's default puts the whole argument struct behind a
/// `$ref` into `$defs`; a `map[string]Struct` is `additionalProperties`; unions are
/// `allOf`/`anyOf`/`oneOf`; tuples are `prefixItems` (or `items` as an array). A case variant
/// behind any of them is the same bypass, and must be refused the same.
#[test]
fn a_case_variant_behind_refs_maps_unions_and_tuples_is_refused() {
    let policy = "rules:\n  - action: mcp.tools/call\n    allow: true\n";
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    let path = json!({"type": "object", "properties": {"path": {"type": "string"}}});
    let tools = json!([
        {"name": "referenced", "description": "Reads.", "inputSchema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/$defs/Args", "$defs": {"Args": path}}},
        {"name": "nested_ref", "description": "Reads.", "inputSchema": {
            "type": "object", "properties": {"opts": {"$ref": "#/definitions/Opts"}},
            "definitions": {"Opts": path}}},
        {"name": "map", "description": "Reads.", "inputSchema": {
            "type": "object", "properties": {"files": {"type": "object",
                "additionalProperties": path}}}},
        {"name": "all_of", "description": "Reads.", "inputSchema": {
            "allOf": [{"type": "object", "properties": {"mode": {"type": "string"}}}, path]}},
        {"name": "any_of", "description": "Reads.", "inputSchema": {
            "type": "object", "anyOf": [path, {"properties": {"url": {"type": "string"}}}]}},
        {"name": "one_of", "description": "Reads.", "inputSchema": {
            "type": "object", "properties": {"x": {"oneOf": [{"type": "string"}, path]}}}},
        {"name": "tuple", "description": "Reads.", "inputSchema": {
            "type": "object", "properties": {
                "pair": {"type": "array", "prefixItems": [{"type": "string"}, path]},
                "old": {"type": "array", "items": [{"type": "string"}, path]}}}},
    ]);
    assert_eq!(t.list(tools).len(), 7);
    let call = |id: i64, name: &str, arguments: Value| {
        t.client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}))
    };
    for (id, name, good, bad, given) in [
        (
            1,
            "referenced",
            json!({"path": "/tmp/a"}),
            json!({"Path": "/etc/shadow"}),
            "Path",
        ),
        (
            3,
            "nested_ref",
            json!({"opts": {"path": "/tmp/a"}}),
            json!({"opts": {"PATH": "/etc/shadow"}}),
            "opts.PATH",
        ),
        (
            5,
            "map",
            json!({"files": {"a": {"path": "/tmp/a"}}}),
            json!({"files": {"a": {"path": "/tmp/a"}, "b": {"pAth": "/etc/shadow"}}}),
            "files.b.pAth",
        ),
        (
            7,
            "all_of",
            json!({"mode": "r", "path": "/tmp/a"}),
            json!({"mode": "r", "Path": "/etc/shadow"}),
            "Path",
        ),
        (
            9,
            "any_of",
            json!({"url": "u"}),
            json!({"pATH": "/etc/shadow"}),
            "pATH",
        ),
        (
            11,
            "one_of",
            json!({"x": {"path": "/tmp/a"}}),
            json!({"x": {"Path": "/etc/shadow"}}),
            "x.Path",
        ),
        (
            13,
            "tuple",
            json!({"pair": ["a", {"path": "/tmp/a"}], "old": ["a", {"path": "/tmp/a"}]}),
            json!({"pair": ["a", {"Path": "/etc/shadow"}]}),
            "pair.Path",
        ),
        (
            15,
            "tuple",
            json!({"old": [{"Path": "not an object here"}]}),
            json!({"old": ["a", {"Path": "/etc/shadow"}]}),
            "old.Path",
        ),
    ] {
        assert!(
            matches!(call(id, name, good.clone()), Inbound::Forward(_)),
            "{name}: {good} was refused"
        );
        match call(id + 1, name, bad.clone()) {
            Inbound::Answer(a) => {
                assert_eq!(code(&a), -32602, "{name}: {a}");
                let reason = a["error"]["data"]["reason"].as_str().unwrap();
                assert!(reason.contains(&format!("`{given}`")), "{name}: {reason}");
            }
            other => panic!("{name}: {bad} passed: {other:?}"),
        }
    }
}

/// The check must not refuse what the schema does not make a parameter: properties that are
/// not an object, a `$ref` that points nowhere or at itself are no parameters, not an error.
/// (A schema that lists both `path` and `Path` never gets this far: an answer with two keys
/// that differ only in case is refused whole.)
#[test]
fn case_checks_do_not_refuse_what_the_schema_lists() {
    let policy = "rules:\n  - action: mcp.tools/call\n    allow: true\n";
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    let tools = json!([
        {"name": "odd", "description": "Reads.", "inputSchema": {"type": "object",
            "properties": ["path"], "$ref": "#/nowhere", "additionalProperties": true}},
        {"name": "loop", "description": "Reads.", "inputSchema": {"$ref": "#",
            "allOf": [{"$ref": "#"}], "properties": {"path": {"$ref": "#"}}}},
    ]);
    assert_eq!(t.list(tools).len(), 2);
    let call = |id: i64, name: &str, arguments: Value| {
        t.client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}))
    };
    assert!(matches!(
        call(3, "odd", json!({"Path": "b"})),
        Inbound::Forward(_)
    ));
    assert!(matches!(
        call(4, "loop", json!({"path": {"path": {"path": 1}}})),
        Inbound::Forward(_)
    ));
    match call(5, "loop", json!({"path": {"path": {"PATH": 1}}})) {
        Inbound::Answer(a) => assert_eq!(code(&a), -32602, "{a}"),
        other => panic!("{other:?}"),
    }
    // Deeper than the check goes (32 levels) where the schema still describes the value (a
    // recursive `$ref`, a Go tree type): refused, not passed unchecked.
    let nest =
        |levels: usize, leaf: Value| (0..levels).fold(leaf, |inner, _| json!({"path": inner}));
    assert!(matches!(
        call(6, "loop", nest(30, json!({"path": 1}))),
        Inbound::Forward(_)
    ));
    match call(7, "loop", nest(40, json!({"PATH": 1}))) {
        Inbound::Answer(a) => assert_eq!(code(&a), -32602, "{a}"),
        other => panic!("{other:?}"),
    }
}

/// Go folds `ẞ` (capital sharp s) and `ß` together (one simple case-folding orbit); a
/// fold that upper-cases `ß` to `SS` first kept them apart, and `STRAẞE` passed for `straße`.
#[test]
fn a_capital_sharp_s_is_the_same_parameter_to_go() {
    let policy = "rules:\n  - action: mcp.tools/call\n    allow: true\n";
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    let tool = json!({"name": "street", "description": "Looks up a street.", "inputSchema": {
        "type": "object", "properties": {"straße": {"type": "string"}}}});
    assert_eq!(t.list(json!([tool])), ["street"]);
    let v = t.client(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "street", "arguments": {"STRAẞE": "x"}}}));
    match v {
        Inbound::Answer(a) => assert_eq!(code(&a), -32602, "{a}"),
        other => panic!("{other:?}"),
    }
}

/// The check's budget counted folds, not their length: a server's 4 MiB parameter name was
/// folded again for every object of an array (50,000 objects: 200 GiB of folding, many
/// minutes of one core, under the gateway's lock). Each parameter name is folded once per call.
#[test]
fn a_long_parameter_name_is_folded_once_per_call_not_once_per_element() {
    let policy = "rules:\n  - action: mcp.tools/call\n    allow: true\n";
    let t = std::sync::Arc::new(talk(Some(policy), ProxyConfig::default(), Transport::Stdio));
    let long = "p".repeat(4 << 20);
    let tool = json!({"name": "rows", "description": "Rows.", "inputSchema": {
        "type": "object", "properties": {"rows": {"type": "array", "items": {
            "type": "object", "properties": {long: {"type": "string"}}}}}}});
    assert_eq!(t.list(json!([tool])), ["rows"]);
    let rows: Vec<Value> = (0..50_000).map(|_| json!({"x": 0})).collect();
    let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "rows", "arguments": {"rows": rows}}});
    let (tx, rx) = std::sync::mpsc::channel();
    let t2 = t.clone();
    std::thread::spawn(move || {
        let _ = tx.send(matches!(t2.client(msg), Inbound::Forward(_)));
    });
    // "Did not hang" only: generous for a debug build on a shared core.
    let forwarded = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the check hung");
    assert!(forwarded);
}

/// Against an oracle written the plain way (Go's fold over ASCII, `ſ` and the Kelvin sign;
/// a schema of nested `properties` and `items`): every call whose arguments hold a key that
/// is no property where it stands but folds to one is refused, every call that holds none is
/// forwarded, and the check never panics or hangs on what either side chose.
mod case_oracle {
    use super::*;
    use proptest::prelude::*;

    const KEYS: [&str; 8] = ["a", "A", "b", "s", "S", "ſ", "k", "\u{212A}"];

    fn go_fold(key: &str) -> String {
        key.chars()
            .map(|c| match c {
                'ſ' => 'S',
                '\u{212A}' => 'K',
                c => c.to_ascii_uppercase(),
            })
            .collect()
    }

    fn schema() -> impl Strategy<Value = Value> {
        let leaf = Just(json!({"type": "string"}));
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::btree_map(
                    proptest::sample::select(&KEYS[..]),
                    inner.clone(),
                    0..4
                )
                .prop_map(|p| json!({"type": "object", "properties": p})),
                inner.prop_map(|i| json!({"type": "array", "items": i})),
            ]
        })
    }

    fn args() -> impl Strategy<Value = Value> {
        let leaf = Just(json!(1));
        let value = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                object(inner.clone()),
                proptest::collection::vec(inner, 0..3).prop_map(Value::Array),
            ]
        });
        object(value)
    }

    fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        proptest::collection::btree_map(proptest::sample::select(&KEYS[..]), inner, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    /// `Some(true)`: a case variant the check must refuse; `Some(false)`: none; `None`: two
    /// keys of one object fold together (refused earlier, as ever).
    fn oracle(value: &Value, schema: &Value) -> Option<bool> {
        if folded_twice(value) {
            return None;
        }
        Some(variant(value, schema))
    }

    /// An object anywhere in `value` has two keys that fold together.
    fn folded_twice(value: &Value) -> bool {
        match value {
            Value::Object(map) => {
                let folds: Vec<String> = map.keys().map(|k| go_fold(k)).collect();
                (1..folds.len()).any(|i| folds[..i].contains(&folds[i]))
                    || map.values().any(folded_twice)
            }
            Value::Array(items) => items.iter().any(folded_twice),
            _ => false,
        }
    }

    fn variant(value: &Value, schema: &Value) -> bool {
        match value {
            Value::Object(map) => {
                let props = schema.get("properties").and_then(Value::as_object);
                map.iter().any(|(key, inner)| match props {
                    Some(p) if p.contains_key(key) => variant(inner, &p[key]),
                    Some(p) => p.keys().any(|n| go_fold(n) == go_fold(key)),
                    None => false,
                })
            }
            Value::Array(items) => match schema.get("items") {
                Some(sub) => items.iter().any(|item| variant(item, sub)),
                None => false,
            },
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn the_check_agrees_with_the_oracle(schema in schema(), args in args()) {
            let policy = "rules:\n  - action: mcp.tools/call\n    allow: true\n";
            let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
            t.request(json!("list"), "tools/list", json!({}));
            let listing = json!({"jsonrpc": "2.0", "id": "list", "result": {"tools": [
                {"name": "t", "description": "T.", "inputSchema": schema}]}});
            let v = t.forwarded(&listing.to_string());
            // A schema with two properties that fold together is refused whole (the answer's
            // keys differ only in case): nothing to call.
            prop_assume!(v.get("error").is_none());
            let verdict = t.client(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "t", "arguments": args}}));
            match (oracle(&args, &schema), verdict) {
                (None, Inbound::Answer(_) | Inbound::Malformed(_))
                | (Some(false), Inbound::Forward(_)) => {}
                (Some(true), Inbound::Answer(a)) => prop_assert_eq!(code(&a), -32602),
                (want, got) => prop_assert!(false, "{want:?} for {args} against {schema}: {got:?}"),
            }
        }
    }
}

/// The check's budget is for what the server's schema multiplies (branches, `$ref`s), not
/// for the size of the call: a bulk call of 200,000 rows that spell their keys as listed is
/// checked and forwarded, not refused as too large.
#[test]
fn a_large_call_spelled_as_listed_is_not_refused_as_too_large() {
    let policy = "rules:\n  - action: mcp.tools/call\n    allow: true\n";
    let t = talk(Some(policy), ProxyConfig::default(), Transport::Stdio);
    let tool = json!({"name": "insert", "description": "Inserts rows.", "inputSchema": {
        "type": "object", "properties": {"rows": {"type": "array", "items": {
            "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                "c": {"type": "integer"}, "d": {"type": "integer"}}}}}}});
    assert_eq!(t.list(json!([tool])), ["insert"]);
    let rows: Vec<Value> = (0..200_000)
        .map(|i| json!({"a": i, "b": 1, "c": 2, "d": 3}))
        .collect();
    let v = t.client(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "insert", "arguments": {"rows": rows}}}));
    assert!(matches!(v, Inbound::Forward(_)), "{v:?}");
}
