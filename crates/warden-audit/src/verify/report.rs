//! What a verification found: [`VerifyReport`] and its parts, and how they read.

use std::fmt;

use serde::Serialize;

use crate::error::AuditError;
use crate::record::{Gap, Incident};

/// The outcome of [`verify`](crate::verify()): intact, tampered, or could not tell.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per verification
pub enum VerifyReport {
    /// Every record hashes to its stored hash and links to the one before; every checkpoint
    /// signature is valid and matches the chain.
    Intact(VerifySummary),
    /// The log was changed after it was written.
    Tampered {
        /// What was checked before the first finding.
        summary: VerifySummary,
        /// The first finding, by sequence number.
        tampering: Tampering,
    },
    /// The log could not be read (not an audit log, corrupt file, I/O error).
    Error(AuditError),
}

impl VerifyReport {
    /// The CLI's exit code: 0 intact, 1 tampered, 2 error.
    pub fn exit_code(&self) -> i32 {
        match self {
            VerifyReport::Intact(_) => 0,
            VerifyReport::Tampered { .. } => 1,
            VerifyReport::Error(_) => 2,
        }
    }

    /// Whether the log verified.
    pub fn is_intact(&self) -> bool {
        matches!(self, VerifyReport::Intact(_))
    }

    /// The summary, unless the log could not be read at all.
    pub fn summary(&self) -> Option<&VerifySummary> {
        match self {
            VerifyReport::Intact(s) | VerifyReport::Tampered { summary: s, .. } => Some(s),
            VerifyReport::Error(_) => None,
        }
    }

    /// The finding, if the log was tampered with.
    pub fn tampering(&self) -> Option<&Tampering> {
        match self {
            VerifyReport::Tampered { tampering, .. } => Some(tampering),
            _ => None,
        }
    }
}

/// What a verification saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifySummary {
    /// Records checked (up to the first finding, if any).
    pub records: u64,
    /// The first record's sequence number.
    pub first_seq: Option<u64>,
    /// The last checked record's sequence number.
    pub last_seq: Option<u64>,
    /// The last checked record's hash, as hex: the chain head.
    pub head_hash: Option<String>,
    /// Checkpoints whose signature was valid and whose head matched the chain.
    pub checkpoints: u64,
    /// The sequence number of the last such checkpoint.
    pub last_checkpoint: Option<u64>,
    /// Records after the last checkpoint: intact as a chain, but not vouched for by a
    /// signature, so a truncation or a rewrite of them could not be detected. Writers sign a
    /// checkpoint with every commit, so a log they wrote has none.
    pub unanchored: u64,
    /// Key ids (see [`crate::key_id`]) that signed the checkpoints.
    pub keys: Vec<String>,
    /// Runs of sequence numbers never committed, in logs of format version 1 (buffered-mode
    /// crash, failed writes); the chain links across them, so they are not tampering. At
    /// most 1000 are listed.
    pub gaps: Vec<Gap>,
    /// The number of gaps, including those not listed.
    pub gap_count: u64,
    /// The writers' own notes about lost records and damaged ends, from the `incidents`
    /// table. Not covered by the chain: informative only.
    pub incidents: Vec<Incident>,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tampering {
    /// The first sequence number that can no longer be trusted.
    pub seq: u64,
    /// What kind of change it looks like.
    pub kind: TamperKind,
    /// A sentence for a person.
    pub detail: String,
}

/// What kind of change was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TamperKind {
    /// A record's contents no longer match its hash (or a record was changed and re-hashed,
    /// so the next one no longer links to it).
    Modified,
    /// Records are missing: the chain skips over them, or a checkpoint names one that is gone.
    Deleted,
    /// A record that was not written by the log sits in the chain.
    Inserted,
    /// A record sits at another position than the one it was written at.
    Reordered,
    /// The chain is consistent but differs from what a checkpoint signed: a stretch of
    /// records was rewritten and re-hashed. `seq` is the first record after the last
    /// checkpoint that still matched.
    Rewritten,
    /// A checkpoint's signature does not verify.
    BadSignature,
    /// A checkpoint was signed by another key than the pinned one.
    UntrustedKey,
    /// With a pinned key: the last records are not covered by a checkpoint that key signed
    /// (it never signed this log, or records were added without it after it did).
    Unanchored,
}

impl TamperKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TamperKind::Modified => "modified",
            TamperKind::Deleted => "deleted",
            TamperKind::Inserted => "inserted",
            TamperKind::Reordered => "reordered",
            TamperKind::Rewritten => "rewritten",
            TamperKind::BadSignature => "bad_signature",
            TamperKind::UntrustedKey => "untrusted_key",
            TamperKind::Unanchored => "unanchored",
        }
    }
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Tampering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "first bad record {} ({}): {}",
            self.seq, self.kind, self.detail
        )
    }
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => write!(f, "{} records (seq {a}..={b})", self.records)?,
            _ => write!(f, "no records")?,
        }
        match self.last_checkpoint {
            Some(cp) => write!(
                f,
                ", {} checkpoints up to seq {cp} signed by key {}",
                self.checkpoints,
                self.keys.join(", ")
            )?,
            None => write!(f, ", no signed checkpoints")?,
        }
        if self.unanchored > 0 {
            write!(
                f,
                "; {} records after the last checkpoint are unanchored",
                self.unanchored
            )?;
        }
        if self.gap_count > 0 {
            let missing: u64 = self.gaps.iter().map(Gap::count).sum();
            write!(
                f,
                "; {} gaps of never-committed sequence numbers ({missing} numbers listed)",
                self.gap_count
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyReport::Intact(s) => write!(f, "intact: {s}"),
            VerifyReport::Tampered { summary, tampering } => {
                write!(f, "TAMPERED: {tampering}; checked before it: {summary}")
            }
            VerifyReport::Error(e) => write!(f, "error: {e}"),
        }
    }
}
