//! Scan results for people (a table), for programs (JSON) and for code-scanning tools
//! (SARIF 2.1.0).
//!
//! A scan that could not look at a target is not a clean scan, in every format: the table
//! lists each error and says the result is incomplete, JSON carries an `errors` array and
//! `"complete": false`, SARIF an invocation with `executionSuccessful: false` and one error
//! notification per target.

use serde::Serialize;
use serde_json::{Value, json};

use crate::finding::{Finding, Severity};

/// Where the documentation of the findings lives, relative to the repository root (SARIF
/// wants an absolute `informationUri`, and the project has no public URL of its own yet).
const DOCS: &str = "docs/mcp.md";

/// A target that could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanError {
    /// The target (file, URL or command) as given.
    pub target: String,
    /// What went wrong.
    pub message: String,
}

/// Everything one scan found out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    /// The targets, as given.
    pub scanned: Vec<String>,
    /// What was found in the targets that could be read.
    pub findings: Vec<Finding>,
    /// The targets that could not be read, and why.
    pub errors: Vec<ScanError>,
    /// How much was read (servers, tools, prompts, resources), when the scan read servers.
    pub read: Option<Coverage>,
}

/// How much of what the model reads a scan looked at, so a clean result says what it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Servers read.
    pub servers: usize,
    /// Tools listed and scanned.
    pub tools: usize,
    /// Servers whose `instructions` were scanned.
    pub instructions: usize,
    /// Prompts listed (their descriptions and arguments scanned).
    pub prompts: usize,
    /// Resources and resource templates listed (their descriptions scanned).
    pub resources: usize,
    /// Prompts fetched and resources read, their contents scanned.
    pub contents: usize,
    /// Prompts and resources listed but not read (errors, limits); each is a finding.
    pub skipped: usize,
}

impl Coverage {
    /// Count what `servers` hold.
    pub fn of(servers: &[crate::ServerTools]) -> Coverage {
        let mut c = Coverage {
            servers: servers.len(),
            ..Coverage::default()
        };
        for s in servers {
            c.tools += s.tools.len();
            c.instructions += usize::from(s.instructions.is_some());
            c.prompts += s.prompts.len();
            c.resources += s.resources.len();
            c.contents += s.contents.len();
            c.skipped += s.skipped.len();
        }
        c
    }
}

impl ScanError {
    /// One line naming the target and what went wrong.
    pub fn text(&self) -> String {
        if self.message.contains(&self.target) {
            self.message.clone()
        } else {
            format!("{}: {}", self.target, self.message)
        }
    }
}

impl ScanReport {
    /// Whether every target was scanned.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The output formats of `warden mcp scan` and `warden scan text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One block per finding, readable in a terminal.
    Table,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
}

/// Render a report in a format.
pub fn render(report: &ScanReport, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => pretty(&json!({
            "scanned": report.scanned,
            "complete": report.complete(),
            "errors": report.errors,
            "findings": report.findings,
            "summary": summary(&report.findings),
            "read": report.read,
        })),
        Format::Sarif => pretty(&sarif(report)),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn summary(findings: &[Finding]) -> Value {
    let mut counts = serde_json::Map::new();
    for s in Severity::ALL {
        counts.insert(
            s.as_str().into(),
            json!(findings.iter().filter(|f| f.severity == s).count()),
        );
    }
    Value::Object(counts)
}

fn table(report: &ScanReport) -> String {
    let (findings, scanned) = (&report.findings, &report.scanned);
    let mut out = String::new();
    for f in findings {
        let tool = f
            .tool
            .as_deref()
            .map(|t| format!(" / {t}"))
            .unwrap_or_default();
        let span = f
            .span
            .map(|(s, e)| format!(" [{s}..{e}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<8} {:<34} {}{tool}\n         at {}{span}: {}\n         why: {}\n",
            f.severity.as_str().to_uppercase(),
            f.id,
            f.server,
            f.field,
            f.excerpt,
            f.why.replace('\n', "\n              ")
        ));
    }
    for e in &report.errors {
        out.push_str(&format!("ERROR    {}\n", e.text()));
    }
    let n = findings.len();
    let by: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| (s, findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, c)| *c > 0)
        .map(|(s, c)| format!("{c} {s}"))
        .collect();
    let by = if by.is_empty() {
        String::new()
    } else {
        format!(" ({})", by.join(", "))
    };
    let plural = if n == 1 { "" } else { "s" };
    if let Some(c) = report.read.as_ref().filter(|c| c.servers > 0) {
        out.push_str(&format!(
            "read: {} server{}, {} tools, {} instructions, {} prompts, {} resources; {} prompt/resource contents scanned, {} not read\n",
            c.servers,
            if c.servers == 1 { "" } else { "s" },
            c.tools,
            c.instructions,
            c.prompts,
            c.resources,
            c.contents,
            c.skipped
        ));
    }
    let e = report.errors.len();
    if e == 0 {
        out.push_str(&format!(
            "{n} finding{plural} in {}{by}\n",
            scanned.join(", ")
        ));
    } else {
        out.push_str(&format!(
            "scan incomplete: {e} error{} (above), so this is not a clean result; {n} finding{plural} in what could be read{by}\n",
            if e == 1 { "" } else { "s" },
        ));
    }
    out
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn sarif(report: &ScanReport) -> Value {
    let (findings, scanned) = (&report.findings, &report.scanned);
    let mut rule_ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let first = findings.iter().find(|f| f.id == *id);
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": first.map(|f| f.why.lines().next().unwrap_or("").to_string()).unwrap_or_default()},
                "defaultConfiguration": {"level": first.map_or("warning", |f| level(f.severity))},
                "properties": {"category": first.map(|f| f.category.as_str())}
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let fq = match &f.tool {
                Some(t) => format!("{}/{}/{}", f.server, t, f.field),
                None => format!("{}/{}", f.server, f.field),
            };
            let mut location = json!({
                "logicalLocations": [{"name": f.tool.clone().unwrap_or_else(|| f.server.clone()),
                                       "fullyQualifiedName": fq, "kind": "member"}]
            });
            if let Some(file) = scanned.iter().find(|s| {
                std::path::Path::new(s).file_stem().and_then(|x| x.to_str()) == Some(&f.server)
            }) {
                location["physicalLocation"] = json!({"artifactLocation": {"uri": file}});
            }
            json!({
                "ruleId": f.id,
                "ruleIndex": rule_ids.iter().position(|r| *r == f.id),
                "level": level(f.severity),
                "message": {"text": format!("{}: {}", f.excerpt, f.why)},
                "locations": [location],
                "properties": {"severity": f.severity, "server": f.server, "tool": f.tool,
                               "field": f.field, "span": f.span}
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": {"text": e.text()},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": e.target}}}]
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "warden-mcp",
                "version": env!("CARGO_PKG_VERSION"),
                "fullDescription": {"text": format!("Warden's MCP scanner; the rules are documented in {DOCS} of the Warden repository.")},
                "properties": {"documentation": DOCS},
                "rules": rules
            }},
            "invocations": [{
                "executionSuccessful": report.complete(),
                "toolExecutionNotifications": notifications
            }],
            "results": results
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Category;

    fn finding() -> Finding {
        Finding {
            id: "poisoning.secrecy".into(),
            category: Category::Poisoning,
            severity: Severity::High,
            server: "evil".into(),
            tool: Some("add".into()),
            field: "description".into(),
            span: Some((3, 9)),
            excerpt: "do not tell".into(),
            why: "hides things".into(),
        }
    }

    fn report(findings: Vec<Finding>, scanned: &[&str]) -> ScanReport {
        ScanReport {
            scanned: scanned.iter().map(|s| s.to_string()).collect(),
            findings,
            errors: Vec::new(),
            read: None,
        }
    }

    #[test]
    fn sarif_has_the_required_shape() {
        let v: Value = serde_json::from_str(&render(
            &report(vec![finding()], &["x/evil.json"]),
            Format::Sarif,
        ))
        .unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
        assert!(
            !v.to_string().contains("example.invalid"),
            "no made-up domain: {v}"
        );
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "poisoning.secrecy");
        assert_eq!(run["results"][0]["level"], "error");
        assert_eq!(run["results"][0]["ruleIndex"], 0);
        assert_eq!(
            run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "x/evil.json"
        );
    }

    #[test]
    fn table_and_json_say_what_and_where() {
        let t = render(&report(vec![finding()], &["evil.json"]), Format::Table);
        assert!(
            t.contains("HIGH") && t.contains("evil / add") && t.contains("[3..9]"),
            "{t}"
        );
        assert!(t.ends_with("1 finding in evil.json (1 high)\n"), "{t}");
        let j: Value = serde_json::from_str(&render(&report(vec![], &[]), Format::Json)).unwrap();
        assert_eq!(j["summary"]["high"], 0);
        assert_eq!(j["complete"], true);
        assert_eq!(j["errors"], json!([]));
    }

    #[test]
    fn a_failed_scan_is_never_reported_clean() {
        let mut r = report(vec![], &["missing.json"]);
        r.errors.push(ScanError {
            target: "missing.json".into(),
            message: "No such file or directory".into(),
        });
        let t = render(&r, Format::Table);
        assert!(t.contains("ERROR    missing.json: No such file"), "{t}");
        assert!(
            t.contains("scan incomplete") && !t.starts_with("0 findings"),
            "{t}"
        );
        let j: Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert_eq!(j["complete"], false);
        assert_eq!(j["errors"][0]["target"], "missing.json");
        let s: Value = serde_json::from_str(&render(&r, Format::Sarif)).unwrap();
        let inv = &s["runs"][0]["invocations"][0];
        assert_eq!(inv["executionSuccessful"], false);
        assert_eq!(inv["toolExecutionNotifications"][0]["level"], "error");
        assert!(
            inv["toolExecutionNotifications"][0]["message"]["text"]
                .as_str()
                .unwrap()
                .contains("No such file")
        );
    }
}
