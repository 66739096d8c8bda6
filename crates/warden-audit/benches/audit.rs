// This file reports measurements to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

//! Audit log benchmarks: append throughput and latency in each mode, verification
//! throughput, and write amplification (printed before the divan table).
//!
//! Run: `cargo bench -p warden-audit`. `WARDEN_AUDIT_VERIFY_RECORDS` sets the size of the log
//! that `verify` is measured on (default 1,000,000).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use divan::Bencher;
use divan::counter::ItemsCount;
use warden_audit::{AuditConfig, AuditLog, Entry, Mode, SigningKey};
use warden_core::{Action, Decision};

fn main() {
    report_write_amplification();
    divan::main();
    // Statics are never dropped: remove the verify bench's log (GBs at 10M records) here.
    if let Some((dir, _, _)) = VERIFY_LOG.get() {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}

/// A typical decision: an HTTP request by a named agent, denied by a rule.
fn action(i: u64) -> Action {
    Action::new("http_request")
        .with_agent("agent-7f3a")
        .with_tool("fetch")
        .with_resource("https://api.github.com/repos/x/y")
        .with_arg("method", "GET")
        .with_arg(
            "url",
            format!("https://api.github.com/repos/x/y/issues/{i}"),
        )
}

fn decision() -> Decision {
    let mut d = Decision::deny("domain api.github.com is allowed for GET only");
    d.policy = Some("default.yaml".into());
    d.rule = Some("rules[3]".into());
    d.elapsed_ns = 2_400;
    d
}

fn config(mode: Mode, fsync: bool) -> AuditConfig {
    let mut c = AuditConfig::default();
    c.mode = mode;
    c.fsync = fsync;
    c.signing_key = Some(SigningKey::from_bytes(&[7; 32]));
    c
}

fn temp_log(name: &str) -> (tempfile::TempDir, PathBuf) {
    // Under target/ rather than /tmp: same disk as a real deployment's data directory,
    // and not a tmpfs on machines that mount one.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&base).expect("bench dir");
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let path = dir.path().join(name);
    (dir, path)
}

/// Appends from two threads in buffered mode, committed (the time includes the final flush).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn append_buffered_2_threads(bencher: Bencher) {
    two_thread_appends(bencher, Mode::Buffered, 100_000);
}

/// Appends from two threads in durable mode: each waits for its commit; they share commits.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn append_durable_2_threads(bencher: Bencher) {
    two_thread_appends(bencher, Mode::Durable, 10_000);
}

fn two_thread_appends(bencher: Bencher, mode: Mode, n: u64) {
    let (_dir, path) = temp_log("bench.db");
    let log = Arc::new(AuditLog::open(&path, config(mode, false)).expect("open"));
    let d = decision();
    bencher.counter(ItemsCount::new(n)).bench(|| {
        std::thread::scope(|s| {
            for t in 0..2 {
                let (log, d) = (&log, &d);
                s.spawn(move || {
                    for i in 0..n / 2 {
                        log.append(Entry::new(&action(t * n + i), d))
                            .expect("append");
                    }
                });
            }
        });
        log.flush().expect("flush");
    });
}

/// One durable append at a time: the median is the p50 latency of `append`.
#[divan::bench(sample_count = 2000, sample_size = 1)]
fn append_durable_1_thread(bencher: Bencher) {
    one_thread_appends(bencher, false);
}

/// The same with `fsync = true` (synchronous=FULL): bounded by the disk's flush latency.
#[divan::bench(sample_count = 200, sample_size = 1)]
fn append_durable_fsync_1_thread(bencher: Bencher) {
    one_thread_appends(bencher, true);
}

fn one_thread_appends(bencher: Bencher, fsync: bool) {
    let (_dir, path) = temp_log("bench.db");
    let log = AuditLog::open(&path, config(Mode::Durable, fsync)).expect("open");
    let d = decision();
    let mut i = 0;
    bencher
        .with_inputs(|| {
            i += 1;
            Entry::new(&action(i), &d)
        })
        .bench_local_values(|e| log.append(e).expect("append"));
}

/// Building the entry on the caller's thread: canonical JSON of the arguments and a digest.
#[divan::bench]
fn entry_new(bencher: Bencher) {
    let (a, d) = (action(1), decision());
    bencher.bench(|| Entry::new(divan::black_box(&a), divan::black_box(&d)));
}

/// The log `verify` is measured on: its directory, path and record count.
static VERIFY_LOG: OnceLock<(tempfile::TempDir, PathBuf, u64)> = OnceLock::new();

/// A log of `WARDEN_AUDIT_VERIFY_RECORDS` records, built once.
fn verify_log() -> &'static (tempfile::TempDir, PathBuf, u64) {
    VERIFY_LOG.get_or_init(|| {
        let n: u64 = std::env::var("WARDEN_AUDIT_VERIFY_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let (dir, path) = temp_log("verify.db");
        let start = Instant::now();
        let log = AuditLog::open(&path, config(Mode::Buffered, false)).expect("open");
        let d = decision();
        for i in 0..n {
            log.append(Entry::new(&action(i), &d)).expect("append");
        }
        log.close().expect("close");
        eprintln!(
            "verify bench: built a {n}-record log ({} MB) in {:.1} s",
            std::fs::metadata(&path)
                .map(|m| m.len() / 1_000_000)
                .unwrap_or(0),
            start.elapsed().as_secs_f64()
        );
        (dir, path, n)
    })
}

/// Full verification: every hash recomputed, every link and checkpoint signature checked.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn verify(bencher: Bencher) {
    let (_dir, path, n) = verify_log();
    bencher.counter(ItemsCount::new(*n)).bench(|| {
        let report = warden_audit::verify(path, None, |_, _| {});
        assert!(report.is_intact(), "{report}");
    });
}

/// Bytes this process has handed to `write(2)` so far (Linux), to count what SQLite writes
/// to the WAL and, at checkpoints, to the database file.
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Append `n` records, close, and print bytes on disk and bytes written per record.
fn report_write_amplification() {
    // Only under `cargo bench` (which passes `--bench`), not when `cargo test --benches`
    // runs each bench once to check that it works.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let d = decision();
    // The fields' own bytes: text fields, canonical args, three integers, three 32-byte
    // values (digest, previous hash, hash).
    let logical = {
        let a = action(123_456);
        let text: usize = [
            a.agent.as_deref().unwrap_or(""),
            &a.action,
            a.tool.as_deref().unwrap_or(""),
            a.resource.as_deref().unwrap_or(""),
            d.verdict.as_str(),
            d.policy.as_deref().unwrap_or(""),
            d.rule.as_deref().unwrap_or(""),
            &d.reason,
        ]
        .iter()
        .map(|s| s.len())
        .sum();
        text + warden_audit::canonical_json(&a.args).len() + 3 * 8 + 3 * 32
    };
    println!("write amplification (logical record ≈ {logical} bytes):");
    for (label, mode, n) in [
        ("buffered, 2 threads", Mode::Buffered, 200_000u64),
        ("durable, 1 thread", Mode::Durable, 20_000u64),
    ] {
        let (_dir, path) = temp_log("amp.db");
        let before = bytes_written().unwrap_or(0);
        let start = Instant::now();
        let log = Arc::new(AuditLog::open(&path, config(mode, false)).expect("open"));
        let threads = if mode == Mode::Buffered { 2 } else { 1 };
        std::thread::scope(|s| {
            for t in 0..threads {
                let (log, d) = (&log, &d);
                s.spawn(move || {
                    for i in 0..n / threads {
                        log.append(Entry::new(&action(t * n + i), d))
                            .expect("append");
                    }
                });
            }
        });
        let log = Arc::into_inner(log).expect("sole owner");
        log.close().expect("close");
        let elapsed = start.elapsed();
        let written = bytes_written().unwrap_or(0).saturating_sub(before);
        let on_disk = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "  {label}: {n} records in {:.2} s ({:.0}/s); file {:.1} bytes/record; \
             written {:.1} bytes/record (WAL + checkpoints)",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            on_disk as f64 / n as f64,
            written as f64 / n as f64,
        );
    }
    // Give the machine a moment so the first timed bench does not see the tail of that I/O.
    std::thread::sleep(Duration::from_millis(200));
}
