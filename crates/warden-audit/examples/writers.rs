// This example reports measurements to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

//! Append throughput with many writer processes on one log, the way hook calls, CLI checks
//! and a server share `warden.db`.
//!
//! ```text
//! cargo run --release -p warden-audit --example writers -- PROCESSES APPENDS [durable|buffered]
//! ```
//!
//! Starts PROCESSES copies of itself on a fresh log under `target/bench-tmp/`; each opens it
//! with `AuditLog::open_signed` (racing to create the database and the key), appends APPENDS
//! records one after another, and closes. Prints the wall time from the common start signal to
//! the last exit and the records per second over all processes, then verifies the log
//! (every record present once, chain intact, signed by the one key) and removes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warden_audit::{AuditConfig, AuditLog, Entry, Filter, Mode};
use warden_core::{Action, Decision};

const CHILD_ENV: &str = "WARDEN_AUDIT_WRITERS_CHILD";

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let processes: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(12);
    let appends: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mode = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "durable".to_string());
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&base).expect("create target/bench-tmp");
    let dir = tempfile::tempdir_in(&base).expect("temporary directory");
    let db = dir.path().join("shared.db");
    let go = dir.path().join("go");
    let exe = std::env::current_exe().expect("own path");
    let children: Vec<_> = (0..processes)
        .map(|i| {
            Command::new(&exe)
                .env(
                    CHILD_ENV,
                    format!("{}|{i}|{appends}|{mode}|{}", db.display(), go.display()),
                )
                .stdin(Stdio::null())
                .spawn()
                .expect("start a writer")
        })
        .collect();
    // Let every child reach its wait for the start signal.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    std::fs::write(&go, b"").expect("start signal");
    let mut failed = 0;
    for mut c in children {
        if !c.wait().expect("wait").success() {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();
    let total = processes * appends;
    println!(
        "{processes} processes x {appends} {mode} appends = {total} records in {:.3} s: {:.0} records/s ({failed} processes failed)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    let records = warden_audit::query(&db, &Filter::default()).expect("read back");
    let mut ns: Vec<u64> = records
        .iter()
        .map(|r| {
            r.args
                .as_ref()
                .and_then(|a| a["n"].as_u64())
                .unwrap_or(u64::MAX)
        })
        .collect();
    ns.sort_unstable();
    ns.dedup();
    let key = warden_audit::default_key_path(&db);
    let public = warden_audit::parse_verifying_key(
        warden_audit::public_key_path(&key)
            .to_str()
            .expect("utf-8 path"),
    )
    .expect("public key");
    let report = warden_audit::verify(&db, Some(public), |_, _| {});
    println!(
        "check: {} records, {} distinct, verify with the pinned key: {report}",
        records.len(),
        ns.len()
    );
    if failed > 0 || ns.len() as u64 != total || !report.is_intact() {
        std::process::exit(1);
    }
}

fn child(spec: &str) {
    let parts: Vec<&str> = spec.split('|').collect();
    let [db, index, appends, mode, go] = parts[..] else {
        panic!("bad spec {spec}");
    };
    let index: u64 = index.parse().expect("index");
    let appends: u64 = appends.parse().expect("appends");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !PathBuf::from(go).exists() {
        assert!(Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut config = AuditConfig::default();
    config.mode = if mode == "buffered" {
        Mode::Buffered
    } else {
        Mode::Durable
    };
    config.busy_timeout = Duration::from_secs(60);
    let log = match AuditLog::open_signed(db, config, None) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("writer {index}: {e}");
            std::process::exit(1);
        }
    };
    let mut decision = Decision::deny("domain api.github.com is allowed for GET only");
    decision.rule = Some("rules[3]".into());
    for i in 0..appends {
        let action = Action::new("http_request")
            .with_agent(format!("agent-{index}"))
            .with_arg("n", index * 10_000_000 + i)
            .with_context("session", format!("s-{index}"));
        if let Err(e) = log.append(Entry::new(&action, &decision)) {
            eprintln!("writer {index}: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = log.close() {
        eprintln!("writer {index}: {e}");
        std::process::exit(1);
    }
}
