//! What reading an action costs: a 100-character shell command judged by a plain rule (text
//! only), by `commands:` + `intents:` rules (parsed and labelled), and the parse alone.
//!
//! Run: `cargo bench -p warden-policy --bench understand`

use divan::{Bencher, black_box};
use warden_core::Action;
use warden_policy::PolicySet;

fn main() {
    divan::main();
}

/// 100 characters, the shape of what Claude Code's Bash tool sends.
const LINE: &str = "cd /home/dev/project && git status --short && cargo test -p warden-policy --lib -q 2>&1 | tail -n 20";

fn action() -> Action {
    Action::new("shell.exec")
        .with_arg("command", LINE)
        .with_context("cwd", "/home/dev/project")
}

const PLAIN: &str = r#"rules:
  - action: shell.exec
    effect: deny
    when: "args.command.startsWith('rm ')"
  - action: shell.exec
    effect: allow
"#;

const PARSED: &str = r#"rules:
  - action: shell.exec
    effect: deny
    intents: [destructive, exfiltration, remote_code, credential_access]
  - action: shell.exec
    effect: deny
    commands: [rm, dd, mkfs]
  - action: shell.exec
    effect: allow
    commands: [cd, git, cargo, tail, ls, grep, head]
"#;

#[divan::bench]
fn plain_rule_text_only(b: Bencher) {
    let set = PolicySet::from_yaml("plain.yaml", PLAIN).unwrap();
    let a = action();
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench]
fn commands_and_intents_parsed(b: Bencher) {
    let set = PolicySet::from_yaml("parsed.yaml", PARSED).unwrap();
    let a = action();
    assert_eq!(set.decide(&a).verdict, warden_core::Verdict::Allow);
    b.bench(|| black_box(set.decide(black_box(&a))));
}

#[divan::bench]
fn parse_only(b: Bencher) {
    b.bench(|| black_box(warden_policy::understand::shell::parse(black_box(LINE))));
}

#[divan::bench]
fn understand_everything(b: Bencher) {
    let a = action();
    b.bench(|| black_box(warden_policy::understand::understand(black_box(&a))));
}

/// A line with quotes goes through the bash grammar (no fast path).
const QUOTED: &str = "git commit -m \"fix: handle empty input\" && cargo test -p warden-policy 2>&1 | grep -v '^ok' | head";

#[divan::bench]
fn commands_and_intents_parsed_quoted_line(b: Bencher) {
    let set = PolicySet::from_yaml("parsed.yaml", PARSED).unwrap();
    let a = Action::new("shell.exec")
        .with_arg("command", QUOTED)
        .with_context("cwd", "/home/dev/project");
    b.bench(|| black_box(set.decide(black_box(&a))));
}
