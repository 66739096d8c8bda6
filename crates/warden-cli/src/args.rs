//! The flag groups every door shares, so each command spells them the same way:
//! `--policy` (which policies), `--db`/`--audit-mode`/`--signing-key` (where decisions are
//! recorded), and how they become one [`WardenBuilder`].

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use warden::{AuditConfig, WardenBuilder};
use warden_audit::Mode;

/// Which policies judge the actions.
#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Policy file or directory (repeatable; all are combined, deny overriding).
    #[arg(long = "policy", short = 'p', value_name = "PATH", required = true)]
    pub policies: Vec<PathBuf>,
}

/// Where decisions are recorded.
#[derive(Args, Debug, Clone, Default)]
pub struct AuditArgs {
    /// Record every decision in this SQLite audit log (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// `durable`: a decision returns once its record is committed; `buffered`: within 10 ms.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = AuditMode::Durable, requires = "db")]
    pub audit_mode: AuditMode,
    /// Secret key that signs the log's checkpoints (created, mode 0600, with FILE.pub beside
    /// it, if missing). Default: `<db>.key`.
    #[arg(long, value_name = "FILE", requires = "db")]
    pub signing_key: Option<PathBuf>,
    /// Append to a log whose last records fail verification: an incident is recorded first,
    /// then the next checkpoint signs over whatever is there. Without it such a log is refused:
    /// run `warden audit verify` and keep it as evidence.
    #[arg(long, requires = "db")]
    pub allow_tampered_log: bool,
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
    /// Add the audit log these flags ask for to `builder`.
    pub fn apply(&self, builder: WardenBuilder) -> WardenBuilder {
        let Some(db) = &self.db else {
            return builder;
        };
        let mut config = AuditConfig::default();
        config.mode = match self.audit_mode {
            AuditMode::Durable => Mode::Durable,
            AuditMode::Buffered => Mode::Buffered,
        };
        config.allow_tampered_tail = self.allow_tampered_log;
        let builder = builder.audit_log(db, config);
        match &self.signing_key {
            Some(key) => builder.signing_key(key),
            None => builder,
        }
    }
}

/// The builder for these policies and this audit log: every door starts here.
pub fn builder(policy: &PolicyArgs, audit: &AuditArgs) -> WardenBuilder {
    audit.apply(WardenBuilder::new().policies(policy.policies.iter().cloned()))
}

/// How the kill switch ends the processes Warden runs for an agent (the MCP server behind
/// `warden mcp proxy`).
#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// Seconds between SIGTERM and SIGKILL when the kill switch stops the agent.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub kill_grace: u64,
}

impl RuntimeArgs {
    /// Add these settings to `builder`.
    pub fn apply(&self, builder: WardenBuilder) -> WardenBuilder {
        builder.runtime(warden::RuntimeOptions {
            grace: std::time::Duration::from_secs(self.kill_grace),
            ..warden::RuntimeOptions::default()
        })
    }
}
