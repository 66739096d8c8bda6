//! `warden-bench-raw`: regorus and cedar-policy on the brief's policy, timed like `warden bench`.
//!
//! Both engines judge the same two actions in turn as the Warden runs do: a GET to
//! api.github.com (allow) and `execute_code` (deny). Every call is timed on its own with
//! `Instant` (clock cost included, as in `warden bench`); throughput is calls over wall time on
//! one thread. What one "decision" costs for each engine:
//! - cedar: `Authorizer::is_authorized` on a request built beforehand (the engine alone; building
//!   the request from JSON is extra work a caller pays and Warden's Cedar backend includes).
//! - regorus: `set_input` with a prepared value, then `eval_rule` for `data.warden.deny` and
//!   `data.warden.allow` (two rule evaluations, as a deny-overrides caller needs).
//!
//! Usage: `warden-bench-raw POLICY_DIR [ITERATIONS]`; prints one JSON object per engine.

use std::path::Path;
use std::time::Instant;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: warden-bench-raw POLICY_DIR [ITERATIONS]");
    let n: usize = args
        .next()
        .map_or(200_000, |s| s.parse().expect("ITERATIONS"));
    let dir = Path::new(&dir);
    cedar(dir, n);
    rego(dir, n);
}

fn report(engine: &str, mut samples: Vec<u64>, wall_s: f64) {
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    println!(
        "{}",
        json!({
            "engine": engine,
            "decisions": samples.len(),
            "p50_ns": pct(0.50),
            "p99_ns": pct(0.99),
            "decisions_per_sec": samples.len() as f64 / wall_s,
        })
    );
}

fn time(n: usize, mut f: impl FnMut(usize)) -> (Vec<u64>, f64) {
    for i in 0..10_000 {
        f(i);
    }
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i);
        samples.push(t.elapsed().as_nanos() as u64);
    }
    (samples, start.elapsed().as_secs_f64())
}

fn cedar(dir: &Path, n: usize) {
    let src = std::fs::read_to_string(dir.join("brief.cedar")).expect("brief.cedar");
    let policies: PolicySet = src.parse().expect("brief.cedar parses");
    let request = |action: &str, args: serde_json::Value| {
        let uid = |s: &str| s.parse::<EntityUid>().expect("uid");
        let context = Context::from_json_value(json!({ "args": args }), None).expect("context");
        Request::new(
            uid(r#"Agent::"anonymous""#),
            uid(&format!(r#"Action::"{action}""#)),
            uid(r#"Resource::"none""#),
            context,
            None,
        )
        .expect("request")
    };
    let requests = [
        request(
            "http_request",
            json!({"url": "https://api.github.com/repos/rust-lang/rust", "method": "GET"}),
        ),
        request("execute_code", json!({"code": "print(1)"})),
    ];
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    // Sanity: the engine agrees with the brief before it is timed.
    let verdicts: Vec<_> = requests
        .iter()
        .map(|r| authorizer.is_authorized(r, &policies, &entities).decision())
        .collect();
    assert_eq!(
        verdicts,
        [cedar_policy::Decision::Allow, cedar_policy::Decision::Deny]
    );
    let (samples, wall) = time(n, |i| {
        std::hint::black_box(authorizer.is_authorized(&requests[i % 2], &policies, &entities));
    });
    report("cedar-policy", samples, wall);
}

fn rego(dir: &Path, n: usize) {
    let src = std::fs::read_to_string(dir.join("brief.rego")).expect("brief.rego");
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("brief.rego".into(), src)
        .expect("brief.rego parses");
    let inputs = [
        json!({"action": "http_request", "args": {"url": "https://api.github.com/repos/rust-lang/rust", "method": "GET"}}),
        json!({"action": "execute_code", "args": {"code": "print(1)"}}),
    ]
    .map(|v| regorus::Value::from_json_str(&v.to_string()).expect("input"));
    let mut decide = |i: usize| {
        engine.set_input(inputs[i % 2].clone());
        let deny = engine.eval_rule("data.warden.deny".into()).expect("deny");
        let allow = engine.eval_rule("data.warden.allow".into()).expect("allow");
        deny != regorus::Value::Bool(true) && allow == regorus::Value::Bool(true)
    };
    assert_eq!((decide(0), decide(1)), (true, false));
    let (samples, wall) = time(n, |i| {
        std::hint::black_box(decide(i));
    });
    report("regorus", samples, wall);
}
