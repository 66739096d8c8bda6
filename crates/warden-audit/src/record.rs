//! What goes into the log ([`Entry`]) and what comes out of it ([`Record`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_core::{Action, Decision, Verdict};

use crate::encoding::{RecordFields, args_digest, canonical_json};
use crate::timestamp::Timestamp;

/// The obligation that makes a record keep only the digest of the arguments.
pub const REDACT_OBLIGATION: &str = "redact";

/// One decision to be appended: everything a [`Record`] holds except what the log assigns
/// (sequence number, timestamp, hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(crate) agent: Option<String>,
    pub(crate) action: String,
    pub(crate) tool: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) verdict: Verdict,
    pub(crate) policy: Option<Arc<str>>,
    pub(crate) rule: Option<Arc<str>>,
    pub(crate) reason: Arc<str>,
    /// Canonical JSON of the arguments; `None` when redacted.
    pub(crate) args: Option<String>,
    pub(crate) args_digest: [u8; 32],
    pub(crate) latency_ns: u64,
    pub(crate) policy_version: Option<u64>,
}

impl Entry {
    /// The entry recording `decision` about `action`.
    ///
    /// When the decision's obligations contain `redact`, only the BLAKE3 digest of the
    /// arguments' canonical JSON is kept, so the record still proves *which* arguments were
    /// judged without storing them. The latency is the decision's `elapsed_ns`; the policy
    /// version is the decision's `policy_version` unless that is 0 (no versioned set).
    pub fn new(action: &Action, decision: &Decision) -> Self {
        let canonical = canonical_json(&action.args);
        let digest = args_digest(&canonical);
        let redact = decision
            .obligations
            .iter()
            .any(|o| &**o == REDACT_OBLIGATION);
        Entry {
            agent: action.agent.clone(),
            action: action.action.clone(),
            tool: action.tool.clone(),
            resource: action.resource.clone(),
            verdict: decision.verdict,
            policy: decision.policy.clone(),
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
            args: if redact { None } else { Some(canonical) },
            args_digest: digest,
            latency_ns: decision.elapsed_ns,
            // 0 means "decided outside a versioned policy set": nothing to record.
            policy_version: (decision.policy_version != 0).then_some(decision.policy_version),
        }
    }

    /// Record another version of the policy set that decided than the decision's own.
    pub fn with_policy_version(mut self, version: u64) -> Self {
        self.policy_version = Some(version);
        self
    }

    /// Whether the arguments were redacted (only their digest is kept).
    pub fn is_redacted(&self) -> bool {
        self.args.is_none()
    }

    /// The verdict being recorded.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    pub(crate) fn fields<'a>(
        &'a self,
        seq: u64,
        ts_ns: i64,
        prev_hash: &'a [u8; 32],
    ) -> RecordFields<'a> {
        RecordFields {
            seq,
            ts_ns,
            agent: self.agent.as_deref().map(str::as_bytes),
            action: self.action.as_bytes(),
            tool: self.tool.as_deref().map(str::as_bytes),
            resource: self.resource.as_deref().map(str::as_bytes),
            verdict: self.verdict.as_str().as_bytes(),
            policy: self.policy.as_deref().map(str::as_bytes),
            rule: self.rule.as_deref().map(str::as_bytes),
            reason: self.reason.as_bytes(),
            args: self.args.as_deref().map(str::as_bytes),
            args_digest: &self.args_digest,
            latency_ns: self.latency_ns,
            policy_version: self.policy_version,
            prev_hash,
        }
    }
}

/// One committed record, as read back from the log.
///
/// Serializes to the JSON object written by `export_jsonl` (hashes and digests as lowercase
/// hex, the timestamp as RFC 3339 UTC with nanoseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the chain, from 1. Numbers that were handed out but never committed (a
    /// crash in buffered mode, a failed write) leave gaps; the chain links across them.
    pub seq: u64,
    /// When the record was queued.
    pub ts: Timestamp,
    /// Who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What kind of action.
    pub action: String,
    /// The tool called, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// What the action touched, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What was decided.
    pub verdict: Verdict,
    /// The deciding policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why.
    pub reason: String,
    /// The arguments; `None` when the decision required `redact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// BLAKE3 of the arguments' canonical JSON (kept also when they are redacted).
    #[serde(with = "hex32")]
    pub args_digest: [u8; 32],
    /// Time spent deciding, in nanoseconds.
    pub latency_ns: u64,
    /// Version of the policy set that decided, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// Hash of the previous record (zeros for the first).
    #[serde(with = "hex32")]
    pub prev_hash: [u8; 32],
    /// This record's hash: BLAKE3 over the canonical encoding of every field above.
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

impl Record {
    /// Recompute this record's hash from its fields (see `docs/audit.md`). Equal to
    /// [`Record::hash`] unless the record was altered.
    pub fn compute_hash(&self) -> [u8; 32] {
        let args = self.args.as_ref().map(canonical_json);
        let fields = RecordFields {
            seq: self.seq,
            ts_ns: self.ts.unix_nanos(),
            agent: self.agent.as_deref().map(str::as_bytes),
            action: self.action.as_bytes(),
            tool: self.tool.as_deref().map(str::as_bytes),
            resource: self.resource.as_deref().map(str::as_bytes),
            verdict: self.verdict.as_str().as_bytes(),
            policy: self.policy.as_deref().map(str::as_bytes),
            rule: self.rule.as_deref().map(str::as_bytes),
            reason: self.reason.as_bytes(),
            args: args.as_deref().map(str::as_bytes),
            args_digest: &self.args_digest,
            latency_ns: self.latency_ns,
            policy_version: self.policy_version,
            prev_hash: &self.prev_hash,
        };
        fields.hash(&mut Vec::new())
    }
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Bytes from hex (either case); `None` when the text is not exactly `N` bytes of hex.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.as_bytes();
    if t.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(t[2 * i])? << 4) | nibble(t[2 * i + 1])?;
    }
    Some(out)
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        super::from_hex::<32>(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(obligations: &[&str]) -> Decision {
        let mut d = Decision::deny("no");
        d.obligations = obligations.iter().map(|o| Arc::from(*o)).collect();
        d.elapsed_ns = 1234;
        d
    }

    #[test]
    fn redact_keeps_only_the_digest() {
        let action = Action::new("http_request").with_arg("token", "s3cret");
        let kept = Entry::new(&action, &decision(&["log_args"]));
        let redacted = Entry::new(&action, &decision(&["redact"]));
        assert_eq!(kept.args.as_deref(), Some(r#"{"token":"s3cret"}"#));
        assert!(!kept.is_redacted());
        assert!(redacted.is_redacted());
        assert_eq!(kept.args_digest, redacted.args_digest);
        assert_eq!(redacted.latency_ns, 1234);
    }

    #[test]
    fn hex_round_trips() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&b), "0001abff");
        assert_eq!(from_hex::<4>("0001ABff"), Some(b));
        assert_eq!(from_hex::<4>("0001abf"), None);
        assert_eq!(from_hex::<4>("0001abfg"), None);
    }
}
