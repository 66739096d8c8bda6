//! Time, injectable: rate limits, breakers, elevations and anomaly windows all ask a
//! [`Clock`], so tests can stand exactly on a boundary instead of sleeping near it.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, never going backwards within one clock.
pub trait Clock: Send + Sync + Debug {
    /// The time now.
    fn now_ns(&self) -> u64;
}

/// The system's clock: the wall time at creation, advanced by the monotonic clock. So it
/// never jumps backwards within a process (a wall-clock step does not refill or drain a
/// bucket), and stays comparable across processes sharing a database (within NTP's skew).
#[derive(Debug)]
pub struct SystemClock {
    base_ns: u64,
    start: Instant,
}

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> Self {
        let base_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        SystemClock {
            base_ns,
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        let since = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.base_ns.saturating_add(since)
    }
}

/// A clock that moves only when told (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(now_ns),
        }
    }

    /// Move forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now.fetch_add(by, Ordering::SeqCst);
    }

    /// Move forward by `ns` nanoseconds.
    pub fn advance_ns(&self, ns: u64) {
        self.now.fetch_add(ns, Ordering::SeqCst);
    }

    /// Stand at `now_ns` (never earlier than now: clocks do not go back).
    pub fn set(&self, now_ns: u64) {
        self.now.fetch_max(now_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// Nanoseconds in a duration, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
