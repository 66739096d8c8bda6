//! How a log writes: [`AuditConfig`] and its two small enums.

use std::fmt;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::keys::key_id;

/// When `append` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// After the record is committed: it survives the process being killed (and, with
    /// [`AuditConfig::fsync`], power loss), and `append` returns its sequence number. The
    /// default.
    #[default]
    Durable,
    /// After the record is queued: it is committed within [`AuditConfig::flush_interval`].
    /// Its sequence number is assigned when it is committed, so `append` cannot return one.
    /// A crash loses what was queued; the next open reports it as an incident.
    Buffered,
}

/// What `append` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room. The default.
    #[default]
    Block,
    /// Return [`crate::AuditError::QueueFull`] at once; the caller denies the action.
    Deny,
}

/// How an [`crate::AuditLog`] writes. Build it from `AuditConfig::default()` and set fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Durable (default) or buffered appends.
    pub mode: Mode,
    /// Sync the WAL to stable storage at every commit (`synchronous=FULL`), so committed
    /// records survive power loss. Off (the default), commits survive a killed process but a
    /// power cut may lose the last ones (`synchronous=NORMAL`).
    pub fsync: bool,
    /// In buffered mode, the longest a queued record waits before its batch is committed.
    /// Default 10 ms.
    pub flush_interval: Duration,
    /// Records that may wait in the queue. Default 4096.
    pub queue_capacity: usize,
    /// What a full queue does to `append`. Default [`WhenFull::Block`].
    pub when_full: WhenFull,
    /// Most records committed in one transaction. Default 1024.
    pub max_batch: usize,
    /// Every commit signs a checkpoint over the new end of the log (in the same transaction),
    /// replacing the previous newest checkpoint unless that one is kept: one checkpoint is
    /// kept at least every this many records (default 1000), so `verify` can say where a
    /// rewritten stretch begins, and the checkpoint table stays small.
    pub keep_checkpoint_every: u64,
    /// The node key that signs checkpoints. Without one no checkpoints are written,
    /// `verify` reports every record as unanchored, and a log that has checkpoints is refused
    /// ([`crate::AuditError::KeyRequired`]).
    pub signing_key: Option<SigningKey>,
    /// How long a commit waits for another connection's write lock (other processes
    /// appending, or someone holding a write transaction open in `sqlite3`) before the batch
    /// fails. Default 5 s.
    pub busy_timeout: Duration,
    /// Append even though the end of the log does not verify (see
    /// [`crate::AuditError::TamperedTail`]). Off by default: a damaged or forged end is
    /// refused, not silently extended. When on, the writer first notes a `tampered_tail`
    /// incident, then continues the chain from the last record as it is, and the checkpoint
    /// it signs then vouches for whatever was there: use it only after `verify` (and a person)
    /// looked at the end.
    pub allow_tampered_tail: bool,
    /// Once the WAL holds more than this many bytes, the checkpoint thread has the next
    /// writer start it over from the beginning (see `log/wal.rs`: under sustained load
    /// SQLite alone never does, and the WAL grows until the disk is full). Default 4 MiB; below 16
    /// pages counts as 16 pages.
    pub wal_restart_bytes: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            mode: Mode::Durable,
            fsync: false,
            flush_interval: Duration::from_millis(10),
            queue_capacity: 4096,
            when_full: WhenFull::Block,
            max_batch: 1024,
            keep_checkpoint_every: 1000,
            signing_key: None,
            busy_timeout: Duration::from_secs(5),
            allow_tampered_tail: false,
            wal_restart_bytes: 4 << 20,
        }
    }
}

impl fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditConfig")
            .field("mode", &self.mode)
            .field("fsync", &self.fsync)
            .field("flush_interval", &self.flush_interval)
            .field("queue_capacity", &self.queue_capacity)
            .field("when_full", &self.when_full)
            .field("max_batch", &self.max_batch)
            .field("keep_checkpoint_every", &self.keep_checkpoint_every)
            .field(
                "signing_key",
                &self
                    .signing_key
                    .as_ref()
                    .map(|k| key_id(&k.verifying_key())),
            )
            .field("busy_timeout", &self.busy_timeout)
            .field("allow_tampered_tail", &self.allow_tampered_tail)
            .field("wal_restart_bytes", &self.wal_restart_bytes)
            .finish()
    }
}
