//! What the memory guard would do, for `warden policy explain`: the same reading of a
//! `memory.write` as [`MemoryGuard::judge_write`] (its texts, the detector's findings, a
//! release waiting in quarantine), but nothing is written — no quarantine row, no provenance
//! record, no release spent. For a `memory.read`, what a reader that requires provenance
//! checks, and, for the texts given in `args.content`, what the records say of them now.
//!
//! Apart from `judge_write` so the decision path stays one read; the two share the parent's
//! helpers (`read_content`, `refuse`, `source`), so they cannot disagree about what a write
//! is.

use serde_json::{Value, json};
use warden_core::{Action, Decision, Verdict};

use super::{MemoryGuard, QUARANTINE_RULE, WRITE_ACTION, WRITE_RULE, read_content, refuse, source};

/// The action a read back from memory is recorded as (`warden.memory-provenance` records).
pub const READ_ACTION: &str = "memory.read";

/// Most texts of a `memory.read`'s `args.content` explain looks up (the rest are counted).
pub const MAX_EXPLAIN_READ_TEXTS: usize = 100;

impl MemoryGuard {
    /// The guard's step for `action` as `warden policy explain` shows it, and the decision
    /// it would make of `d` (the decision so far) when that differs. `None`: the guard has
    /// nothing to do with this action.
    pub fn explain(&self, action: &Action, d: &Decision) -> Option<(Value, Option<Decision>)> {
        match &*action.action {
            WRITE_ACTION => Some(self.explain_write(action, d)),
            READ_ACTION => Some((self.explain_read(action), None)),
            _ => None,
        }
    }

    fn explain_write(&self, action: &Action, d: &Decision) -> (Value, Option<Decision>) {
        let database = self.records.is_some();
        if d.verdict == Verdict::Deny {
            return (
                json!({"action": WRITE_ACTION, "step": "none", "why": "the decision is already a deny: nothing is scanned, kept or recorded"}),
                None,
            );
        }
        let content = match read_content(action) {
            Ok(c) => c,
            Err(why) => {
                let deny = refuse(d, WRITE_RULE, format!("denied: {why}"));
                return (
                    json!({"action": WRITE_ACTION, "step": "refuse", "rule": WRITE_RULE, "why": why}),
                    Some(deny),
                );
            }
        };
        let mut findings: Vec<String> = content
            .items
            .iter()
            .flat_map(|t| (self.detector)(t))
            .collect();
        findings.sort_unstable();
        findings.dedup();
        let write_hash = MemoryGuard::write_hash(&content.canonical);
        let base = json!({
            "action": WRITE_ACTION,
            "texts": content.items.len(),
            "scanned": true,
            "findings": findings,
            "source": source(action),
            "write_hash": write_hash,
            "database": database,
        });
        let with = |mut v: Value, extra: Value| {
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            v
        };
        if !findings.is_empty() {
            let list = findings.join(", ");
            // A release waiting for this write by this agent: looked up, not spent.
            let released = match &self.records {
                Some(r) => r
                    .store()
                    .and_then(|s| s.find_release(&write_hash, action.agent.as_deref(), false)),
                None => Ok(None),
            };
            return match released {
                Ok(Some(id)) if d.verdict == Verdict::Allow => (
                    with(
                        base,
                        json!({"step": "release", "quarantine_id": id, "why": format!("flagged ({list}), but released by an operator: allowed once, and its provenance recorded then")}),
                    ),
                    None,
                ),
                Ok(Some(id)) => (
                    with(
                        base,
                        json!({"step": "release waits", "quarantine_id": id, "why": "flagged, released by an operator; the release is kept until the write is allowed"}),
                    ),
                    None,
                ),
                Ok(None) => {
                    let why = if database {
                        format!(
                            "would be quarantined: the content has {list}; it would not be written, and an operator could release it"
                        )
                    } else {
                        format!(
                            "denied: the content has {list}; it would not be written (no Warden database to quarantine it in)"
                        )
                    };
                    let deny = refuse(d, QUARANTINE_RULE, why.clone());
                    (
                        with(
                            base,
                            json!({"step": "quarantine", "rule": QUARANTINE_RULE, "why": why}),
                        ),
                        Some(deny),
                    )
                }
                Err(e) => {
                    let why = format!(
                        "denied: the content has {list}; quarantine could not be read: {e}"
                    );
                    (
                        with(
                            base,
                            json!({"step": "quarantine", "rule": QUARANTINE_RULE, "why": why}),
                        ),
                        Some(refuse(d, QUARANTINE_RULE, why)),
                    )
                }
            };
        }
        let why = match (d.verdict, database) {
            (Verdict::Allow, true) => {
                "clean: provenance would be recorded for each text, signed with Warden's key"
            }
            (Verdict::Allow, false) => {
                "clean: allowed without provenance (no Warden database to record it in)"
            }
            _ => "clean: provenance is recorded only once the write is allowed",
        };
        (with(base, json!({"step": "provenance", "why": why})), None)
    }

    fn explain_read(&self, action: &Action) -> Value {
        let texts: Vec<&str> = match action.args.get("content") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let checked: Vec<Value> = texts
            .iter()
            .take(MAX_EXPLAIN_READ_TEXTS)
            .map(|t| {
                let v = self.vouch(t);
                json!({"hash": MemoryGuard::item_hash(t), "valid": v.is_valid(), "why": v.why()})
            })
            .collect();
        json!({
            "action": READ_ACTION,
            "require_provenance": self.require_provenance,
            "checks": if self.require_provenance {
                "every text of every item read back must have a provenance record signed with Warden's key that names it; an item that fails is withheld and the withholding audited"
            } else {
                "provenance is not required: items read back are shown as the store returns them"
            },
            "texts": checked,
            "texts_not_checked": texts.len().saturating_sub(MAX_EXPLAIN_READ_TEXTS),
        })
    }
}
