//! Findings for people (a table), for programs (JSON) and for code-scanning tools (SARIF 2.1.0).

use serde_json::{Value, json};

use crate::finding::{Finding, Severity};

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

/// Render findings in a format. `artifact` is the scanned file, when there is one, so SARIF
/// viewers can point at it.
pub fn render(findings: &[Finding], format: Format, scanned: &[String]) -> String {
    match format {
        Format::Table => table(findings, scanned),
        Format::Json => {
            pretty(&json!({"scanned": scanned, "findings": findings, "summary": summary(findings)}))
        }
        Format::Sarif => pretty(&sarif(findings, scanned)),
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

fn table(findings: &[Finding], scanned: &[String]) -> String {
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
    let n = findings.len();
    let by: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| (s, findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, c)| *c > 0)
        .map(|(s, c)| format!("{c} {s}"))
        .collect();
    out.push_str(&format!(
        "{n} finding{} in {}{}\n",
        if n == 1 { "" } else { "s" },
        scanned.join(", "),
        if by.is_empty() {
            String::new()
        } else {
            format!(" ({})", by.join(", "))
        }
    ));
    out
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn sarif(findings: &[Finding], scanned: &[String]) -> Value {
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
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "warden-mcp",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/warden/docs/mcp.md",
                "rules": rules
            }},
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

    #[test]
    fn sarif_has_the_required_shape() {
        let v: Value = serde_json::from_str(&render(
            &[finding()],
            Format::Sarif,
            &["x/evil.json".into()],
        ))
        .unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
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
        let t = render(&[finding()], Format::Table, &["evil.json".into()]);
        assert!(
            t.contains("HIGH") && t.contains("evil / add") && t.contains("[3..9]"),
            "{t}"
        );
        assert!(t.ends_with("1 finding in evil.json (1 high)\n"), "{t}");
        let j: Value = serde_json::from_str(&render(&[], Format::Json, &[])).unwrap();
        assert_eq!(j["summary"]["high"], 0);
    }
}
