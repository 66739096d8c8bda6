//! Helpers shared by the integration tests: entries, keys, configs and a second SQLite
//! connection for editing log files by hand, as someone with `sqlite3` would.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use warden_audit::{AuditConfig, AuditLog, Entry, SigningKey, VerifyReport};
use warden_core::{Action, Decision, Verdict};

/// A fixed key, so failures are reproducible.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// Another key: an attacker's, or a wrongly pinned one.
pub fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[8u8; 32])
}

/// The `i`th test entry: three agents, three actions, all three verdicts.
pub fn entry(i: u64) -> Entry {
    let action = Action::new(["http_request", "execute_code", "read_file"][(i % 3) as usize])
        .with_agent(format!("agent-{}", i % 4))
        .with_tool("fetch")
        .with_resource(format!("https://example.com/{i}"))
        .with_arg("n", i)
        .with_arg("url", format!("https://example.com/{i}"))
        .with_context("session", format!("s-{}", i % 2));
    let verdict = [Verdict::Allow, Verdict::Deny, Verdict::RequireApproval][(i % 3) as usize];
    let decision = Decision {
        verdict,
        reason: Arc::from(format!("reason {i}")),
        policy: Some(Arc::from("default.yaml")),
        rule: Some(Arc::from(format!("rules[{}]", i % 5))),
        elapsed_ns: 1000 + i,
        ..Decision::deny("")
    };
    Entry::new(&action, &decision)
}

/// A signing, durable config with small checkpoint intervals so tests see several.
pub fn config() -> AuditConfig {
    let mut c = AuditConfig::default();
    c.signing_key = Some(key());
    c.keep_checkpoint_every = 10;
    c
}

/// A closed log with `n` records (checkpoints every 10, and one at the end).
pub fn write_log(path: &Path, n: u64) {
    let log = AuditLog::open(path, config()).unwrap();
    for i in 1..=n {
        assert_eq!(log.append(entry(i)).unwrap(), Some(i));
    }
    log.close().unwrap();
}

/// Verify without a pinned key and without progress.
pub fn verify(path: &Path) -> VerifyReport {
    warden_audit::verify(path, None, |_, _| {})
}

/// A plain read-write connection to edit the file by hand.
pub fn sql(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// Every entry `ns` (by its `n` argument) is in the log exactly once, and nothing else is.
pub fn assert_each_entry_once(path: &Path, ns: impl IntoIterator<Item = u64>) {
    let mut expected: Vec<u64> = ns.into_iter().collect();
    expected.sort_unstable();
    let mut found: Vec<u64> = warden_audit::query(path, &warden_audit::Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.args.as_ref().unwrap()["n"].as_u64().unwrap())
        .collect();
    found.sort_unstable();
    assert_eq!(found.len(), expected.len(), "record count");
    assert_eq!(found, expected, "each entry exactly once");
}

/// Wakes the test thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drive `f` on this thread until it completes; only a wake-up moves it on (a lost wake-up
/// shows as the "did not complete" panic, not as a hang).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "the future did not complete");
        std::thread::park_timeout(Duration::from_secs(1));
    }
}
