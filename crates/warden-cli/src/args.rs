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
/// Every door guards `memory.write` the same way (quarantine with the MCP text detector,
/// provenance in the database; see docs/memory.md).
pub fn builder(policy: &PolicyArgs, audit: &AuditArgs) -> WardenBuilder {
    audit
        .apply(WardenBuilder::new().policies(policy.policies.iter().cloned()))
        .memory_guard(warden_mcp::proxy::memory_detector(), false)
}

/// Which identities are accepted, and how trust is scored (`check`, `serve`, `mcp proxy`).
#[derive(Args, Debug, Clone, Default)]
pub struct ZeroTrustArgs {
    /// Identity and trust settings (YAML: `identity:` roots/required/audiences, `trust:`
    /// weights and decay; see docs/identity.md).
    #[arg(long, value_name = "FILE")]
    pub trust_config: Option<PathBuf>,
    /// Accept credential chains rooted at this DID (repeatable; added to the settings file's).
    #[arg(long = "trust-root", value_name = "DID")]
    pub trust_roots: Vec<String>,
    /// Deny every action that carries no verified credential.
    #[arg(long)]
    pub require_identity: bool,
}

impl ZeroTrustArgs {
    /// Whether any identity or trust setting was given.
    pub fn given(&self) -> bool {
        self.trust_config.is_some() || !self.trust_roots.is_empty() || self.require_identity
    }

    /// The settings these flags make (the file's, plus the flags).
    pub fn config(&self) -> crate::error::Result<warden_trust::Config> {
        let mut config = match &self.trust_config {
            Some(path) => warden_trust::Config::load(path)
                .map_err(|e| crate::error::Error::msg(e.to_string()))?,
            None => warden_trust::Config::default(),
        };
        for root in &self.trust_roots {
            let did = warden_identity::Did::parse(root)
                .map_err(|e| crate::error::Error::msg(format!("--trust-root: {e}")))?;
            if !config.identity.roots.contains(&did) {
                config.identity.roots.push(did);
            }
        }
        config.identity.required |= self.require_identity;
        Ok(config)
    }

    /// Add the settings to `builder` (nothing when no flag was given).
    pub fn apply(&self, builder: WardenBuilder) -> crate::error::Result<WardenBuilder> {
        if !self.given() {
            return Ok(builder);
        }
        Ok(builder.zero_trust(self.config()?))
    }
}

/// Read a credential chain file (`--credential`) as the JSON an action carries.
pub fn read_credential(path: &std::path::Path) -> crate::error::Result<serde_json::Value> {
    let meta = std::fs::metadata(path).map_err(|e| {
        crate::error::Error::msg(format!("cannot read credential {}: {e}", path.display()))
    })?;
    if !meta.is_file() || meta.len() > warden_identity::MAX_CHAIN_BYTES as u64 {
        return Err(crate::error::Error::msg(format!(
            "credential {}: not a file of at most {} bytes",
            path.display(),
            warden_identity::MAX_CHAIN_BYTES
        )));
    }
    let text = std::fs::read(path).map_err(|e| {
        crate::error::Error::msg(format!("cannot read credential {}: {e}", path.display()))
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        crate::error::Error::msg(format!("credential {}: not JSON: {e}", path.display()))
    })
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

/// The Warden database an operator command reads and answers in (approvals, quarantine).
#[derive(Args, Debug)]
pub struct DbArgs {
    /// The Warden database (the audit log's SQLite file).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
}

impl DbArgs {
    /// The path, when the database exists (an operator command never creates one).
    pub fn existing(&self) -> crate::error::Result<&std::path::Path> {
        if self.db.exists() {
            Ok(&self.db)
        } else {
            Err(crate::error::Error::msg(format!(
                "{}: no such Warden database",
                self.db.display()
            )))
        }
    }

    /// The audit log of this database, signed with `signing_key` (default: `<db>.key`).
    pub fn signed_log(
        &self,
        signing_key: Option<&std::path::Path>,
    ) -> crate::error::Result<warden::AuditLog> {
        let key = signing_key.map_or_else(
            || warden_audit::default_key_path(&self.db),
            std::path::Path::to_path_buf,
        );
        Ok(warden::AuditLog::open_signed(
            &self.db,
            warden::AuditConfig::default(),
            Some(&key),
        )?)
    }
}
