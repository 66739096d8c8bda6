//! Streaming the records through the chain walk on two threads.
//!
//! Hashing is half the work, so it runs on a second thread: the calling thread steps SQLite
//! and lays out each record's canonical encoding in a batch buffer (no allocation per row);
//! the other hashes them and walks the chain in order. Batches go back and forth through two
//! channels so their buffers are reused.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::encoding::Encoding;
use crate::error::AuditError;
use crate::store::{RawRow, row_values};

use super::chain::{EncodedRow, Scan};
use super::report::{Tampering, VerifySummary};

/// Rows handed from the reading thread to the hashing thread, in sequence order.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    rows: Vec<EncodedRow>,
}

const BATCH_ROWS: usize = 2048;
const PROGRESS_EVERY: u64 = 1 << 16;

impl Batch {
    fn push(&mut self, row: Result<RawRow<'_>, u64>) {
        match row {
            Ok(raw) => {
                let start = self.bytes.len();
                raw.fields.encode_append(&mut self.bytes);
                self.rows.push(EncodedRow {
                    seq: raw.fields.seq,
                    span: Some((start, self.bytes.len())),
                    prev_hash: *raw.fields.prev_hash,
                    hash: *raw.hash,
                });
            }
            Err(seq) => self.rows.push(EncodedRow {
                seq,
                span: None,
                prev_hash: [0; 32],
                hash: [0; 32],
            }),
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }
}

/// What the walk needs to know.
pub(super) struct Walk<'a> {
    pub path: &'a Path,
    pub encoding: Encoding,
    pub anchors: &'a [(u64, [u8; 32])],
    /// Stop reading past this sequence number (a checkpoint finding there comes first).
    pub stop_at: u64,
    pub total: u64,
}

/// Walk every row of `rows` (records in sequence order). Returns the walk's final state and
/// its first finding.
pub(super) fn walk<'a>(
    w: &Walk<'a>,
    rows: &mut rusqlite::Rows<'_>,
    summary: VerifySummary,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Scan<'a>, Option<Tampering>), AuditError> {
    let stop = AtomicBool::new(false);
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    let anchors = w.anchors;
    let (read_result, scan, finding) = std::thread::scope(|s| {
        let stop = &stop;
        let walker = s.spawn(move || {
            let mut scan = Scan::new(anchors, summary);
            for batch in full_rx {
                for row in &batch.rows {
                    if let Some(t) = scan.step(row, &batch.bytes) {
                        stop.store(true, Ordering::Relaxed);
                        return (scan, Some(t));
                    }
                }
                let _ = empty_tx.send(batch);
            }
            let t = scan.resolve_suspect(None);
            (scan, t)
        });
        let read_result = (|| -> Result<(), AuditError> {
            let mut batch = Batch::default();
            let mut read = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let row = match rows.next() {
                    Ok(Some(row)) => row,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(AuditError::Corrupt {
                            path: w.path.to_path_buf(),
                            detail: format!("cannot read the records after {read} rows: {e}"),
                        });
                    }
                };
                let values = row_values(row);
                let raw = RawRow::from_values(&values, w.encoding);
                let seq = raw.as_ref().map_or_else(|s| *s, |r| r.fields.seq);
                if seq > w.stop_at {
                    break;
                }
                batch.push(raw);
                read += 1;
                if batch.rows.len() == BATCH_ROWS {
                    let next = empty_rx.try_recv().unwrap_or_default();
                    if full_tx.send(std::mem::replace(&mut batch, next)).is_err() {
                        break; // the walker stopped at a finding
                    }
                    batch.clear();
                }
                if read.is_multiple_of(PROGRESS_EVERY) {
                    progress(read, w.total);
                }
            }
            if !batch.rows.is_empty() {
                let _ = full_tx.send(batch);
            }
            Ok(())
        })();
        drop(full_tx);
        let (scan, finding) = match walker.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        (read_result, scan, finding)
    });
    read_result?;
    Ok((scan, finding))
}
