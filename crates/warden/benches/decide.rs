//! The whole decision path, side by side: a bare `Warden` (policy only) and one built the
//! way every door builds it (self-protection on: the policy file and the binary protected),
//! on the brief's actions and on a shell command that names files.
//!
//! Run: `cargo bench -p warden --bench decide`.

use std::path::PathBuf;

use warden::{Action, PolicySet, Warden};

fn main() {
    divan::main();
}

fn brief() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/brief.yaml")
}

fn bare() -> Warden {
    Warden::new(PolicySet::load(&[brief()]).unwrap())
}

fn door() -> Warden {
    Warden::builder()
        .policy(brief())
        .protect_binary()
        .build()
        .unwrap()
}

fn actions() -> [(&'static str, Action); 3] {
    [
        (
            "http_request",
            Action::new("http_request")
                .with_arg("url", "https://api.github.com/repos/rust-lang/rust")
                .with_arg("method", "GET"),
        ),
        (
            "execute_code",
            Action::new("execute_code").with_arg("code", "print(1)"),
        ),
        (
            "shell.exec",
            Action::new("shell.exec")
                .with_arg("command", "cargo test --workspace && ls -la src/ target/")
                .with_context("cwd", "/work/project"),
        ),
    ]
}

#[divan::bench(args = ["http_request", "execute_code", "shell.exec"])]
fn bare_warden(bencher: divan::Bencher, which: &str) {
    let w = bare();
    let a = actions().into_iter().find(|(n, _)| *n == which).unwrap().1;
    bencher.bench(|| w.decide(divan::black_box(&a)));
}

#[divan::bench(args = ["http_request", "execute_code", "shell.exec"])]
fn as_the_doors_build_it(bencher: divan::Bencher, which: &str) {
    let w = door();
    let a = actions().into_iter().find(|(n, _)| *n == which).unwrap().1;
    bencher.bench(|| w.decide(divan::black_box(&a)));
}

/// Self-protection alone, on the same actions.
#[divan::bench(args = ["http_request", "execute_code", "shell.exec"])]
fn protection_check_alone(bencher: divan::Bencher, which: &str) {
    let w = door();
    let a = actions().into_iter().find(|(n, _)| *n == which).unwrap().1;
    bencher.bench(|| w.protection().check(divan::black_box(&a)));
}
