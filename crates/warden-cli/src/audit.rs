//! `warden audit verify | query | export`: read an audit log, prove it intact, show or export
//! its records. Thin: parsing and printing here, everything else in `warden-audit`.
//!
//! Exit codes: `verify` 0 intact · 1 tampered · 2 error; `query` and `export` 0 · 2 error.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};
use warden_audit::{
    AuditError, Filter, Record, Timestamp, VerifyReport, VerifySummary, export_jsonl_with_progress,
    parse_verifying_key, query, verify,
};
use warden_core::Verdict;

/// Read, verify and export a tamper-evident audit log.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every record's hash, the chain and the signed checkpoints.
    ///
    /// Exit 0 intact, 1 tampered (the first bad record is named), 2 error.
    Verify {
        /// The audit log (SQLite file).
        db: PathBuf,
        /// Require every checkpoint to be signed by this key: 64 hex digits, or a file
        /// holding them (such as `<key>.pub`). Without it, a log rewritten and re-signed
        /// with another key would pass.
        #[arg(long, value_name = "PUBKEY_HEX_OR_FILE")]
        key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show records, oldest first.
    Query {
        /// The audit log (SQLite file).
        db: PathBuf,
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
        /// Only this action (exact name, e.g. `http_request`).
        #[arg(long)]
        action: Option<String>,
        /// Only this verdict: allow, deny or require_approval.
        #[arg(long)]
        verdict: Option<Verdict>,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-27T14:00:00Z, or a date).
        #[arg(long, value_name = "RFC3339")]
        since: Option<Timestamp>,
        /// Only records before this time (RFC 3339 or a date).
        #[arg(long, value_name = "RFC3339")]
        until: Option<Timestamp>,
        /// Show only the last N matching records.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write every record, one JSON object per line, streaming.
    Export {
        /// The audit log (SQLite file).
        db: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// `--format` values of `warden audit export`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines: one record per line, as in `docs/audit.md`.
    Jsonl,
}

/// Run an audit command.
pub fn run(cmd: AuditCommand) -> crate::error::Result<crate::exit::Exit> {
    use crate::exit::Exit;
    Ok(match run_code(cmd) {
        EXIT_OK => Exit::Ok,
        EXIT_TAMPERED => Exit::Failed,
        _ => Exit::Error,
    })
}

/// Run an audit command; returns the process exit code.
fn run_code(cmd: AuditCommand) -> i32 {
    match cmd {
        AuditCommand::Verify { db, key, json } => run_verify(&db, key.as_deref(), json),
        AuditCommand::Query {
            db,
            agent,
            action,
            verdict,
            since,
            until,
            limit,
            json,
        } => {
            let filter = Filter {
                agent,
                action,
                verdict,
                since,
                until,
                limit,
                ..Filter::default()
            };
            run_query(&db, &filter, json)
        }
        AuditCommand::Export { db, format, output } => run_export(&db, format, output.as_deref()),
    }
}

const EXIT_OK: i32 = 0;
const EXIT_TAMPERED: i32 = 1;
const EXIT_ERROR: i32 = 2;

fn run_verify(db: &Path, key: Option<&str>, json: bool) -> i32 {
    let pinned = match key.map(parse_verifying_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            errln!("error: --key: {e}");
            return EXIT_ERROR;
        }
    };
    let mut progress = Progress::new("verifying");
    let report = verify(db, pinned, |done, total| progress.update(done, total));
    progress.finish();
    let code = report.exit_code();
    if json {
        let value = match &report {
            VerifyReport::Intact(summary) => {
                serde_json::json!({"status": "intact", "summary": summary})
            }
            VerifyReport::Tampered { summary, tampering } => serde_json::json!({
                "status": "tampered", "tampering": tampering, "summary": summary
            }),
            VerifyReport::Error(e) => {
                serde_json::json!({"status": "error", "error": e.to_string()})
            }
        };
        return match print_stdout(|out| writeln!(out, "{value:#}")) {
            Ok(()) => code,
            Err(e) => e,
        };
    }
    if let VerifyReport::Error(e) = &report {
        errln!("error: {e}");
        return EXIT_ERROR;
    }
    let result = print_stdout(|out| {
        match &report {
            VerifyReport::Tampered { summary, tampering } => {
                writeln!(
                    out,
                    "{}: TAMPERED at record {} ({}): {}",
                    db.display(),
                    tampering.seq,
                    tampering.kind,
                    tampering.detail
                )?;
                writeln!(out, "checked before the finding:")?;
                write_summary(out, summary)?;
            }
            VerifyReport::Intact(summary) => {
                writeln!(out, "{}: intact", db.display())?;
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
                "note: no --key given: signatures were checked against the keys stored in the log; \
                 pin the node's public key to rule out a rewritten, re-signed log"
            )?;
        }
        Ok(())
    });
    match result {
        Ok(()) => code,
        Err(e) if code == EXIT_TAMPERED => e.max(code),
        Err(e) => e,
    }
}

fn write_summary(out: &mut dyn Write, s: &VerifySummary) -> io::Result<()> {
    match (s.first_seq, s.last_seq) {
        (Some(a), Some(b)) => writeln!(out, "  records:     {} (seq {a}..={b})", s.records)?,
        _ => writeln!(out, "  records:     none")?,
    }
    if let Some(head) = &s.head_hash {
        writeln!(out, "  head hash:   {head}")?;
    }
    match s.last_checkpoint {
        Some(cp) => writeln!(
            out,
            "  checkpoints: {} valid, last at seq {cp}, signed by key {}",
            s.checkpoints,
            s.keys.join(", ")
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
            "  gaps:        {} runs of sequence numbers never committed (lost in a crash in \
             buffered mode, or failed writes):",
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
            i.at, i.kind, i.after_seq, i.lost, i.detail
        )?;
    }
    Ok(())
}

fn run_query(db: &Path, filter: &Filter, json: bool) -> i32 {
    let records = match query(db, filter) {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let result = if json {
        print_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &records).map_err(io::Error::from)?;
            writeln!(out)
        })
    } else if records.is_empty() {
        errln!("no records match");
        Ok(())
    } else {
        print_stdout(|out| write_table(out, &records))
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(code) => code,
    }
}

/// A plain aligned table; long cells are cut so a row stays on one line.
fn write_table(out: &mut dyn Write, records: &[Record]) -> io::Result<()> {
    const HEADERS: [&str; 8] = [
        "SEQ", "TIME", "AGENT", "VERDICT", "ACTION", "TARGET", "RULE", "REASON",
    ];
    const MAX: [usize; 8] = [12, 30, 24, 16, 24, 40, 20, 60];
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            let target = match (&r.tool, &r.resource) {
                (Some(t), Some(res)) => format!("{t} {res}"),
                (Some(t), None) => t.clone(),
                (None, Some(res)) => res.clone(),
                (None, None) => String::new(),
            };
            [
                r.seq.to_string(),
                r.ts.to_string(),
                r.agent.clone().unwrap_or_else(|| "-".into()),
                r.verdict.to_string(),
                r.action.clone(),
                target,
                r.rule.clone().unwrap_or_else(|| "-".into()),
                r.reason.clone(),
            ]
            .map(|cell| cut(&cell.replace(['\n', '\t'], " "), 0))
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count().min(MAX[i]));
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; 8]| -> io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cut(cell, MAX[i]);
            if i + 1 == cells.len() {
                text.push_str(&cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, HEADERS)?;
    for row in &rows {
        line(out, row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

/// `text` cut to `max` characters with an ellipsis (`max == 0`: unchanged).
fn cut(text: &str, max: usize) -> String {
    if max == 0 || text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn run_export(db: &Path, format: ExportFormat, output: Option<&Path>) -> i32 {
    let ExportFormat::Jsonl = format;
    let mut progress = Progress::new("exporting");
    let result = match output {
        Some(path) => match File::create(path) {
            Ok(file) => export_jsonl_with_progress(db, file, |d, t| progress.update(d, t)),
            Err(e) => {
                errln!(
                    "error: {}: cannot create the export file: {e}",
                    path.display()
                );
                return EXIT_ERROR;
            }
        },
        None => export_jsonl_with_progress(db, io::stdout().lock(), |d, t| progress.update(d, t)),
    };
    progress.finish();
    match result {
        Ok(n) => {
            if let Some(path) = output {
                errln!("exported {n} records to {}", path.display());
            }
            EXIT_OK
        }
        // The reader went away (`| head`): not an error worth a message.
        Err(AuditError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            errln!("error: {e}");
            EXIT_ERROR
        }
    }
}

/// Write to standard output; a closed pipe ends quietly, any other failure exits 2.
fn print_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), i32> {
    let mut out = io::stdout().lock();
    match f(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            errln!("error: cannot write to standard output: {e}");
            Err(EXIT_ERROR)
        }
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
    use warden_audit::{AuditConfig, AuditLog, Entry, SigningKey, to_hex};
    use warden_core::{Action, Decision};

    fn log_with(n: u64) -> (tempfile::TempDir, PathBuf, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.db");
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut config = AuditConfig::default();
        config.signing_key = Some(key.clone());
        let log = AuditLog::open(&path, config).unwrap();
        for i in 0..n {
            let action = Action::new("http_request").with_agent(format!("a{}", i % 2));
            log.append(Entry::new(&action, &Decision::deny("no")))
                .unwrap();
        }
        log.close().unwrap();
        (dir, path, key)
    }

    #[test]
    fn verify_exit_codes() {
        let (_dir, path, key) = log_with(5);
        let hex = to_hex(key.verifying_key().as_bytes());
        let other = to_hex(SigningKey::from_bytes(&[4; 32]).verifying_key().as_bytes());
        let verify = |key: Option<String>| {
            run_code(AuditCommand::Verify {
                db: path.clone(),
                key,
                json: false,
            })
        };
        assert_eq!(verify(None), 0);
        assert_eq!(verify(Some(hex)), 0);
        assert_eq!(
            verify(Some(other)),
            1,
            "a checkpoint signed by another key is tampering"
        );
        assert_eq!(verify(Some("not-a-key".into())), 2);
        let missing = run_code(AuditCommand::Verify {
            db: path.with_file_name("missing.db"),
            key: None,
            json: true,
        });
        assert_eq!(missing, 2);
    }

    #[test]
    fn query_and_export_exit_codes() {
        let (dir, path, _) = log_with(4);
        let query = |db: PathBuf| {
            run_code(AuditCommand::Query {
                db,
                agent: Some("a1".into()),
                action: None,
                verdict: Some(Verdict::Deny),
                since: None,
                until: None,
                limit: Some(1),
                json: true,
            })
        };
        assert_eq!(query(path.clone()), 0);
        assert_eq!(query(dir.path().join("missing.db")), 2);
        let out = dir.path().join("out.jsonl");
        let code = run_code(AuditCommand::Export {
            db: path,
            format: ExportFormat::Jsonl,
            output: Some(out.clone()),
        });
        assert_eq!(code, 0);
        assert_eq!(std::fs::read_to_string(out).unwrap().lines().count(), 4);
    }

    #[test]
    fn table_cuts_long_cells() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(cut("abcdef", 0), "abcdef");
    }
}
