//! Operator (and anomaly) changes to an agent's ring: temporary elevations and demotions.

use serde::Serialize;
use warden_policy::runtime::Ring;

/// Which way an override moves an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// Up (more privilege), for a while, granted by an operator.
    Elevation,
    /// Down (less privilege), until an operator restores the agent.
    Demotion,
}

impl OverrideKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideKind::Elevation => "elevation",
            OverrideKind::Demotion => "demotion",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<OverrideKind, String> {
        match s {
            "elevation" => Ok(OverrideKind::Elevation),
            "demotion" => Ok(OverrideKind::Demotion),
            other => Err(format!("unknown ring override `{other}`")),
        }
    }
}

/// An elevation or demotion in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RingOverride {
    /// The agent.
    pub agent: String,
    /// Up or down.
    pub kind: OverrideKind,
    /// The ring it puts the agent in.
    #[serde(serialize_with = "ring_name")]
    pub ring: Ring,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When, Unix nanoseconds.
    pub at_ns: u64,
    /// When it ends, Unix nanoseconds (elevations always end; demotions last until lifted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ns: Option<u64>,
}

fn ring_name<S: serde::Serializer>(r: &Ring, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

impl RingOverride {
    /// Whether it is in force at `now_ns`.
    pub fn active(&self, now_ns: u64) -> bool {
        self.expires_ns.is_none_or(|e| now_ns < e)
    }
}
