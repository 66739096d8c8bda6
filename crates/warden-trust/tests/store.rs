//! The trust store on a real database: what survives a process, what two processes moving
//! one score add up to, revocation as a terminal state, decay under a hand-moved clock, and
//! the reference toolkit's farming and self-report failures.

use std::sync::Arc;
use std::time::Duration;

use warden_identity::Revocations;
use warden_trust::{ManualClock, Outcome, Tier, TrustConfig, TrustStore};

fn db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("warden.db");
    (dir, p)
}

#[test]
fn scores_and_events_survive_the_process() {
    let (_d, db) = db();
    {
        let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
        assert_eq!(t.score("a", 1000).unwrap().value, 500);
        t.observe(
            "a",
            Outcome::Violation,
            1000,
            "execute_code",
            "denied by rule",
        )
        .unwrap();
        t.observe("a", Outcome::Allowed, 1000, "http_request", "ok")
            .unwrap();
    }
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    let s = t.score("a", 1000).unwrap();
    assert_eq!((s.value, s.tier, s.events), (476, Tier::Probationary, 2));
    let ev = t.events("a", 10).unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].from, ev[0].to, ev[0].outcome.as_str()),
        (500, 475, "violation")
    );
    assert_eq!(ev[0].action.as_deref(), Some("execute_code"));
    assert_eq!(t.agents(10).unwrap()[0].0, "a");
}

#[test]
fn two_processes_moving_one_score_compose() {
    let (_d, db) = db();
    let a = TrustStore::open(&db, TrustConfig::default())
        .unwrap()
        .durable(false);
    let b = TrustStore::open(&db, TrustConfig::default())
        .unwrap()
        .durable(false);
    let ta = std::thread::spawn(move || {
        for _ in 0..10 {
            a.observe("x", Outcome::Denied, 1000, "a", "").unwrap();
        }
        a.flush().unwrap();
    });
    let tb = std::thread::spawn(move || {
        for _ in 0..10 {
            b.observe("x", Outcome::Denied, 1000, "b", "").unwrap();
        }
        b.flush().unwrap();
    });
    ta.join().unwrap();
    tb.join().unwrap();
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    // 20 denials of 10 points each, whichever process saw them.
    assert_eq!(t.score("x", 1000).unwrap().value, 300);
    assert_eq!(t.events("x", 100).unwrap().len(), 20);
}

#[test]
fn a_revoked_agent_stays_at_zero_until_restored() {
    let (_d, db) = db();
    let rev = Arc::new(Revocations::open(&db).unwrap().refresh(Duration::ZERO));
    let t = TrustStore::open(&db, TrustConfig::default())
        .unwrap()
        .with_revocations(rev.clone());
    for _ in 0..5 {
        t.observe("agent", Outcome::Allowed, 1000, "x", "").unwrap();
    }
    rev.revoke("agent", "did", Some("stolen key"), 1).unwrap();
    let s = t.score("agent", 1000).unwrap();
    assert_eq!((s.value, s.tier, s.revoked), (0, Tier::Untrusted, true));
    // The reference toolkit let a revoked agent climb back to 1000; here nothing moves.
    for _ in 0..1000 {
        assert_eq!(
            t.observe("agent", Outcome::Completed, 1000, "x", "")
                .unwrap(),
            None
        );
    }
    assert_eq!(t.score("agent", 1000).unwrap().value, 0);
    // An operator restores: the revocation is lifted and the score starts over.
    rev.restore("agent").unwrap();
    let change = t.restore("agent", "operator restored").unwrap();
    assert_eq!(change.to, 500);
    assert_eq!(t.score("agent", 1000).unwrap().value, 500);
    assert_eq!(t.events("agent", 1).unwrap()[0].outcome, "restored");
}

#[test]
fn idle_decay_is_computed_from_the_clock() {
    let (_d, db) = db();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let t = TrustStore::open(
        &db,
        TrustConfig {
            initial: 800,
            ..TrustConfig::default()
        },
    )
    .unwrap()
    .with_clock(clock.clone());
    t.observe("a", Outcome::Allowed, 1000, "x", "").unwrap();
    assert_eq!(t.score("a", 1000).unwrap().value, 801);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(t.score("a", 1000).unwrap().value, 801);
    clock.advance(Duration::from_secs(10 * 3600));
    assert_eq!(t.score("a", 1000).unwrap().value, 751);
    clock.advance(Duration::from_secs(1000 * 3600));
    let s = t.score("a", 1000).unwrap();
    assert_eq!((s.value, s.tier), (300, Tier::Probationary));
}

/// The writer folds a batch into one read and one write per agent: the events it records
/// must still chain (each starts where the last ended), and the stored score must be the one
/// the process computed, across batches and with agents interleaved.
#[test]
fn a_buffered_burst_chains_every_event_and_stores_the_last_score() {
    let (_d, db) = db();
    let agents = ["p", "q", "r"];
    let mut seen = Vec::new();
    {
        let t = TrustStore::open(&db, TrustConfig::default())
            .unwrap()
            .durable(false);
        for i in 0..1500 {
            let agent = agents[i % 3];
            let outcome = if i % 7 == 0 {
                Outcome::Denied
            } else {
                Outcome::Allowed
            };
            t.observe(agent, outcome, 1000, "http_request", "").unwrap();
        }
        t.flush().unwrap();
        for a in agents {
            seen.push(t.score(a, 1000).unwrap().value);
        }
    }
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    for (a, want) in agents.iter().zip(seen) {
        let s = t.score(a, 1000).unwrap();
        assert_eq!((s.value, s.events), (want, 500), "agent {a}");
        let ev = t.events(a, 1000).unwrap();
        // Every event is accounted for (equal ones in a row share a row and count there).
        assert_eq!(ev.iter().map(|e| e.times).sum::<u64>(), 500, "agent {a}");
        assert_eq!(ev[0].from, 500);
        for w in ev.windows(2) {
            assert_eq!(w[1].from, w[0].to, "agent {a}: events do not chain");
        }
        for e in ev.iter().filter(|e| e.times > 1) {
            assert_eq!(e.from, e.to, "only no-change events repeat: {e:?}");
        }
        assert_eq!(ev.last().unwrap().to, want);
    }
}

/// Red team: `GET /v1/trust?agent=…` with 4,000 long made-up names grew the server by
/// 120 MB. Reading the score of an agent that has none keeps nothing; names beyond the
/// bound are an error.
#[test]
fn asking_about_unknown_agents_keeps_nothing_in_memory() {
    let (_d, db) = db();
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    for i in 0..2_000 {
        let name = format!("did:warden:z{i:0>200}");
        assert_eq!(t.score(&name, 1000).unwrap().value, 500);
    }
    assert_eq!(t.agents_in_memory(), 0);
    assert!(t.score(&"x".repeat(100_000), 1000).is_err());
    // An agent Warden observed is kept (and its score is what it became).
    t.observe("a", Outcome::Violation, 1000, "execute_code", "denied")
        .unwrap();
    assert_eq!(t.agents_in_memory(), 1);
    assert_eq!(t.score("a", 1000).unwrap().value, 475);
}

/// A busy agent whose gains the window already used up repeats the same event: one row per
/// batch counts them, instead of one row per decision. Nothing else is folded: a change, a
/// new second, another action or reason starts a new row.
#[test]
fn repeated_equal_events_share_a_row_and_are_all_counted() {
    let (_d, db) = db();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let t = TrustStore::open(&db, TrustConfig::default())
        .unwrap()
        .durable(false)
        .with_clock(clock.clone());
    // 20 gains fill the hour's window (500 -> 520); the next 980 change nothing.
    for _ in 0..1000 {
        t.observe("busy", Outcome::Allowed, 1000, "http_request", "ok")
            .unwrap();
    }
    t.observe(
        "busy",
        Outcome::Allowed,
        1000,
        "http_request",
        "other reason",
    )
    .unwrap();
    clock.advance(Duration::from_secs(1));
    t.observe("busy", Outcome::Allowed, 1000, "http_request", "ok")
        .unwrap();
    t.flush().unwrap();
    let s = t.score("busy", 1000).unwrap();
    assert_eq!((s.value, s.events), (520, 1002));
    let ev = t.events("busy", 10_000).unwrap();
    assert_eq!(ev.iter().map(|e| e.times).sum::<u64>(), 1002);
    // The 20 gains are rows of their own.
    assert!(ev[..20].iter().all(|e| e.times == 1 && e.to == e.from + 1));
    let repeats: Vec<_> = ev[20..].iter().collect();
    assert!(
        repeats.len() < 200,
        "980 equal events in a few batches (each commit takes the queue): {}",
        repeats.len()
    );
    assert!(repeats.iter().all(|e| (e.from, e.to) == (520, 520)));
    let last = ev.last().unwrap();
    assert_eq!((last.times, last.at), (1, 1_000_001));
    assert_eq!(ev[ev.len() - 2].reason.as_deref(), Some("other reason"));
    assert_eq!(ev[ev.len() - 2].times, 1);
}

/// A database whose trust tables were made before `times` existed opens, and its old
/// events count once each.
#[test]
fn events_written_before_times_existed_count_once() {
    let (_d, db) = db();
    drop(TrustStore::open(&db, TrustConfig::default()).unwrap());
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "DROP TABLE trust_events;
         CREATE TABLE trust_events (
             id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, at INTEGER NOT NULL,
             outcome TEXT NOT NULL, from_score INTEGER NOT NULL, to_score INTEGER NOT NULL,
             ceiling INTEGER NOT NULL, action TEXT, reason TEXT);
         INSERT INTO trust_events (agent, at, outcome, from_score, to_score, ceiling, action, reason)
           VALUES ('old', 5, 'violation', 500, 475, 1000, 'x', 'r');",
    )
    .unwrap();
    drop(c);
    // Two processes opening at once both find (or add) the column.
    let a = std::thread::spawn({
        let db = db.clone();
        move || TrustStore::open(&db, TrustConfig::default()).map(drop)
    });
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    a.join().unwrap().unwrap();
    let ev = t.events("old", 10).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].from, ev[0].to, ev[0].times), (500, 475, 1));
    t.observe("old", Outcome::Denied, 1000, "y", "z").unwrap();
    assert_eq!(t.events("old", 10).unwrap().len(), 2);
}

/// Buffered events are noted beside the agent's state on the deciding thread and taken by
/// the writer later: closing the store without a flush must still commit every one of
/// them, in order, chained.
#[test]
fn buffered_events_noted_but_not_flushed_are_committed_when_the_store_closes() {
    let (_d, db) = db();
    let mut want = 0;
    {
        let t = TrustStore::open(&db, TrustConfig::default())
            .unwrap()
            .durable(false);
        for i in 0..3000 {
            let outcome = if i % 11 == 0 {
                Outcome::Violation
            } else {
                Outcome::Allowed
            };
            want = t
                .observe("n", outcome, 1000, "http_request", "ok")
                .unwrap()
                .unwrap()
                .to;
        }
        // No flush: dropping the store closes it.
    }
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    let s = t.score("n", 1000).unwrap();
    assert_eq!((s.value, s.events), (want, 3000));
    let ev = t.events("n", 10_000).unwrap();
    assert_eq!(ev.iter().map(|e| e.times).sum::<u64>(), 3000);
    for w in ev.windows(2) {
        assert_eq!(w[1].from, w[0].to, "events do not chain");
    }
}

/// A busy agent's events are noted in memory ahead of the file; what another process
/// recorded meanwhile still reaches this one once its writer commits (the file's state
/// with this process's newer events replayed on top), and a listing of agents keeps the
/// noted events.
#[test]
fn another_process_events_reach_a_buffered_store_with_events_noted() {
    let (_d, db) = db();
    let a = TrustStore::open(&db, TrustConfig::default())
        .unwrap()
        .durable(false);
    let b = TrustStore::open(&db, TrustConfig::default()).unwrap();
    for _ in 0..5 {
        a.observe("x", Outcome::Allowed, 1000, "get", "").unwrap();
    }
    a.flush().unwrap();
    assert_eq!(a.score("x", 1000).unwrap().value, 505);
    // Another process: two violations (25 each), committed.
    for _ in 0..2 {
        b.observe("x", Outcome::Violation, 1000, "rm", "").unwrap();
    }
    // This process has not read them yet (its state is fresh): it notes on top of its own.
    a.observe("x", Outcome::Allowed, 1000, "get", "").unwrap();
    a.observe("x", Outcome::Allowed, 1000, "get", "").unwrap();
    // `agents` re-reads every score, but not at the cost of what is noted.
    let listed = a.agents(10).unwrap();
    assert_eq!(listed.len(), 1);
    a.flush().unwrap();
    // 505 - 50 + 2: the file's truth (`b` itself sees it within its refresh second).
    assert_eq!(a.score("x", 1000).unwrap().value, 457);
    let fresh = TrustStore::open(&db, TrustConfig::default()).unwrap();
    assert_eq!(fresh.score("x", 1000).unwrap().value, 457);
    let ev = a.events("x", 100).unwrap();
    assert_eq!(ev.iter().map(|e| e.times).sum::<u64>(), 9);
}

/// Hostile input: an agent whose every decision has another reason cannot make this
/// process hold an unbounded list of noted events: past the bound, `observe` waits for the
/// writer. Every event is still recorded.
#[test]
fn different_events_noted_for_the_writer_are_bounded() {
    let (_d, db) = db();
    let t = TrustStore::open(&db, TrustConfig::default())
        .unwrap()
        .durable(false);
    let mut most = 0;
    for i in 0..20_000 {
        t.observe("y", Outcome::Allowed, 1000, "get", &format!("reason {i}"))
            .unwrap();
        most = most.max(t.noted_in_memory());
    }
    assert!(most <= 4096, "{most} events noted at once");
    t.flush().unwrap();
    assert_eq!(t.noted_in_memory(), 0);
    let ev = t.events("y", 30_000).unwrap();
    assert_eq!(ev.iter().map(|e| e.times).sum::<u64>(), 20_000);
}

/// The trust writer's commits must not copy the WAL back into the database file (SQLite's
/// automatic checkpoint, with its fsync, inside the write transaction, behind the write gate
/// the audit writer waits on): that is the audit log's checkpoint thread's work.
#[test]
fn trust_commits_leave_the_wal_to_the_audit_log_checkpointer() {
    let (_d, db) = db();
    let t = TrustStore::open(&db, TrustConfig::default()).unwrap();
    // 8 MiB waiting in the WAL (the audit log's writer never checkpoints either), from a
    // connection kept open so that closing it does not checkpoint.
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute_batch(
        "PRAGMA wal_autocheckpoint = 0; CREATE TABLE scratch (b BLOB);
         INSERT INTO scratch VALUES (zeroblob(8388608));",
    )
    .unwrap();
    let before = std::fs::metadata(&db).unwrap().len();
    assert!(before < 4 << 20, "the blob is still in the WAL: {before}");
    // A durable change: committed before `observe` returns.
    t.observe("a", Outcome::Allowed, 1000, "x", "").unwrap();
    let after = std::fs::metadata(&db).unwrap().len();
    assert!(
        after < 4 << 20,
        "the trust commit copied the WAL into the file ({before} -> {after} bytes)"
    );
    drop(raw);
}
