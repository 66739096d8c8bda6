//! The byte encodings that the hash chain and the checkpoint signatures are computed over.
//!
//! These are the log's contract with anyone who verifies it without Warden: `docs/audit.md`
//! describes them byte for byte, and a change here is a new format version (a new domain
//! prefix), never an edit of an old one. Version 1 logs (written before records kept the
//! action's context) are still verified with the version 1 encoding.

use serde_json::Value;

/// Prefix of every version 2 record encoding; the trailing NUL keeps it from being a prefix
/// of another.
pub const RECORD_DOMAIN: &[u8] = b"warden-audit/record/v2\0";
/// Prefix of a version 1 record encoding (logs of format version 1; no `context` field).
pub const RECORD_DOMAIN_V1: &[u8] = b"warden-audit/record/v1\0";
/// Where the sequence number sits in a record encoding (right after the domain prefix, which
/// has the same length in both versions), so an encoding can be re-hashed as if written at
/// another position.
pub(crate) const SEQ_OFFSET: usize = RECORD_DOMAIN.len();
/// Prefix of every checkpoint message.
pub const CHECKPOINT_DOMAIN: &[u8] = b"warden-audit/checkpoint/v1\0";
/// The `prev_hash` of the first record: 32 zero bytes.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Which record encoding a log uses; it follows the file's format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Format version 1: no `context` field.
    V1,
    /// Format version 2: the action's context after the argument digest.
    V2,
}

impl Encoding {
    fn domain(self) -> &'static [u8] {
        match self {
            Encoding::V1 => RECORD_DOMAIN_V1,
            Encoding::V2 => RECORD_DOMAIN,
        }
    }
}

/// Every field of a record, borrowed, in the order they are hashed.
///
/// Text fields are bytes so that verification hashes exactly what is stored, even if someone
/// wrote invalid UTF-8 into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFields<'a> {
    /// Which encoding (`context` must be `None` for [`Encoding::V1`]).
    pub encoding: Encoding,
    /// Position in the chain.
    pub seq: u64,
    /// Commit time, ns since the epoch.
    pub ts_ns: i64,
    /// Who asked.
    pub agent: Option<&'a [u8]>,
    /// What kind of action.
    pub action: &'a [u8],
    /// The tool.
    pub tool: Option<&'a [u8]>,
    /// What the action touched.
    pub resource: Option<&'a [u8]>,
    /// `allow`, `deny`, `require_approval`.
    pub verdict: &'a [u8],
    /// Deciding policy document.
    pub policy: Option<&'a [u8]>,
    /// Deciding rule.
    pub rule: Option<&'a [u8]>,
    /// Why.
    pub reason: &'a [u8],
    /// Canonical JSON of the arguments (`None`: redacted).
    pub args: Option<&'a [u8]>,
    /// BLAKE3 of the arguments' canonical JSON.
    pub args_digest: &'a [u8; 32],
    /// Canonical JSON of the action's context (`None`: empty).
    pub context: Option<&'a [u8]>,
    /// Time spent deciding.
    pub latency_ns: u64,
    /// Version of the policy set.
    pub policy_version: Option<u64>,
    /// The previous record's hash.
    pub prev_hash: &'a [u8; 32],
}

/// Why bytes are not a record encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a record encoding: {what} at byte {at}")]
pub struct DecodeError {
    what: &'static str,
    at: usize,
}

impl<'a> RecordFields<'a> {
    /// The canonical encoding, in `buf` (which is cleared first).
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.clear();
        self.encode_append(buf);
    }

    /// Append the canonical encoding to `buf`.
    pub fn encode_append(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.encoding.domain());
        buf.extend_from_slice(&self.seq.to_le_bytes());
        buf.extend_from_slice(&self.ts_ns.to_le_bytes());
        opt(buf, self.agent);
        text(buf, self.action);
        opt(buf, self.tool);
        opt(buf, self.resource);
        text(buf, self.verdict);
        opt(buf, self.policy);
        opt(buf, self.rule);
        text(buf, self.reason);
        opt(buf, self.args);
        buf.extend_from_slice(self.args_digest);
        if self.encoding == Encoding::V2 {
            opt(buf, self.context);
        }
        buf.extend_from_slice(&self.latency_ns.to_le_bytes());
        match self.policy_version {
            None => buf.push(0),
            Some(v) => {
                buf.push(1);
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        buf.extend_from_slice(self.prev_hash);
    }

    /// BLAKE3 of the canonical encoding, using `buf` as scratch space.
    pub fn hash(&self, buf: &mut Vec<u8>) -> [u8; 32] {
        self.encode(buf);
        *blake3::hash(buf).as_bytes()
    }

    /// Read an encoding back: the exact inverse of [`RecordFields::encode`]. Trailing bytes,
    /// an unknown domain or a length past the end are errors.
    pub fn decode(bytes: &'a [u8]) -> Result<RecordFields<'a>, DecodeError> {
        let mut r = Cursor { bytes, at: 0 };
        let encoding = if bytes.starts_with(RECORD_DOMAIN) {
            Encoding::V2
        } else if bytes.starts_with(RECORD_DOMAIN_V1) {
            Encoding::V1
        } else {
            return Err(DecodeError {
                what: "unknown domain prefix",
                at: 0,
            });
        };
        r.at = RECORD_DOMAIN.len();
        let fields = RecordFields {
            encoding,
            seq: r.u64()?,
            ts_ns: r.u64()?.cast_signed(),
            agent: r.opt()?,
            action: r.text()?,
            tool: r.opt()?,
            resource: r.opt()?,
            verdict: r.text()?,
            policy: r.opt()?,
            rule: r.opt()?,
            reason: r.text()?,
            args: r.opt()?,
            args_digest: r.hash()?,
            context: match encoding {
                Encoding::V1 => None,
                Encoding::V2 => r.opt()?,
            },
            latency_ns: r.u64()?,
            policy_version: match r.flag()? {
                false => None,
                true => Some(r.u64()?),
            },
            prev_hash: r.hash()?,
        };
        if r.at != bytes.len() {
            return Err(r.error("trailing bytes"));
        }
        Ok(fields)
    }
}

/// A position in bytes being decoded.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError { what, at: self.at }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("field runs past the end"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| self.error("short integer"))?,
        ))
    }

    fn hash(&mut self) -> Result<&'a [u8; 32], DecodeError> {
        let b = self.take(32)?;
        b.try_into().map_err(|_| self.error("short hash"))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(self.error("presence byte is neither 0 nor 1")),
        }
    }

    fn text(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u64()?).map_err(|_| self.error("length too large"))?;
        self.take(len)
    }

    fn opt(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        if self.flag()? {
            self.text().map(Some)
        } else {
            Ok(None)
        }
    }
}

fn text(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s);
}

fn opt(buf: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            text(buf, s);
        }
    }
}

/// The message a checkpoint signs: domain, scheme, sequence number, head hash, signing time.
pub(crate) fn checkpoint_message(
    scheme: &str,
    seq: u64,
    head_hash: &[u8; 32],
    signed_at_ns: i64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + scheme.len() + 8 + 32 + 8);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    text(&mut m, scheme.as_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(head_hash);
    m.extend_from_slice(&signed_at_ns.to_le_bytes());
    m
}

/// The domain of the writers' checkpoint MAC.
const CHECKPOINT_MAC_DOMAIN: &[u8] = b"warden-audit/checkpoint-mac/v1\0";
/// The context from which the MAC key is derived from the node's secret key.
const CHECKPOINT_MAC_CONTEXT: &str = "warden-audit 2026-11 checkpoint mac v1";

/// The key of the writers' checkpoint MAC, derived from the node's secret key: only writers
/// holding that key can compute it.
pub(crate) fn checkpoint_mac_key(secret: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(CHECKPOINT_MAC_CONTEXT, secret)
}

/// A keyed BLAKE3 over a checkpoint as stored: its signed message, its public key and its
/// signature. A writer stores it beside the checkpoint it signs (`meta.checkpoint_mac`), so
/// the next writer holding the same key recognises that checkpoint in ~1 µs instead of
/// verifying the signature (~45 µs) inside the write lock. Verification never uses it.
pub(crate) fn checkpoint_mac(
    mac_key: &[u8; 32],
    message: &[u8],
    public_key: &[u8],
    signature: &[u8],
) -> [u8; 32] {
    let mut m = Vec::with_capacity(CHECKPOINT_MAC_DOMAIN.len() + message.len() + 128);
    m.extend_from_slice(CHECKPOINT_MAC_DOMAIN);
    text(&mut m, message);
    text(&mut m, public_key);
    text(&mut m, signature);
    *blake3::keyed_hash(mac_key, &m).as_bytes()
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings escaped
/// as serde_json escapes them, numbers as serde_json prints them.
///
/// Written by hand rather than `serde_json::to_string` because key order there depends on
/// whether some other crate in the build enabled serde_json's `preserve_order` feature, and a
/// digest must not depend on the build.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            use std::fmt::Write as _;
            // Writing into a String cannot fail. (A hand-written digit loop measured no
            // fewer instructions.)
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Most objects on the decision path are already in key order (Warden writes its
            // own context that way; serde_json without `preserve_order` keeps them sorted):
            // those are written as they are, without collecting and sorting their entries.
            let sorted = map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| a.as_bytes() < b.as_bytes());
            if sorted {
                write_entries(map.iter(), out);
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                write_entries(entries.into_iter(), out);
            }
        }
    }
}

fn write_entries<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        write_canonical(v, out);
    }
    out.push('}');
}

/// JSON string escaping identical to serde_json's (and to Python's `json.dumps` with
/// `ensure_ascii=False`): `"` `\` and the short escapes, other controls as `\u00xx`.
/// Runs that need no escape (nearly every string) are copied whole.
fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // One pass without an early exit (the compiler vectorises it) tells whether anything
    // needs escaping at all; nearly nothing does. (Eight bytes at a time by hand measured
    // 11% more instructions under callgrind.)
    if !s.bytes().fold(false, |any, b| any | needs_escape(b)) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut rest = s;
    while let Some(i) = rest.bytes().position(needs_escape) {
        out.push_str(&rest[..i]);
        // INVARIANT: the byte at `i` is ASCII, so `i + 1` is a character boundary.
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            c => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c);
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// BLAKE3 of the canonical JSON of `args`: what a redacted record keeps instead of them.
pub fn args_digest(canonical_args: &str) -> [u8; 32] {
    *blake3::hash(canonical_args.as_bytes()).as_bytes()
}

/// The stored form of an action's context: canonical JSON, or `None` when there is none
/// (null or an empty object), so records without context stay as small as before.
pub(crate) fn canonical_context(context: &Value) -> Option<String> {
    match context {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        other => Some(canonical_json(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The canonical JSON as first written (entries collected and sorted, strings escaped
    /// character by character): the faster writer must give the same bytes, since every
    /// stored record's hash covers them.
    fn reference(value: &Value, out: &mut String) {
        match value {
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\u{08}' => out.push_str("\\b"),
                        '\u{0c}' => out.push_str("\\f"),
                        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    reference(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    reference(&Value::String(k.clone()), out);
                    out.push(':');
                    reference(v, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let text = || prop::string::string_regex("[a-z\"\\\\\\x00-\\x1f\\x7fé€😀 ]{0,12}").unwrap();
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((text(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn canonical_json_is_the_reference_bytes(v in json_value()) {
            let mut want = String::new();
            reference(&v, &mut want);
            prop_assert_eq!(canonical_json(&v), want);
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_matches_serde_escaping() {
        let v = json!({"b": [1, 2.5, -3, null], "a": {"z": true, "y": "q\"\\\n\u{1}é"}, "": 0});
        let c = canonical_json(&v);
        assert_eq!(
            c,
            r#"{"":0,"a":{"y":"q\"\\\n\u0001é","z":true},"b":[1,2.5,-3,null]}"#
        );
        // Parsing and re-encoding gives the same bytes: the stored form is a fixed point.
        let again: Value = serde_json::from_str(&c).unwrap();
        assert_eq!(canonical_json(&again), c);
        // Escaping agrees with serde_json for every control character.
        for b in 0u32..0x20 {
            let s = char::from_u32(b).unwrap().to_string();
            let mut mine = String::new();
            write_string(&s, &mut mine);
            assert_eq!(mine, serde_json::to_string(&s).unwrap());
        }
    }

    fn base<'a>(digest: &'a [u8; 32], prev: &'a [u8; 32]) -> RecordFields<'a> {
        RecordFields {
            encoding: Encoding::V2,
            seq: 1,
            ts_ns: 2,
            agent: Some(b"a"),
            action: b"x",
            tool: None,
            resource: None,
            verdict: b"allow",
            policy: None,
            rule: None,
            reason: b"r",
            args: Some(b"{}"),
            args_digest: digest,
            context: None,
            latency_ns: 3,
            policy_version: None,
            prev_hash: prev,
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let digest = [7u8; 32];
        let prev = [9u8; 32];
        let base = || base(&digest, &prev);
        let mut buf = Vec::new();
        let h0 = base().hash(&mut buf);
        let other_digest = [8u8; 32];
        let variants: Vec<RecordFields<'_>> = vec![
            RecordFields { seq: 2, ..base() },
            RecordFields { ts_ns: 3, ..base() },
            RecordFields {
                agent: None,
                ..base()
            },
            RecordFields {
                agent: Some(b""),
                ..base()
            },
            RecordFields {
                action: b"y",
                ..base()
            },
            RecordFields {
                tool: Some(b""),
                ..base()
            },
            RecordFields {
                resource: Some(b"f"),
                ..base()
            },
            RecordFields {
                verdict: b"deny",
                ..base()
            },
            RecordFields {
                policy: Some(b"p"),
                ..base()
            },
            RecordFields {
                rule: Some(b"r"),
                ..base()
            },
            RecordFields {
                reason: b"s",
                ..base()
            },
            RecordFields {
                args: None,
                ..base()
            },
            RecordFields {
                args_digest: &other_digest,
                ..base()
            },
            RecordFields {
                context: Some(b"{}"),
                ..base()
            },
            RecordFields {
                latency_ns: 4,
                ..base()
            },
            RecordFields {
                policy_version: Some(0),
                ..base()
            },
            RecordFields {
                prev_hash: &digest,
                ..base()
            },
            RecordFields {
                encoding: Encoding::V1,
                ..base()
            },
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v.hash(&mut buf), h0, "variant {i} did not change the hash");
        }
        // Length prefixes keep adjacent fields from sliding into each other.
        let a = RecordFields {
            agent: Some(b"ab"),
            action: b"c",
            ..base()
        }
        .hash(&mut buf);
        let b = RecordFields {
            agent: Some(b"a"),
            action: b"bc",
            ..base()
        }
        .hash(&mut buf);
        assert_ne!(a, b);
    }

    #[test]
    fn decode_inverts_encode_and_rejects_damage() {
        let digest = [7u8; 32];
        let prev = [9u8; 32];
        let full = RecordFields {
            context: Some(br#"{"session":"s"}"#),
            policy_version: Some(u64::MAX),
            ts_ns: -5,
            ..base(&digest, &prev)
        };
        for fields in [
            full.clone(),
            RecordFields {
                encoding: Encoding::V1,
                context: None,
                ..full.clone()
            },
        ] {
            let mut buf = Vec::new();
            fields.encode(&mut buf);
            assert_eq!(RecordFields::decode(&buf).unwrap(), fields);
            for cut in 0..buf.len() {
                assert!(RecordFields::decode(&buf[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = buf.clone();
            longer.push(0);
            assert!(RecordFields::decode(&longer).is_err());
        }
        let mut buf = Vec::new();
        full.encode(&mut buf);
        // A presence byte other than 0/1 (the agent's, right after seq and ts).
        buf[RECORD_DOMAIN.len() + 16] = 2;
        assert!(RecordFields::decode(&buf).is_err());
    }
}
