//! Errors shared by every crate: a bad action, and a policy that could not decide.

use miette::Diagnostic;
use thiserror::Error;

/// An action that cannot be judged because it is malformed.
#[derive(Debug, Clone, Error, Diagnostic)]
#[error("invalid action: {message}")]
#[diagnostic(code(warden::invalid_action))]
pub struct ActionError {
    message: String,
}

impl ActionError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ActionError {
            message: message.into(),
        }
    }

    pub(crate) fn from_json(e: serde_json::Error) -> Self {
        // serde_json ends its message with the line and column; keep that form.
        ActionError {
            message: e.to_string(),
        }
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A policy that could not judge an action. The decision path turns it into a deny.
#[derive(Debug, Clone, Error, Diagnostic)]
#[error("policy `{policy}` rule `{rule}` failed: {message}")]
#[diagnostic(code(warden::policy_error))]
pub struct PolicyError {
    policy: String,
    rule: String,
    message: String,
}

impl PolicyError {
    /// An evaluation error in one rule of one policy document.
    pub fn new(
        policy: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError {
            policy: policy.into(),
            rule: rule.into(),
            message: message.into(),
        }
    }

    /// The document that failed.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The rule that failed.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}
