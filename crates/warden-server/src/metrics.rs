//! Counters the server keeps and renders as Prometheus text at `GET /metrics`.
//!
//! Plain atomics rather than a metrics crate: the set is small and fixed, and recording must
//! cost a few nanoseconds on the decision path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use warden_core::Verdict;

/// Upper bounds of the decision latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.1,
];

/// HTTP statuses of rejected requests, counted one by one.
const REJECTED: [u16; 7] = [400, 401, 404, 405, 408, 413, 503];

/// The server's counters. Shared by every request; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: [AtomicU64; 3],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    rejected: [AtomicU64; REJECTED.len()],
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    in_flight: AtomicU64,
}

/// Counts one decision request as in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Values read elsewhere at render time (they live in `Warden` and the audit log).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Version of the policy set serving now.
    pub policy_version: u64,
    /// Audit records accepted but not yet written, when an audit log is open.
    pub audit_queue_depth: Option<u64>,
    /// Audit records this server committed (0 without an audit log).
    pub audit_committed: u64,
    /// Checkpoints this server signed: one per commit, so `audit_committed` divided by this
    /// is the mean group size (0 without an audit log).
    pub audit_checkpoints: u64,
    /// Times the audit log's WAL was started over (0 without an audit log).
    pub audit_wal_restarts: u64,
}

fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Allow => 0,
        Verdict::Deny => 1,
        Verdict::RequireApproval => 2,
    }
}

impl Metrics {
    /// Count one decision and the time its request took.
    pub fn record_decision(&self, verdict: Verdict, took: Duration) {
        self.decisions[verdict_index(verdict)].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        // Buckets are cumulative in the output; here each observation lands in its first one.
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.fetch_add(ns, Relaxed);
    }

    /// Mark a decision request as started; it counts as in flight until the guard drops.
    pub fn start_request(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(&self.in_flight)
    }

    /// Count a request rejected with this status.
    pub fn record_rejected(&self, status: u16) {
        if let Some(i) = REJECTED.iter().position(|s| *s == status) {
            self.rejected[i].fetch_add(1, Relaxed);
        }
    }

    /// Count a successful policy reload.
    pub fn record_reload(&self) {
        self.reloads.fetch_add(1, Relaxed);
    }

    /// Count a rejected policy reload (the last good set kept serving).
    pub fn record_reload_failure(&self) {
        self.reload_failures.fetch_add(1, Relaxed);
    }

    /// Decisions so far with this verdict.
    pub fn decisions(&self, verdict: Verdict) -> u64 {
        self.decisions[verdict_index(verdict)].load(Relaxed)
    }

    /// Successful reloads so far.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Relaxed)
    }

    /// Rejected reloads so far.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Relaxed)
    }

    /// The decision latency histogram as it stands: each bucket's upper bound in seconds
    /// (`None` for the overflow) and the decisions that landed in it (not cumulative).
    pub fn latency_histogram(&self) -> Vec<(Option<f64>, u64)> {
        let mut out: Vec<(Option<f64>, u64)> = BUCKETS
            .iter()
            .zip(&self.latency_buckets)
            .map(|(b, n)| (Some(*b), n.load(Relaxed)))
            .collect();
        let total = self.latency_count.load(Relaxed);
        let counted: u64 = out.iter().map(|(_, n)| n).sum();
        out.push((None, total.saturating_sub(counted)));
        out
    }

    /// The sum of all decision latencies, in seconds.
    pub fn latency_sum_seconds(&self) -> f64 {
        self.latency_sum_ns.load(Relaxed) as f64 / 1e9
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(2048);
        head(
            &mut out,
            "warden_decisions_total",
            "counter",
            "Decisions made, by verdict.",
        );
        for v in [Verdict::Allow, Verdict::Deny, Verdict::RequireApproval] {
            let name = format!("warden_decisions_total{{verdict=\"{}\"}}", v.as_str());
            sample(&mut out, &name, self.decisions(v));
        }
        head(
            &mut out,
            "warden_decision_request_seconds",
            "histogram",
            "Time from request start to decision, per decided action.",
        );
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += count.load(Relaxed);
            let name = format!("warden_decision_request_seconds_bucket{{le=\"{bound}\"}}");
            sample(&mut out, &name, cumulative);
        }
        let count = self.latency_count.load(Relaxed);
        sample(
            &mut out,
            "warden_decision_request_seconds_bucket{le=\"+Inf\"}",
            count,
        );
        let sum = self.latency_sum_ns.load(Relaxed) as f64 / 1e9;
        sample(&mut out, "warden_decision_request_seconds_sum", sum);
        sample(&mut out, "warden_decision_request_seconds_count", count);
        head(
            &mut out,
            "warden_http_rejected_total",
            "counter",
            "Requests rejected before a decision, by status.",
        );
        for (status, n) in REJECTED.iter().zip(&self.rejected) {
            let name = format!("warden_http_rejected_total{{status=\"{status}\"}}");
            sample(&mut out, &name, n.load(Relaxed));
        }
        let singles: [(&str, &str, &str, u64); 8] = [
            (
                "warden_http_requests_in_flight",
                "gauge",
                "Decision requests being received or decided now.",
                self.in_flight.load(Relaxed),
            ),
            (
                "warden_policy_version",
                "gauge",
                "Version of the policy set serving now.",
                gauges.policy_version,
            ),
            (
                "warden_policy_reloads_total",
                "counter",
                "Policy reloads that took effect.",
                self.reloads(),
            ),
            (
                "warden_policy_reload_failures_total",
                "counter",
                "Policy reloads rejected; the last good set kept serving.",
                self.reload_failures(),
            ),
            (
                "warden_audit_queue_depth",
                "gauge",
                "Audit records accepted but not yet written (0 without --db).",
                gauges.audit_queue_depth.unwrap_or(0),
            ),
            (
                "warden_audit_records_committed_total",
                "counter",
                "Audit records this server committed (0 without --db).",
                gauges.audit_committed,
            ),
            (
                "warden_audit_commits_total",
                "counter",
                "Audit commits this server made, each with its signed checkpoint; records committed divided by this is the mean group size (0 without --db).",
                gauges.audit_checkpoints,
            ),
            (
                "warden_audit_wal_restarts_total",
                "counter",
                "Times the audit log's WAL file was started over after passing its size threshold (0 without --db).",
                gauges.audit_wal_restarts,
            ),
        ];
        for (name, kind, help, value) in singles {
            head(&mut out, name, kind, help);
            sample(&mut out, name, value);
        }
        out
    }
}

/// A metric's `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    // INVARIANT: writing to a String cannot fail, so the results are ignored.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line.
fn sample(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_decision(Verdict::Allow, Duration::from_micros(3));
        m.record_decision(Verdict::Deny, Duration::from_micros(40));
        m.record_rejected(413);
        m.record_reload_failure();
        let text = m.render(Gauges {
            policy_version: 4,
            audit_queue_depth: None,
            audit_committed: 12,
            audit_checkpoints: 3,
            audit_wal_restarts: 2,
        });
        assert!(text.contains("warden_decisions_total{verdict=\"allow\"} 1"));
        assert!(text.contains("warden_decisions_total{verdict=\"deny\"} 1"));
        assert!(text.contains("warden_decision_request_seconds_bucket{le=\"0.000005\"} 1"));
        assert!(text.contains("warden_decision_request_seconds_bucket{le=\"0.00005\"} 2"));
        assert!(text.contains("warden_decision_request_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("warden_http_rejected_total{status=\"413\"} 1"));
        assert!(text.contains("warden_policy_version 4"));
        assert!(text.contains("warden_policy_reload_failures_total 1"));
        assert!(text.contains("warden_audit_records_committed_total 12"));
        assert!(text.contains("warden_audit_commits_total 3"));
        assert!(text.contains("warden_audit_wal_restarts_total 2"));
        m.record_decision(Verdict::Allow, Duration::from_secs(1));
        let h = m.latency_histogram();
        assert_eq!(h.len(), BUCKETS.len() + 1);
        assert_eq!(h[0], (Some(0.000_005), 1));
        assert_eq!(h[3], (Some(0.000_05), 1));
        assert_eq!(h[BUCKETS.len()], (None, 1));
    }
}
