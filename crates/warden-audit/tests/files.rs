//! Files that are not (intact) audit logs: every entry point refuses them with an error that
//! names the file and what is wrong, and leaves them byte-for-byte as they were.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{config, write_log};
use warden_audit::{AuditError, AuditLog, Filter, VerifyReport, export_jsonl, query};

/// Every way of opening a log, each expected to fail with an error naming `path`.
fn all_entry_points_fail(path: &Path) -> Vec<AuditError> {
    let mut errors = Vec::new();
    errors.push(AuditLog::open(path, config()).unwrap_err());
    match warden_audit::verify(path, None, |_, _| {}) {
        VerifyReport::Error(e) => errors.push(e),
        other => panic!("verify should fail on {}: {other}", path.display()),
    }
    errors.push(query(path, &Filter::default()).unwrap_err());
    errors.push(export_jsonl(path, Vec::new()).unwrap_err());
    errors.push(warden_audit::checkpoints(path).unwrap_err());
    for e in &errors {
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "error does not name the file: {e}"
        );
    }
    errors
}

/// The directory's files and their bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[track_caller]
fn refused_untouched(path: &Path, expect: &str) {
    let dir = path.parent().unwrap();
    let before = snapshot(dir);
    let errors = all_entry_points_fail(path);
    for e in &errors {
        assert!(
            e.to_string().contains(expect),
            "expected `{expect}` in: {e}"
        );
    }
    let after = snapshot(dir);
    assert_eq!(
        before.iter().map(|f| &f.0).collect::<Vec<_>>(),
        after.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "files appeared or vanished"
    );
    assert!(before == after, "{} was modified", path.display());
}

#[test]
fn random_bytes_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&path, bytes).unwrap();
    refused_untouched(&path, "does not start with the SQLite header");
}

#[test]
fn short_and_empty_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    fs::write(&path, "hello\n").unwrap();
    refused_untouched(&path, "too short");
    let empty = dir.path().join("empty.db");
    fs::write(&empty, "").unwrap();
    refused_untouched(&empty, "0 bytes");
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = AuditLog::open(dir.path(), config()).unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
}

#[test]
fn another_programs_database_is_refused_untouched() {
    for wal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .unwrap();
        }
        conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
            .unwrap();
        conn.close().unwrap();
        refused_untouched(&path, "not a Warden audit log");
    }
}

#[test]
fn a_lookalike_without_the_schema_is_refused_untouched() {
    // Warden's application id, but none of its tables.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA application_id = {}; PRAGMA user_version = 1; CREATE TABLE records (x);",
        warden_audit::APPLICATION_ID as i32
    ))
    .unwrap();
    conn.close().unwrap();
    refused_untouched(&path, "is missing");
}

#[test]
fn a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    write_log(&path, 3);
    let mut bytes = fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes()); // user_version
    fs::write(&path, bytes).unwrap();
    refused_untouched(&path, "newer than this build supports");
}

#[test]
fn a_corrupted_log_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    write_log(&path, 50);
    assert!(
        !dir.path().join("warden.db-wal").exists(),
        "close folds the WAL back"
    );
    // Scribble over the schema page after the 100-byte file header.
    let mut bytes = fs::read(&path).unwrap();
    for b in &mut bytes[100..4096] {
        *b = 0xA5;
    }
    fs::write(&path, bytes).unwrap();
    refused_untouched(&path, "corrupt");
}

#[test]
fn a_missing_file_is_an_error_for_readers_and_created_by_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let e = query(&path, &Filter::default()).unwrap_err();
    assert!(e.to_string().contains("nope.db"), "{e}");
    assert!(!path.exists(), "a reader must not create the file");
    let log = AuditLog::open(&path, config()).unwrap();
    log.close().unwrap();
    assert!(path.exists());
    // Nothing but the log is left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("nope.db")]);
}

#[test]
fn a_missing_directory_is_named_not_a_temporary_file() {
    // Reported: `--db /nonexistent/dir/x.db` named an internal temporary file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("x.db");
    let e = warden_audit::AuditLog::open(&path, warden_audit::AuditConfig::default()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, AuditError::NoDirectory { .. }), "{text}");
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(
        text.contains("does not exist") && !text.contains("creating"),
        "{text}"
    );
    // Nothing was created, not even the key.
    let e = warden_audit::AuditLog::open_signed(&path, warden_audit::AuditConfig::default(), None)
        .unwrap_err();
    assert!(matches!(e, AuditError::NoDirectory { .. }), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Other parts of Warden keep their state in the same file (`open_state`): it creates the log
/// when missing, refuses a file that is not Warden's, and tables beside the log's leave the
/// log intact and appendable.
#[test]
fn state_tables_live_beside_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let conn = warden_audit::open_state(&db, std::time::Duration::from_secs(5)).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS kill_switch (scope TEXT PRIMARY KEY, reason TEXT) STRICT;
         INSERT INTO kill_switch VALUES ('agent:a1', 'test');",
    )
    .unwrap();
    let log = warden_audit::AuditLog::open(&db, warden_audit::AuditConfig::default()).unwrap();
    let action = warden_core::Action::new("x");
    log.append(warden_audit::Entry::new(
        &action,
        &warden_core::Decision::deny("no"),
    ))
    .unwrap();
    log.close().unwrap();
    assert!(matches!(
        warden_audit::verify(&db, None, |_, _| {}),
        warden_audit::VerifyReport::Intact(_)
    ));
    let n: i64 = conn
        .query_row("SELECT count(*) FROM kill_switch", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let foreign = dir.path().join("notes.db");
    std::fs::write(&foreign, "not a database at all, just text").unwrap();
    assert!(warden_audit::open_state(&foreign, std::time::Duration::from_secs(1)).is_err());
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "not a database at all, just text"
    );
}
