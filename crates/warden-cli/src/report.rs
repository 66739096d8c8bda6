//! Output, in one place: the global `--color` and `--log-level` flags, decisions for people
//! (and JSON for programs), and errors — printed once, by `main`, never by a library.
//!
//! Nothing here panics on a closed pipe: `warden check … | head -1` must still exit with the
//! verdict, and a hook whose reader went away must still exit with its code.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::OnceLock;

use clap::{Args, ValueEnum};
use miette::{GraphicalReportHandler, GraphicalTheme};
use warden::{Decision, LoadError};

use crate::error::Error;

/// `println!` that ignores a closed stdout instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr instead of panicking.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that ignores a closed stderr instead of panicking.
macro_rules! errprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// Flags every command takes.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Colour in diagnostics and logs: `auto` (when stderr is a terminal and NO_COLOR is
    /// unset), `always` or `never`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    /// How much Warden logs to stderr: error, warn, info, debug or trace. `RUST_LOG`, when
    /// set, overrides it (e.g. `RUST_LOG=warden_server=debug` for the request log).
    #[arg(long, value_name = "LEVEL", default_value = "info", global = true)]
    pub log_level: tracing::Level,
}

/// `--color` values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorWhen {
    /// When stderr is a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

static COLOR: OnceLock<bool> = OnceLock::new();

/// Whether stderr gets colour (decided once, from `--color`, `NO_COLOR` and the terminal).
fn color() -> bool {
    *COLOR.get().unwrap_or(&false)
}

/// Decide colour and install the one log subscriber (libraries report through `tracing`).
pub fn init(global: &GlobalArgs) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let on = match global.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => !no_color && std::io::stderr().is_terminal(),
    };
    let _ = COLOR.set(on);
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(global.log_level.as_str().to_ascii_lowercase())
    });
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(on)
        .without_time()
        .with_target(false)
        .try_init();
}

/// How `main` prints a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `error: …` lines (and policy snippets) on stderr.
    Text,
    /// A JSON object on stdout: `{"error": …, "problems": [...]}`, plus the text on stderr.
    Json,
    /// Like `Json`, with `"verdict": "deny"`: for commands whose JSON answer is a decision,
    /// so a program that reads only `verdict` can never read an error as permission.
    JsonDeny,
}

/// Print a failed command's error.
pub fn error(e: &Error, style: ErrorStyle) {
    match e {
        Error::Policy(load) => load_error(load),
        other => errln!("error: {}", visible(&other.to_string())),
    }
    if style == ErrorStyle::Text {
        return;
    }
    let mut object = serde_json::json!({ "error": e.to_string() });
    if let Error::Policy(load) = e {
        object["problems"] = problems_json(load);
    }
    if style == ErrorStyle::JsonDeny {
        object["verdict"] = "deny".into();
    }
    outln!("{}", json(&object));
}

/// Every problem of a failed load as JSON objects.
pub fn problems_json(e: &LoadError) -> serde_json::Value {
    e.problems()
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": p.file().display().to_string(),
                "line": p.position().line,
                "column": p.position().column,
                "message": p.message(),
                "hint": p.hint(),
            })
        })
        .collect()
}

/// Print every problem of a failed load to stderr: one greppable line each, then snippets.
pub fn load_error(e: &LoadError) {
    let theme = if color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme);
    for problem in e.problems() {
        errln!("error: {}", problem.one_line());
        let mut out = String::new();
        if problem.is_located() && handler.render_report(&mut out, &Snippet(problem)).is_ok() {
            errln!("{out}");
        }
    }
    let n = e.problems().len();
    errln!(
        "{n} problem{} found; nothing was decided",
        if n == 1 { "" } else { "s" }
    );
}

/// A problem's snippet under its `error:` line: the message without the position (the line
/// above says it), the source with the spot marked, and the hint.
#[derive(Debug)]
struct Snippet<'a>(&'a warden_policy::Problem);

impl std::fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for Snippet<'_> {}

impl miette::Diagnostic for Snippet<'_> {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.help()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }
}

/// A decision for people: the verdict, then the reason and the deciding rule.
pub fn decision_text(d: &Decision) -> String {
    let mut s = format!("{}: {}", d.verdict, visible(&d.reason));
    if let (Some(p), Some(r)) = (&d.policy, &d.rule) {
        let _ = write!(s, "\n  rule: {} (policy {})", visible(r), visible(p));
    }
    if !d.obligations.is_empty() {
        let list: Vec<String> = d.obligations.iter().map(|o| visible(o)).collect();
        let _ = write!(s, "\n  obligations: {}", list.join(", "));
    }
    if let Some(id) = &d.approval_id {
        let _ = write!(s, "\n  approval: {}", visible(id));
    }
    s
}

/// A time in nanoseconds since the epoch, as people read it (RFC 3339, UTC).
pub fn when(ns: u64) -> String {
    warden_audit::Timestamp::from_unix_nanos(i64::try_from(ns).unwrap_or(i64::MAX)).to_string()
}

/// Who answers for the audit record: `--by`, else `$USER`, else `operator`.
pub fn operator_name(by: Option<&str>) -> String {
    by.map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into())
}

/// Rows as columns padded to their widest cell (the last column is not padded).
pub fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        outln!("{}", line.trim_end());
    }
}

/// Pretty JSON, or a deny-shaped error object if serialization ever failed.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| {
        serde_json::json!({"error": format!("cannot serialize output: {e}"), "verdict": "deny"})
            .to_string()
    })
}

/// Text made safe to print for a person: control characters, invisible (zero-width) and
/// bidirectional-override characters are shown as `\u{…}` escapes, so `execute_code\u{0}`
/// never looks like `execute_code` and a reason cannot rewrite the terminal.
pub fn visible(text: &str) -> String {
    if !text.chars().any(hidden) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters a person cannot see for what they are.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM/RLM
            | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}'              // zero-width no-break space (BOM)
            | '\u{00ad}'              // soft hyphen
            | '\u{180e}'              // Mongolian vowel separator
            | '\u{e0000}'..='\u{e007f}' // tag characters
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_escaped() {
        assert_eq!(visible("execute_code"), "execute_code");
        assert_eq!(visible("execute_code\0"), "execute_code\\u{0}");
        assert_eq!(visible("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(visible("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(visible("line\nbreak"), "line\\u{a}break");
        assert_eq!(visible("ünïcödé ok"), "ünïcödé ok");
    }
}
