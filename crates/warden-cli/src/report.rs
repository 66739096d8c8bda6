//! Printing decisions and errors for people (and JSON for programs).

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use warden_core::Decision;
use warden_policy::LoadError;

/// Print every problem of a failed load to stderr: one greppable line each, then snippets.
pub fn load_error(e: &LoadError) {
    let tty = std::io::stderr().is_terminal();
    let theme = if tty {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme);
    for problem in e.problems() {
        eprintln!("error: {problem}");
        let mut out = String::new();
        if problem.position().offset > 0 || problem.position().len > 0 {
            let report = problem.report();
            if handler.render_report(&mut out, report.as_ref()).is_ok() {
                eprintln!("{out}");
            }
        }
    }
    let n = e.problems().len();
    eprintln!(
        "{n} problem{} found; nothing was decided",
        if n == 1 { "" } else { "s" }
    );
}

/// A one-line error for bad usage or input.
pub fn usage_error(message: &str) {
    eprintln!("error: {message}");
}

/// A decision for people: the verdict, then the reason and the deciding rule.
pub fn decision_text(d: &Decision) -> String {
    let mut s = format!("{}: {}", d.verdict, d.reason);
    if let (Some(p), Some(r)) = (&d.policy, &d.rule) {
        s.push_str(&format!("\n  rule: {r} (policy {p})"));
    }
    if !d.obligations.is_empty() {
        let list: Vec<&str> = d.obligations.iter().map(|o| &**o).collect();
        s.push_str(&format!("\n  obligations: {}", list.join(", ")));
    }
    s
}

/// Pretty JSON, or a deny-shaped error object if serialization ever failed.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize output: {e}\"}}"))
}
