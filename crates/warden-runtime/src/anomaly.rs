//! Anomaly detection: an agent acting at many times its own baseline rate.
//!
//! Each agent's actions are counted in windows of `window`. Its baseline is a moving average
//! of its past windows' counts (each finished window weighs 1/8; idle windows count as
//! zero), never below `min_actions`, so a new agent is not flagged for its first few
//! actions but one that starts out at ten times any sane rate is. An agent is **anomalous**
//! when its count in the current window exceeds `factor × baseline` — flagged at once, on
//! the action that crossed the line, and once per window. Windows with an anomaly do not
//! feed the baseline, so an agent cannot raise its own bar by misbehaving.

use std::collections::HashMap;
use std::sync::Mutex;

use warden_policy::runtime::AnomalySpec;

use crate::clock::nanos;

/// The most agents followed at once; beyond it, new agents are not followed until old ones
/// go quiet (detection is advisory, so this fails open, and says so in the docs).
pub const MAX_FOLLOWED_AGENTS: usize = 100_000;

/// An agent flagged as anomalous.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Who.
    pub agent: String,
    /// Actions in the current window.
    pub count: u64,
    /// The agent's baseline per window.
    pub baseline: f64,
    /// The window's length in nanoseconds.
    pub window_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Follow {
    window: u64,
    count: u64,
    baseline: f64,
    flagged: bool,
}

/// Per-agent rate baselines.
#[derive(Debug, Default)]
pub struct Detector {
    agents: Mutex<HashMap<Box<str>, Follow>>,
}

const WEIGHT: f64 = 1.0 / 8.0;

impl Detector {
    /// Count one action by `agent` at `now_ns`; returns an anomaly the first time the agent
    /// crosses the line in a window.
    pub fn observe(&self, spec: &AnomalySpec, agent: &str, now_ns: u64) -> Option<Anomaly> {
        let window_ns = nanos(spec.window).max(1);
        let window = now_ns / window_ns;
        let floor = f64::from(spec.min_actions);
        let mut agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !agents.contains_key(agent) && agents.len() >= MAX_FOLLOWED_AGENTS {
            agents.retain(|_, f| window.saturating_sub(f.window) < 100);
            if agents.len() >= MAX_FOLLOWED_AGENTS {
                return None;
            }
        }
        let f = agents.entry(Box::from(agent)).or_insert(Follow {
            window,
            count: 0,
            baseline: floor,
            flagged: false,
        });
        if window > f.window {
            if !f.flagged {
                f.baseline = f.baseline * (1.0 - WEIGHT) + f.count as f64 * WEIGHT;
            }
            // Idle windows since then pull the baseline towards zero.
            let idle = (window - f.window - 1).min(64);
            f.baseline *= (1.0 - WEIGHT).powi(i32::try_from(idle).unwrap_or(64));
            f.window = window;
            f.count = 0;
            f.flagged = false;
        }
        f.count += 1;
        let baseline = f.baseline.max(floor);
        if !f.flagged && f.count as f64 > f64::from(spec.factor) * baseline {
            f.flagged = true;
            return Some(Anomaly {
                agent: agent.to_string(),
                count: f.count,
                baseline,
                window_ns,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use warden_policy::runtime::AnomalyResponse;

    fn spec() -> AnomalySpec {
        AnomalySpec {
            factor: 10,
            window: Duration::from_secs(10),
            min_actions: 5,
            response: AnomalyResponse::Flag,
        }
    }

    #[test]
    fn a_steady_agent_is_not_flagged_and_a_burst_is_once() {
        let d = Detector::default();
        let s = spec();
        let w = 10_000_000_000u64;
        // 4 actions per window for 50 windows: never flagged.
        for win in 0..50 {
            for i in 0..4 {
                assert_eq!(d.observe(&s, "a", win * w + i), None);
            }
        }
        // Then 10 × baseline (baseline floor 5 → 50): the 51st action is flagged, once.
        let t = 50 * w;
        let mut flags = 0;
        for i in 0..200 {
            if let Some(a) = d.observe(&s, "a", t + i) {
                assert_eq!(a.count, 51);
                flags += 1;
            }
        }
        assert_eq!(flags, 1);
        // Another agent is followed separately.
        assert_eq!(d.observe(&s, "b", t), None);
    }
}
