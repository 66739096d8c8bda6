//! Every change of the runtime's state is a record in the audit log, with who and why.
//!
//! A change is recorded as an audit record whose *action* is the change itself: `agent` is
//! who made it (an operator's name, or `warden` for the anomaly detector and breakers),
//! `action` is one of the names below, `resource` says what it applies to, `args` hold the
//! details (scope, target, ring, expiry, reason), `context` says through which door (`cli`,
//! `http`, `library`, `decision`) and the process id, and the verdict is `allow` (the change
//! was made) with policy `warden-runtime`. So `warden audit query --action 'warden.*'` lists
//! every kill, revival, elevation, demotion, breaker opening and anomaly response, and the
//! hash chain covers them like any decision.
//!
//! | action | when |
//! |---|---|
//! | `warden.kill` | a kill switch was set |
//! | `warden.revive` | a kill switch was lifted (recorded *before* it is lifted) |
//! | `warden.ring.elevate` | an operator raised an agent's ring for a while (recorded before) |
//! | `warden.ring.demote` | an operator or the anomaly detector lowered an agent's ring |
//! | `warden.ring.restore` | an operator removed an agent's elevation or demotion |
//! | `warden.breaker.open` / `warden.breaker.close` | a circuit breaker changed state |
//! | `warden.anomaly` | an agent acted at many times its baseline rate |

use std::sync::Arc;

use serde_json::{Value, json};
use warden_audit::{AuditError, AuditLog, Entry};
use warden_core::{Action, Decision, Verdict};

/// Who changes the runtime's state, and through which door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    name: String,
    via: String,
}

impl Operator {
    /// `name` (a person or service), acting through `via` (`cli`, `http`, `library`).
    pub fn new(name: impl Into<String>, via: impl Into<String>) -> Self {
        Operator {
            name: name.into(),
            via: via.into(),
        }
    }

    /// Warden itself (the anomaly detector, breakers).
    pub fn warden(what: &str) -> Self {
        Operator::new(format!("warden ({what})"), "decision")
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The door.
    pub fn via(&self) -> &str {
        &self.via
    }
}

/// One change, ready to be recorded.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub action: &'static str,
    pub rule: &'static str,
    pub resource: String,
    pub reason: String,
    pub args: Value,
}

impl Change {
    /// The same change with one more argument.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.args {
            map.insert(key.to_string(), value.into());
        }
        self
    }

    /// Append to `log` (durable logs return once committed).
    pub fn record(&self, log: &AuditLog, by: &Operator) -> Result<Option<u64>, AuditError> {
        let mut action = Action::new(self.action)
            .with_agent(by.name())
            .with_resource(self.resource.as_str())
            .with_context("via", by.via())
            .with_context("pid", std::process::id());
        action.args = if self.args.is_object() {
            self.args.clone()
        } else {
            json!({})
        };
        let mut d = Decision::deny(Arc::<str>::from(self.reason.as_str()));
        d.verdict = Verdict::Allow;
        d.policy = Some(Arc::from("warden-runtime"));
        d.rule = Some(Arc::from(self.rule));
        log.append(Entry::new(&action, &d))
    }

    /// Record when there is a log; say so in the process's log either way.
    pub fn record_best_effort(&self, log: Option<&AuditLog>, by: &Operator) {
        tracing::warn!("{} ({})", self.reason, by.name());
        if let Some(log) = log
            && let Err(e) = self.record(log, by)
        {
            tracing::error!("cannot record `{}` in the audit log: {e}", self.action);
        }
    }
}
