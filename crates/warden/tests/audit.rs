//! `Warden::decide` with an audit log: every decision recorded on a real SQLite file, and a
//! log that cannot be written denies.

use std::time::Duration;

use warden::{Action, AuditConfig, AuditLog, PolicySet, Verdict, Warden};
use warden_audit::{Filter, VerifyReport, query, verify};

const POLICY: &str = r#"
name: audited
rules:
  - id: no-code
    action: execute_code
    allow: false
  - id: secrets
    action: get_secret
    allow: true
    obligations: [redact]
  - id: read
    action: read
    allow: true
"#;

fn warden(path: &std::path::Path, config: AuditConfig) -> Warden {
    let set = PolicySet::from_yaml("audited.yaml", POLICY).unwrap();
    Warden::new(set).with_audit(AuditLog::open(path, config).unwrap())
}

#[test]
fn every_decision_is_recorded_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let w = warden(&db, AuditConfig::default());
    let d1 = w.decide(&Action::new("execute_code").with_agent("bot"));
    let d2 = w.decide(
        &Action::new("read")
            .with_agent("bot")
            .with_arg("path", "/etc/hosts"),
    );
    let d3 = w.decide(&Action::new("get_secret").with_arg("name", "db-password"));
    assert_eq!((d1.verdict, d1.audit_seq), (Verdict::Deny, Some(1)));
    assert_eq!((d2.verdict, d2.audit_seq), (Verdict::Allow, Some(2)));
    assert_eq!(d3.audit_seq, Some(3));
    drop(w);

    let records = query(&db, &Filter::default()).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].action, "execute_code");
    assert_eq!(records[0].verdict, Verdict::Deny);
    assert_eq!(records[0].rule.as_deref(), Some("no-code"));
    assert_eq!(records[1].policy_version, Some(1));
    // The redact obligation keeps the arguments out of the log, leaving only their digest.
    assert!(records[2].args.is_none());
    let text = serde_json::to_string(&records[2]).unwrap();
    assert!(!text.contains("db-password"), "{text}");
    assert!(matches!(
        verify(&db, None, |_, _| {}),
        VerifyReport::Intact(_)
    ));
}

#[test]
fn a_log_that_cannot_be_written_denies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let mut config = AuditConfig::default();
    config.busy_timeout = Duration::from_millis(50);
    let w = warden(&db, config);
    assert_eq!(w.decide(&Action::new("read")).verdict, Verdict::Allow);

    // Another process holds the write lock: the writer cannot commit, so nothing can be
    // proven about the next decision, and it must not be an allow.
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let d = w.decide(&Action::new("read"));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("audit log"), "{}", d.reason);
    assert_eq!(d.audit_seq, None);
    other.execute_batch("ROLLBACK").unwrap();
    assert!(w.audit().unwrap().stats().failed >= 1);

    // Once the lock is gone, decisions are recorded again.
    let d = w.decide(&Action::new("read"));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert!(d.audit_seq.is_some());
}

/// A runtime like `warden serve --threads 1`: one worker, so a decision that parked it
/// while waiting for its record would stall every other one.
fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn decide_async_records_every_decision_like_decide() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let w = std::sync::Arc::new(warden(&db, AuditConfig::default()));
    assert!(!w.may_wait_before_audit(&Action::new("read")));
    let sync = w.decide(&Action::new("execute_code").with_agent("bot"));
    assert_eq!(sync.audit_seq, Some(1));
    let decisions = one_worker().block_on(async {
        // Many at once on one worker: each is queued, then all wait for commits together.
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let w = w.clone();
                let action = if i % 2 == 0 {
                    Action::new("read").with_arg("n", i)
                } else {
                    Action::new("execute_code").with_arg("n", i)
                };
                tokio::spawn(async move { w.decide_async(&action).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (i, d) in decisions.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        assert_eq!(d.verdict, expected, "{}", d.reason);
    }
    let mut seqs: Vec<u64> = decisions.iter().map(|d| d.audit_seq.unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=65).collect::<Vec<_>>(), "each its own record");
    // `wait` on a thread: the same decision.
    let d = w.decide_async(&Action::new("read")).wait();
    assert_eq!((d.verdict, d.audit_seq), (Verdict::Allow, Some(66)));
    drop(w);
    let records = query(&db, &Filter::default()).unwrap();
    assert_eq!(records.len(), 66);
    for d in &decisions {
        let r = &records[(d.audit_seq.unwrap() - 1) as usize];
        assert_eq!(r.verdict, d.verdict);
    }
    assert!(matches!(
        verify(&db, None, |_, _| {}),
        VerifyReport::Intact(_)
    ));
}

#[test]
fn decide_async_denies_what_cannot_be_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let mut config = AuditConfig::default();
    config.busy_timeout = Duration::from_millis(50);
    let w = warden(&db, config);
    let rt = one_worker();
    assert_eq!(
        rt.block_on(w.decide_async(&Action::new("read"))).verdict,
        Verdict::Allow
    );
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // An allow the policy gave, but its record cannot be committed: a deny, no number.
    let d = rt.block_on(w.decide_async(&Action::new("read")));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("audit log"), "{}", d.reason);
    assert_eq!(d.audit_seq, None);
    other.execute_batch("ROLLBACK").unwrap();
    let d = rt.block_on(w.decide_async(&Action::new("read")));
    assert_eq!((d.verdict, d.audit_seq), (Verdict::Allow, Some(2)));
}

#[test]
fn a_decision_queued_before_the_warden_closes_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let w = warden(&db, AuditConfig::default());
    // The Warden (and its log) goes away while the record waits: the future still finishes.
    let deciding = w.decide_async(&Action::new("read"));
    drop(w);
    let d = one_worker().block_on(deciding);
    // Closing commits what was queued: recorded, and allowed.
    assert_eq!((d.verdict, d.audit_seq), (Verdict::Allow, Some(1)));
}
