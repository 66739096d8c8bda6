//! Decision latency per backend: the same conformance fixtures (`tests/conformance/` at the
//! repo root) loaded as YAML, Cedar and Rego, judging an allowed, a denied and a
//! require-approval action, through `PolicySet::decide`.
//!
//! Run: `cargo bench -p warden-policy --bench backends`

use std::path::Path;

use divan::{Bencher, black_box};
use warden_core::Action;
use warden_policy::PolicySet;

fn main() {
    divan::main();
}

const BACKENDS: &[&str] = &["yaml", "cedar", "rego"];

fn load(policy: &str, backend: &str) -> PolicySet {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/conformance")
        .join(format!("{policy}.{backend}"));
    PolicySet::load(&[file]).expect("conformance fixture loads")
}

/// The brief's policy: a GET to api.github.com (allowed by the second rule).
#[divan::bench(args = BACKENDS)]
fn brief_allow(bencher: Bencher, backend: &str) {
    let set = load("brief", backend);
    let action = Action::new("http_request")
        .with_agent("agent-1")
        .with_arg("url", "https://api.github.com/repos/x/y")
        .with_arg("method", "GET");
    bencher.bench(|| black_box(set.decide(black_box(&action))));
}

/// The brief's policy: `execute_code` (denied by the first rule).
#[divan::bench(args = BACKENDS)]
fn brief_deny(bencher: Bencher, backend: &str) {
    let set = load("brief", backend);
    let action = Action::new("execute_code").with_arg("code", "print(1)");
    bencher.bench(|| black_box(set.decide(black_box(&action))));
}

/// A condition over `args` (CEL / Cedar `when` / Rego body).
#[divan::bench(args = BACKENDS)]
fn condition_allow(bencher: Bencher, backend: &str) {
    let set = load("conditions", backend);
    let action = Action::new("payment")
        .with_arg("amount", 10)
        .with_arg("to", "acme");
    bencher.bench(|| black_box(set.decide(black_box(&action))));
}

/// Require approval, with a plain allow that also applies.
#[divan::bench(args = BACKENDS)]
fn approval(bencher: Bencher, backend: &str) {
    let set = load("approvals", backend);
    let action = Action::new("tool_call").with_tool("shell");
    bencher.bench(|| black_box(set.decide(black_box(&action))));
}
