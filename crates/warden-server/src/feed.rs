//! The live decision feed behind the dashboard's `GET /dashboard/events`.
//!
//! The decide handlers publish every decision here; each open event stream subscribes. Two
//! rules keep it off the decision path's budget:
//!
//! - **Nobody listening costs one atomic load.** Nothing is built or sent until a stream is
//!   open ([`Feed::publish`] returns at once on a zero listener count).
//! - **A slow client is dropped, never waited for.** The channel is a bounded ring
//!   (`tokio::sync::broadcast`, [`FEED_CAPACITY`] events); a sender never blocks, and a
//!   receiver that falls a whole ring behind sees `Lagged` and its stream is closed (the
//!   browser's `EventSource` reconnects on its own and starts from now).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use warden::{Action, Decision};

/// Events a stream may fall behind before it is dropped.
pub(crate) const FEED_CAPACITY: usize = 1024;
/// Event streams open at once; more are refused (503).
pub(crate) const MAX_LISTENERS: usize = 16;

/// One decision as the dashboard shows it: serialized once, shared by every stream.
#[derive(Serialize)]
struct Event<'a> {
    at: String,
    agent: Option<&'a str>,
    action: &'a str,
    tool: Option<&'a str>,
    verdict: &'static str,
    reason: &'a str,
    rule: Option<&'a str>,
    policy: Option<&'a str>,
    policy_version: u64,
    approval_id: Option<&'a str>,
    elapsed_us: u64,
}

/// The broadcast channel and its listener count.
pub(crate) struct Feed {
    tx: broadcast::Sender<Arc<str>>,
    listeners: Arc<AtomicUsize>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(FEED_CAPACITY).0,
            listeners: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// One open stream's place in the feed; the listener count drops with it.
pub(crate) struct Listener {
    count: Arc<AtomicUsize>,
    pub(crate) rx: broadcast::Receiver<Arc<str>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Feed {
    /// Publish a decision to every open stream; returns at once when none is open.
    pub(crate) fn publish(&self, action: &Action, decision: &Decision, took: Duration) {
        if self.listeners.load(Ordering::Relaxed) == 0 {
            return;
        }
        let event = Event {
            at: warden_audit::Timestamp::now().to_string(),
            agent: action.agent.as_deref(),
            action: &action.action,
            tool: action.tool.as_deref(),
            verdict: decision.verdict.as_str(),
            reason: &decision.reason,
            rule: decision.rule.as_deref(),
            policy: decision.policy.as_deref(),
            policy_version: decision.policy_version,
            approval_id: decision.approval_id.as_deref(),
            elapsed_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        };
        if let Ok(json) = serde_json::to_string(&event) {
            // No receiver left (the last one just closed) is not an error.
            let _ = self.tx.send(json.into());
        }
    }

    /// Open a stream, or `None` when [`MAX_LISTENERS`] are open already.
    pub(crate) fn listen(&self) -> Option<Listener> {
        let taken = self
            .listeners
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_LISTENERS).then_some(n + 1)
            });
        taken.ok().map(|_| Listener {
            count: self.listeners.clone(),
            rx: self.tx.subscribe(),
        })
    }

    /// Streams open now.
    pub(crate) fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    fn decide() -> (Action, Decision) {
        (
            Action::new("payments.send").with_agent("bot"),
            Decision::deny("denied: too much"),
        )
    }

    #[test]
    fn nothing_is_sent_without_a_listener() {
        let feed = Feed::default();
        let (a, d) = decide();
        feed.publish(&a, &d, Duration::from_micros(3));
        assert_eq!(feed.tx.len(), 0);
        let mut l = feed.listen().unwrap();
        feed.publish(&a, &d, Duration::from_micros(3));
        let event: serde_json::Value =
            serde_json::from_str(&l.rx.try_recv().expect("one event")).unwrap();
        assert_eq!(event["agent"], "bot");
        assert_eq!(event["verdict"], "deny");
        assert_eq!(event["reason"], "denied: too much");
        drop(l);
        assert_eq!(feed.listeners(), 0);
    }

    #[test]
    fn a_slow_listener_lags_and_the_sender_never_waits() {
        let feed = Feed::default();
        let (a, d) = decide();
        let mut l = feed.listen().unwrap();
        for _ in 0..FEED_CAPACITY * 3 {
            feed.publish(&a, &d, Duration::ZERO);
        }
        assert!(matches!(l.rx.try_recv(), Err(TryRecvError::Lagged(_))));
    }

    #[test]
    fn listeners_are_bounded() {
        let feed = Feed::default();
        let open: Vec<_> = (0..MAX_LISTENERS).map(|_| feed.listen().unwrap()).collect();
        assert!(feed.listen().is_none());
        drop(open);
        assert!(feed.listen().is_some());
    }
}
