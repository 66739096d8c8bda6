//! How a trust score moves: a pure function of the stored state, the event, the agent's
//! ceiling, the clock and the configuration. The store, the tests and anyone auditing a
//! score all use this one function, so "why is this agent at 425?" has one answer.
//!
//! - **Gains are bounded per window** (default 20 points an hour), so a thousand trivial
//!   successes after a hundred violations buy back 20 points, not 1000.
//! - **Penalties are larger than gains** (checked in the configuration).
//! - **The ceiling caps everything**: the score read is never above the agent's ceiling,
//!   and gains stop at it, so a child capped at 200 stays at or below 200.
//! - **Decay** happens at read time from the stored last-event time and the clock (no
//!   background scheduler to forget): after `decay_after` idle, `decay_per_hour` points an
//!   hour are lost, down to `floor` (a score already below the floor does not rise). Any
//!   event — not only a good one — resets the idle clock.

use serde::{Deserialize, Serialize};

use crate::config::TrustConfig;

/// What Warden observed an agent do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An action was allowed.
    Allowed,
    /// An allowed action was seen to complete (a door saw its result).
    Completed,
    /// An action needed a person's approval (no change).
    ApprovalRequired,
    /// An action was denied without a rule naming it (a default, a failed step).
    Denied,
    /// An action was denied by a rule, or was outside the agent's credential.
    Violation,
    /// Something Warden treats as hostile: an attempt on its own files, poisoned content.
    Anomaly,
}

impl Outcome {
    /// The name in events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Completed => "completed",
            Outcome::ApprovalRequired => "approval_required",
            Outcome::Denied => "denied",
            Outcome::Violation => "violation",
            Outcome::Anomaly => "anomaly",
        }
    }

    /// The signed change this outcome asks for under `c` (before window and ceiling).
    pub fn weight(self, c: &TrustConfig) -> i32 {
        match self {
            Outcome::Allowed => i32::from(c.gain_allowed),
            Outcome::Completed => i32::from(c.gain_completed),
            Outcome::ApprovalRequired => 0,
            Outcome::Denied => -i32::from(c.penalty_denied),
            Outcome::Violation => -i32::from(c.penalty_violation),
            Outcome::Anomaly => -i32::from(c.penalty_anomaly),
        }
    }
}

/// What is stored per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// The score as of `last_event` (before any decay since).
    pub score: u16,
    /// Unix seconds of the last event; 0 = never.
    pub last_event: u64,
    /// Start of the current gain window (unix seconds).
    pub window_start: u64,
    /// Points gained in the current window.
    pub window_gain: u16,
    /// Events so far.
    pub events: u64,
}

impl State {
    /// A new agent.
    pub fn new(c: &TrustConfig) -> State {
        State {
            score: c.initial.min(1000),
            last_event: 0,
            window_start: 0,
            window_gain: 0,
            events: 0,
        }
    }

    /// The score at `now` with idle decay applied (not capped by a ceiling).
    pub fn decayed(&self, now: u64, c: &TrustConfig) -> u16 {
        if self.last_event == 0 || self.score <= c.floor {
            return self.score;
        }
        let idle = now.saturating_sub(self.last_event);
        let after = c.decay_after.as_secs();
        if idle <= after {
            return self.score;
        }
        let loss = u64::from(c.decay_per_hour).saturating_mul(idle - after) / 3600;
        let loss = u16::try_from(loss).unwrap_or(u16::MAX);
        self.score.saturating_sub(loss).max(c.floor)
    }

    /// The score read at `now` under `ceiling`.
    pub fn current(&self, now: u64, ceiling: u16, c: &TrustConfig) -> u16 {
        self.decayed(now, c).min(ceiling).min(1000)
    }

    /// This state after `outcome` at `now`: (new state, score before, score after).
    pub fn apply(
        &self,
        outcome: Outcome,
        ceiling: u16,
        now: u64,
        c: &TrustConfig,
    ) -> (State, u16, u16) {
        let before = self.current(now, ceiling, c);
        let mut next = *self;
        if now >= next.window_start.saturating_add(c.gain_window.as_secs()) {
            next.window_start = now;
            next.window_gain = 0;
        }
        let weight = outcome.weight(c);
        let after = if weight >= 0 {
            let room = c.max_gain.saturating_sub(next.window_gain);
            let gain = u16::try_from(weight).unwrap_or(u16::MAX).min(room);
            let after = before.saturating_add(gain).min(ceiling).min(1000);
            // INVARIANT: `after >= before` here, so the window only ever counts real gains.
            next.window_gain = next.window_gain.saturating_add(after - before);
            after
        } else {
            before.saturating_sub(u16::try_from(-weight).unwrap_or(u16::MAX))
        };
        next.score = after;
        next.last_event = now.max(1);
        next.events = next.events.saturating_add(1);
        (next, before, after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn c() -> TrustConfig {
        TrustConfig::default()
    }

    #[test]
    fn violations_then_successes_do_not_farm_trust() {
        // The reference toolkit: 100 violations then 100 trivial successes, 375 → 725.
        let c = c();
        let mut s = State {
            score: 375,
            ..State::new(&c)
        };
        let mut now = 1_000_000;
        for _ in 0..100 {
            s = s.apply(Outcome::Violation, 1000, now, &c).0;
            now += 1;
        }
        assert_eq!(s.score, 0);
        for _ in 0..100 {
            s = s.apply(Outcome::Allowed, 1000, now, &c).0;
            now += 1;
        }
        assert_eq!(s.score, 20, "gains are capped per window");
        // A day of one success an hour earns 20 points an hour at most.
        for _ in 0..24 {
            now += 3600;
            for _ in 0..50 {
                s = s.apply(Outcome::Completed, 1000, now, &c).0;
            }
        }
        assert_eq!(s.score, 20 + 24 * 20);
    }

    #[test]
    fn the_ceiling_caps_reads_and_gains() {
        // The reference toolkit: a child with ceiling 200 reached 1000 after a recalculation.
        let c = c();
        let mut s = State::new(&c);
        assert_eq!(s.current(0, 200, &c), 200);
        let mut now = 10;
        for _ in 0..5000 {
            s = s.apply(Outcome::Completed, 200, now, &c).0;
            now += 60;
        }
        assert!(s.score <= 200 && s.current(now, 200, &c) <= 200);
        // Presenting a higher ceiling later does not restore points never earned.
        assert_eq!(s.current(now, 1000, &c), 200);
    }

    #[test]
    fn idle_agents_decay_to_the_floor_whatever_their_history() {
        let c = c();
        // Only ever penalised, never a positive signal: it still decays.
        let s = State::new(&c).apply(Outcome::Denied, 1000, 100, &c).0;
        assert_eq!(s.score, 490);
        assert_eq!(s.decayed(100 + 3600, &c), 490);
        assert_eq!(s.decayed(100 + 3600 + 2 * 3600, &c), 480);
        assert_eq!(s.decayed(100 + 1000 * 3600, &c), c.floor);
        // Below the floor, idling never raises a score.
        let low = State {
            score: 100,
            last_event: 5,
            ..State::new(&c)
        };
        assert_eq!(low.decayed(5 + 10_000 * 3600, &c), 100);
    }

    #[test]
    fn weights_never_move_the_wrong_way() {
        let c = TrustConfig {
            decay_after: Duration::from_secs(10),
            ..c()
        };
        for o in [Outcome::Denied, Outcome::Violation, Outcome::Anomaly] {
            let (_, before, after) = State::new(&c).apply(o, 1000, 1, &c);
            assert!(after < before, "{o:?}");
        }
        for o in [
            Outcome::Allowed,
            Outcome::Completed,
            Outcome::ApprovalRequired,
        ] {
            let (_, before, after) = State::new(&c).apply(o, 1000, 1, &c);
            assert!(after >= before, "{o:?}");
        }
    }
}
