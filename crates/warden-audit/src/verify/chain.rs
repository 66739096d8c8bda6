//! The chain walk: record by record, in sequence order, does each hash to its stored hash,
//! link to the one before, and agree with the signed checkpoints? When not, what kind of
//! change does the evidence point to (modified, deleted, inserted, reordered, rewritten)?

use crate::encoding::{GENESIS_HASH, SEQ_OFFSET};
use crate::record::Gap;

use super::report::{TamperKind, Tampering, VerifySummary};

/// One record as the walk reads it (the pipeline fills these): its encoding lives in the batch's byte buffer.
pub(super) struct EncodedRow {
    pub seq: u64,
    /// `None` when a column had the wrong type or length, so there is nothing to hash.
    pub span: Option<(usize, usize)>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// A link of the chain as last seen: enough to check the next record against.
#[derive(Clone, Copy)]
pub(super) struct Link {
    pub seq: u64,
    pub hash: [u8; 32],
}

const GENESIS: Link = Link {
    seq: 0,
    hash: GENESIS_HASH,
};

const MAX_LISTED_GAPS: usize = 1000;

/// The chain walk's state.
pub(super) struct Scan<'a> {
    pub prev: Link,
    prev_prev: Option<Link>,
    /// A record whose hash did not match, held back one row: if the next record links to
    /// the one *before* it, it was inserted rather than modified.
    suspect: Option<(Tampering, Link)>,
    anchors: &'a [(u64, [u8; 32])],
    next_anchor: usize,
    pub last_anchor: u64,
    buf: Vec<u8>,
    pub summary: VerifySummary,
}

impl<'a> Scan<'a> {
    pub fn new(anchors: &'a [(u64, [u8; 32])], summary: VerifySummary) -> Self {
        Scan {
            prev: GENESIS,
            prev_prev: None,
            suspect: None,
            anchors,
            next_anchor: 0,
            last_anchor: 0,
            buf: Vec::with_capacity(1024),
            summary,
        }
    }

    /// The hash of `r` as if written at position `seq`.
    fn rehash(&mut self, r: &EncodedRow, bytes: &[u8], seq: u64) -> Option<[u8; 32]> {
        let (start, end) = r.span?;
        let encoded = &bytes[start..end];
        if seq == r.seq {
            return Some(*blake3::hash(encoded).as_bytes());
        }
        self.buf.clear();
        self.buf.extend_from_slice(encoded);
        self.buf[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&seq.to_le_bytes());
        Some(*blake3::hash(&self.buf).as_bytes())
    }

    pub fn step(&mut self, r: &EncodedRow, bytes: &[u8]) -> Option<Tampering> {
        if let Some(t) = self.resolve_suspect(Some(r)) {
            return Some(t);
        }
        if r.span.is_none() {
            return Some(Tampering {
                seq: r.seq,
                kind: TamperKind::Modified,
                detail: format!("record {} has a column of the wrong type or length", r.seq),
            });
        }
        let content_ok = self.rehash(r, bytes, r.seq) == Some(r.hash);
        let link_ok = r.prev_hash == self.prev.hash;
        if self.prev.seq > 0 && r.hash == self.prev.hash {
            return Some(Tampering {
                seq: r.seq,
                kind: TamperKind::Inserted,
                detail: format!("record {} is a copy of record {}", r.seq, self.prev.seq),
            });
        }
        // An authentic record (as written, or renumbered by one to make room) that links to
        // the record two back means the one in between does not belong.
        if !link_ok
            && let Some(pp) = self.prev_prev
            && r.prev_hash == pp.hash
            && (content_ok || self.rehash(r, bytes, r.seq.wrapping_sub(1)) == Some(r.hash))
        {
            return Some(Tampering {
                seq: self.prev.seq,
                kind: TamperKind::Inserted,
                detail: format!(
                    "record {} is not part of the chain: record {} links to record {}",
                    self.prev.seq, r.seq, pp.seq
                ),
            });
        }
        if !content_ok {
            // Written at a neighbouring position and moved here?
            for other in [r.seq.wrapping_sub(1), r.seq + 1] {
                if self.rehash(r, bytes, other) == Some(r.hash) {
                    return Some(Tampering {
                        seq: r.seq,
                        kind: TamperKind::Reordered,
                        detail: format!("the record at {} was written as record {other}", r.seq),
                    });
                }
            }
            let t = Tampering {
                seq: r.seq,
                kind: TamperKind::Modified,
                detail: format!("record {} does not match its hash", r.seq),
            };
            let before = self.prev;
            self.advance(r);
            self.suspect = Some((t, before));
            return None;
        }
        if !link_ok {
            if r.seq > self.prev.seq + 1 {
                let first = self.prev.seq + 1;
                return Some(Tampering {
                    seq: first,
                    kind: TamperKind::Deleted,
                    detail: format!(
                        "records {first}..={} are missing: record {} does not link to record {}",
                        r.seq - 1,
                        r.seq,
                        self.prev.seq
                    ),
                });
            }
            let (seq, detail) = if self.prev.seq == 0 {
                (r.seq, format!("record {} does not start the chain", r.seq))
            } else {
                (
                    self.prev.seq,
                    format!(
                        "record {} was changed and re-hashed: record {} no longer links to it",
                        self.prev.seq, r.seq
                    ),
                )
            };
            return Some(Tampering {
                seq,
                kind: TamperKind::Modified,
                detail,
            });
        }
        if r.seq > self.prev.seq + 1 {
            self.summary.gap_count += 1;
            if self.summary.gaps.len() < MAX_LISTED_GAPS {
                self.summary.gaps.push(Gap {
                    first_seq: self.prev.seq + 1,
                    last_seq: r.seq - 1,
                });
            }
        }
        // Checkpoints at or before this record.
        while let Some(&(cp_seq, cp_hash)) = self.anchors.get(self.next_anchor) {
            if cp_seq > r.seq {
                break;
            }
            if cp_seq < r.seq {
                return Some(Tampering {
                    seq: cp_seq,
                    kind: TamperKind::Deleted,
                    detail: format!("checkpoint {cp_seq} names a record that is not in the log"),
                });
            }
            if cp_hash != r.hash {
                let first = self.last_anchor + 1;
                return Some(Tampering {
                    seq: first,
                    kind: TamperKind::Rewritten,
                    detail: format!(
                        "the chain does not match signed checkpoint {cp_seq}: records {first}..={cp_seq} were rewritten"
                    ),
                });
            }
            self.last_anchor = cp_seq;
            self.summary.unanchored = 0;
            self.next_anchor += 1;
        }
        self.advance(r);
        if self.last_anchor != r.seq {
            self.summary.unanchored += 1;
        }
        None
    }

    fn advance(&mut self, r: &EncodedRow) {
        self.prev_prev = Some(self.prev);
        self.prev = Link {
            seq: r.seq,
            hash: r.hash,
        };
        self.summary.records += 1;
        self.summary.first_seq.get_or_insert(r.seq);
        self.summary.last_seq = Some(r.seq);
    }

    /// Decide about a held-back record now that the next row (or the end) is known.
    pub fn resolve_suspect(&mut self, next: Option<&EncodedRow>) -> Option<Tampering> {
        let (mut t, before) = self.suspect.take()?;
        if let Some(n) = next
            && n.prev_hash == before.hash
        {
            t.kind = TamperKind::Inserted;
            t.detail = format!(
                "record {} is not part of the chain: record {} links to record {}",
                t.seq, n.seq, before.seq
            );
        }
        Some(t)
    }

    /// Checkpoints past the last record mean records were removed from the end.
    pub fn check_remaining_anchors(&self) -> Option<Tampering> {
        let &(cp_seq, _) = self.anchors.get(self.next_anchor)?;
        let first = self.prev.seq + 1;
        Some(Tampering {
            seq: first,
            kind: TamperKind::Deleted,
            detail: format!(
                "checkpoint {cp_seq} names a record past the end of the log: records from {first} on were removed"
            ),
        })
    }
}
