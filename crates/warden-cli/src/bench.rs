//! `warden bench`: decision latency and throughput, in process, on real policies.
//!
//! Every call is timed on its own (the cost of reading the clock, measured and reported, is
//! included in the percentiles); throughput is total decisions over wall-clock time with all
//! threads running. With `--steps`, each step of the path (kill switch, identity, ring gate,
//! rate limits, policy, trust, audit) is timed too, from the same decisions
//! (`Warden::decide_timed`: one more clock read per step, included in each step's time).
//!
//! Like `serve`, the bench is one long-lived process: rate-limit buckets live in it, not in
//! the database (`check` shares them through the database because each of its processes
//! makes one decision).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use warden::{Action, PolicySet, StepTimes, Warden};

use crate::action_args::read_input;
use crate::args::{AuditArgs, PolicyArgs, ZeroTrustArgs, builder, read_credential};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report;

/// Decisions made before timing starts (caches, lazy statics, branch predictors). They are
/// real decisions: with `--db` they are recorded too.
const WARM_UP: u64 = 10_000;

/// Arguments of `warden bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Total decisions across all threads (after a warm-up of 10,000).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 1_000_000)]
    iterations: u64,
    /// Threads deciding at once.
    #[arg(long, short = 't', value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Actions to cycle through: a JSON object, an array of them, or one object per line.
    /// Default: an allowed `http_request` GET to https://api.github.com/.
    #[arg(long, value_name = "FILE|-")]
    input: Option<String>,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    zero_trust: ZeroTrustArgs,
    /// A credential chain (JSON) every action carries, as `check --credential` sends it: the
    /// first decision verifies it, the rest find it verified.
    #[arg(long, value_name = "FILE")]
    credential: Option<std::path::PathBuf>,
    /// Time each step of the path as well (p50 and p99 of each), from the same decisions.
    #[arg(long)]
    steps: bool,
    /// Print the result (or the error) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct BenchResult {
    decisions: u64,
    threads: usize,
    rules: usize,
    audit: Option<String>,
    /// Decisions recorded in the audit log: warm-up plus measured.
    audited: Option<u64>,
    p50_ns: u64,
    p99_ns: u64,
    max_ns: u64,
    mean_ns: u64,
    decisions_per_sec: f64,
    wall_ms: f64,
    clock_overhead_ns: u64,
    /// With `--steps`: each step's p50 and p99, in path order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    steps: Vec<StepResult>,
}

#[derive(Serialize)]
struct StepResult {
    step: &'static str,
    p50_ns: u64,
    p99_ns: u64,
}

pub fn run(args: &BenchArgs) -> Result<Exit> {
    if args.threads == 0 || args.iterations == 0 {
        return Err(Error::msg("--threads and --iterations must be at least 1"));
    }
    let mut actions = actions(args.input.as_deref())?;
    if let Some(path) = &args.credential {
        let credential = read_credential(path)?;
        actions = actions
            .into_iter()
            .map(|a| a.with_context("credential", credential.clone()))
            .collect();
    }
    let warden = args
        .zero_trust
        .apply(builder(&args.policy, &args.audit))?
        .build()?;
    if !args.json {
        errln!(
            "warden bench: {WARM_UP} warm-up decisions, then {} measured on {} thread{}…",
            args.iterations,
            args.threads,
            if args.threads == 1 { "" } else { "s" }
        );
    }
    let result = measure(&warden, &actions, args.iterations, args.threads, args.steps);
    if let Some(log) = warden.audit() {
        log.flush()
            .map_err(|e| Error::msg(format!("the audit log failed during the run: {e}")))?;
    }
    if args.json {
        outln!("{}", report::json(&result));
    } else {
        outln!(
            "{} decisions on {} thread{} ({} rules{}): p50 {} ns, p99 {} ns, max {} ns, mean {} ns; {:.0} decisions/s (clock overhead ~{} ns per call, included)",
            result.decisions,
            result.threads,
            if result.threads == 1 { "" } else { "s" },
            result.rules,
            match (&result.audit, result.audited) {
                (Some(db), Some(n)) =>
                    format!(", {n} records audited to {db} including the {WARM_UP} warm-up"),
                _ => String::new(),
            },
            result.p50_ns,
            result.p99_ns,
            result.max_ns,
            result.mean_ns,
            result.decisions_per_sec,
            result.clock_overhead_ns,
        );
        for step in &result.steps {
            outln!(
                "  {:<9} p50 {} ns, p99 {} ns",
                step.step,
                step.p50_ns,
                step.p99_ns
            );
        }
    }
    Ok(Exit::Ok)
}

fn actions(input: Option<&str>) -> Result<Vec<Action>, String> {
    let Some(input) = input else {
        return Ok(vec![
            Action::new("http_request")
                .with_arg("url", "https://api.github.com/repos/rust-lang/rust")
                .with_arg("method", "GET"),
        ]);
    };
    let text = read_input(input)?;
    let trimmed = text.trim_start();
    let values: Vec<serde_json::Value> = if trimmed.starts_with('[') {
        serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?
    } else {
        serde_json::Deserializer::from_str(&text)
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{input}: {e}"))?
    };
    let actions: Vec<Action> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<Action>(v).map_err(|e| format!("{input}: action {i}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if actions.is_empty() {
        return Err(format!("{input}: no actions"));
    }
    Ok(actions)
}

fn measure(
    warden: &Warden,
    actions: &[Action],
    iterations: u64,
    threads: usize,
    steps: bool,
) -> BenchResult {
    let per_thread = iterations.div_ceil(threads as u64);
    let barrier = Barrier::new(threads);
    // Warm up: caches, lazy statics, branch predictors.
    for a in actions.iter().cycle().take(WARM_UP as usize) {
        std::hint::black_box(warden.decide(a));
    }
    let started = Instant::now();
    let (mut samples, mut laps): (Vec<u64>, Vec<StepTimes>) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(per_thread as usize);
                    let mut laps = Vec::with_capacity(if steps { per_thread as usize } else { 0 });
                    barrier.wait();
                    for i in 0..per_thread as usize {
                        let a = &actions[(t + i) % actions.len()];
                        let t0 = Instant::now();
                        if steps {
                            let (d, times) = warden.decide_timed(a);
                            std::hint::black_box(d);
                            lat.push(t0.elapsed().as_nanos() as u64);
                            laps.push(times);
                        } else {
                            std::hint::black_box(warden.decide(a));
                            lat.push(t0.elapsed().as_nanos() as u64);
                        }
                    }
                    (lat, laps)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .fold((Vec::new(), Vec::new()), |(mut l, mut s), (lat, laps)| {
                l.extend(lat);
                s.extend(laps);
                (l, s)
            })
    });
    let wall = started.elapsed();
    let steps = step_results(&mut laps);
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    let total: u64 = samples.iter().sum();
    BenchResult {
        decisions: samples.len() as u64,
        threads,
        rules: warden.with_policies(PolicySet::rule_count),
        audit: warden.audit().map(|log| log.path().display().to_string()),
        audited: warden.audit().map(|_| WARM_UP + samples.len() as u64),
        p50_ns: pct(0.50),
        p99_ns: pct(0.99),
        max_ns: *samples.last().unwrap_or(&0),
        mean_ns: total / samples.len().max(1) as u64,
        decisions_per_sec: samples.len() as f64 / wall.as_secs_f64().max(1e-9),
        wall_ms: wall.as_secs_f64() * 1e3,
        clock_overhead_ns: clock_overhead(),
        steps,
    }
}

/// p50 and p99 of each step over `laps` (empty without `--steps`).
fn step_results(laps: &mut [StepTimes]) -> Vec<StepResult> {
    if laps.is_empty() {
        return Vec::new();
    }
    type Field = (&'static str, fn(&StepTimes) -> u64);
    let fields: [Field; 9] = [
        ("validate", |t| t.validate_ns),
        ("kill", |t| t.kill_ns),
        ("identity", |t| t.identity_ns),
        ("ring", |t| t.ring_ns),
        ("limits", |t| t.limits_ns),
        ("policy", |t| t.policy_ns),
        ("trust", |t| t.trust_ns),
        ("audit", |t| t.audit_ns),
        ("total", StepTimes::total_ns),
    ];
    let mut column = Vec::with_capacity(laps.len());
    fields
        .iter()
        .map(|&(step, get)| {
            column.clear();
            column.extend(laps.iter().map(get));
            column.sort_unstable();
            let pct = |p: f64| column[((column.len() as f64 - 1.0) * p) as usize];
            StepResult {
                step,
                p50_ns: pct(0.50),
                p99_ns: pct(0.99),
            }
        })
        .collect()
}

/// Median cost of one `Instant::now()` + `elapsed()` pair.
fn clock_overhead() -> u64 {
    let mut v: Vec<u64> = (0..10_001)
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(Duration::ZERO);
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}
