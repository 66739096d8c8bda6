//! `--db` and friends: attach a tamper-evident audit log to the decisions a command makes.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use warden::{AuditConfig, AuditLog, Warden};
use warden_audit::Mode;

/// How a command records its decisions.
#[derive(Args, Debug, Clone, Default)]
pub struct AuditArgs {
    /// Record every decision in this SQLite audit log (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// `durable`: a decision returns once its record is committed; `buffered`: within 10 ms.
    #[arg(long, value_enum, default_value_t = AuditMode::Durable, requires = "db")]
    pub audit_mode: AuditMode,
    /// Key that signs checkpoints (created, mode 0600, if missing). Default: `<db>.key`.
    #[arg(long, value_name = "FILE", requires = "db")]
    pub key: Option<PathBuf>,
}

/// `--audit-mode` values.
#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditMode {
    /// Commit before answering.
    #[default]
    Durable,
    /// Answer after enqueueing; commit within the flush interval.
    Buffered,
}

impl AuditArgs {
    /// Attach the log to `warden`, or say what went wrong (the caller exits 2).
    pub fn attach(&self, warden: Warden) -> Result<Warden, String> {
        let Some(db) = &self.db else {
            return Ok(warden);
        };
        let mut config = AuditConfig::default();
        config.mode = match self.audit_mode {
            AuditMode::Durable => Mode::Durable,
            AuditMode::Buffered => Mode::Buffered,
        };
        let log =
            AuditLog::open_signed(db, config, self.key.as_deref()).map_err(|e| e.to_string())?;
        if let Some(gap) = log.recovered_gap() {
            eprintln!(
                "warning: {}: records {}..={} were lost before the last restart (buffered mode); `warden audit verify` reports them",
                db.display(),
                gap.first_seq,
                gap.last_seq
            );
        }
        Ok(warden.with_audit(log))
    }
}
