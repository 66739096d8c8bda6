//! Every command in the README and in `docs/` runs as written. The walker reads each
//! ```` ```console ```` block, runs its `$ ` lines in order in one shell (so a server started
//! with `&` serves the `curl` that follows), in a scratch directory that sees the repository's
//! `examples/`, `crates/`, `docs/` and `tests/`, with `warden` on `PATH` as the binary under
//! test (`cargo run -q -p warden-cli --` is read as `warden`). Then it holds the output to
//! the doc: each line the doc shows under a command must appear in what the command printed,
//! with numbers, hashes and spacing taken as equal (timings and timestamps differ per run).
//! Lines the doc elides (`...`, `…`) and blocks other than `console` (file contents, JSON,
//! synopses in `text`) are not run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::root;

/// One `$ ` command and the output the doc shows under it.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn steps(markdown: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut continuing = false;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_console = !in_console && trimmed == "```console";
            continuing = false;
            continue;
        }
        if !in_console {
            continue;
        }
        if continuing {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: i + 1,
                command: cmd.to_string(),
                expected: Vec::new(),
            });
            continuing = cmd.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_string());
        }
    }
    steps
}

/// Numbers, hex strings and runs of spaces made equal, so timings and hashes compare.
fn normal(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_hexdigit()
            && (c.is_ascii_digit() || chars.peek().is_some_and(char::is_ascii_hexdigit))
        {
            let mut word = String::from(c);
            while let Some(&n) = chars.peek() {
                if n.is_ascii_hexdigit() || n == '.' && word.chars().all(|w| w.is_ascii_digit()) {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if word.chars().any(|w| w.is_ascii_digit()) {
                out.push('#');
            } else {
                out.push_str(&word);
            }
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// A scratch directory that sees the repository's files, and a `bin/` holding `warden`.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = root();
    for entry in ["examples", "crates", "docs", "tests", "bench", "scripts"] {
        std::os::unix::fs::symlink(root.join(entry), dir.path().join(entry)).unwrap();
    }
    let bin = dir.path().join(".bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warden"), bin.join("warden")).unwrap();
    (dir, bin)
}

const MARK: &str = "@@warden-docs-step@@";

/// Run a doc's steps in one shell; returns each step's output.
fn run(doc: &Path, steps: &[Step]) -> Vec<String> {
    let (dir, bin) = scratch();
    let mut script = String::from("exec 2>&1\n");
    for (i, s) in steps.iter().enumerate() {
        let command = s.command.replace("cargo run -q -p warden-cli --", "warden");
        script.push_str(&format!("printf '\\n{MARK} {i}\\n'\n"));
        match command.trim_end().strip_suffix('&') {
            // A server started in the background: its first output is this step's, and the
            // next step waits (bounded) until it has printed the last line the doc shows
            // under it (its address), or anything at all if the doc shows nothing. A server
            // may print a line about detection first, so "said something" is not yet
            // "listening".
            Some(bg) => {
                let ready = match s.expected.iter().rev().find(|l| !l.trim().is_empty()) {
                    Some(line) => format!("grep -qF -- '{}' .bg{i}", line.replace('\'', "'\\''")),
                    None => format!("[ -s .bg{i} ]"),
                };
                script.push_str(&format!(
                    "{bg} > .bg{i} 2>&1 &\nfor _ in $(seq 300); do {ready} && break; sleep 0.1; done; cat .bg{i}\n"
                ))
            }
            None => script.push_str(&format!("{command}\n")),
        }
    }
    script.push_str(&format!(
        "printf '\\n{MARK} end\\n'\nkill $(jobs -p) 2>/dev/null; wait 2>/dev/null; true\n"
    ));
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        root().join("tests/peers/node_modules/.bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("timeout")
        .args(["120", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut outputs = vec![String::new(); steps.len()];
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            current = rest.trim().parse().ok();
            continue;
        }
        if let Some(i) = current {
            outputs[i].push_str(line);
            outputs[i].push('\n');
        }
    }
    assert!(
        text.contains(&format!("{MARK} end")),
        "{}: the walk did not finish (timeout?):\n{text}",
        doc.display()
    );
    outputs
}

fn check(doc: &str) -> Vec<String> {
    let path = root().join(doc);
    let markdown = std::fs::read_to_string(&path).unwrap();
    let steps = steps(&markdown);
    let outputs = run(&path, &steps);
    let mut problems = Vec::new();
    for (step, output) in steps.iter().zip(&outputs) {
        let got = normal(output);
        for bad in [
            "unexpected argument",
            "unrecognized subcommand",
            "command not found",
            "panicked",
        ] {
            if output.contains(bad) {
                problems.push(format!(
                    "{doc}:{}: `{}` printed {bad:?}:\n{output}",
                    step.line, step.command
                ));
            }
        }
        for want in &step.expected {
            let w = normal(want);
            if w.is_empty() || w == "..." || w.contains('…') {
                continue;
            }
            if !got.contains(&w) {
                problems.push(format!(
                    "{doc}:{}: `{}`\n  the doc shows: {want}\n  it printed:\n{output}",
                    step.line, step.command
                ));
                break;
            }
        }
    }
    problems
}

/// One test for all documents, walked one after another: several of them start
/// `warden serve` on the documented port 8181.
#[test]
fn every_documented_command_runs_as_written() {
    let mut problems = Vec::new();
    for doc in DOCS {
        problems.extend(check(doc));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The documents a newcomer follows.
const DOCS: &[&str] = &[
    "README.md",
    "docs/http.md",
    "docs/claude-code.md",
    "docs/mcp.md",
    "docs/audit.md",
    "docs/policy.md",
    "docs/identity.md",
    "docs/runtime.md",
    "docs/sandbox.md",
    "docs/sagas.md",
    "docs/approvals.md",
    "docs/dashboard.md",
    "docs/memory.md",
    "docs/model.md",
];

#[test]
fn the_walker_reads_steps_and_compares_loosely() {
    let s = steps("x\n```console\n$ a \\\n  b\nout 12 ns\n$ c\n```\n```sh\n$ not run\n```\n");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].command, "a \\\n  b");
    assert_eq!(s[0].expected, ["out 12 ns"]);
    assert_eq!(
        normal("p50 181 ns,  seq 1..=3 deadbeef00"),
        normal("p50 9 ns, seq 2..=7 0123abcd99")
    );
    assert_ne!(normal("allow: x"), normal("deny: x"));
}

/// docs/owasp.md: every risk row names at least one test, and every test it names exists in
/// the file it names (a renamed or deleted test must not leave the page claiming it).
#[test]
fn every_owasp_row_names_tests_that_exist() {
    let page = std::fs::read_to_string(root().join("docs/owasp.md")).unwrap();
    let mut rows = 0;
    let mut missing = Vec::new();
    for line in page
        .lines()
        .filter(|l| l.starts_with("| **ASI") || l.starts_with("| **MCP"))
    {
        rows += 1;
        let mut named = 0;
        // Cells name tests as: `path/to/file.rs` `test_a`, `test_b`; `other/file.py` `test_c`
        // (A file named in one cell does not carry into the next.)
        for cell in line.split(" | ") {
            let ticks: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
            let mut file: Option<String> = None;
            for t in ticks {
                if t.ends_with(".rs") || t.ends_with(".py") {
                    file = std::fs::read_to_string(root().join(t)).ok();
                    if file.is_none() {
                        missing.push(format!("{t} (file)"));
                    }
                } else if let Some(src) = &file
                    && t.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && t.contains('_')
                {
                    named += 1;
                    if !src.contains(&format!("fn {t}(")) && !src.contains(&format!("def {t}(")) {
                        missing.push(t.to_string());
                    }
                }
            }
        }
        assert!(
            named > 0 || line.contains("tamper.rs"),
            "a row names no test: {line}"
        );
    }
    assert_eq!(rows, 20, "ten ASI rows and ten MCP rows");
    assert!(
        missing.is_empty(),
        "docs/owasp.md names tests that do not exist: {missing:?}"
    );
}
