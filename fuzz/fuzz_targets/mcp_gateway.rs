//! The proxy's message handling: arbitrary lines from the client and the server through a
//! real `Gateway` with an in-memory `Warden`. Nothing panics; every answer the gateway
//! passes to the client answers a request the client sent, that was forwarded and still
//! waits, and carries that request's id exactly; nothing forwarded to the server is a
//! look-alike of `tools/call` or a `tools/call` without an id.
//!
//! Input: lines separated by `\n`; a line's first byte says who sends it (even: the client,
//! odd: the server), the rest is the message.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden::{PolicySet, Warden};
use warden_mcp::jsonrpc::id;
use warden_mcp::proxy::{Inbound, Outbound, Transport};
use warden_mcp::{Gateway, ProxyConfig};

const POLICY: &str = r#"
name: fuzz
default: deny
rules:
  - id: some-tools
    action: mcp.tools/call
    tool: [add, echo, read_text_file]
    allow: true
  - id: redact
    action: "mcp.*/result"
    when: "context.findings.all(f, f.startsWith('secret.'))"
    allow: true
    obligations: [redact]
  - id: sampling
    action: mcp.sampling/createMessage
    when: "size(context.findings) == 0"
    allow: true
"#;

fn warden() -> Arc<Warden> {
    static W: OnceLock<Arc<Warden>> = OnceLock::new();
    W.get_or_init(|| {
        Arc::new(Warden::new(
            PolicySet::from_yaml("fuzz.yaml", POLICY).unwrap(),
        ))
    })
    .clone()
}

/// `tools/call` as a lenient server might read it.
fn looks_like_call(method: &str) -> bool {
    let folded: String = method
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    folded == "tools/call"
}

fuzz_target!(|data: &[u8]| {
    let gateway = Gateway::new(warden(), Arc::new(ProxyConfig::default()), Transport::Stdio);
    // The client requests forwarded and not yet answered, by their exact id.
    let mut waiting: Vec<Value> = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let Some((&who, msg)) = line.split_first() else {
            continue;
        };
        if who % 2 == 0 {
            match gateway.from_client(msg) {
                Inbound::Forward(v) => {
                    if let Some(method) = v.get("method").and_then(Value::as_str) {
                        if looks_like_call(method) {
                            assert_eq!(method, "tools/call", "a look-alike was forwarded: {v}");
                            assert!(
                                v.get("id").is_some(),
                                "a tools/call notification was forwarded"
                            );
                        }
                        match v.get("id") {
                            Some(i) => waiting.push(i.clone()),
                            None if method == "notifications/cancelled" => {
                                if let Some(c) = v.pointer("/params/requestId") {
                                    waiting.retain(|w| !id::same_id(w, c));
                                }
                            }
                            None => {}
                        }
                    }
                }
                Inbound::Answer(_) | Inbound::Malformed(_) | Inbound::Dropped(_) => {}
                // Without `approval_wait` (the default) nothing is held.
                Inbound::Held(h) => panic!("a request was held without approval_wait: {h:?}"),
            }
        } else if let Outbound::Forward(v) = gateway.from_server(msg) {
            let is_answer = v.get("method").is_none();
            if is_answer {
                let got = &v["id"];
                let at = waiting.iter().position(|w| w == got).unwrap_or_else(|| {
                    panic!("an answer to nothing waiting reached the client: {v}")
                });
                waiting.remove(at);
            }
        }
    }
});
