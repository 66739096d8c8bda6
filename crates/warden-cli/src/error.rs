//! What can go wrong in a command, as one type: every command returns
//! `Result<Exit, Error>` and `main` prints the error in one place (text, or a JSON object when
//! the command was asked for JSON) and exits 2.

use warden::{BuildError, LoadError};
use warden_audit::AuditError;

/// A command that could not do its job. Always exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policies did not load: every problem, with file:line:col.
    #[error("the policies did not load")]
    Policy(#[from] LoadError),
    /// The audit log could not be opened or read.
    #[error("{}{}", .0, audit_hint(.0))]
    Audit(#[from] AuditError),
    /// Flags or input that do not make sense, or anything else that stopped the command,
    /// in one line a person can act on.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// An error in one line.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Message(message.into())
    }
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Policy(e) => Error::Policy(e),
            BuildError::Audit(e) => Error::Audit(e),
            other => Error::Message(other.to_string()),
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Message(message)
    }
}

/// The flag or command that gets past an audit error, when there is one (the library's
/// messages name no flags).
fn audit_hint(e: &AuditError) -> &'static str {
    match e {
        AuditError::TamperedTail { .. } => {
            " (check it with `warden audit verify`; --allow-tampered-log appends anyway: it \
             records an incident, then signs over whatever is there)"
        }
        AuditError::OldFormat { .. } => " (give --db a new file)",
        _ => "",
    }
}

/// The result every command returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;
