//! `warden audit verify | query | show | tail | export`: prove a log intact, find and show
//! its records, follow it live, export it. Thin: parsing and printing here, everything else
//! in `warden-audit`.
//!
//! Everything printed for people passes through [`report::visible`], so a record whose action
//! is `execute_code\0` or whose reason carries a bidi override can never look like another.
//!
//! `verify` prints the log's head as `SEQ:HASH`; given back later with `--expect-head`, it
//! catches a log cut back to an earlier signed end, which nothing in the file shows.
//!
//! Exit codes: `verify` 0 intact · 1 tampered or not anchored by the pinned key · 2 error;
//! `show` 0 · 1 when the record does not match its hash or link · 2 error; `export` 0 · 1 the
//! log failed verification (nothing exported) · 2 error; `query` and `tail` 0 · 2 error.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use warden_audit::{
    AuditError, Filter, KnownHead, LogReader, Record, TamperKind, Timestamp, VerifyOptions,
    VerifyReport, VerifySummary, VerifyingKey, export_jsonl_through, parse_verifying_key, verify,
    verify_with,
};
use warden_core::Verdict;

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::visible;

/// Read, verify and export a tamper-evident audit log.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every record's hash, the chain, the signed checkpoints and the end of the log.
    ///
    /// Exit 0 intact, 1 tampered (the first bad record is named) or, with --verify-key, not
    /// anchored by that key; 2 error.
    Verify {
        /// The audit log (SQLite file).
        db: PathBuf,
        #[command(flatten)]
        key: VerifyKeyArgs,
        /// A record the log must still hold, as SEQ:HASH: the `head` an earlier verify
        /// printed, or a checkpoint copied elsewhere. Catches a log cut back to an earlier,
        /// consistent, signed end, which nothing in the file shows.
        #[arg(long, value_name = "SEQ:HASH", value_parser = parse_known_head)]
        expect_head: Option<KnownHead>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show matching records, oldest first (by default the last 100).
    Query(QueryArgs),
    /// Show one record in full: every field, its arguments and context, its hash and
    /// whether it checks out. Exit 1 when it does not match its hash or link.
    Show {
        /// The audit log (SQLite file).
        db: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the last records and, with --follow, each new one as any process commits it.
    Tail {
        /// The audit log (SQLite file).
        db: PathBuf,
        /// How many of the last records to show first.
        #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
        lines: usize,
        /// Keep watching for new records (Ctrl-C or a closed pipe ends it).
        #[arg(short, long)]
        follow: bool,
        /// How often to look for new records with --follow, in milliseconds (50 to 60000).
        #[arg(long, value_name = "MS", default_value_t = 500,
              value_parser = clap::value_parser!(u64).range(50..=60_000))]
        interval: u64,
        /// One JSON object per line instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Verify the log, then write its records, one JSON object per line, streaming.
    ///
    /// Exit 1 (and nothing exported) when the log fails verification, unless --no-verify.
    Export {
        /// The audit log (SQLite file).
        db: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Export without verifying first (for a log already known to be damaged).
        #[arg(long, conflicts_with = "verify_key")]
        no_verify: bool,
        #[command(flatten)]
        key: VerifyKeyArgs,
    },
}

/// The public key a verification pins.
#[derive(Args, Debug, Clone, Default)]
pub struct VerifyKeyArgs {
    /// The node's public key: 64 hex digits or a file holding them (the `.pub` beside the
    /// signing key, e.g. `warden.db.key.pub`). Every checkpoint must be signed by it, and one
    /// must cover the last record. Without it, a log rewritten and re-signed with another key
    /// would pass.
    #[arg(long = "verify-key", alias = "key", value_name = "PUBLIC_KEY")]
    pub verify_key: Option<String>,
}

impl VerifyKeyArgs {
    fn parse(&self) -> Result<Option<VerifyingKey>> {
        self.verify_key
            .as_deref()
            .map(parse_verifying_key)
            .transpose()
            .map_err(|e| Error::msg(format!("--verify-key: {e}")))
    }
}

/// Flags of `warden audit query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The audit log (SQLite file).
    db: PathBuf,
    /// Only this agent (a glob: `*` any text, `?` one character).
    #[arg(long, value_name = "GLOB")]
    agent: Option<String>,
    /// Only this action, e.g. `http_request`, or a glob such as 'mcp.*'.
    #[arg(long, value_name = "GLOB")]
    action: Option<String>,
    /// Only this tool (a glob).
    #[arg(long, value_name = "GLOB")]
    tool: Option<String>,
    /// Only records decided by this rule id (a glob), e.g. `rules[0]` or 'no-*'.
    #[arg(long, value_name = "GLOB")]
    rule: Option<String>,
    /// Only this verdict: allow, deny or require_approval.
    #[arg(long)]
    verdict: Option<Verdict>,
    /// Only records at or after this time (RFC 3339, e.g. 2026-11-27T14:00:00Z, or a date).
    #[arg(long, value_name = "RFC3339")]
    since: Option<Timestamp>,
    /// Only records before this time (RFC 3339 or a date).
    #[arg(long, value_name = "RFC3339")]
    until: Option<Timestamp>,
    /// Show the last N matching records.
    #[arg(long, value_name = "N", default_value_t = 100, conflicts_with = "all")]
    limit: usize,
    /// Show every matching record.
    #[arg(long)]
    all: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--format` values of `warden audit export`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines: one record per line, as in `docs/audit.md`.
    Jsonl,
}

/// Run an audit command.
pub fn run(cmd: AuditCommand) -> Result<Exit> {
    match cmd {
        AuditCommand::Verify {
            db,
            key,
            expect_head,
            json,
        } => run_verify(&db, &key, expect_head, json),
        AuditCommand::Query(args) => run_query(&args),
        AuditCommand::Show { db, seq, json } => run_show(&db, seq, json),
        AuditCommand::Tail {
            db,
            lines,
            follow,
            interval,
            json,
        } => run_tail(
            &db,
            lines,
            follow.then(|| Duration::from_millis(interval)),
            json,
        ),
        AuditCommand::Export {
            db,
            format,
            output,
            no_verify,
            key,
        } => run_export(&db, format, output.as_deref(), no_verify, &key),
    }
}

/// Write to standard output; a closed pipe (`| head`) ends the command quietly.
fn print(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut out = io::stdout().lock();
    match f(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::msg(format!("cannot write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

fn parse_known_head(s: &str) -> std::result::Result<KnownHead, String> {
    s.parse()
        .map_err(|e: warden_audit::KnownHeadError| e.to_string())
}

fn run_verify(
    db: &Path,
    key: &VerifyKeyArgs,
    expect_head: Option<KnownHead>,
    json: bool,
) -> Result<Exit> {
    let pinned = key.parse()?;
    let mut options = VerifyOptions::default();
    options.pinned_key = pinned;
    options.expect_head = expect_head;
    let mut progress = Progress::new("verifying");
    let report = verify_with(db, &options, |done, total| progress.update(done, total));
    progress.finish();
    let exit = match &report {
        VerifyReport::Intact(_) => Exit::Ok,
        VerifyReport::Tampered { .. } => Exit::Failed,
        VerifyReport::Error(_) => Exit::Error,
    };
    if json {
        let value = match &report {
            VerifyReport::Intact(summary) => {
                serde_json::json!({"status": "intact", "summary": summary})
            }
            VerifyReport::Tampered { summary, tampering } => serde_json::json!({
                "status": if tampering.kind == TamperKind::Unanchored { "unanchored" } else { "tampered" },
                "tampering": tampering, "summary": summary
            }),
            VerifyReport::Error(e) => {
                serde_json::json!({"status": "error", "error": e.to_string()})
            }
        };
        print(|out| writeln!(out, "{value:#}"))?;
        return Ok(exit);
    }
    if let VerifyReport::Error(e) = report {
        return Err(Error::Audit(e));
    }
    let name = visible(&db.display().to_string());
    print(|out| {
        match &report {
            VerifyReport::Tampered { summary, tampering } => {
                let what = if tampering.kind == TamperKind::Unanchored {
                    "NOT ANCHORED by the pinned key"
                } else {
                    "TAMPERED"
                };
                writeln!(
                    out,
                    "{name}: {what} at record {} ({}): {}",
                    tampering.seq,
                    tampering.kind,
                    visible(&tampering.detail)
                )?;
                writeln!(out, "checked before the finding:")?;
                write_summary(out, summary)?;
            }
            VerifyReport::Intact(summary) => {
                writeln!(out, "{name}: intact")?;
                write_summary(out, summary)?;
            }
            VerifyReport::Error(_) => {}
        }
        if pinned.is_none()
            && report
                .summary()
                .is_some_and(|s| s.last_checkpoint.is_some())
        {
            writeln!(
                out,
                "note: no --verify-key given: signatures were checked against the keys stored \
                 in the log; pin the node's public key to rule out a rewritten, re-signed log"
            )?;
        }
        Ok(())
    })?;
    Ok(exit)
}

fn write_summary(out: &mut dyn Write, s: &VerifySummary) -> io::Result<()> {
    match (s.first_seq, s.last_seq) {
        (Some(a), Some(b)) => writeln!(out, "  records:     {} (seq {a}..={b})", s.records)?,
        _ => writeln!(out, "  records:     none")?,
    }
    if let (Some(seq), Some(head)) = (s.last_seq, &s.head_hash) {
        writeln!(out, "  head:        {seq}:{head}")?;
    }
    match s.last_checkpoint {
        Some(cp) => writeln!(
            out,
            "  checkpoints: {} valid, last at seq {cp}, signed by key {}",
            s.checkpoints,
            visible(&s.keys.join(", "))
        )?,
        None => writeln!(
            out,
            "  checkpoints: none (no record is anchored by a signature)"
        )?,
    }
    if s.unanchored > 0 {
        writeln!(
            out,
            "  unanchored:  {} records after the last checkpoint (chain intact, not yet signed)",
            s.unanchored
        )?;
    }
    if s.gap_count > 0 {
        writeln!(
            out,
            "  gaps:        {} runs of sequence numbers never committed (format 1 log):",
            s.gap_count
        )?;
        for g in s.gaps.iter().take(20) {
            writeln!(
                out,
                "    {}..={} ({} numbers)",
                g.first_seq,
                g.last_seq,
                g.count()
            )?;
        }
        if s.gaps.len() > 20 {
            writeln!(out, "    … {} more", s.gap_count - 20)?;
        }
    }
    for i in &s.incidents {
        writeln!(
            out,
            "  incident:    {} {} after seq {} ({} lost): {}",
            i.at,
            visible(&i.kind),
            i.after_seq,
            i.lost,
            visible(&i.detail)
        )?;
    }
    Ok(())
}

fn run_query(a: &QueryArgs) -> Result<Exit> {
    let limit = (!a.all).then_some(a.limit);
    let filter = Filter {
        agent: a.agent.clone(),
        action: a.action.clone(),
        tool: a.tool.clone(),
        rule: a.rule.clone(),
        verdict: a.verdict,
        since: a.since,
        until: a.until,
        // One more than shown, to know whether the limit cut anything.
        limit: limit.map(|l| l.saturating_add(1)),
    };
    let mut records = LogReader::open(&a.db)?.query(&filter)?;
    let cut = limit.is_some_and(|l| records.len() > l);
    if cut {
        records.remove(0);
    }
    if a.json {
        print(|out| {
            serde_json::to_writer_pretty(&mut *out, &records).map_err(io::Error::from)?;
            writeln!(out)
        })?;
    } else if records.is_empty() {
        errln!("no records match");
    } else {
        print(|out| write_table(out, &records))?;
    }
    if cut {
        errln!(
            "showing the last {} matching records; more match (use --limit N or --all)",
            records.len()
        );
    }
    Ok(Exit::Ok)
}

/// What a record was about, in one cell: the URL of an HTTP request, the command of a shell
/// action, the path of a file action, the server and tool of an MCP call; else the resource
/// or the tool.
fn target(r: &Record) -> String {
    let arg = |key: &str| {
        r.args
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let from_args = match r.action.as_str() {
        "http_request" => arg("url"),
        a if a.starts_with("shell.") => arg("command"),
        a if a.starts_with("file.") => arg("path").or_else(|| arg("file_path")),
        a if a.starts_with("mcp.") => r.tool.as_ref().map(|tool| {
            let server = r
                .context
                .as_ref()
                .and_then(|c| c.get("server"))
                .and_then(Value::as_str);
            match server {
                Some(s) => format!("{s}/{tool}"),
                None => tool.clone(),
            }
        }),
        _ => None,
    };
    from_args
        .or_else(|| r.resource.clone())
        .or_else(|| r.tool.clone())
        .unwrap_or_default()
}

const COLUMNS: usize = 8;
const HEADERS: [&str; COLUMNS] = [
    "SEQ", "TIME", "AGENT", "VERDICT", "ACTION", "TARGET", "RULE", "REASON",
];
const MAX_WIDTH: [usize; COLUMNS] = [12, 30, 24, 16, 24, 48, 20, 60];
/// `tail` prints rows as they come, so its columns have fixed widths.
const TAIL_WIDTH: [usize; COLUMNS] = [8, 30, 16, 16, 20, 40, 12, 60];

/// A record's cells, every one made visible and cut to its column's width.
fn cells(r: &Record, max_width: [usize; COLUMNS]) -> [String; COLUMNS] {
    [
        r.seq.to_string(),
        r.ts.to_string(),
        r.agent.clone().unwrap_or_else(|| "-".into()),
        r.verdict.to_string(),
        r.action.clone(),
        target(r),
        r.rule.clone().unwrap_or_else(|| "-".into()),
        r.reason.clone(),
    ]
    .map(|cell| visible(&cell))
    .into_iter()
    .zip(max_width)
    .map(|(cell, max)| cut(&cell, max))
    .collect::<Vec<_>>()
    .try_into()
    .unwrap_or_else(|_| HEADERS.map(String::from))
}

/// One row, padded to `widths`.
fn write_row(
    out: &mut dyn Write,
    cells: &[String; COLUMNS],
    widths: &[usize; COLUMNS],
) -> io::Result<()> {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == COLUMNS {
            line.push_str(cell);
        } else {
            line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

/// A plain aligned table; long cells are cut so a row stays on one line.
fn write_table(out: &mut dyn Write, records: &[Record]) -> io::Result<()> {
    let rows: Vec<[String; COLUMNS]> = records.iter().map(|r| cells(r, MAX_WIDTH)).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    write_row(out, &HEADERS.map(String::from), &widths)?;
    for row in &rows {
        write_row(out, row, &widths)?;
    }
    Ok(())
}

/// `text` cut to `max` characters with an ellipsis.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn run_show(db: &Path, seq: u64, json: bool) -> Result<Exit> {
    let reader = LogReader::open(db)?;
    let Some(status) = reader.inspect(seq)? else {
        let last = reader.last_seq()?;
        return Err(Error::msg(format!(
            "{}: there is no record {seq} (the log holds records up to {last})",
            visible(&db.display().to_string())
        )));
    };
    let exit = if status.hash_ok && status.links_to_previous {
        Exit::Ok
    } else {
        Exit::Failed
    };
    if json {
        print(|out| writeln!(out, "{}", crate::report::json(&status)))?;
        return Ok(exit);
    }
    let r = &status.record;
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_string(), visible);
    // Line by line: the line breaks are the layout's; anything hidden inside is escaped.
    let pretty = |v: &Option<Value>, none: &str| match v {
        Some(v) => serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .lines()
            .map(visible)
            .collect::<Vec<_>>()
            .join("\n                  "),
        None => none.to_string(),
    };
    print(|out| {
        writeln!(out, "record {}", r.seq)?;
        writeln!(out, "  time:           {}", r.ts)?;
        writeln!(out, "  agent:          {}", opt(&r.agent))?;
        writeln!(out, "  action:         {}", visible(&r.action))?;
        writeln!(out, "  tool:           {}", opt(&r.tool))?;
        writeln!(out, "  resource:       {}", opt(&r.resource))?;
        let target = target(r);
        if !target.is_empty() {
            writeln!(out, "  target:         {}", visible(&target))?;
        }
        writeln!(out, "  verdict:        {}", r.verdict)?;
        writeln!(out, "  reason:         {}", visible(&r.reason))?;
        writeln!(out, "  policy:         {}", opt(&r.policy))?;
        writeln!(out, "  rule:           {}", opt(&r.rule))?;
        match r.policy_version {
            Some(v) => writeln!(out, "  policy version: {v}")?,
            None => writeln!(out, "  policy version: -")?,
        }
        writeln!(out, "  latency:        {} ns", r.latency_ns)?;
        writeln!(
            out,
            "  args:           {}",
            pretty(&r.args, "(redacted: only the digest is kept)")
        )?;
        writeln!(
            out,
            "  args digest:    {}",
            warden_audit::to_hex(&r.args_digest)
        )?;
        writeln!(out, "  context:        {}", pretty(&r.context, "-"))?;
        writeln!(
            out,
            "  prev hash:      {}",
            warden_audit::to_hex(&r.prev_hash)
        )?;
        writeln!(out, "  hash:           {}", warden_audit::to_hex(&r.hash))?;
        writeln!(
            out,
            "  hash check:     {}",
            if status.hash_ok {
                "ok: the fields hash to the stored hash"
            } else {
                "FAILED: the record does not match its hash (it was edited)"
            }
        )?;
        writeln!(
            out,
            "  link:           {}",
            if status.links_to_previous {
                "ok: it links to the record before it"
            } else {
                "BROKEN: it does not link to the record before it"
            }
        )?;
        match status.covered_by_checkpoint {
            Some(cp) => writeln!(
                out,
                "  anchored:       by signed checkpoint {cp} (run `warden audit verify` to check the chain up to it)"
            ),
            None => writeln!(
                out,
                "  anchored:       no: no signed checkpoint covers it yet"
            ),
        }
    })?;
    Ok(exit)
}

/// Most records read per look while following, so one look is bounded however fast writers
/// append; the rest come with the next look.
const FOLLOW_BATCH: usize = 1000;

fn run_tail(db: &Path, lines: usize, follow: Option<Duration>, json: bool) -> Result<Exit> {
    let reader = LogReader::open(db)?;
    let first = reader.query(&Filter {
        limit: Some(lines),
        ..Filter::default()
    })?;
    let mut last = match first.last() {
        Some(r) => r.seq,
        None => reader.last_seq()?,
    };
    let write = |out: &mut dyn Write, records: &[Record]| -> io::Result<()> {
        for r in records {
            if json {
                serde_json::to_writer(&mut *out, r).map_err(io::Error::from)?;
                writeln!(out)?;
            } else {
                write_row(out, &cells(r, TAIL_WIDTH), &TAIL_WIDTH)?;
            }
        }
        out.flush()
    };
    let mut out = io::stdout().lock();
    let closed = |e: io::Error| -> Result<Exit> {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(Exit::Ok)
        } else {
            Err(Error::msg(format!("cannot write to standard output: {e}")))
        }
    };
    if let Err(e) = write(&mut out, &first) {
        return closed(e);
    }
    let Some(interval) = follow else {
        return Ok(Exit::Ok);
    };
    loop {
        let new = reader.after(last, FOLLOW_BATCH)?;
        if let Some(r) = new.last() {
            last = r.seq;
        }
        if let Err(e) = write(&mut out, &new) {
            return closed(e);
        }
        if new.len() < FOLLOW_BATCH {
            std::thread::sleep(interval);
        }
    }
}

fn run_export(
    db: &Path,
    format: ExportFormat,
    output: Option<&Path>,
    no_verify: bool,
    key: &VerifyKeyArgs,
) -> Result<Exit> {
    let ExportFormat::Jsonl = format;
    let mut through = u64::MAX;
    if !no_verify {
        let pinned = key.parse()?;
        let mut progress = Progress::new("verifying");
        let report = verify(db, pinned, |d, t| progress.update(d, t));
        progress.finish();
        match report {
            VerifyReport::Intact(summary) => through = summary.last_seq.unwrap_or(0),
            VerifyReport::Tampered { tampering, .. } => {
                errln!(
                    "error: {}: the log failed verification at record {} ({}): {}; nothing was exported (export it anyway with --no-verify)",
                    visible(&db.display().to_string()),
                    tampering.seq,
                    tampering.kind,
                    visible(&tampering.detail)
                );
                return Ok(Exit::Failed);
            }
            VerifyReport::Error(e) => return Err(Error::Audit(e)),
        }
    }
    let mut progress = Progress::new("exporting");
    let result = match output {
        Some(path) => {
            let file = File::create(path).map_err(|e| {
                Error::msg(format!(
                    "{}: cannot create the export file: {e}",
                    path.display()
                ))
            })?;
            export_jsonl_through(db, file, through, |d, t| progress.update(d, t))
        }
        None => export_jsonl_through(db, io::stdout().lock(), through, |d, t| {
            progress.update(d, t)
        }),
    };
    progress.finish();
    match result {
        Ok(n) => {
            if let Some(path) = output {
                errln!("exported {n} records to {}", path.display());
            }
            Ok(Exit::Ok)
        }
        // The reader went away (`| head`): not an error worth a message.
        Err(AuditError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            Ok(Exit::Ok)
        }
        Err(e) => Err(Error::Audit(e)),
    }
}

/// A one-line progress indicator on stderr, only when stderr is a terminal (quiet when
/// piped or redirected, so logs and scripts see only the result).
struct Progress {
    label: &'static str,
    enabled: bool,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    fn new(label: &'static str) -> Self {
        Progress {
            label,
            enabled: io::stderr().is_terminal(),
            last: None,
            shown: false,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let pct = (done.min(total) * 100).checked_div(total).unwrap_or(100);
        errprint!("\r{}: {done}/{total} records ({pct}%)", self.label);
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.shown {
            // Clear the line so the result starts on a clean one.
            errprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use warden_audit::Timestamp;

    fn record(action: &str, args: Value, context: Option<Value>) -> Record {
        Record {
            seq: 1,
            ts: Timestamp::from_unix_nanos(0),
            agent: None,
            action: action.into(),
            tool: Some("t".into()),
            resource: Some("res".into()),
            verdict: Verdict::Deny,
            policy: None,
            rule: None,
            reason: "r".into(),
            args: Some(args),
            args_digest: [0; 32],
            context,
            latency_ns: 0,
            policy_version: None,
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn target_names_what_the_action_was_about() {
        let t = |a, args, ctx| target(&record(a, args, ctx));
        assert_eq!(
            t("http_request", json!({"url": "https://x/"}), None),
            "https://x/"
        );
        assert_eq!(
            t("shell.exec", json!({"command": "ls -la"}), None),
            "ls -la"
        );
        assert_eq!(
            t("file.write", json!({"path": "/etc/passwd"}), None),
            "/etc/passwd"
        );
        assert_eq!(
            t("mcp.tools/call", json!({}), Some(json!({"server": "fs"}))),
            "fs/t"
        );
        assert_eq!(t("other", json!({}), None), "res");
    }

    #[test]
    fn cells_hide_nothing_and_stay_short() {
        let mut r = record("execute_code\0", json!({}), None);
        r.reason = "ok\u{202e}txt".into();
        let c = cells(&r, MAX_WIDTH);
        assert_eq!(c[4], "execute_code\\u{0}");
        assert_eq!(c[7], "ok\\u{202e}txt");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
