//! What the runtime steps (kill switch, ring gate, rate limit) add to a decision, side by
//! side in one run:
//!
//! - `policy_only`: the brief's policy through `PolicySet::decide` (no Warden around it);
//! - `warden_plain`: the same policy through `Warden::decide`, no runtime sections (the
//!   runtime steps find nothing to do);
//! - `warden_contained`: the same policy plus `rings:` (the agent placed by a glob, its
//!   ring written into `context.ring`), a `rate_limits:` bucket per agent (too large to
//!   ever refuse), the ring's own per-agent rate, and a kill switch set for *another* agent
//!   (so the kill check takes its slow path);
//! - `warden_killed`: the agent itself is killed (the first step answers);
//! - `kill_to_first_deny_and_revive`: set a kill, the next decision (denied), lift it.
//!
//! Run: `cargo bench -p warden --bench runtime`

use divan::{Bencher, black_box};
use warden::{Action, PolicySet, Warden};
use warden_runtime::{Operator, Scope};

fn main() {
    divan::main();
}

const BRIEF: &str = r#"rules:
  - action: "execute_code"
    allow: false
  - action: "http_request"
    allow: true
    domains: ["api.github.com"]
    methods: ["GET"]
"#;

const CONTAINED: &str = r#"
rings:
  default: untrusted
  agents: {"bot-*": user, "ops-agent": supervisor}
  profiles:
    user: {rate: 1000000000/second}
rate_limits:
  - {action: http_request, per: agent, limit: 1000000000/second, burst: 1000000000}
"#;

fn action() -> Action {
    Action::new("http_request")
        .with_agent("bot-7")
        .with_arg("url", "https://api.github.com/repos")
        .with_arg("method", "GET")
}

fn warden(yaml: &str) -> Warden {
    Warden::new(PolicySet::from_yaml("brief.yaml", yaml).unwrap())
}

#[divan::bench]
fn policy_only(b: Bencher) {
    let set = PolicySet::from_yaml("brief.yaml", BRIEF).unwrap();
    let a = action();
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench]
fn warden_plain(b: Bencher) {
    let w = warden(BRIEF);
    let a = action();
    assert!(w.decide(&a).verdict == warden::Verdict::Allow);
    b.bench(|| black_box(w.decide(black_box(&a))));
}

#[divan::bench]
fn warden_contained(b: Bencher) {
    let w = warden(&format!("{BRIEF}{CONTAINED}"));
    let op = Operator::new("bench", "library");
    w.runtime()
        .kill(Scope::agent("someone-else").unwrap(), "bench", &op, None)
        .unwrap();
    let a = action();
    assert!(w.decide(&a).verdict == warden::Verdict::Allow);
    b.bench(|| black_box(w.decide(black_box(&a))));
}

#[divan::bench]
fn warden_killed(b: Bencher) {
    let w = warden(&format!("{BRIEF}{CONTAINED}"));
    let op = Operator::new("bench", "library");
    w.runtime()
        .kill(Scope::agent("bot-7").unwrap(), "bench", &op, None)
        .unwrap();
    let a = action();
    assert!(w.decide(&a).verdict == warden::Verdict::Deny);
    b.bench(|| black_box(w.decide(black_box(&a))));
}

/// The three runtime steps alone, on the `warden_contained` setup (where the time goes).
mod steps {
    use super::*;

    fn setup() -> (Warden, Action) {
        let w = warden(&format!("{BRIEF}{CONTAINED}"));
        let op = Operator::new("bench", "library");
        w.runtime()
            .kill(Scope::agent("someone-else").unwrap(), "bench", &op, None)
            .unwrap();
        (w, action())
    }

    #[divan::bench]
    fn kill_switch(b: Bencher) {
        let (w, a) = setup();
        b.bench(|| black_box(w.runtime().check_kill(black_box(&a))));
    }

    #[divan::bench]
    fn ring_gate(b: Bencher) {
        let (w, a) = setup();
        let v = w.policy_version();
        w.with_policies(|s| {
            b.bench(|| black_box(w.runtime().check_ring(s, v, black_box(&a), None).is_ok()));
        });
    }

    #[divan::bench]
    fn rate_limits(b: Bencher) {
        let (w, a) = setup();
        let v = w.policy_version();
        let ring = Some(warden::Ring::User);
        w.with_policies(|s| {
            b.bench(|| black_box(w.runtime().check_limits(s, v, black_box(&a), ring, None)));
        });
    }

    #[divan::bench]
    fn observe(b: Bencher) {
        let (w, a) = setup();
        let v = w.policy_version();
        let d = w.decide(&a);
        w.with_policies(|s| {
            b.bench(|| w.runtime().observe(s, v, black_box(&a), &d, None));
        });
    }
}

/// Kill switch to first denied decision, in one process: each sample sets a kill for the
/// agent, decides (denied: asserted), and lifts the kill again — so the time is an upper
/// bound on "kill → first deny" (it includes the revival). The issue's floor is 1 ms.
#[divan::bench]
fn kill_to_first_deny_and_revive(b: Bencher) {
    let w = warden(&format!("{BRIEF}{CONTAINED}"));
    let op = Operator::new("bench", "library");
    let scope = Scope::agent("bot-7").unwrap();
    let a = action();
    b.bench(|| {
        w.runtime().kill(scope.clone(), "bench", &op, None).unwrap();
        let d = w.decide(black_box(&a));
        assert!(d.verdict == warden::Verdict::Deny);
        w.runtime().revive(&scope, "bench", &op, None).unwrap();
    });
}
