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
use super::results::{MODEL_ERROR, MODEL_PARTIAL};
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
        self.strip_poisoned_instructions(answer);
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
        let mut scanned: Vec<(Value, Vec<Finding>)> = Vec::with_capacity(tools.len());
        for tool in tools.drain(..) {
            if !tool.is_object() || !tool.get("name").is_some_and(Value::is_string) {
                tracing::warn!(
                    "dropped a tools/list entry of `{server}` that is not a tool: {tool}"
                );
                continue;
            }
            let mut findings: Vec<Finding> = Vec::new();
            scan_tool(&server, &tool, &mut findings);
            scanned.push((tool, findings));
        }
        if let Err(why) = self.room_to_keep(&scanned) {
            tracing::warn!("refused a tools/list answer of `{server}`: {why}");
            return jsonrpc::error(id, code::BAD_ANSWER, &why, None);
        }
        self.model_tools(&server, &mut scanned);
        for (tool, findings) in scanned {
            let name = tool_name(&tool).to_string();
            let reason = self.withhold_reason(&server, &name, &tool, &findings);
            let schema = tool
                .get("inputSchema")
                .map(|schema| (std::sync::Arc::new(schema.clone()), kept_cost(schema)));
            if let Some(reason) = &reason {
                tracing::warn!("withheld tool `{name}` of `{server}`: {reason}");
            } else {
                keep.push(tool);
            }
            seen.push((name, reason, schema));
        }
        *tools = keep;
        let mut s = lock(&self.state);
        for (name, reason, schema) in seen {
            // Every exact name stays in `verified` or `withheld` (and its fold in `known`).
            if !s.verified.contains(&name) && !s.withheld.contains_key(&name) {
                s.kept = s.kept.saturating_add(name_cost(&name));
            }
            s.known.insert(method::fold(&name), name.clone());
            let replaced = match reason {
                Some(r) => {
                    s.verified.remove(&name);
                    let replaced = s.schemas.remove(&name);
                    s.withheld.insert(name, r);
                    replaced
                }
                // A name listed twice, once poisoned, stays withheld.
                None if s.withheld.contains_key(&name) => None,
                None => {
                    let replaced = match schema {
                        Some(schema) => {
                            s.kept = s.kept.saturating_add(schema.1);
                            s.schemas.insert(name.clone(), schema)
                        }
                        None => s.schemas.remove(&name),
                    };
                    s.verified.insert(name);
                    replaced
                }
            };
            if let Some((_, cost)) = replaced {
                s.kept = s.kept.saturating_sub(cost);
            }
        }
        answer
    }

    /// Whether the gateway can keep what this listing adds (new tool names, the schemas it
    /// replaces or adds) within [`MAX_KEPT`]. Counted before anything is kept or scored; a
    /// name listed twice counts twice (more, never less).
    fn room_to_keep(&self, scanned: &[(Value, Vec<Finding>)]) -> Result<(), String> {
        let s = lock(&self.state);
        let mut freed = std::collections::HashSet::new();
        let mut kept = s.kept;
        for (tool, _) in scanned {
            let name = tool_name(tool);
            if !s.verified.contains(name) && !s.withheld.contains_key(name) {
                kept = kept.saturating_add(name_cost(name));
            }
            if freed.insert(name)
                && let Some((_, cost)) = s.schemas.get(name)
            {
                kept = kept.saturating_sub(*cost);
            }
            if let Some(schema) = tool.get("inputSchema") {
                kept = kept.saturating_add(kept_cost(schema));
            }
        }
        if kept > MAX_KEPT {
            return Err(format!(
                "the server's listings name more tools and schemas than the gateway keeps for one \
                 conversation ({} MiB as held in memory)",
                MAX_KEPT >> 20
            ));
        }
        Ok(())
    }

    /// The model on the tools the rules passed (no high or critical finding), all in one
    /// batch: a tool it flags gets the finding `model.tool`, and every tool of a listing it
    /// could not score gets `model.error`; a tool past the listing's model budget, or longer
    /// than the model reads, gets `model.partial` (all high: withheld unless a rule allows it).
    fn model_tools(&self, server: &str, scanned: &mut [(Value, Vec<Finding>)]) {
        let Some(classifier) = self.config.classifier.as_ref().filter(|c| c.reads_tools()) else {
            return;
        };
        let passed: Vec<usize> = (0..scanned.len())
            .filter(|&i| !scanned[i].1.iter().any(|f| f.severity >= Severity::High))
            .collect();
        let read = model_read(classifier, passed, self.config.model_listing_bytes, |i| {
            &scanned[i].0
        });
        for (i, id, why) in read {
            let (tool, findings) = &mut scanned[i];
            findings.push(model_finding(server, tool, id, why));
        }
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
        // The rules on every entry; entries that are not objects are dropped.
        let mut scanned: Vec<(Value, String, Vec<&'static str>)> = Vec::new();
        for entry in entries.drain(..) {
            let Value::Object(map) = &entry else {
                tracing::warn!("dropped a {key} entry of `{server}` that is not an object");
                continue;
            };
            let label = ["name", "uri", "uriTemplate"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str))
                .unwrap_or("?")
                .to_string();
            let mut ids: Vec<&'static str> = Vec::new();
            for (_, text) in crate::scan::entry_texts(map) {
                ids.extend(
                    detect::scan(&text, Mode::Metadata)
                        .into_iter()
                        .filter(|h| h.severity >= Severity::High)
                        .map(|h| h.id),
                );
            }
            scanned.push((entry, label, ids));
        }
        // Then the model on what the rules passed, in one batch.
        if let Some(classifier) = self.config.classifier.as_ref().filter(|c| c.reads_tools()) {
            let passed: Vec<usize> = (0..scanned.len())
                .filter(|&i| scanned[i].2.is_empty())
                .collect();
            let read = model_read(classifier, passed, self.config.model_listing_bytes, |i| {
                &scanned[i].0
            });
            if let Some((_, _, why)) = read.iter().find(|(_, id, _)| *id != MODEL_TOOL) {
                tracing::warn!(
                    "the model did not read all the {key} of `{server}` as clean: {why}"
                );
            }
            for (i, id, _) in read {
                scanned[i].2.push(id);
            }
        }
        for (entry, label, mut ids) in scanned {
            if ids.is_empty() {
                entries.push(entry);
                continue;
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
                entries.push(entry);
                continue;
            }
            tracing::warn!(
                "withheld {kind} `{label}` of `{server}`: poisoned ({})",
                ids.join(", ")
            );
        }
        answer
    }

    /// Drop poisoned server `instructions`: the rules, then the model on what they passed
    /// (a model error drops them too, and so do instructions longer than the model reads).
    fn strip_poisoned_instructions(&self, answer: &mut Value) {
        if strip_poisoned_instructions(answer) {
            return;
        }
        let Some(classifier) = &self.config.classifier else {
            return;
        };
        let Some(text) = answer
            .pointer("/result/instructions")
            .and_then(Value::as_str)
        else {
            return;
        };
        let why = match classifier.score_text(text) {
            Ok(v) if v.flagged => format!("the model scores them {:.3}", v.score),
            // Scored on their start only: the rest, unread by the model, is not clean.
            Ok(v) if v.truncated => {
                "they are longer than the model reads (model.partial)".to_owned()
            }
            Ok(_) => return,
            Err(e) => format!("the model could not score them: {e}"),
        };
        tracing::warn!("removed the server's instructions: {why}");
        if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
            result.remove("instructions");
        }
    }
}

/// The finding of a tool (or prompt, or resource) the model flags.
const MODEL_TOOL: &str = "model.tool";

/// The model on the listing entries the rules passed (`passed`, indices into the listing;
/// `entry` gives each one), within `budget` (see [`within_budget`]), in one batch. For every
/// entry it does not pass as read and clean: its index, the finding (`model.tool` flagged,
/// `model.partial` past the budget or longer than the model reads, `model.error` for every
/// entry of a batch it could not score) and why. Tool listings and prompt/resource listings
/// both decide through this one reading.
fn model_read<'a>(
    classifier: &std::sync::Arc<dyn crate::TextClassifier>,
    passed: Vec<usize>,
    budget: usize,
    entry: impl Fn(usize) -> &'a Value,
) -> Vec<(usize, &'static str, String)> {
    let (passed, over) = within_budget(passed, budget, &entry);
    let mut out: Vec<(usize, &'static str, String)> = over
        .into_iter()
        .map(|i| (i, MODEL_PARTIAL, over_budget_why()))
        .collect();
    if passed.is_empty() {
        return out;
    }
    let batch: Vec<&Value> = passed.iter().map(|&i| entry(i)).collect();
    let verdicts = classifier.score_tools(&batch).and_then(|v| {
        if v.len() == batch.len() {
            Ok(v)
        } else {
            Err(crate::ClassifyError(format!(
                "{} verdicts for {} tools",
                v.len(),
                batch.len()
            )))
        }
    });
    match verdicts {
        Ok(v) => {
            for (verdict, &i) in v.iter().zip(&passed) {
                if verdict.flagged {
                    let why = format!(
                        "the local model scores this tool's metadata {:.3}, at or above its threshold {:.3}: it reads like injected instructions",
                        verdict.score, verdict.threshold
                    );
                    out.push((i, MODEL_TOOL, why));
                } else if verdict.truncated {
                    out.push((i, MODEL_PARTIAL, too_long_why()));
                }
            }
        }
        Err(e) => {
            let why = format!("the local model could not score this tool: {e}");
            out.extend(passed.iter().map(|&i| (i, MODEL_ERROR, why.clone())));
        }
    }
    out
}

/// The most one conversation keeps of its tool listings (tool names, and the `inputSchema`s
/// the case check reads), as [`kept_cost`] counts it: 64 MiB, over 300 times the largest
/// real listing we captured (185 KB of JSON). Without it, a server that lists new names again
/// and again (`notifications/tools/list_changed` asks the client to) grows the proxy without
/// end: a schema of small numbers takes 16 times its JSON size in memory.
pub(super) const MAX_KEPT: usize = 64 << 20;

/// What keeping `value` costs, about as held in memory: every value's slot and every
/// string's and key's bytes.
fn kept_cost(value: &Value) -> usize {
    let mut cost = 0usize;
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        cost = cost.saturating_add(std::mem::size_of::<Value>());
        match v {
            Value::String(s) => cost = cost.saturating_add(s.len()),
            Value::Array(items) => todo.extend(items),
            Value::Object(map) => {
                for (k, v) in map {
                    cost = cost
                        .saturating_add(k.len())
                        .saturating_add(std::mem::size_of::<String>());
                    todo.push(v);
                }
            }
            _ => {}
        }
    }
    cost
}

/// What keeping a tool name costs: it is kept three times (in `verified` or `withheld`, and
/// its fold and itself in `known`). Names that differ only in case are each kept, so each
/// exact name counts, not each fold.
fn name_cost(name: &str) -> usize {
    name.len()
        .saturating_add(std::mem::size_of::<String>())
        .saturating_mul(3)
}

/// Split `passed` (indices of listing entries, in listing order) into those the model reads
/// and those past `budget` bytes of entry JSON (and what the card adds, [`card_excess`]) for
/// this listing. An entry that does not fit in
/// what is left of the budget is skipped and the next ones still tried, so one huge entry
/// cannot keep the model off the others. Why a budget: the model costs ~17 ms per 128-token
/// window on one core, and a listing is up to the message cap (16 MiB); without one, a hostile
/// server could hold the proxy for minutes with one answer. Skipped entries are not clean:
/// they get `model.partial`, decided like any high finding.
fn within_budget<'a>(
    passed: Vec<usize>,
    budget: usize,
    entry: impl Fn(usize) -> &'a Value,
) -> (Vec<usize>, Vec<usize>) {
    let mut left = budget;
    let (mut read, mut over) = (Vec::with_capacity(passed.len()), Vec::new());
    for i in passed {
        let entry = entry(i);
        let size = json_len(entry).saturating_add(card_excess(entry));
        if size <= left {
            left -= size;
            read.push(i);
        } else {
            over.push(i);
        }
    }
    (read, over)
}

/// How much longer the model's card of `tool` (`warden_model::tool_card`: name, title,
/// description, then one line per property of `inputSchema.properties` down to depth 3) can
/// be than its JSON: a nested property's line starts with its parent's full path
/// (`parent.child: …`), so one long parent name is repeated for every child and grandchild
/// (a 400-byte name with 40 children: 0.9 KB of JSON, a 16 KB card); an enum's values are
/// joined with `, ` where JSON has `,`; a line's literals are a byte or two longer than the
/// JSON they stand for. The card's rest (every other key and string of the tool, one line
/// each, no path) is never longer than the JSON it is read from, so it adds nothing here.
/// Counted with the JSON, the budget bounds what the model reads.
fn card_excess(tool: &Value) -> usize {
    fn walk(props: &serde_json::Map<String, Value>, prefix: usize, depth: usize) -> usize {
        let mut excess = 0usize;
        for (name, schema) in props {
            let enums = schema
                .get("enum")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            excess = excess
                .saturating_add(prefix)
                .saturating_add(enums)
                .saturating_add(4);
            if depth < 3
                && let Some(nested) = schema.get("properties").and_then(Value::as_object)
            {
                let full = prefix.saturating_add(name.len()).saturating_add(1);
                excess = excess.saturating_add(walk(nested, full, depth + 1));
            }
        }
        excess
    }
    tool.get("inputSchema")
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map_or(0, |props| walk(props, 0, 1))
}

/// The length of `value`'s compact JSON, counted without building it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        // Cannot happen for a `Value`; counted as too big (fail closed).
        Err(_) => usize::MAX,
    }
}

fn over_budget_why() -> String {
    "the listing is larger than the local model reads in one listing (its budget of entry \
     JSON bytes): this entry was read by the rules only"
        .into()
}

fn too_long_why() -> String {
    "the tool's metadata is longer than the local model reads (64 windows of 128 tokens): \
     the model scored its start, the rest was read by the rules only"
        .into()
}

fn model_finding(server: &str, tool: &Value, id: &str, why: String) -> Finding {
    Finding {
        id: id.into(),
        category: crate::finding::Category::Poisoning,
        severity: Severity::High,
        server: server.to_owned(),
        tool: Some(tool_name(tool).to_owned()),
        field: "tool card".into(),
        span: None,
        excerpt: String::new(),
        why,
    }
}

/// Server instructions (in the `initialize` answer) reach the model like a tool
/// description; with a high or critical finding they are removed. `true` when they were
/// removed (or were not a string).
fn strip_poisoned_instructions(answer: &mut Value) -> bool {
    let text = match answer.pointer_mut("/result/instructions") {
        None | Some(Value::Null) => return false,
        Some(Value::String(text)) => text,
        Some(_) => {
            // Not a string: nothing a client should show, and nothing scanned.
            if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
                result.remove("instructions");
            }
            return true;
        }
    };
    let mut ids: Vec<&str> = detect::scan(text, Mode::Metadata)
        .into_iter()
        .filter(|h| h.severity >= Severity::High)
        .map(|h| h.id)
        .collect();
    if ids.is_empty() {
        return false;
    }
    ids.dedup();
    tracing::warn!(
        "removed the server's poisoned instructions ({})",
        ids.join(", ")
    );
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result.remove("instructions");
    }
    true
}
