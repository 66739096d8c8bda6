//! What goes into the log ([`Entry`]), what comes out of it ([`Record`]), and the writer's
//! notes beside the chain ([`Gap`], [`Incident`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_core::{Action, Decision, Verdict};

use crate::encoding::{
    Encoding, RecordFields, args_digest, canonical_context, canonical_json, checkpoint_mac,
    checkpoint_message,
};
use crate::hex::hex32;
use crate::keys::{SCHEME_ED25519, VerifyingKey};
use crate::timestamp::Timestamp;

/// The obligation that makes a record keep only the digest of the arguments.
pub const REDACT_OBLIGATION: &str = "redact";

/// One decision to be appended: everything a [`Record`] holds except what the log assigns
/// under its write lock (sequence number, timestamp, hashes).
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
    /// Canonical JSON of the action's context; `None` when it is empty.
    pub(crate) context: Option<String>,
    pub(crate) latency_ns: u64,
    pub(crate) policy_version: Option<u64>,
}

impl Entry {
    /// The entry recording `decision` about `action`.
    ///
    /// When the decision's obligations contain `redact`, only the BLAKE3 digest of the
    /// arguments' canonical JSON is kept, so the record still proves *which* arguments were
    /// judged without storing them. The action's context (session, working directory, MCP
    /// server, …) is kept as canonical JSON and covered by the hash. The latency is the
    /// decision's `elapsed_ns`; the policy version is the decision's `policy_version` unless
    /// that is 0 (no versioned set).
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
            context: canonical_context(&action.context),
            // Stored as SQLite's signed 64-bit integer: clamped here, so the hash covers the
            // value the row holds (a caller's `elapsed_ns` past 2^63 - 1 made a record that
            // failed its own verification).
            latency_ns: decision.elapsed_ns.min(i64::MAX as u64),
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
            encoding: Encoding::V2,
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
            context: self.context.as_deref().map(str::as_bytes),
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
    /// Position in the chain, from 1. Logs of format version 1 may have gaps (numbers handed
    /// out but never committed); the chain links across them.
    pub seq: u64,
    /// When the record was committed.
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
    /// The action's context (session, working directory, MCP server, …); `None` when it was
    /// empty, and in logs of format version 1, which did not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
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
    /// Recompute this record's hash from its fields with the current (version 2) encoding
    /// (see `docs/audit.md`). Equal to [`Record::hash`] unless the record was altered.
    pub fn compute_hash(&self) -> [u8; 32] {
        self.compute_hash_as(Encoding::V2)
    }

    /// Recompute the hash with the encoding of a given format version.
    pub fn compute_hash_as(&self, encoding: Encoding) -> [u8; 32] {
        let args = self.args.as_ref().map(canonical_json);
        let context = self.context.as_ref().and_then(canonical_context);
        let fields = RecordFields {
            encoding,
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
            context: context.as_deref().map(str::as_bytes),
            latency_ns: self.latency_ns,
            policy_version: self.policy_version,
            prev_hash: &self.prev_hash,
        };
        fields.hash(&mut Vec::new())
    }
}

/// A run of sequence numbers missing from a log of format version 1 (handed out but never
/// committed); the chain links across it, so it is not tampering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The first missing sequence number.
    pub first_seq: u64,
    /// The last missing sequence number.
    pub last_seq: u64,
}

impl Gap {
    /// How many sequence numbers the gap spans.
    pub fn count(&self) -> u64 {
        self.last_seq - self.first_seq + 1
    }
}

/// A writer's note, in the `incidents` table, about records that were accepted but could
/// not be committed, or a log it had to continue after a damaged tail. Not covered by the
/// chain: informative only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// When it was written.
    pub at: Timestamp,
    /// `write_failed`, `unclean_shutdown` or `tampered_tail`.
    pub kind: String,
    /// The last record committed before it happened (0: none).
    pub after_seq: u64,
    /// How many accepted records were lost (an upper bound for `unclean_shutdown`).
    pub lost: u64,
    /// What happened.
    pub detail: String,
}

/// A signed checkpoint: the node's signature over a sequence number and the chain head there.
///
/// Copying checkpoints somewhere the log's host cannot write (a ticket, another machine)
/// anchors the log: the log must keep holding record `seq` with hash `head_hash` (check it
/// with [`crate::VerifyOptions::expect_head`]), so a rewrite or a cut back before them is then
/// detectable even by someone holding the node key. (Writers replace the newest checkpoint
/// with every commit and keep one every `keep_checkpoint_every` records, so a copied
/// checkpoint itself may be gone later; the record it names may not.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// The last record covered.
    pub seq: u64,
    /// That record's hash.
    #[serde(serialize_with = "hex_bytes")]
    pub head_hash: Vec<u8>,
    /// When it was signed.
    pub signed_at: Timestamp,
    /// The signature scheme (`ed25519`).
    pub scheme: String,
    /// Short id of the signing key (see [`crate::key_id`]).
    pub key_id: String,
    /// The signing public key.
    #[serde(serialize_with = "hex_bytes")]
    pub public_key: Vec<u8>,
    /// The signature over the checkpoint message (see `docs/audit.md`).
    #[serde(serialize_with = "hex_bytes")]
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// The public key stored with the checkpoint, if it is a valid Ed25519 key.
    pub(crate) fn stored_key(&self) -> Option<VerifyingKey> {
        <[u8; 32]>::try_from(self.public_key.as_slice())
            .ok()
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    }

    /// The head hash the checkpoint signs, if its signature by `key` verifies (whatever key
    /// is stored beside it: callers compare that themselves).
    pub(crate) fn signed_head(&self, key: &VerifyingKey) -> Option<[u8; 32]> {
        if self.scheme != SCHEME_ED25519 {
            return None;
        }
        let head = <[u8; 32]>::try_from(self.head_hash.as_slice()).ok()?;
        let signature = ed25519_dalek::Signature::from_slice(&self.signature).ok()?;
        let message =
            checkpoint_message(&self.scheme, self.seq, &head, self.signed_at.unix_nanos());
        key.verify_strict(&message, &signature).ok().map(|()| head)
    }

    /// The writers' MAC of this checkpoint (see `encoding::checkpoint_mac`), or `None` when
    /// its head hash is not 32 bytes.
    pub(crate) fn mac(&self, mac_key: &[u8; 32]) -> Option<[u8; 32]> {
        let head = <[u8; 32]>::try_from(self.head_hash.as_slice()).ok()?;
        let message =
            checkpoint_message(&self.scheme, self.seq, &head, self.signed_at.unix_nanos());
        Some(checkpoint_mac(
            mac_key,
            &message,
            &self.public_key,
            &self.signature,
        ))
    }

    /// Whether the signature verifies against the key stored with it.
    pub(crate) fn valid_with_stored_key(&self) -> bool {
        self.stored_key()
            .is_some_and(|key| self.signed_head(&key).is_some())
    }
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::hex::to_hex(bytes))
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
    fn context_is_kept_canonically_and_empty_context_is_none() {
        let action = Action::new("mcp.tools/call")
            .with_context("session", "s1")
            .with_context("cwd", "/w");
        let e = Entry::new(&action, &decision(&[]));
        assert_eq!(e.context.as_deref(), Some(r#"{"cwd":"/w","session":"s1"}"#));
        assert_eq!(Entry::new(&Action::new("x"), &decision(&[])).context, None);
    }
}
