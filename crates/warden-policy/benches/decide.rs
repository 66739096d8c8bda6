//! Decision latency of the YAML engine: one rule, 100 and 1,000 rules, with and without a
//! CEL condition, single-threaded and on two threads.
//!
//! Run: `cargo bench -p warden-policy --bench decide`

use divan::{Bencher, black_box};
use warden_core::Action;
use warden_policy::PolicySet;

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

/// `n` rules: nine in ten name an exact action, one in ten a `prefix.*` glob; with `cel`,
/// every rule also has a `when` condition.
fn many_rules(n: usize, cel: bool) -> PolicySet {
    let mut text = String::from("rules:\n");
    for i in 0..n {
        let action = if (i + 1).is_multiple_of(10) {
            format!("ns{i}.*")
        } else {
            format!("action_{i}")
        };
        let effect = if i.is_multiple_of(3) { "deny" } else { "allow" };
        text.push_str(&format!("  - effect: {effect}\n    action: \"{action}\"\n"));
        if cel {
            text.push_str(&format!(
                "    when: \"args.n > {i} && context.env == 'prod'\"\n"
            ));
        }
    }
    PolicySet::from_yaml("bench.yaml", &text).expect("bench policy compiles")
}

/// An action that reaches the rule in the middle of the set (an allow rule).
fn middle_action(n: usize) -> Action {
    let mut i = n / 2;
    while i.is_multiple_of(3) || (i + 1).is_multiple_of(10) {
        i += 1;
    }
    Action::new(format!("action_{i}"))
        .with_arg("n", 1_000_000)
        .with_context("env", "prod")
}

#[divan::bench]
fn one_rule_deny(b: Bencher) {
    let set = PolicySet::from_yaml(
        "one.yaml",
        "rules:\n  - action: execute_code\n    allow: false\n",
    )
    .unwrap();
    let a = Action::new("execute_code");
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench]
fn one_rule_cel(b: Bencher) {
    let set = PolicySet::from_yaml(
        "one.yaml",
        "rules:\n  - action: pay\n    allow: true\n    when: \"args.amount <= 100\"\n",
    )
    .unwrap();
    let a = Action::new("pay").with_arg("amount", 50);
    b.bench(|| black_box(set.decide(black_box(&a))));
}

/// A condition outside the natively evaluated shapes runs in the CEL interpreter.
#[divan::bench]
fn one_rule_cel_interpreted(b: Bencher) {
    let set = PolicySet::from_yaml(
        "one.yaml",
        "rules:\n  - action: pay\n    allow: true\n    when: \"size(args.to) > 2\"\n",
    )
    .unwrap();
    let a = Action::new("pay").with_arg("to", "acme");
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench(args = ["allow_get", "deny_post", "deny_execute_code", "default_deny"])]
fn brief_policy(b: Bencher, case: &str) {
    let set = PolicySet::from_yaml("brief.yaml", BRIEF).unwrap();
    let http = |m: &str| {
        Action::new("http_request")
            .with_arg("url", "https://api.github.com/repos/rust-lang/rust")
            .with_arg("method", m)
    };
    let a = match case {
        "allow_get" => http("GET"),
        "deny_post" => http("POST"),
        "deny_execute_code" => Action::new("execute_code"),
        _ => Action::new("send_email"),
    };
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench(args = [1, 100, 1000])]
fn rules_without_cel(b: Bencher, n: usize) {
    let set = many_rules(n, false);
    let a = middle_action(n);
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench(args = [1, 100, 1000])]
fn rules_with_cel(b: Bencher, n: usize) {
    let set = many_rules(n, true);
    let a = middle_action(n);
    b.bench(|| black_box(set.decide(black_box(&a))));
}

/// Two threads deciding at once on one shared set: per-thread time per decision.
#[divan::bench(threads = [2], args = [1, 1000])]
fn shared_set_two_threads(b: Bencher, n: usize) {
    let set = many_rules(n, false);
    let a = middle_action(n);
    b.bench(|| black_box(set.decide(black_box(&a))));
}
