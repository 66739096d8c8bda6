//! What the server says about itself: the `initialize` answer (its name and its
//! `instructions`) and its `tools/list` answers, scanned like `warden mcp scan` scans them.
//!
//! A tool with a high or critical finding is withheld unless a policy *rule* allows action
//! `mcp.tools/list` for it; with a lock file, a tool that is new or changed since it was
//! pinned is withheld. A withheld tool stays uncallable. Entries that are not tools (not an
//! object, no string `name`) are dropped: a client would have to guess what they mean.

use serde_json::{Value, json};
use warden::Verdict;

use super::gateway::{Gateway, lock};
use super::method;
use crate::detect::{self, Mode};
use crate::finding::{Finding, Severity};
use crate::jsonrpc::{self, code};
use crate::scan::{scan_tool, tool_name};

impl Gateway {
    /// Learn the server's name (unless configured) and drop poisoned `instructions`.
    pub(super) fn learn_from_initialize(&self, answer: &mut Value) {
        if self.config.server_name.is_none()
            && let Some(name) = answer
                .pointer("/result/serverInfo/name")
                .and_then(Value::as_str)
        {
            lock(&self.state).server = name.to_string();
        }
        strip_poisoned_instructions(answer);
    }

    /// Hide poisoned and drifted tools from a `tools/list` answer, and remember them.
    pub(super) fn filter_tools(&self, id: &Value, mut answer: Value) -> Value {
        let Some(tools) = answer
            .pointer_mut("/result/tools")
            .and_then(Value::as_array_mut)
        else {
            tracing::warn!("the server's tools/list answer has no `tools` array; refused");
            return jsonrpc::error(
                id,
                code::BAD_ANSWER,
                "the server's tools/list answer has no `tools` array",
                None,
            );
        };
        let server = lock(&self.state).server.clone();
        let mut keep = Vec::with_capacity(tools.len());
        let mut seen = Vec::new();
        for tool in tools.drain(..) {
            if !tool.is_object() || !tool.get("name").is_some_and(Value::is_string) {
                tracing::warn!(
                    "dropped a tools/list entry of `{server}` that is not a tool: {tool}"
                );
                continue;
            }
            let name = tool_name(&tool).to_string();
            let mut findings: Vec<Finding> = Vec::new();
            scan_tool(&server, &tool, &mut findings);
            let reason = self.withhold_reason(&server, &name, &tool, &findings);
            if let Some(reason) = &reason {
                tracing::warn!("withheld tool `{name}` of `{server}`: {reason}");
            } else {
                keep.push(tool);
            }
            seen.push((name, reason));
        }
        *tools = keep;
        let mut s = lock(&self.state);
        for (name, reason) in seen {
            s.known.insert(method::fold(&name), name.clone());
            match reason {
                Some(r) => {
                    s.verified.remove(&name);
                    s.withheld.insert(name, r);
                }
                // A name listed twice, once poisoned, stays withheld.
                None if s.withheld.contains_key(&name) => {}
                None => {
                    s.verified.insert(name);
                }
            }
        }
        answer
    }

    fn withhold_reason(
        &self,
        server: &str,
        name: &str,
        tool: &Value,
        findings: &[Finding],
    ) -> Option<String> {
        if let Some(lock) = &self.config.lock
            && !lock.matches(server, tool)
        {
            let known = lock
                .servers
                .get(server)
                .is_some_and(|t| t.contains_key(name));
            return Some(if known {
                "the tool changed since it was pinned; review it and pin it again".into()
            } else {
                "the tool is not in the lock file; review it and pin it".into()
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
        let action = self
            .action("mcp.tools/list")
            .with_tool(name)
            .with_context("findings", json!(ids))
            .with_context(
                "severity",
                Finding::max_severity(findings).map(|s| s.as_str()),
            );
        let d = self.warden.decide(&action);
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
}

impl Gateway {
    /// Withhold the poisoned entries of a `prompts/list`, `resources/list` or
    /// `resources/templates/list` answer (`result[key]`): their names and descriptions reach
    /// the model like a tool's, so an entry with a high or critical finding is dropped unless
    /// a policy rule allows `mcp.<kind>s/list` for it. Not-an-object entries are dropped.
    pub(super) fn filter_listing(&self, mut answer: Value, key: &str, kind: &str) -> Value {
        let Some(entries) = answer
            .get_mut("result")
            .and_then(|r| r.get_mut(key))
            .and_then(Value::as_array_mut)
        else {
            return answer;
        };
        let server = lock(&self.state).server.clone();
        entries.retain(|entry| {
            let Value::Object(map) = entry else {
                tracing::warn!("dropped a {key} entry of `{server}` that is not an object");
                return false;
            };
            let label = ["name", "uri", "uriTemplate"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str))
                .unwrap_or("?")
                .to_string();
            let mut ids: Vec<&'static str> = Vec::new();
            for (k, v) in map {
                let mut texts = Vec::new();
                crate::scan::walk(k, v, &mut texts);
                for (_, text) in texts {
                    ids.extend(
                        detect::scan(&text, Mode::Metadata)
                            .into_iter()
                            .filter(|h| h.severity >= Severity::High)
                            .map(|h| h.id),
                    );
                }
            }
            if ids.is_empty() {
                return true;
            }
            ids.sort_unstable();
            ids.dedup();
            let mut action = self
                .action(&format!("mcp.{kind}s/list"))
                .with_context("findings", json!(ids));
            action = if kind == "resource" {
                action.with_resource(label.as_str())
            } else {
                action.with_tool(label.as_str())
            };
            let d = self.warden.decide(&action);
            if d.verdict == Verdict::Allow && d.rule.is_some() {
                return true;
            }
            tracing::warn!(
                "withheld {kind} `{label}` of `{server}`: poisoned ({})",
                ids.join(", ")
            );
            false
        });
        answer
    }
}

/// Server instructions (in the `initialize` answer) reach the model like a tool
/// description; with a high or critical finding they are removed.
fn strip_poisoned_instructions(answer: &mut Value) {
    let text = match answer.pointer_mut("/result/instructions") {
        None | Some(Value::Null) => return,
        Some(Value::String(text)) => text,
        Some(_) => {
            // Not a string: nothing a client should show, and nothing scanned.
            if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
                result.remove("instructions");
            }
            return;
        }
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
    tracing::warn!(
        "removed the server's poisoned instructions ({})",
        ids.join(", ")
    );
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result.remove("instructions");
    }
}
