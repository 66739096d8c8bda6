//! The attacker: a process that can write the log file (plain SQL, as with `sqlite3` or
//! Python's `sqlite3`) and has read `docs/audit.md`, but does not hold the node's signing key.
//! It appends well-formed records with correct hashes, moves the head marker, writes
//! checkpoints of its own, and cuts the log back. No honest writer may then sign over what it
//! did (which would make `verify --verify-key` call the forgery intact), and a writer that is
//! open while the log is cut back must notice.

mod common;

use std::path::Path;

use common::{config, entry, key, other_key, sql, write_log};
use ed25519_dalek::Signer;
use rusqlite::params;
use warden_audit::{
    AuditError, AuditLog, CHECKPOINT_DOMAIN, Filter, KnownHead, Record, TamperKind, VerifyOptions,
    VerifyReport, key_id, query,
};
use warden_core::Verdict;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    (dir, path)
}

fn last_record(path: &Path) -> Record {
    query(path, &Filter::default()).unwrap().pop().unwrap()
}

fn pinned(path: &Path) -> VerifyReport {
    warden_audit::verify(path, Some(key().verifying_key()), |_, _| {})
}

#[track_caller]
fn expect_finding(report: VerifyReport, seq: u64, kind: TamperKind) {
    match report {
        VerifyReport::Tampered { tampering, .. } => {
            assert_eq!((tampering.seq, tampering.kind), (seq, kind), "{tampering}");
        }
        other => panic!("expected {kind} at {seq}, got {other}"),
    }
}

#[track_caller]
fn expect_refused(result: Result<AuditLog, AuditError>, seq: u64, needle: &str) {
    match result {
        Err(AuditError::TamperedTail {
            seq: found, detail, ..
        }) => {
            assert_eq!(found, seq, "{detail}");
            assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
        }
        Err(e) => panic!("expected TamperedTail at {seq}, got {e}"),
        Ok(_) => panic!("a log with a forged end was opened for appending"),
    }
}

/// Append a record after the last one, as the red team did: an `allow` of a shell command,
/// its hash computed with the documented encoding, linked to the last record, and the head
/// marker moved to it. Returns it.
fn forge_next(path: &Path) -> Record {
    let last = last_record(path);
    let mut forged = last.clone();
    forged.seq = last.seq + 1;
    forged.ts = warden_audit::Timestamp::now();
    forged.agent = Some("bot-7".into());
    forged.action = "shell.exec".into();
    forged.verdict = Verdict::Allow;
    forged.rule = Some("rules[9]".into());
    forged.reason = "allowed by rule".into();
    let args = serde_json::json!({"command": "echo forged"});
    forged.args_digest = warden_audit::args_digest(&warden_audit::canonical_json(&args));
    forged.args = Some(args);
    forged.prev_hash = last.hash;
    forged.hash = forged.compute_hash();
    let conn = sql(path);
    conn.execute(
        "INSERT INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            forged.seq as i64,
            forged.ts.unix_nanos(),
            forged.agent,
            forged.action,
            forged.tool,
            forged.resource,
            forged.verdict.as_str(),
            forged.policy,
            forged.rule,
            forged.reason,
            forged.args.as_ref().map(warden_audit::canonical_json),
            &forged.args_digest[..],
            forged.context.as_ref().map(warden_audit::canonical_json),
            forged.latency_ns as i64,
            forged.policy_version.map(|v| v as i64),
            &forged.prev_hash[..],
            &forged.hash[..],
        ],
    )
    .unwrap();
    set_head_marker(&conn, forged.seq, &forged.hash);
    forged
}

fn set_head_marker(conn: &rusqlite::Connection, seq: u64, hash: &[u8; 32]) {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?1)",
        [format!("{seq} {}", warden_audit::to_hex(hash))],
    )
    .unwrap();
}

/// A checkpoint at `seq` over `head`, signed with `signer` and stored as if by `claimed`.
fn put_checkpoint(
    conn: &rusqlite::Connection,
    seq: u64,
    head: &[u8; 32],
    signer: &warden_audit::SigningKey,
    claimed: &warden_audit::VerifyingKey,
) {
    let signed_at = warden_audit::Timestamp::now().unix_nanos();
    let mut msg = CHECKPOINT_DOMAIN.to_vec();
    msg.extend_from_slice(&7u64.to_le_bytes());
    msg.extend_from_slice(b"ed25519");
    msg.extend_from_slice(&seq.to_le_bytes());
    msg.extend_from_slice(head);
    msg.extend_from_slice(&signed_at.to_le_bytes());
    let sig = signer.sign(&msg);
    conn.execute(
        "INSERT OR REPLACE INTO checkpoints VALUES (?1, ?2, ?3, 'ed25519', ?4, ?5, ?6)",
        params![
            seq as i64,
            &head[..],
            signed_at,
            key_id(claimed),
            &claimed.as_bytes()[..],
            &sig.to_bytes()[..]
        ],
    )
    .unwrap();
}

fn checkpoint_count(path: &Path) -> usize {
    warden_audit::checkpoints(path).unwrap().len()
}

// ---- (a) A record added without the key is never signed over. ----

#[test]
fn a_forged_record_after_the_end_is_refused_by_the_next_writer() {
    // Reported: after a forged record N+1 (correct hash, linked, head marker moved), the
    // next honest writer appended and signed a checkpoint over it, and `verify --verify-key`
    // called the forgery intact.
    let (_dir, path) = temp();
    write_log(&path, 12);
    let forged = forge_next(&path);
    expect_finding(pinned(&path), 13, TamperKind::Unanchored);
    let before = checkpoint_count(&path);

    expect_refused(
        AuditLog::open(&path, config()),
        13,
        "after the newest checkpoint",
    );
    expect_refused(
        AuditLog::open_signed(&path, config(), Some(&write_key(&path))),
        13,
        "after the newest checkpoint",
    );

    // Nothing was written: the forgery stays unanchored, and stays the last record.
    expect_finding(pinned(&path), 13, TamperKind::Unanchored);
    assert_eq!(checkpoint_count(&path), before);
    assert_eq!(last_record(&path).hash, forged.hash);
}

/// The test key, as a key file beside the log (as Warden's doors open logs).
fn write_key(path: &Path) -> std::path::PathBuf {
    let file = path.with_extension("db.key");
    if !file.exists() {
        std::fs::write(
            &file,
            format!("{}\n", warden_audit::to_hex(&key().to_bytes())),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    file
}

#[test]
fn a_forged_record_is_refused_by_a_writer_that_is_already_open() {
    // The server's case: a long-lived writer that committed before the forgery.
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    for i in 1..=3 {
        assert_eq!(log.append(entry(i)).unwrap(), Some(i));
    }
    forge_next(&path);
    let e = log.append(entry(5)).unwrap_err();
    match &e {
        AuditError::TamperedTail { seq, detail, .. } => {
            assert_eq!(*seq, 4, "{detail}");
        }
        other => panic!("expected TamperedTail, got {other}"),
    }
    // Closing signs nothing either.
    let _ = log.close();
    expect_finding(pinned(&path), 4, TamperKind::Unanchored);
    assert_eq!(query(&path, &Filter::default()).unwrap().len(), 4);
}

#[test]
fn a_checkpoint_by_another_key_does_not_anchor_a_forged_record() {
    let (_dir, path) = temp();
    write_log(&path, 5);
    let forged = forge_next(&path);
    let attacker = other_key();
    put_checkpoint(
        &sql(&path),
        6,
        &forged.hash,
        &attacker,
        &attacker.verifying_key(),
    );
    expect_refused(
        AuditLog::open(&path, config()),
        6,
        &format!(
            "signed by key {}, not by this writer's key",
            key_id(&attacker.verifying_key())
        ),
    );
    expect_finding(pinned(&path), 6, TamperKind::UntrustedKey);
}

#[test]
fn a_checkpoint_claiming_the_node_key_without_its_signature_is_refused() {
    let (_dir, path) = temp();
    write_log(&path, 5);
    let forged = forge_next(&path);
    // The node's public key stored beside a signature made with another key.
    put_checkpoint(
        &sql(&path),
        6,
        &forged.hash,
        &other_key(),
        &key().verifying_key(),
    );
    expect_refused(AuditLog::open(&path, config()), 6, "does not verify");
    // The same, slipped in behind a writer that is already open.
    let (_dir2, path2) = temp();
    let log = AuditLog::open(&path2, config()).unwrap();
    log.append(entry(1)).unwrap();
    let forged = forge_next(&path2);
    put_checkpoint(
        &sql(&path2),
        2,
        &forged.hash,
        &other_key(),
        &key().verifying_key(),
    );
    let e = log.append(entry(3)).unwrap_err();
    assert!(
        matches!(&e, AuditError::TamperedTail { seq: 2, detail, .. } if detail.contains("does not verify")),
        "{e}"
    );
    drop(log);
    expect_finding(pinned(&path2), 2, TamperKind::BadSignature);
}

#[test]
fn a_writer_without_the_key_cannot_extend_a_signed_log() {
    let (_dir, path) = temp();
    write_log(&path, 3);
    let mut keyless = config();
    keyless.signing_key = None;
    match AuditLog::open(&path, keyless.clone()) {
        Err(AuditError::KeyRequired { key_id: id, .. }) => {
            assert_eq!(id, key_id(&key().verifying_key()));
        }
        Err(e) => panic!("expected KeyRequired, got {e}"),
        Ok(_) => panic!("a keyless writer opened a signed log"),
    }
    // A keyless writer that opened the log before anyone signed it stops once someone did.
    let (_dir2, path2) = temp();
    let unsigned = AuditLog::open(&path2, keyless).unwrap();
    let signed = AuditLog::open(&path2, config()).unwrap();
    assert_eq!(signed.append(entry(1)).unwrap(), Some(1));
    let e = unsigned.append(entry(2)).unwrap_err();
    assert!(matches!(e, AuditError::KeyRequired { .. }), "{e}");
    assert_eq!(signed.append(entry(3)).unwrap(), Some(2));
    drop((signed, unsigned));
    assert!(pinned(&path2).is_intact(), "{}", pinned(&path2));
}

#[test]
fn a_log_written_without_a_key_is_not_signed_over_later() {
    // A keyed writer cannot vouch for records nobody signed; it says so rather than sign.
    let (_dir, path) = temp();
    let mut keyless = config();
    keyless.signing_key = None;
    let log = AuditLog::open(&path, keyless).unwrap();
    log.append(entry(1)).unwrap();
    log.append(entry(2)).unwrap();
    log.close().unwrap();
    expect_refused(
        AuditLog::open(&path, config()),
        1,
        "covered by no checkpoint",
    );
}

#[test]
fn allowing_a_tampered_tail_notes_an_incident_before_it_vouches() {
    let (_dir, path) = temp();
    write_log(&path, 12);
    forge_next(&path);
    let mut c = config();
    c.allow_tampered_tail = true;
    let log = AuditLog::open(&path, c).unwrap();
    let found = log.incidents_at_open();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].kind.as_str(), found[0].after_seq),
        ("tampered_tail", 13)
    );
    assert!(found[0].detail.contains("record 13"), "{}", found[0].detail);
    assert_eq!(log.append(entry(14)).unwrap(), Some(14));
    assert_eq!(log.append(entry(15)).unwrap(), Some(15));
    log.close().unwrap();
    // The writer signed over the end as it found it, as it was told to; the incident (noted
    // once) is what says so.
    match pinned(&path) {
        VerifyReport::Intact(s) => {
            assert_eq!(s.last_seq, Some(15));
            let noted: Vec<_> = s
                .incidents
                .iter()
                .filter(|i| i.kind == "tampered_tail")
                .collect();
            assert_eq!(noted.len(), 1, "{:?}", s.incidents);
            assert_eq!(noted[0].after_seq, 13);
        }
        other => panic!("expected intact with an incident, got {other}"),
    }
}

#[test]
fn an_end_left_unsigned_by_an_older_writer_is_refused_like_a_forgery() {
    // A Warden that signed on a schedule and was killed left its last records unsigned.
    // Nothing tells them apart from a forgery, so they are refused the same way.
    let (_dir, path) = temp();
    write_log(&path, 30);
    sql(&path)
        .execute("DELETE FROM checkpoints WHERE seq = 30", [])
        .unwrap();
    expect_refused(AuditLog::open(&path, config()), 21, "records 21..=30");
}

// ---- (b) A cut back behind a live writer. ----

#[test]
fn the_red_team_deletion_is_refused() {
    // Reported: a server gave out audit_seq 2; record 2 was deleted and the head marker
    // rewritten to record 1; the next decision was given audit_seq 2 again and, after the next
    // checkpoint, verify said intact.
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    assert_eq!(log.append(entry(1)).unwrap(), Some(1));
    assert_eq!(log.append(entry(2)).unwrap(), Some(2));
    let one = query(&path, &Filter::default()).unwrap()[0].hash;
    let conn = sql(&path);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute("DELETE FROM records WHERE seq = 2", [])
        .unwrap();
    set_head_marker(&conn, 1, &one);
    conn.execute_batch("COMMIT").unwrap();
    let e = log.append(entry(3)).unwrap_err();
    assert!(matches!(e, AuditError::TamperedTail { .. }), "{e}");
    drop(log);
    // Record 2 was signed when it was committed: its checkpoint gives the cut away.
    expect_finding(pinned(&path), 2, TamperKind::Deleted);
}

/// A log with kept checkpoints at 10 and 20 and records up to 23, written by `log`; then cut
/// back to record 20 with the later checkpoints and the head marker: consistent and signed
/// up to its new end. Returns the hash record 23 had.
fn cut_back_to_20(path: &Path, log: &AuditLog) -> [u8; 32] {
    for i in 1..=23 {
        assert_eq!(log.append(entry(i)).unwrap(), Some(i));
    }
    let gone = last_record(path).hash;
    let twenty = query(path, &Filter::default()).unwrap()[19].hash;
    let conn = sql(path);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute("DELETE FROM records WHERE seq > 20", [])
        .unwrap();
    conn.execute("DELETE FROM checkpoints WHERE seq > 20", [])
        .unwrap();
    set_head_marker(&conn, 20, &twenty);
    conn.execute_batch("COMMIT").unwrap();
    gone
}

#[test]
fn a_consistent_cut_back_behind_a_live_writer_is_refused() {
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    let gone = cut_back_to_20(&path, &log);
    // The file alone looks fine: signed by the pinned key up to its end.
    assert!(pinned(&path).is_intact(), "{}", pinned(&path));
    // The writer remembers record 23, which it committed.
    match log.append(entry(24)).unwrap_err() {
        AuditError::TamperedTail { seq, detail, .. } => {
            assert_eq!(seq, 21, "{detail}");
            assert!(detail.contains("record 23"), "{detail}");
            assert!(detail.contains("is gone"), "{detail}");
        }
        other => panic!("expected TamperedTail, got {other}"),
    }
    drop(log);
    assert_eq!(last_record(&path).seq, 20, "nothing was appended");
    // And a verifier that remembers the old head says what happened.
    let mut options = VerifyOptions::default();
    options.pinned_key = Some(key().verifying_key());
    options.expect_head = Some(KnownHead {
        seq: 23,
        hash: gone,
    });
    expect_finding(
        warden_audit::verify_with(&path, &options, |_, _| {}),
        21,
        TamperKind::Deleted,
    );
}

#[test]
fn a_record_replaced_behind_a_live_writer_is_refused() {
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    let _ = cut_back_to_20(&path, &log);
    // The attacker now also re-creates 21..=23 with other contents (and cannot sign them):
    // the writer's record 23 is there again in number, not in hash.
    for _ in 21..=23 {
        forge_next(&path);
    }
    match log.append(entry(24)).unwrap_err() {
        AuditError::TamperedTail { seq, detail, .. } => {
            assert_eq!(seq, 23, "{detail}");
            assert!(detail.contains("hash changed"), "{detail}");
        }
        other => panic!("expected TamperedTail, got {other}"),
    }
    drop(log);
}

#[test]
fn a_short_lived_writer_cannot_see_a_consistent_cut_back_but_a_remembered_head_can() {
    // The documented limit: a process that opens the log after it was cut back to an earlier
    // signed end finds nothing wrong and continues from there. Only a head remembered outside
    // the file (`verify --expect-head`) shows the log was longer.
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    let gone = cut_back_to_20(&path, &log);
    drop(log);
    let next = AuditLog::open(&path, config()).unwrap();
    assert_eq!(next.append(entry(99)).unwrap(), Some(21));
    next.close().unwrap();
    assert!(pinned(&path).is_intact());
    let mut options = VerifyOptions::default();
    options.expect_head = Some(KnownHead {
        seq: 23,
        hash: gone,
    });
    expect_finding(
        warden_audit::verify_with(&path, &options, |_, _| {}),
        22,
        TamperKind::Deleted,
    );
    // Once the log is as long again, the record there differs from the one remembered.
    let next = AuditLog::open(&path, config()).unwrap();
    next.append(entry(100)).unwrap();
    next.append(entry(101)).unwrap();
    next.close().unwrap();
    expect_finding(
        warden_audit::verify_with(&path, &options, |_, _| {}),
        23,
        TamperKind::Rewritten,
    );
    // The true head passes.
    options.expect_head = Some(KnownHead {
        seq: 23,
        hash: last_record(&path).hash,
    });
    assert!(warden_audit::verify_with(&path, &options, |_, _| {}).is_intact());
}

#[test]
fn a_remembered_head_reads_and_prints_as_seq_colon_hash() {
    let head: KnownHead = format!("23:{}", "ab".repeat(32)).parse().unwrap();
    assert_eq!((head.seq, head.hash), (23, [0xab; 32]));
    assert_eq!(head.to_string(), format!("23:{}", "ab".repeat(32)));
    for bad in ["", "23", "x:ab", "0:00", &format!("23:{}", "ab".repeat(31))] {
        let e = bad.parse::<KnownHead>().unwrap_err();
        assert!(e.to_string().contains("SEQ:HASH"), "{bad:?}: {e}");
    }
}

/// Poll a submitted record's future on this thread (as an async server's task does: the
/// group is committed by the poller itself) until it completes.
fn poll_here(mut f: warden_audit::Appended) -> Result<Option<u64>, AuditError> {
    use std::future::Future;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut f).poll(&mut cx) {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "did not complete");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_forged_record_is_refused_by_a_live_writer_whose_callers_commit_their_groups() {
    // The HTTP server's path: records committed by the awaiting tasks, not the writer
    // thread. Between two of its commits nobody else wrote, so the writer skips re-reading
    // the end; a forgery in between is another connection's commit and must be seen.
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    for i in 1..=3 {
        assert_eq!(poll_here(log.submit(entry(i))).unwrap(), Some(i));
    }
    forge_next(&path);
    match poll_here(log.submit(entry(5))).unwrap_err() {
        AuditError::TamperedTail { seq, detail, .. } => assert_eq!(seq, 4, "{detail}"),
        other => panic!("expected TamperedTail, got {other}"),
    }
    // A consistent cut back (record, checkpoint and marker rewound together) too.
    let (_dir2, path2) = temp();
    let log2 = AuditLog::open(&path2, config()).unwrap();
    let _ = cut_back_to_20(&path2, &log2);
    assert!(matches!(
        poll_here(log2.submit(entry(24))).unwrap_err(),
        AuditError::TamperedTail { .. }
    ));
    drop((log, log2));
}
