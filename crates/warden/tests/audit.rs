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
