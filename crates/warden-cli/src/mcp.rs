//! `warden mcp scan|pin|proxy` and `warden scan text`: the command-line doors into
//! warden-mcp. Flags become plain values here; the work happens in the crate.
//!
//! Exit codes: scans exit 0 when clean, 1 when a finding is at or above `--fail-on`, 2 on an
//! error (a target that could not be read or started counts: a scan that could not look is
//! not clean, and every output format says so). The stdio proxy exits with the server's exit
//! code, or 2 if it could not start; the HTTP proxy exits 0 when interrupted, 2 if it could
//! not start. The HTTP proxy prints `listening on http://ADDR/mcp` on stdout once it listens.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use warden_mcp::proxy::{self, ProxyConfig, ProxyError, http as proxy_http};
use warden_mcp::{
    Finding, Format, Lock, ScanError, ScanReport, ServerTools, Severity, detect, report,
    scan_servers, source,
};

use crate::args::{AuditArgs, PolicyArgs, RuntimeArgs, ZeroTrustArgs, builder, read_credential};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::model::{Detection, ModelArgs};

/// `warden mcp …`
#[derive(Subcommand, Debug)]
pub enum McpCommand {
    /// Scan MCP tool lists for poisoning, hidden text, look-alike names and drift.
    ///
    /// Targets: JSON files holding a `tools/list` result (the server is named after the
    /// file), MCP client configs (`mcpServers` / `servers`: every server in them is started
    /// and scanned), or a server command after `--`.
    Scan(ScanArgs),
    /// Pin the tools of servers in a lock file, so later scans and the proxy catch changes.
    Pin(PinArgs),
    /// Run an MCP server behind Warden: policy on every tool call, poisoned tools hidden.
    Proxy(Box<ProxyArgs>),
}

/// `warden scan …`
#[derive(Subcommand, Debug)]
pub enum ScanCommand {
    /// Scan any text for injected instructions, invisible characters and secrets (the
    /// detector the MCP proxy applies to tool results).
    Text(ScanTextArgs),
}

/// Output flags shared by the scans.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
    /// Short for `--format json`.
    #[arg(long)]
    json: bool,
    /// Exit 1 when a finding is at or above this severity (info, low, medium, high, critical).
    #[arg(long, default_value = "medium", value_parser = parse_severity)]
    fail_on: Severity,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Sarif,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

impl OutputArgs {
    fn format(&self) -> Format {
        match (self.json, self.format) {
            (true, _) | (_, FormatArg::Json) => Format::Json,
            (_, FormatArg::Table) => Format::Table,
            (_, FormatArg::Sarif) => Format::Sarif,
        }
    }

    /// Print the report, saying how detection ran (rules only, or rules and the model), and
    /// pick the exit code: any error is 2, whatever was found.
    fn finish(&self, report: &ScanReport, detection: &Detection, ngram: Option<&NgramRun>) -> Exit {
        for e in &report.errors {
            errln!("error: {}", e.text());
        }
        let rendered = report::render(report, self.format());
        match self.format() {
            Format::Table => {
                out!("{rendered}");
                outln!("{}", detection.line());
                if let Some(n) = ngram {
                    outln!("{}", n.line());
                }
            }
            format => {
                // The detection mode joins the JSON (top level) or the SARIF run's properties.
                match serde_json::from_str::<serde_json::Value>(&rendered) {
                    Ok(mut v) => {
                        let target = if format == Format::Sarif {
                            v.get_mut("runs")
                                .and_then(|r| r.get_mut(0))
                                .and_then(|r| r.as_object_mut())
                                .map(|r| {
                                    r.entry("properties")
                                        .or_insert_with(|| serde_json::json!({}))
                                })
                        } else {
                            Some(&mut v)
                        };
                        if let Some(obj) = target.and_then(|t| t.as_object_mut()) {
                            let mut d = detection.to_json();
                            if let (Some(n), Some(m)) = (ngram, d.as_object_mut()) {
                                m.insert("ngram".into(), n.to_json());
                            }
                            obj.insert("detection".into(), d);
                        }
                        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or(rendered));
                    }
                    Err(_) => outln!("{rendered}"),
                }
            }
        }
        if !report.complete() {
            Exit::Error
        } else if report.findings.iter().any(|f| f.severity >= self.fail_on) {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }
}

/// Where tool lists come from (shared by `scan` and `pin`).
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Tool-list JSON files, MCP client configs, or URLs.
    targets: Vec<String>,
    /// A server command to start over stdio, after `--`.
    #[arg(last = true)]
    command: Vec<String>,
    /// Seconds to wait for each server to answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Trust the CA certificates in this PEM file for `https://` servers, besides the OS
    /// trust store (a private CA). Host names are still verified.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

impl TargetArgs {
    /// Load every target: the servers read, and a report with what was scanned and the
    /// targets that could not be read.
    fn load(&self) -> (Vec<ServerTools>, ScanReport) {
        let timeout = Duration::from_secs(self.timeout);
        let mut servers = Vec::new();
        let mut report = ScanReport::default();
        if self.targets.is_empty() && self.command.is_empty() {
            report.errors.push(ScanError {
                target: "(nothing)".into(),
                message: "nothing to scan: give tool-list files, a client config, or `-- <server command>`".into(),
            });
            return (servers, report);
        }
        let mut add = |target: &str, r: Result<ServerTools, source::SourceError>| match r {
            Ok(s) => servers.push(s),
            Err(e) => report.errors.push(ScanError {
                target: target.to_string(),
                message: e.to_string(),
            }),
        };
        for t in &self.targets {
            for r in source::load_target(t, timeout, self.ca_cert.as_deref()) {
                add(t, r);
            }
        }
        let command = self.command.join(" ");
        if !self.command.is_empty() {
            add(&command, source::load_command(&self.command, timeout));
        }
        report.scanned = self.targets.clone();
        if !self.command.is_empty() {
            report.scanned.push(command);
        }
        (servers, report)
    }
}

/// Arguments of `warden mcp scan`.
#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    targets: TargetArgs,
    /// Compare with this lock file (from `warden mcp pin`) and report every change.
    #[arg(long)]
    lock: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    model: ModelArgs,
}

/// Arguments of `warden mcp pin`.
#[derive(Args, Debug)]
pub struct PinArgs {
    /// The lock file to write (servers already in it and not scanned now are kept).
    #[arg(long)]
    lock: PathBuf,
    #[command(flatten)]
    targets: TargetArgs,
}

/// Arguments of `warden mcp proxy`.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    zero_trust: ZeroTrustArgs,
    /// A credential or delegation chain (JSON) every decided action carries as
    /// `context.credential`: the actions are judged as its verified DID.
    #[arg(long, value_name = "FILE")]
    credential: Option<PathBuf>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Withhold tools that are new or changed since they were pinned in this lock file.
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
    /// The server's name in `context.server` and in the lock (default: its serverInfo.name).
    #[arg(long)]
    name: Option<String>,
    /// The agent every decision is recorded for (`agent` in actions and the audit log).
    #[arg(long)]
    agent: Option<String>,
    /// The largest message accepted from the client or the server, in bytes (a stdio line,
    /// a POST body, an upstream answer, one SSE event); a longer one is refused.
    #[arg(long, value_name = "BYTES", default_value_t = proxy::DEFAULT_MAX_MESSAGE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_message_bytes: usize,
    /// With the model on: the most bytes of entry JSON it reads in one tool, prompt or
    /// resource listing; entries past it get `model.partial` (withheld unless a rule allows
    /// them). Bounds the model time one listing costs (at the default ~35 s of one core for
    /// English text, ~140 s at worst).
    #[arg(long, value_name = "BYTES", default_value_t = proxy::DEFAULT_MODEL_LISTING_BYTES)]
    model_listing_bytes: usize,
    /// Hold a call that needs a person's approval up to this long (`60s`, `5m`) while its
    /// approval request waits for an answer (`warden approvals approve ID`); approved, it is
    /// forwarded. Needs `--db`. Default: answer the refusal at once. Over stdio the client's
    /// later messages wait behind a held call.
    #[arg(long, value_name = "DURATION", value_parser = approval_wait, requires = "db")]
    approval_wait: Option<std::time::Duration>,
    /// A tool whose calls write the agent's memory (repeatable): each call is also decided
    /// as `memory.write` — flagged content is quarantined, clean content gets signed
    /// provenance (docs/memory.md). For @modelcontextprotocol/server-memory:
    /// `create_entities`, `add_observations`, `create_relations`.
    #[arg(long = "memory-write", value_name = "TOOL")]
    memory_writes: Vec<String>,
    /// A tool (or resource URI) whose answers are the agent's memory read back (repeatable;
    /// server-memory: `read_graph`, `search_nodes`, `open_nodes`,
    /// `memory://knowledge-graph`). With `--require-provenance`, items without valid
    /// provenance are withheld from its answers.
    #[arg(long = "memory-read", value_name = "TOOL")]
    memory_reads: Vec<String>,
    /// Withhold memory items (answers of `--memory-read` tools) that were not written
    /// through Warden, or were changed since. Needs `--db` (where provenance is kept).
    #[arg(long, requires = "db")]
    require_provenance: bool,
    /// Streamable HTTP: the upstream MCP endpoint to forward to (`http://host:port/mcp` or
    /// `https://…`), instead of a server command.
    #[arg(long, requires = "listen", conflicts_with = "command")]
    upstream: Option<String>,
    /// Trust the CA certificates in this PEM file for an `https://` upstream, besides the OS
    /// trust store (a private CA). Host names are still verified.
    #[arg(long, value_name = "FILE", requires = "upstream")]
    ca_cert: Option<PathBuf>,
    /// Streamable HTTP: the address to listen on (`127.0.0.1:8808`; port 0 picks one).
    #[arg(long, requires = "upstream")]
    listen: Option<SocketAddr>,
    /// Allow `--listen` on a non-loopback address (anyone who reaches it can use the server).
    #[arg(long, requires = "listen")]
    insecure: bool,
    #[command(flatten)]
    model: ModelArgs,
    /// The server command, after `--` (stdio).
    #[arg(last = true, required_unless_present = "upstream")]
    command: Vec<String>,
}

/// Arguments of `warden scan text`.
#[derive(Args, Debug)]
pub struct ScanTextArgs {
    /// The file to scan; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    model: ModelArgs,
}

/// What the n-gram text model said of a text (`warden scan text --ngram`).
struct NgramRun(warden_model::ngram::NgramScore);

impl NgramRun {
    fn line(&self) -> String {
        let s = &self.0;
        format!(
            "n-gram model: {:.3} against its threshold {:.3}: {}{}",
            s.value,
            s.threshold,
            if s.flagged { "flagged" } else { "passed" },
            if s.truncated {
                " (only the first 1 MiB was scored)"
            } else {
                ""
            }
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
}

impl McpCommand {
    /// Run the subcommand and return the exit code.
    pub fn run(self) -> Result<Exit> {
        Ok(match self {
            McpCommand::Scan(a) => return scan(&a),
            McpCommand::Pin(a) => pin(&a),
            McpCommand::Proxy(a) => return run_proxy(*a),
        })
    }
}

impl ScanCommand {
    /// Run the subcommand and return the exit code.
    pub fn run(self) -> Result<Exit> {
        match self {
            ScanCommand::Text(a) => a.run(),
        }
    }
}

fn read_lock(path: &Path) -> Option<Lock> {
    match Lock::read(path) {
        Ok(l) => Some(l),
        Err(e) => {
            errln!("error: {e}");
            None
        }
    }
}

fn scan(args: &ScanArgs) -> Result<Exit> {
    let detection = args.model.load()?;
    let lock = match &args.lock {
        Some(p) => match read_lock(p) {
            Some(l) => Some(l),
            None => return Ok(Exit::Error),
        },
        None => None,
    };
    let (servers, mut report) = args.targets.load();
    report.findings = scan_servers(&servers);
    report.read = Some(warden_mcp::Coverage::of(&servers));
    if let Some(head) = detection.ngram() {
        ngram_instructions(head, &servers, &mut report);
    }
    if let Some(classifier) = detection.classifier() {
        model_tools(classifier, &servers, &mut report);
        model_server_extras(classifier, &servers, &mut report);
    }
    if let Some(lock) = lock {
        report.findings.extend(lock.check(&servers));
        report
            .findings
            .sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
    Ok(args.output.finish(&report, &detection, None))
}

/// The n-gram model on each server's `instructions` the rules passed (the texts of a scan;
/// tool metadata is not its to read): flagged is the medium finding `ngram.text`, as the
/// proxy drops such instructions.
fn ngram_instructions(
    head: &warden_model::ngram::NgramHead,
    servers: &[ServerTools],
    report: &mut ScanReport,
) {
    for s in servers {
        let Some(text) = &s.instructions else {
            continue;
        };
        let caught = report.findings.iter().any(|f| {
            f.server == s.server
                && f.tool.is_none()
                && f.field == "instructions"
                && f.severity >= Severity::Medium
        });
        let score = crate::model::ngram_score(head, text);
        if caught {
            continue;
        }
        if !score.flagged {
            if score.truncated {
                report.findings.push(ngram_partial(
                    &s.server,
                    None,
                    "instructions",
                    "server's instructions",
                ));
            }
            continue;
        }
        report.findings.push(Finding {
            id: "ngram.text".into(),
            category: warden_mcp::finding::Category::Poisoning,
            severity: Severity::Medium,
            server: s.server.clone(),
            tool: None,
            field: "instructions".into(),
            span: Some((score.span.start, score.span.end)),
            excerpt: warden_mcp::finding::visible(text.get(score.span.clone()).unwrap_or(""), 120),
            why: ngram_why(&score, "server's instructions"),
        });
    }
}

/// The medium finding of `scan text` for a stretch of the text a model flagged, at its line.
fn flagged_text(
    id: &str,
    name: &str,
    text: &str,
    span: std::ops::Range<usize>,
    why: String,
) -> Finding {
    Finding {
        id: id.into(),
        category: warden_mcp::finding::Category::Poisoning,
        severity: Severity::Medium,
        server: name.to_owned(),
        tool: None,
        field: format!(
            "line {}",
            text.get(..span.start).unwrap_or("").matches('\n').count() + 1
        ),
        span: Some((span.start, span.end)),
        excerpt: warden_mcp::finding::visible(text.get(span).unwrap_or(""), 120),
        why,
    }
}

/// The low finding for a text longer than the n-gram model reads that it passed: the rest
/// was read by the rules only, and a scan does not call unread text clean.
fn ngram_partial(server: &str, tool: Option<String>, field: &str, what: &str) -> Finding {
    Finding {
        id: "ngram.partial".into(),
        category: warden_mcp::finding::Category::Incomplete,
        severity: Severity::Low,
        server: server.to_owned(),
        tool,
        field: field.into(),
        span: None,
        excerpt: String::new(),
        why: format!(
            "the {what} is longer than the n-gram model reads (1 MiB): it scored the start and \
             passed it, the rest was read by the rules only"
        ),
    }
}

fn ngram_why(score: &warden_model::ngram::NgramScore, what: &str) -> String {
    format!(
        "the n-gram model scores this {what} {:.3}, at or above its threshold {:.3}: its words \
         read like injected instructions{}{}",
        score.value,
        score.threshold,
        if score.folded {
            " (read with look-alike letters folded and invisible characters removed)"
        } else {
            ""
        },
        if score.truncated {
            " (only the first 1 MiB was scored)"
        } else {
            ""
        }
    )
}

/// The model on every tool the rules passed (no finding at medium or above): a flagged tool
/// is a medium poisoning finding. The tools of every server go to the model as one batch (see
/// `Model::embed_batch`); a batch the model cannot score is an error of the scan.
fn model_tools(
    classifier: &warden_model::Classifier,
    servers: &[ServerTools],
    report: &mut ScanReport,
) {
    // The tools the rules passed, across every server, scored as one batch.
    let mut passed = Vec::new();
    for s in servers {
        for tool in &s.tools {
            let name = tool.get("name").and_then(|n| n.as_str()).map(str::to_owned);
            let caught = report
                .findings
                .iter()
                .any(|f| f.server == s.server && f.tool == name && f.severity >= Severity::Medium);
            if !caught {
                passed.push((s, tool, name));
            }
        }
    }
    let tools: Vec<&serde_json::Value> = passed.iter().map(|(_, t, _)| *t).collect();
    let scores = match classifier.score_tools(&tools) {
        Ok(scores) => scores,
        Err(e) => {
            report.errors.push(ScanError {
                target: "(model)".into(),
                message: format!("the model could not score the tools: {e}"),
            });
            return;
        }
    };
    for ((s, tool, name), score) in passed.into_iter().zip(scores) {
        if !score.flagged {
            if score.truncated {
                report.findings.push(Finding {
                    id: "model.partial".into(),
                    category: warden_mcp::finding::Category::Incomplete,
                    severity: Severity::Low,
                    server: s.server.clone(),
                    tool: name,
                    field: "tool card".into(),
                    span: None,
                    excerpt: String::new(),
                    why: "the tool's metadata is longer than the local model reads (64 windows \
                          of 128 tokens, or 1 MiB): the model scored its start and passed it, \
                          the rest was read by the rules only"
                        .into(),
                });
            }
            continue;
        }
        let card = warden_model::tool_card(tool);
        report.findings.push(Finding {
            id: "model.tool".into(),
            category: warden_mcp::finding::Category::Poisoning,
            severity: Severity::Medium,
            server: s.server.clone(),
            tool: name,
            field: "tool card".into(),
            span: None,
            excerpt: warden_mcp::finding::visible(
                card.get(score.span.clone()).unwrap_or(&card),
                120,
            ),
            why: model_why(&score, "tool's metadata"),
        });
    }
    report
        .findings
        .sort_by_key(|f| std::cmp::Reverse(f.severity));
}

/// The model on what else of a server the proxy's model reads, where the rules passed it (no
/// finding at medium or above): each server's `instructions` as a text, and its prompt and
/// resource listing entries as cards (one batch). Flagged is a medium finding (`model.text`,
/// `model.tool`), longer than the model reads the low `model.partial`: a scan with the model
/// never passes what the model did not read as read.
fn model_server_extras(
    classifier: &warden_model::Classifier,
    servers: &[ServerTools],
    report: &mut ScanReport,
) {
    let caught = |report: &ScanReport, server: &str, tool: Option<&str>, field: Option<&str>| {
        report.findings.iter().any(|f| {
            f.server == server
                && f.tool.as_deref() == tool
                && field.is_none_or(|field| f.field == field)
                && f.severity >= Severity::Medium
        })
    };
    let mut found = Vec::new();
    for s in servers {
        let Some(text) = &s.instructions else {
            continue;
        };
        if caught(report, &s.server, None, Some("instructions")) {
            continue;
        }
        match classifier.score_text(text) {
            Ok(score) => found.push((s, None, "instructions", "server's instructions", score)),
            Err(e) => report.errors.push(ScanError {
                target: s.server.clone(),
                message: format!("the model could not score the server's instructions: {e}"),
            }),
        }
    }
    // Prompt and resource entries, labelled as the rules label them.
    let mut entries = Vec::new();
    for s in servers {
        let labelled =
            s.prompts
                .iter()
                .map(|p| ("prompt", p, "name"))
                .chain(s.resources.iter().map(|r| {
                    let key = if r.get("uri").is_some() {
                        "uri"
                    } else {
                        "uriTemplate"
                    };
                    ("resource", r, key)
                }));
        for (kind, entry, key) in labelled {
            let at = format!(
                "{kind}:{}",
                entry.get(key).and_then(|v| v.as_str()).unwrap_or("?")
            );
            if !caught(report, &s.server, Some(&at), None) {
                entries.push((s, at, entry));
            }
        }
    }
    let cards: Vec<&serde_json::Value> = entries.iter().map(|(_, _, e)| *e).collect();
    match classifier.score_tools(&cards) {
        Ok(scores) => {
            for ((s, at, _), score) in entries.into_iter().zip(scores) {
                found.push((s, Some(at), "listing entry", "listing entry", score));
            }
        }
        Err(e) => report.errors.push(ScanError {
            target: "(model)".into(),
            message: format!("the model could not score the prompts and resources: {e}"),
        }),
    }
    for (s, tool, field, what, score) in found {
        let (id, severity, category, why) = if score.flagged {
            (
                if tool.is_some() {
                    "model.tool"
                } else {
                    "model.text"
                },
                Severity::Medium,
                warden_mcp::finding::Category::Poisoning,
                model_why(&score, what),
            )
        } else if score.truncated {
            (
                "model.partial",
                Severity::Low,
                warden_mcp::finding::Category::Incomplete,
                format!(
                    "the {what} is longer than the local model reads (64 windows of 128 \
                     tokens, or 1 MiB): the model scored its start and passed it, the rest was \
                     read by the rules only"
                ),
            )
        } else {
            continue;
        };
        report.findings.push(Finding {
            id: id.into(),
            category,
            severity,
            server: s.server.clone(),
            tool,
            field: field.into(),
            span: None,
            excerpt: String::new(),
            why,
        });
    }
    report
        .findings
        .sort_by_key(|f| std::cmp::Reverse(f.severity));
}

fn model_why(score: &warden_model::Score, what: &str) -> String {
    format!(
        "the local model scores this {what} {:.3}, at or above its threshold {:.3}: it reads \
         like injected instructions{}",
        score.score,
        score.threshold,
        if score.truncated {
            " (only the first part was scored: too long)"
        } else {
            ""
        }
    )
}

fn pin(args: &PinArgs) -> Exit {
    let (servers, report) = args.targets.load();
    if !report.complete() {
        for e in &report.errors {
            errln!("error: {}", e.text());
        }
        errln!("nothing was pinned");
        return Exit::Error;
    }
    let mut lock = if args.lock.exists() {
        match read_lock(&args.lock) {
            Some(l) => l,
            None => return Exit::Error,
        }
    } else {
        Lock::default()
    };
    let fresh = Lock::pin(&servers);
    lock.version = 1;
    lock.servers.extend(fresh.servers);
    if let Err(e) = lock.write(&args.lock) {
        errln!("error: {e}");
        return Exit::Error;
    }
    let tools: usize = servers.iter().map(|s| s.tools.len()).sum();
    errln!(
        "pinned {tools} tools of {} server{} in {}",
        servers.len(),
        if servers.len() == 1 { "" } else { "s" },
        args.lock.display()
    );
    Exit::Ok
}

fn run_proxy(args: ProxyArgs) -> Result<Exit> {
    let lock = match &args.lock {
        Some(p) => match read_lock(p) {
            Some(l) => Some(l),
            None => return Ok(Exit::Error),
        },
        None => None,
    };
    let credential = args
        .credential
        .as_deref()
        .map(read_credential)
        .transpose()?;
    // Stdout is the protocol; how detection runs goes to stderr.
    let detection = args.model.load()?;
    errln!("{}", detection.line());
    let classifier = detection.text_classifier();
    // Memory writes meet the detector tool results meet: with the model when it is on.
    let mut builder = args
        .runtime
        .apply(args.zero_trust.apply(builder(&args.policy, &args.audit))?)
        .protect_binary()
        .memory_guard(proxy::memory_detector(), args.require_provenance);
    if let Some(c) = &classifier {
        builder = builder.memory_model(proxy::memory_model_detector(c.clone()));
    }
    if let Some(lock) = &args.lock {
        builder = builder.protect(lock);
    }
    let warden = builder.build()?;
    let config = ProxyConfig {
        classifier,
        credential,
        command: args.command,
        lock,
        server_name: args.name,
        agent: args.agent,
        max_message_bytes: args.max_message_bytes,
        model_listing_bytes: args.model_listing_bytes,
        approval_wait: args.approval_wait.unwrap_or_default(),
        memory: proxy::MemoryTools {
            writes: args.memory_writes,
            reads: args.memory_reads,
        },
    };
    if let (Some(upstream), Some(listen)) = (args.upstream, args.listen) {
        let http = proxy_http::HttpConfig {
            upstream,
            ca_cert: args.ca_cert,
            listen,
            insecure: args.insecure,
        };
        let announce = |addr: SocketAddr| outln!("listening on http://{addr}/mcp");
        proxy_http::run(config, http, Arc::new(warden), announce).map_err(proxy_error)?;
        return Ok(Exit::Ok);
    }
    let stdin = std::io::BufReader::new(std::io::stdin());
    let code = proxy::run(config, Arc::new(warden), stdin, Box::new(std::io::stdout()))
        .map_err(proxy_error)?;
    // The server's own exit code, as a shell would see it (a signal death is 128+n there).
    Ok(Exit::Child(u8::try_from(code).unwrap_or(2)))
}

/// A proxy that could not start, with the flag that changes it.
fn proxy_error(e: ProxyError) -> Error {
    let hint = match e {
        ProxyError::NoCommand => " (put the server command after `--`)",
        ProxyError::NotLoopback(_) => " (--insecure)",
        ProxyError::NoRoom => " (--max-message-bytes)",
        _ => "",
    };
    Error::msg(format!("{e}{hint}"))
}

impl ScanTextArgs {
    /// Scan the text and return the exit code.
    pub fn run(&self) -> Result<Exit> {
        let detection = self.model.load()?;
        let (name, text) = match self.file.as_ref().filter(|p| p.as_os_str() != "-") {
            Some(p) => match std::fs::read(p) {
                Ok(b) => (
                    p.display().to_string(),
                    String::from_utf8_lossy(&b).into_owned(),
                ),
                Err(e) => {
                    errln!("error: {}: {e}", p.display());
                    return Ok(Exit::Error);
                }
            },
            None => {
                let mut b = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut b) {
                    errln!("error: standard input: {e}");
                    return Ok(Exit::Error);
                }
                ("-".to_string(), String::from_utf8_lossy(&b).into_owned())
            }
        };
        // Where each line starts, so a finding's line is a binary search (a long text can
        // have tens of thousands of findings; counting newlines for each was quadratic).
        let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
        let line = |at: usize| newlines.partition_point(|&n| n < at) + 1;
        let mut findings: Vec<Finding> = detect::scan(&text, detect::Mode::Output)
            .into_iter()
            .map(|h| Finding {
                id: h.id.into(),
                category: h.category,
                severity: h.severity,
                server: name.clone(),
                tool: None,
                field: format!("line {}", line(h.span.0)),
                span: Some(h.span),
                excerpt: warden_mcp::finding::visible(&text[h.span.0..h.span.1], 120),
                why: h.why,
            })
            .collect();
        // Rules first; then the n-gram model (its verdict is reported either way; a finding
        // only where the rules passed the text), then the model on what both passed.
        let ngram = if let Some(head) = detection.ngram() {
            let score = crate::model::ngram_score(head, &text);
            if score.flagged && !findings.iter().any(|f| f.severity >= Severity::Medium) {
                findings.push(flagged_text(
                    "ngram.text",
                    &name,
                    &text,
                    score.span.clone(),
                    ngram_why(&score, "text"),
                ));
            } else if score.truncated && !score.flagged {
                findings.push(ngram_partial(&name, None, "text", "text"));
            }
            Some(NgramRun(score))
        } else {
            None
        };
        let mut errors = Vec::new();
        if let Some(classifier) = detection.classifier()
            && !findings.iter().any(|f| f.severity >= Severity::Medium)
        {
            match classifier.score_text(&text) {
                Ok(score) if score.flagged => findings.push(flagged_text(
                    "model.text",
                    &name,
                    &text,
                    score.span.clone(),
                    model_why(&score, "text"),
                )),
                Ok(score) if score.truncated => findings.push(Finding {
                    id: "model.partial".into(),
                    category: warden_mcp::finding::Category::Incomplete,
                    severity: Severity::Low,
                    server: name.clone(),
                    tool: None,
                    field: "text".into(),
                    span: None,
                    excerpt: String::new(),
                    why: "the text is longer than the local model reads (64 windows of 128 \
                          tokens, or 1 MiB): the model scored its start and passed it, the rest \
                          was read by the rules only"
                        .into(),
                }),
                Ok(_) => {}
                Err(e) => errors.push(ScanError {
                    target: name.clone(),
                    message: format!("the model could not score the text: {e}"),
                }),
            }
        }
        Ok(self.output.finish(
            &ScanReport {
                scanned: vec![name],
                findings,
                errors,
                read: None,
            },
            &detection,
            ngram.as_ref(),
        ))
    }
}

fn approval_wait(s: &str) -> std::result::Result<std::time::Duration, String> {
    warden_policy::runtime::parse_duration(s)
}
