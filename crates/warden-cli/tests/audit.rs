//! `warden audit …` and `--db` end to end: many `warden` processes on one log, verification
//! with a pinned key, the query/show/tail/export views, hostile record contents, and someone
//! who can write the log file but holds no key (forged records, a log cut back behind a
//! running server).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Server, example, root, warden};

/// A log made by real `warden check` runs: four actions that cover the TARGET kinds.
fn log(dir: &Path) -> PathBuf {
    let db = dir.join("warden.db");
    let db_s = db.to_str().unwrap();
    let p = example("brief.yaml");
    let runs: [&[&str]; 4] = [
        &[
            "-a",
            "http_request",
            "--arg",
            "url=https://api.github.com/repos",
            "--arg",
            "method=GET",
        ],
        &[
            "-a",
            "shell.exec",
            "--arg",
            "command=rm -rf /tmp/x",
            "--context",
            "session=s-9",
        ],
        &["-a", "file.write", "--arg", "path=/etc/hosts"],
        &[
            "-a",
            "mcp.tools/call",
            "--tool",
            "read_file",
            "--context",
            "server=filesystem",
        ],
    ];
    for extra in runs {
        let mut args = vec!["check", "-p", &p, "--db", db_s];
        args.extend_from_slice(extra);
        let out = warden(&args, None);
        assert!(out.code == 0 || out.code == 1, "{out:?}");
    }
    db
}

/// Edit the file by hand, as someone with `sqlite3` would (Python's sqlite3 module).
fn sql(db: &Path, statements: &str) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
        ])
        .arg(db)
        .arg(statements)
        .output()
        .expect("python3 edits the test log");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pub_key(db: &Path) -> String {
    format!("{}.key.pub", db.display())
}

#[test]
fn twelve_check_processes_at_once_on_a_fresh_log_all_decide() {
    // Reported: simultaneous processes on a fresh database failed ("cannot create key file:
    // File exists") and later ones denied ("another writer appended").
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let p = example("brief.yaml");
    let children: Vec<_> = (0..12)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_warden"))
                .args([
                    "check",
                    "-p",
                    &p,
                    "--db",
                    db.to_str().unwrap(),
                    "-a",
                    "execute_code",
                ])
                .args(["--arg", &format!("n={i}"), "--json"])
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "a policy deny, nothing else: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(v["reason"].as_str().unwrap().contains("rule"), "{v}");
        assert!(v["audit_seq"].as_u64().is_some(), "{v}");
    }
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &pub_key(&db),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("12 (seq 1..=12)"), "{}", out.stdout);
    let q = warden(&["audit", "query", db.to_str().unwrap(), "--json"], None);
    let mut ns: Vec<u64> = q
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["args"]["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..12).collect::<Vec<_>>());
}

#[test]
fn a_secret_key_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let secret = format!("{}.key", db.display());
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &secret,
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("this is a secret signing key; pass the public key")
            && out.stderr.contains("warden.db.key.pub"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("TAMPERED"), "{}", out.stdout);
    // The old spelling still works, with the public key.
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--key",
            &pub_key(&db),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn a_pinned_key_that_never_signed_the_log_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let other = dir.path().join("other.key");
    warden_audit::generate_key_file(&other).unwrap();
    sql(&db, "DELETE FROM checkpoints");
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &format!("{}.pub", other.display()),
        ],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("NOT ANCHORED"), "{}", out.stdout);
    assert!(out.stdout.contains("never signed"), "{}", out.stdout);
}

#[test]
fn query_shows_targets_filters_by_glob_tool_and_rule_and_says_when_cut() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let out = warden(&["audit", "query", db_s], None);
    assert_eq!(out.code, 0, "{out:?}");
    for target in [
        "https://api.github.com/repos",
        "rm -rf /tmp/x",
        "/etc/hosts",
        "filesystem/read_file",
    ] {
        assert!(
            out.stdout.contains(target),
            "TARGET {target} missing:\n{}",
            out.stdout
        );
    }
    let mcp = warden(
        &["audit", "query", db_s, "--action", "mcp.*", "--json"],
        None,
    )
    .json();
    assert_eq!(mcp.as_array().unwrap().len(), 1);
    assert_eq!(mcp[0]["context"]["server"], "filesystem");
    let tool = warden(
        &["audit", "query", db_s, "--tool", "read_*", "--json"],
        None,
    )
    .json();
    assert_eq!(tool.as_array().unwrap().len(), 1);
    let rule = warden(
        &["audit", "query", db_s, "--rule", "rules[1]", "--json"],
        None,
    )
    .json();
    assert_eq!(rule.as_array().unwrap().len(), 1, "{rule}");
    assert_eq!(rule[0]["action"], "http_request");
    let cut = warden(&["audit", "query", db_s, "--limit", "2"], None);
    assert_eq!(cut.stdout.lines().count(), 3, "{}", cut.stdout);
    assert!(cut.stderr.contains("more match"), "{}", cut.stderr);
    let all = warden(&["audit", "query", db_s, "--limit", "4"], None);
    assert!(!all.stderr.contains("more match"), "{}", all.stderr);
}

#[test]
fn show_prints_one_record_in_full_and_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let out = warden(&["audit", "show", db_s, "2"], None);
    assert_eq!(out.code, 0, "{out:?}");
    for want in [
        "record 2",
        "shell.exec",
        "rm -rf /tmp/x",
        "\"session\": \"s-9\"",
        "hash check:     ok",
        "anchored:       by signed checkpoint",
    ] {
        assert!(out.stdout.contains(want), "{want} missing:\n{}", out.stdout);
    }
    sql(&db, "UPDATE records SET verdict = 'allow' WHERE seq = 2");
    let out = warden(&["audit", "show", db_s, "2"], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    let out = warden(&["audit", "show", db_s, "99"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no record 99"), "{}", out.stderr);
}

#[test]
fn hidden_characters_in_records_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let p = example("brief.yaml");
    let input =
        r#"{"action":"execute_code","agent":"bot\u202e\u0000","args":{"command":"ls\u200b"}}"#;
    let out = warden(
        &[
            "check",
            "-p",
            &p,
            "--db",
            db.to_str().unwrap(),
            "--input",
            "-",
        ],
        Some(input),
    );
    assert!(out.code == 1 || out.code == 2, "{out:?}");
    let q = warden(&["audit", "query", db.to_str().unwrap()], None);
    assert!(q.stdout.contains("bot\\u{202e}\\u{0}"), "{}", q.stdout);
    for c in ['\0', '\u{202e}', '\u{200b}'] {
        assert!(!q.stdout.contains(c), "raw {c:?} printed:\n{}", q.stdout);
    }
    let show = warden(&["audit", "show", db.to_str().unwrap(), "1"], None);
    assert!(
        show.stdout.contains("bot\\u{202e}\\u{0}"),
        "{}",
        show.stdout
    );
    assert!(
        !show.stdout.contains('\0') && !show.stdout.contains('\u{200b}'),
        "{}",
        show.stdout
    );
}

#[test]
fn tail_follows_new_records_from_other_processes_and_ends_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let last2 = warden(&["audit", "tail", db_s, "-n", "2", "--json"], None);
    let seqs: Vec<u64> = last2
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [3, 4]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "audit",
            "tail",
            db_s,
            "-n",
            "0",
            "--follow",
            "--interval",
            "50",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let p = example("brief.yaml");
    let out = warden(
        &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let line = lines.next().unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["seq"].as_u64(), v["action"].as_str()),
        (Some(5), Some("execute_code"))
    );
    // Close the pipe: the next record it tries to print ends it, with exit 0.
    drop(lines);
    let out = warden(
        &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tail --follow did not end after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn export_verifies_first_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let good = warden(
        &["audit", "export", db_s, "--verify-key", &pub_key(&db)],
        None,
    );
    assert_eq!(good.code, 0, "{good:?}");
    assert_eq!(good.stdout.lines().count(), 4);
    sql(&db, "UPDATE records SET reason = 'fine' WHERE seq = 3");
    let bad = warden(&["audit", "export", db_s], None);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stdout.is_empty(), "nothing exported: {}", bad.stdout);
    assert!(
        bad.stderr.contains("failed verification at record 3"),
        "{}",
        bad.stderr
    );
    let forced = warden(&["audit", "export", db_s, "--no-verify"], None);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(forced.stdout.lines().count(), 4);
}

#[test]
fn a_db_in_a_missing_directory_names_the_path_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nonexistent").join("x.db");
    let p = example("brief.yaml");
    let out = warden(
        &["check", "-p", &p, "--db", db.to_str().unwrap(), "-a", "x"],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&db.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(!out.stderr.contains("creating"), "{}", out.stderr);
}

#[test]
fn a_log_whose_end_was_cut_is_refused_for_appending() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    sql(&db, "DELETE FROM records WHERE seq = 4");
    let p = example("brief.yaml");
    let out = warden(
        &["check", "-p", &p, "--db", db.to_str().unwrap(), "-a", "x"],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("refusing to append"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--allow-tampered-log"),
        "{}",
        out.stderr
    );
    let q = warden(&["audit", "query", db.to_str().unwrap(), "--json"], None);
    assert_eq!(
        q.json().as_array().unwrap().len(),
        3,
        "nothing was appended"
    );
    // Told to, it appends — after recording what it found.
    let db_s = db.to_str().unwrap();
    let out = warden(
        &[
            "check",
            "-p",
            &p,
            "--db",
            db_s,
            "--allow-tampered-log",
            "-a",
            "x",
        ],
        None,
    );
    assert_eq!(out.code, 1, "a decision (deny), not an error: {out:?}");
    let q = warden(&["audit", "query", db_s, "--json"], None);
    assert_eq!(q.json().as_array().unwrap().len(), 4);
    let v = warden(&["audit", "verify", db_s], None);
    assert!(v.stdout.contains("tampered_tail"), "{}", v.stdout);
}

#[test]
fn two_servers_and_a_check_share_one_log() {
    // Reported: a second `warden serve --db same.db` started and then denied everything.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("same.db");
    let db_s = db.to_str().unwrap();
    let p = example("brief.yaml");
    let a = Server::start(&["--policy", &p, "--db", db_s]);
    let b = Server::start(&["--policy", &p, "--db", db_s]);
    let body = r#"{"agent":"bot","action":"http_request","args":{"url":"https://api.github.com/","method":"GET"}}"#;
    let mut seqs = Vec::new();
    for i in 0..6 {
        let server = if i % 2 == 0 { &a } else { &b };
        let d = server.post("/v1/decide", body).json();
        assert_eq!(d["verdict"], "allow", "server {}: {d}", i % 2);
        seqs.push(d["audit_seq"].as_u64().unwrap());
        let out = warden(
            &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
            None,
        );
        assert_eq!(out.code, 1, "{out:?}");
    }
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "distinct numbers: {seqs:?}");
    drop((a, b));
    let out = warden(&["audit", "verify", db_s], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("12 (seq 1..=12)"), "{}", out.stdout);
}

/// Append a forged record after the last one, as the red team did knowing only
/// `docs/audit.md`: the documented encoding (the functions of `scripts/verify_audit.py`), a
/// correct BLAKE3 hash, linked to the last record, the head marker moved to it. An `allow` of
/// a shell command. Returns its sequence number.
fn forge_next(db: &Path) -> u64 {
    const FORGE: &str = r#"
import importlib.util, sqlite3, sys, time
spec = importlib.util.spec_from_file_location("v", sys.argv[2])
v = importlib.util.module_from_spec(spec)
spec.loader.exec_module(v)
c = sqlite3.connect(sys.argv[1], timeout=10)
seq, prev = c.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
args = b'{"command":"echo forged"}'
ctx = b'{"session":"s-forged"}'
ts = time.time_ns()
row = (seq + 1, ts, b"bot-7", b"shell.exec", None, None, b"allow", b"brief", b"rules[9]",
       b"allowed by rule", args, v.blake3(args), ctx, 1000, 1, prev)
h = v.blake3(v.record_encoding(2, row))
c.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
          tuple(x.decode() if isinstance(x, bytes) and i not in (11, 15) else x
                for i, x in enumerate(row)) + (h,))
c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?)", ("%d %s" % (seq + 1, h.hex()),))
c.commit()
print(seq + 1)
"#;
    let out = Command::new("python3")
        .args(["-c", FORGE])
        .arg(db)
        .arg(root().join("scripts/verify_audit.py"))
        .output()
        .expect("python3 forges a record");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn verify_pinned(db: &Path) -> crate::util::Out {
    warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &pub_key(db),
        ],
        None,
    )
}

#[test]
fn a_record_forged_without_the_key_is_never_signed_by_the_next_writer() {
    // Reported: after a forged `allow` record N+1 (correct hash, linked, head marker moved),
    // verify --verify-key said NOT ANCHORED; then one honest hook call appended and signed a
    // checkpoint over it, and verify --verify-key said intact (exit 0).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let db_s = db.to_str().unwrap();
    let p = example("brief.yaml");
    let check = || {
        warden(
            &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
            None,
        )
    };
    assert_eq!(check().code, 1, "a policy deny, recorded");
    assert_eq!(forge_next(&db), 2);
    let v = verify_pinned(&db);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stdout
            .contains("NOT ANCHORED by the pinned key at record 2"),
        "{}",
        v.stdout
    );

    // Honest writers, each its own process: a check and a Claude Code hook call.
    let out = check();
    assert_eq!(out.code, 2, "{out:?}");
    for want in [
        "record 2",
        "after the newest checkpoint",
        "refusing to append",
    ] {
        assert!(out.stderr.contains(want), "{want}: {}", out.stderr);
    }
    let payload = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code/bash-ls.json"),
    )
    .unwrap();
    let hook = warden(
        &[
            "hook",
            "claude-code",
            "--policy",
            &example("claude-code.yaml"),
            "--db",
            db_s,
        ],
        Some(&payload),
    );
    let answer: serde_json::Value = serde_json::from_str(hook.stdout.trim())
        .unwrap_or_else(|e| panic!("hook answer ({e}): {hook:?}"));
    assert_eq!(
        answer["hookSpecificOutput"]["permissionDecision"], "deny",
        "fails closed: {hook:?}"
    );
    assert!(
        hook.stderr.contains("refusing to append"),
        "{}",
        hook.stderr
    );

    // Nobody signed over the forgery: it is still reported, and nothing was appended.
    let v = verify_pinned(&db);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stdout
            .contains("NOT ANCHORED by the pinned key at record 2"),
        "{}",
        v.stdout
    );
    let q = warden(&["audit", "query", db_s, "--json"], None);
    assert_eq!(q.json().as_array().unwrap().len(), 2);
}

/// The `head:` line of a `warden audit verify` report: `SEQ:HASH`.
fn reported_head(out: &crate::util::Out) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("head:"))
        .unwrap_or_else(|| panic!("no head line in {}", out.stdout))
        .trim()
        .to_string()
}

const ALLOWED: &str = r#"{"agent":"bot","action":"http_request","args":{"url":"https://api.github.com/","method":"GET"}}"#;

#[test]
fn the_red_team_deletion_behind_a_running_server_is_refused() {
    // Reported: `warden serve --db`; a decision got audit_seq 2; record 2 was deleted and the
    // head marker rewritten to record 1 in one transaction; the next decision was given
    // audit_seq 2 again, and ~12 s later verify --verify-key said intact.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db_s = db.to_str().unwrap();
    let server = Server::start(&["--policy", &example("brief.yaml"), "--db", db_s]);
    for seq in 1..=2 {
        let d = server.post("/v1/decide", ALLOWED).json();
        assert_eq!(
            (d["verdict"].as_str(), d["audit_seq"].as_u64()),
            (Some("allow"), Some(seq))
        );
    }
    sql(
        &db,
        "BEGIN IMMEDIATE; DELETE FROM records WHERE seq = 2; \
         UPDATE meta SET value = (SELECT '1 ' || lower(hex(hash)) FROM records WHERE seq = 1) WHERE key = 'head'; \
         COMMIT;",
    );
    let d = server.post("/v1/decide", ALLOWED).json();
    assert_eq!(d["verdict"], "deny", "{d}");
    assert!(d["audit_seq"].is_null(), "no number handed out twice: {d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("could not be recorded"),
        "{d}"
    );
    drop(server);
    // Record 2 was signed when it was committed: verify names the deletion.
    let v = verify_pinned(&db);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stdout.contains("TAMPERED at record 2 (deleted)"),
        "{}",
        v.stdout
    );
}

#[test]
fn a_consistent_cut_back_behind_a_running_server_is_refused_and_a_remembered_head_names_it() {
    // The deletion done well: the attacker also kept checkpoint 1 while it was the newest
    // (each commit replaces it) and puts it back, so the file is consistent and signed by the
    // node key up to its new end. The running server remembers record 2 and refuses to go on;
    // a verifier that remembers the head says what happened.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db_s = db.to_str().unwrap();
    let saved = dir.path().join("saved.db");
    let server = Server::start(&["--policy", &example("brief.yaml"), "--db", db_s]);
    let d = server.post("/v1/decide", ALLOWED).json();
    assert_eq!(d["audit_seq"], 1, "{d}");
    sql(
        &db,
        &format!(
            "ATTACH '{}' AS saved; CREATE TABLE saved.cp AS SELECT * FROM main.checkpoints;",
            saved.display()
        ),
    );
    let d = server.post("/v1/decide", ALLOWED).json();
    assert_eq!(d["audit_seq"], 2, "{d}");
    let before = verify_pinned(&db);
    assert_eq!(before.code, 0, "{before:?}");
    let head = reported_head(&before);
    assert!(head.starts_with("2:"), "{head}");

    sql(
        &db,
        &format!(
            "ATTACH '{}' AS saved; BEGIN IMMEDIATE; DELETE FROM records WHERE seq = 2; \
             DELETE FROM checkpoints; INSERT INTO checkpoints SELECT * FROM saved.cp; \
             UPDATE meta SET value = (SELECT '1 ' || lower(hex(hash)) FROM records WHERE seq = 1) WHERE key = 'head'; \
             COMMIT;",
            saved.display()
        ),
    );
    // The file alone cannot tell: signed by the pinned key up to its end (the documented limit).
    let alone = verify_pinned(&db);
    assert_eq!(alone.code, 0, "{alone:?}");

    let d = server.post("/v1/decide", ALLOWED).json();
    assert_eq!(d["verdict"], "deny", "{d}");
    assert!(d["audit_seq"].is_null(), "no number handed out twice: {d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("record 2") && reason.contains("is gone"),
        "{reason}"
    );
    drop(server);

    let out = warden(
        &[
            "audit",
            "verify",
            db_s,
            "--verify-key",
            &pub_key(&db),
            "--expect-head",
            &head,
        ],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("TAMPERED at record 2 (deleted)"),
        "{}",
        out.stdout
    );
    let bad = warden(&["audit", "verify", db_s, "--expect-head", "2:zz"], None);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("SEQ:HASH"), "{}", bad.stderr);
}

#[test]
fn a_durable_server_answers_each_decision_after_its_record_is_committed() {
    // `warden serve --db` awaits each record's group commit without a thread per request:
    // many connections at once on one worker, each answer given only once its record is in
    // the file, every decision recorded once, the chain intact.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db_s = db.to_str().unwrap().to_string();
    let server = Server::start(&[
        "--policy",
        &example("brief.yaml"),
        "--db",
        &db_s,
        "--threads",
        "1",
    ]);
    let server = std::sync::Arc::new(server);
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let server = server.clone();
            let db = db.clone();
            std::thread::spawn(move || {
                let reader = rusqlite::Connection::open_with_flags(
                    &db,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                let mut seqs = Vec::new();
                for i in 0..20 {
                    let body = if (c + i) % 2 == 0 {
                        ALLOWED
                    } else {
                        r#"{"agent":"bot","action":"execute_code"}"#
                    };
                    let d = server.post("/v1/decide", body).json();
                    let seq = d["audit_seq"].as_u64().unwrap_or_else(|| panic!("{d}"));
                    let expected = if (c + i) % 2 == 0 { "allow" } else { "deny" };
                    assert_eq!(d["verdict"], expected, "{d}");
                    // Answered means committed: another reader sees the record already.
                    let verdict: String = reader
                        .query_row(
                            "SELECT verdict FROM records WHERE seq = ?1",
                            [seq as i64],
                            |r| r.get(0),
                        )
                        .unwrap_or_else(|e| panic!("record {seq} not committed: {e}"));
                    assert_eq!(verdict, expected);
                    seqs.push(seq);
                }
                seqs
            })
        })
        .collect();
    let batch = format!("[{ALLOWED}, {ALLOWED}, {}]", r#"{"action":"execute_code"}"#);
    let answers = server.post("/v1/decide/batch", &batch).json();
    let mut seqs: Vec<u64> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["audit_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(answers[2]["verdict"], "deny");
    for c in clients {
        seqs.extend(c.join().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=163).collect::<Vec<_>>(),
        "each decision its own record"
    );
    drop(server);
    let v = verify_pinned(&db);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn concurrent_requests_to_an_audited_server_get_one_committed_record_each() {
    // Issue 19: the server's own tasks commit the records of concurrent requests in groups.
    // Sixteen clients at once, then the server is killed (SIGKILL): every answer that named
    // an audit_seq names a different record, and each of them survived the kill.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db_s = db.to_str().unwrap();
    let server = Server::start(&[
        "--policy",
        &example("brief.yaml"),
        "--db",
        db_s,
        "--threads",
        "2",
    ]);
    let denied = r#"{"agent":"bot","action":"execute_code","args":{"code":"print(1)"}}"#;
    let addr = server.addr;
    let clients: Vec<_> = (0..16)
        .map(|c| {
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let body = if (c + i) % 2 == 0 { ALLOWED } else { denied };
                        let d = crate::util::request(
                            addr,
                            "POST",
                            "/v1/decide",
                            &["Content-Type: application/json"],
                            body.as_bytes(),
                        )
                        .json();
                        let want = if (c + i) % 2 == 0 { "allow" } else { "deny" };
                        assert_eq!(d["verdict"], want, "{d}");
                        d["audit_seq"]
                            .as_u64()
                            .expect("a durable answer names its record")
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    drop(server);
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "each record once");
    let v = verify_pinned(&db);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("400 (seq 1..=400)"), "{}", v.stdout);
}
