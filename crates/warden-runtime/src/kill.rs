//! The kill switch's vocabulary: what is stopped ([`Scope`]) and the stop itself ([`Kill`]).
//! The switch's state lives in [`state`](crate::state); the check on the hot path is
//! [`Snapshot::killed`](crate::state::Snapshot::killed).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use warden_policy::runtime::NamePattern;

use crate::hash::ConfigMap;

/// What a kill switch stops.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every agent, every action.
    All,
    /// One agent (its name or DID, exactly).
    Agent(String),
    /// One capability: every action whose name matches the glob, whoever asks.
    Action(NamePattern),
}

impl Scope {
    /// A scope from its stored parts.
    pub fn from_parts(kind: &str, target: &str) -> Result<Scope, String> {
        match kind {
            "all" => Ok(Scope::All),
            "agent" if !target.is_empty() => Ok(Scope::Agent(target.to_string())),
            "action" => NamePattern::parse(target).map(Scope::Action),
            _ => Err(format!("unknown kill scope `{kind}` `{target}`")),
        }
    }

    /// One agent.
    pub fn agent(name: &str) -> Result<Scope, String> {
        if name.trim().is_empty() {
            return Err("the agent name is empty".into());
        }
        Ok(Scope::Agent(name.to_string()))
    }

    /// Actions matching a glob.
    pub fn action(glob: &str) -> Result<Scope, String> {
        NamePattern::parse(glob).map(Scope::Action)
    }

    /// `all`, `agent` or `action`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Agent(_) => "agent",
            Scope::Action(_) => "action",
        }
    }

    /// The agent or the glob (`""` for `all`).
    pub fn target(&self) -> &str {
        match self {
            Scope::All => "",
            Scope::Agent(a) => a,
            Scope::Action(p) => p.as_str(),
        }
    }

    /// Whether this scope stops everything `agent` does.
    pub fn stops_agent(&self, agent: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Agent(a) => agent == Some(a.as_str()),
            Scope::Action(_) => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("every agent"),
            Scope::Agent(a) => write!(f, "agent `{a}`"),
            Scope::Action(p) => write!(f, "actions `{p}`"),
        }
    }
}

/// A kill switch that is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Kill {
    /// What it stops.
    pub scope: Scope,
    /// Why, as the operator said.
    pub reason: String,
    /// Who set it.
    pub by: String,
    /// When (Unix nanoseconds).
    pub at_ns: u64,
}

/// A kill as JSON (`warden kill --list --json`, `GET /v1/kill`).
#[derive(Debug, Clone, Serialize)]
pub struct KillView {
    /// `all`, `agent` or `action`.
    pub scope: &'static str,
    /// The agent or glob (absent for `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When, Unix nanoseconds.
    pub at_ns: u64,
}

impl From<&Kill> for KillView {
    fn from(k: &Kill) -> Self {
        KillView {
            scope: k.scope.kind(),
            target: (!matches!(k.scope, Scope::All)).then(|| k.scope.target().to_string()),
            reason: k.reason.clone(),
            by: k.by.clone(),
            at_ns: k.at_ns,
        }
    }
}

impl Kill {
    /// The deny reason for an action this kill stops.
    pub fn deny_reason(&self) -> String {
        format!(
            "denied by the kill switch for {} (set by {}: {})",
            self.scope, self.by, self.reason
        )
    }
}

/// Kills indexed for the hot path: the fleet-wide one, by agent, by action glob.
pub(crate) type KillIndex = (
    Option<Arc<Kill>>,
    ConfigMap<Box<str>, Arc<Kill>>,
    Vec<(NamePattern, Arc<Kill>)>,
);

/// Index kills for the hot path.
pub(crate) fn index_kills(kills: Vec<Kill>) -> KillIndex {
    let mut all = None;
    let mut agents = ConfigMap::default();
    let mut actions = Vec::new();
    for k in kills {
        let k = Arc::new(k);
        match &k.scope {
            Scope::All => all = Some(k.clone()),
            Scope::Agent(a) => {
                agents.insert(Box::from(a.as_str()), k.clone());
            }
            Scope::Action(p) => actions.push((p.clone(), k.clone())),
        }
    }
    (all, agents, actions)
}
