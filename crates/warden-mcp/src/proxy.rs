//! The proxy's decision path, [`Gateway`], shared by both transports, and the stdio
//! transport: the stdio proxy sits between an MCP client and the server it starts, speaking
//! newline-delimited JSON-RPC 2.0 to both (the Streamable HTTP proxy is
//! [`crate::proxy_http`]). Both are transparent except where Warden decides.
//!
//! - The server's `instructions` are dropped from the `initialize` answer when poisoned.
//! - `tools/list` results are scanned; poisoned tools (high or critical findings) are hidden
//!   unless policy allows them (`mcp.tools/list`), and with a lock file a tool that is new or
//!   changed since it was pinned is withheld.
//! - `tools/call` becomes an [`Action`] `mcp.tools/call` for [`Warden::decide`]; anything but
//!   allow is answered with a JSON-RPC error and **never reaches the server**.
//! - Tool results are scanned for injected instructions and secrets; with findings, policy
//!   decides (`mcp.tools/result`): deny blocks the result, allow with the `redact` obligation
//!   replaces each offending span.
//! - A malformed message from either side is answered (client) or dropped (server) with a
//!   proper JSON-RPC error; it never reaches the other side and never stops the proxy.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use thiserror::Error;
use warden::{Action, Decision, Verdict, Warden};

use crate::detect::{self, Mode};
use crate::finding::{Finding, Severity};
use crate::jsonrpc::{self, Kind, code};
use crate::lock::Lock;
use crate::scan::{scan_tool, tool_name};

/// The proxy could not run.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The server command could not be started.
    #[error("cannot start the server `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// No server command was given.
    #[error("no server command given (put it after `--`)")]
    NoCommand,
    /// The upstream URL of the HTTP proxy is not usable.
    #[error("upstream `{url}`: {why}")]
    Upstream {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The HTTP proxy could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A non-loopback listen address without `--insecure`.
    #[error(
        "refusing to listen on {0}: anyone who can reach it could use the upstream MCP server through this proxy; listen on a loopback address, or give --insecure to accept the risk"
    )]
    NotLoopback(std::net::SocketAddr),
}

/// How the proxy is set up.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// The server command and its arguments.
    pub command: Vec<String>,
    /// Pins: tools that are new or changed since pinning are withheld.
    pub lock: Option<Lock>,
    /// The server's name in actions' `context.server` and in the lock; default: the
    /// `serverInfo.name` the server reports in its `initialize` answer.
    pub server_name: Option<String>,
}

/// What the proxy remembers between messages.
struct State {
    /// Client requests waiting for the server's answer: id → (method, tool).
    pending: HashMap<String, (String, Option<String>)>,
    /// Tools the client must not call, with the reason.
    withheld: HashMap<String, String>,
    /// Tools seen in a listing and not withheld.
    verified: HashSet<String>,
    /// With a lock, only `verified` tools may be called: a tool the client calls without
    /// listing it first was never checked against its pin.
    require_verified: bool,
    server: String,
}

type Out = Arc<Mutex<Box<dyn Write + Send>>>;

fn send(out: &Out, msg: &Value) {
    let mut w = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A closed peer shows up as EOF on its other pipe; the loops end there.
    let _ = writeln!(w, "{msg}");
    let _ = w.flush();
}

pub(crate) fn log(msg: &str) {
    tracing::warn!("{msg}");
}

/// One client–server conversation's policy state and decision path, shared by both
/// transports: the stdio proxy feeds it lines, the Streamable HTTP proxy feeds it POST bodies
/// and SSE events. Every Warden decision the proxy makes goes through here.
pub struct Gateway {
    state: Mutex<State>,
    warden: Arc<Warden>,
    config: Arc<ProxyConfig>,
}

/// What to do with a message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// Send it on to the server (it may be a request, notification or response).
    Forward(Value),
    /// Do not send it on; answer the client with this response instead (a Warden refusal
    /// or a parameter error on `tools/call`).
    Refused(Value),
    /// Not a JSON-RPC 2.0 message: answer with this error (parse error / invalid request).
    Malformed(Value),
}

impl Gateway {
    /// A fresh conversation.
    pub fn new(warden: Arc<Warden>, config: Arc<ProxyConfig>) -> Gateway {
        Gateway {
            state: Mutex::new(State {
                pending: HashMap::new(),
                withheld: HashMap::new(),
                verified: HashSet::new(),
                require_verified: config.lock.is_some(),
                server: config
                    .server_name
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            }),
            warden,
            config,
        }
    }

    /// Decide one message (one line, one POST body) from the client.
    pub fn from_client(&self, raw: &[u8]) -> Inbound {
        let msg = match jsonrpc::parse(raw) {
            Ok(m) => m,
            Err(e) => return Inbound::Malformed(jsonrpc::error(&e.id, e.code, &e.message, None)),
        };
        let state = &self.state;
        match &msg.kind {
            Kind::Request { id, method } if method == "tools/call" => {
                if let Some(answer) = gate_call(id, &msg.value, state, &self.warden) {
                    return Inbound::Refused(answer);
                }
                let tool = msg
                    .value
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .map(String::from);
                lock_state(state)
                    .pending
                    .insert(id.to_string(), (method.clone(), tool));
            }
            Kind::Request { id, method } => {
                lock_state(state)
                    .pending
                    .insert(id.to_string(), (method.clone(), None));
            }
            Kind::Notification { .. } | Kind::Response { .. } => {}
        }
        Inbound::Forward(msg.value)
    }

    /// Filter one message from the server; `None` when it must not reach the client
    /// (malformed).
    pub fn from_server(&self, raw: &[u8]) -> Option<Value> {
        let mut msg = match jsonrpc::parse(raw) {
            Ok(m) => m,
            Err(e) => {
                // Nothing to answer: the server is not waiting. The client never sees it.
                log(&format!(
                    "dropped a malformed message from the server ({})",
                    e.message
                ));
                return None;
            }
        };
        let (state, warden, config) = (&self.state, &*self.warden, &*self.config);
        if let Kind::Response { id } = &msg.kind {
            let pending = lock_state(state).pending.remove(&id.to_string());
            match pending {
                Some((method, _)) if method == "initialize" => {
                    strip_poisoned_instructions(&mut msg.value);
                    if config.server_name.is_none()
                        && let Some(name) = msg
                            .value
                            .pointer("/result/serverInfo/name")
                            .and_then(Value::as_str)
                    {
                        lock_state(state).server = name.to_string();
                    }
                }
                Some((method, _)) if method == "tools/list" => {
                    filter_tools(&mut msg.value, state, warden, config);
                }
                Some((method, Some(tool))) if method == "tools/call" => {
                    let server = lock_state(state).server.clone();
                    if let Some(blocked) = guard_result(id, &mut msg.value, &tool, &server, warden)
                    {
                        msg.value = blocked;
                    }
                }
                _ => {}
            }
        }
        Some(msg.value)
    }
}

/// Run the proxy until the client closes its input or the server exits. Returns the
/// server's exit code (or 0).
pub fn run(
    config: ProxyConfig,
    warden: Arc<Warden>,
    client_in: impl BufRead + Send + 'static,
    client_out: Box<dyn Write + Send>,
) -> Result<i32, ProxyError> {
    let (program, args) = config.command.split_first().ok_or(ProxyError::NoCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| ProxyError::Spawn {
            command: config.command.join(" "),
            source,
        })?;
    // INVARIANT: both pipes were requested above.
    let server_in: Out = Arc::new(Mutex::new(Box::new(
        child.stdin.take().expect("piped stdin"),
    )));
    let server_out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let client_out: Out = Arc::new(Mutex::new(client_out));
    let gateway = Arc::new(Gateway::new(warden, Arc::new(config)));
    let (done, finished) = mpsc::channel::<&'static str>();

    {
        let (gateway, client_out, server_in, done) = (
            gateway.clone(),
            client_out.clone(),
            server_in.clone(),
            done.clone(),
        );
        std::thread::spawn(move || {
            from_client(client_in, &gateway, &client_out, &server_in);
            let _ = done.send("client");
        });
    }
    {
        let (gateway, client_out) = (gateway.clone(), client_out.clone());
        std::thread::spawn(move || {
            from_server(server_out, &gateway, &client_out);
            let _ = done.send("server");
        });
    }
    let first = finished.recv().unwrap_or("server");
    if first == "client" {
        // Closing the server's stdin is the stdio transport's shutdown signal; give it a
        // moment, then stop it.
        drop(server_in.lock().map(|mut w| *w = Box::new(std::io::sink())));
        for _ in 0..50 {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(status.code().unwrap_or(0));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    Ok(child.wait().ok().and_then(|s| s.code()).unwrap_or(0))
}

fn lock_state(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn from_client(input: impl BufRead, gateway: &Gateway, client: &Out, server: &Out) {
    for line in input.split(b'\n') {
        let Ok(line) = line else { break };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match gateway.from_client(&line) {
            Inbound::Forward(msg) => send(server, &msg),
            Inbound::Refused(answer) | Inbound::Malformed(answer) => send(client, &answer),
        }
    }
}

/// Decide a `tools/call`; `Some(error response)` when it must not reach the server.
fn gate_call(id: &Value, msg: &Value, state: &Mutex<State>, warden: &Warden) -> Option<Value> {
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let Some(tool) = params.get("name").and_then(Value::as_str) else {
        return Some(jsonrpc::error(
            id,
            code::INVALID_PARAMS,
            "tools/call needs `params.name` (a string)",
            None,
        ));
    };
    let args = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Some(jsonrpc::error(
                id,
                code::INVALID_PARAMS,
                "`params.arguments` must be an object",
                None,
            ));
        }
    };
    let (server, withheld) = {
        let s = lock_state(state);
        let unverified = (s.require_verified && !s.verified.contains(tool)).then(|| {
            "the tool has not been listed and checked against the lock file yet; list the tools first".to_string()
        });
        (
            s.server.clone(),
            s.withheld.get(tool).cloned().or(unverified),
        )
    };
    let mut action = Action::new("mcp.tools/call")
        .with_tool(tool)
        .with_context("server", server);
    action.args = args;
    if let Some(reason) = withheld {
        log(&format!("refused call to withheld tool `{tool}`: {reason}"));
        // The policy never saw this call, so record the refusal ourselves: every call
        // reaches the audit log, whoever refused it.
        if let Some(audit) = warden.audit() {
            let mut d = Decision::deny(format!("withheld by warden-mcp: {reason}"));
            d.rule = Some("warden-mcp.withheld".into());
            if let Err(e) = audit.append(warden_audit::Entry::new(&action, &d)) {
                log(&format!(
                    "could not record the refusal in the audit log: {e}"
                ));
            }
        }
        return Some(jsonrpc::error(
            id,
            code::TOOL_WITHHELD,
            &format!("Warden withheld tool `{tool}`: {reason}"),
            Some(json!({"verdict": "deny", "reason": reason})),
        ));
    }
    let d = warden.decide(&action);
    log(&format!(
        "tools/call `{tool}`: {} ({})",
        d.verdict, d.reason
    ));
    match d.verdict {
        Verdict::Allow => None,
        Verdict::Deny => Some(decision_error(
            id,
            code::DENIED,
            &format!("Warden denied `{tool}`: {}", d.reason),
            &d,
        )),
        Verdict::RequireApproval => Some(decision_error(
            id,
            code::APPROVAL_REQUIRED,
            &format!("Warden requires approval for `{tool}`: {}", d.reason),
            &d,
        )),
    }
}

fn decision_error(id: &Value, code: i64, message: &str, d: &Decision) -> Value {
    jsonrpc::error(
        id,
        code,
        message,
        Some(json!({"verdict": d.verdict, "reason": d.reason, "policy": d.policy, "rule": d.rule})),
    )
}

fn from_server(input: impl BufRead, gateway: &Gateway, client: &Out) {
    for line in input.split(b'\n') {
        let Ok(line) = line else { break };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(msg) = gateway.from_server(&line) {
            send(client, &msg);
        }
    }
}

/// Server instructions (in the `initialize` answer) reach the model like a tool
/// description; with a high or critical finding they are removed.
fn strip_poisoned_instructions(response: &mut Value) {
    let Some(Value::String(text)) = response.pointer_mut("/result/instructions") else {
        return;
    };
    let mut ids: Vec<&str> = detect::scan(text, Mode::Metadata)
        .into_iter()
        .filter(|h| h.severity >= Severity::High)
        .map(|h| h.id)
        .collect();
    if ids.is_empty() {
        return;
    }
    ids.dedup();
    log(&format!(
        "removed the server's poisoned instructions ({})",
        ids.join(", ")
    ));
    if let Some(result) = response.get_mut("result").and_then(Value::as_object_mut) {
        result.remove("instructions");
    }
}

/// Hide poisoned and drifted tools from a `tools/list` result, and remember them.
fn filter_tools(response: &mut Value, state: &Mutex<State>, warden: &Warden, config: &ProxyConfig) {
    let Some(tools) = response
        .pointer_mut("/result/tools")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let server = lock_state(state).server.clone();
    let mut keep = Vec::with_capacity(tools.len());
    let mut st_withheld = Vec::new();
    let mut st_verified = Vec::new();
    for tool in tools.drain(..) {
        let name = tool_name(&tool).to_string();
        let mut findings: Vec<Finding> = Vec::new();
        scan_tool(&server, &tool, &mut findings);
        let reason = withhold_reason(&server, &name, &tool, &findings, warden, config);
        match reason {
            Some(reason) => {
                log(&format!("withheld tool `{name}` of `{server}`: {reason}"));
                st_withheld.push((name, Some(reason)));
            }
            None => {
                st_verified.push(name.clone());
                st_withheld.push((name, None));
                keep.push(tool);
            }
        }
    }
    *tools = keep;
    let mut s = lock_state(state);
    for (name, reason) in st_withheld {
        match reason {
            Some(r) => {
                s.verified.remove(&name);
                s.withheld.insert(name, r);
            }
            None => {
                s.withheld.remove(&name);
            }
        }
    }
    s.verified.extend(st_verified);
}

fn withhold_reason(
    server: &str,
    name: &str,
    tool: &Value,
    findings: &[Finding],
    warden: &Warden,
    config: &ProxyConfig,
) -> Option<String> {
    if let Some(lock) = &config.lock
        && !lock.matches(server, tool)
    {
        let known = lock
            .servers
            .get(server)
            .is_some_and(|t| t.contains_key(name));
        return Some(if known {
            "the tool changed since it was pinned; review it and re-pin with `warden mcp pin`"
                .into()
        } else {
            "the tool is not in the lock file; review it and pin it with `warden mcp pin`".into()
        });
    }
    let serious: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity >= Severity::High)
        .collect();
    if serious.is_empty() {
        return None;
    }
    let mut ids: Vec<&str> = serious.iter().map(|f| f.id.as_str()).collect();
    ids.dedup();
    // Policy may still let a flagged tool through (say, a vetted internal server).
    let action = Action::new("mcp.tools/list")
        .with_tool(name)
        .with_context("server", server)
        .with_context("findings", json!(ids))
        .with_context(
            "severity",
            Finding::max_severity(findings).map(|s| s.as_str()),
        );
    let d = warden.decide(&action);
    // Only a rule that names this case lets a poisoned tool through; a permissive document
    // default (`default: allow`) must not un-hide every poisoned tool by accident.
    if d.verdict == Verdict::Allow && d.rule.is_some() {
        return None;
    }
    Some(format!(
        "poisoned tool ({}): {}",
        ids.join(", "),
        serious[0].why
    ))
}

/// Scan a tool result; `Some(error)` replaces it when policy blocks it. Redaction edits the
/// result in place.
fn guard_result(
    id: &Value,
    response: &mut Value,
    tool: &str,
    server: &str,
    warden: &Warden,
) -> Option<Value> {
    let result = response.get_mut("result")?;
    let mut hits = Vec::new();
    visit_strings(result, &mut |s: &mut String| {
        hits.extend(detect::scan(s, Mode::Output).into_iter().map(|h| h.id));
    });
    if hits.is_empty() {
        return None;
    }
    hits.sort_unstable();
    hits.dedup();
    let action = Action::new("mcp.tools/result")
        .with_tool(tool)
        .with_context("server", server)
        .with_context("findings", json!(hits));
    let d = warden.decide(&action);
    log(&format!(
        "result of `{tool}` has {}: {} ({})",
        hits.join(", "),
        d.verdict,
        d.reason
    ));
    if d.verdict == Verdict::Allow {
        if d.obligations.iter().any(|o| &**o == "redact") {
            visit_strings(result, &mut |s: &mut String| *s = redact(s));
        }
        return None;
    }
    Some(decision_error(
        id,
        code::RESULT_BLOCKED,
        &format!(
            "Warden blocked the result of `{tool}` ({}): {}",
            hits.join(", "),
            d.reason
        ),
        &d,
    ))
}

/// Replace every span the output rules flag with a marker naming the rule.
pub fn redact(text: &str) -> String {
    let mut hits = detect::scan(text, Mode::Output);
    if hits.is_empty() {
        return text.to_string();
    }
    hits.sort_by_key(|h| h.span);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for h in hits {
        let (s, e) = h.span;
        if s < at {
            // Overlapping spans: extend the cut already made.
            at = at.max(e);
            continue;
        }
        out.push_str(&text[at..s]);
        out.push_str(&format!("[REDACTED by warden: {}]", h.id));
        at = e;
    }
    out.push_str(&text[at.min(text.len())..]);
    out
}

fn visit_strings(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|x| visit_strings(x, f)),
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                // Binary payloads (images, audio) are base64, not text for the model.
                if k == "data" || k == "blob" {
                    continue;
                }
                visit_strings(x, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_only_the_spans() {
        let t = "key: AKIAIOSFODNN7EXAMPLE and the rest";
        assert_eq!(
            redact(t),
            "key: [REDACTED by warden: secret.aws-access-key] and the rest"
        );
        assert_eq!(redact("nothing here"), "nothing here");
    }
}
