// This file reports measurements to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

//! Detection quality on the labelled corpus (`corpus/`): recall on published poisoning
//! examples and false positives on real servers' tools, per category, with floors.
//!
//! - `corpus/benign/*.json`: real tool lists (captured from the npm servers, or transcribed
//!   from well-known servers' source), scanned **side by side** as a user with all of them
//!   configured would. A benign tool with any finding of medium or above (capability notes
//!   excluded: they are informational) is a false positive.
//! - `corpus/malicious/*.json`: examples from published write-ups, each with its `source`
//!   URL and the `expect`ed category and tool. An example is caught when the scanner reports
//!   a finding of that category, medium or above, on that tool.
//!
//! Run with `--nocapture` to see the table; docs/mcp.md records it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use warden_mcp::{Category, Finding, ServerTools, Severity, scan_servers};

const RECALL_FLOOR: f64 = 0.95;
const FALSE_POSITIVE_CEILING: f64 = 0.02;

fn corpus(dir: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(
                v["source"].as_str().is_some_and(|s| s.starts_with("http")),
                "{}: needs a source URL",
                p.display()
            );
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

fn counts(f: &Finding) -> bool {
    f.severity >= Severity::Medium && f.category != Category::Capability
}

#[test]
fn precision_and_recall_meet_the_floors() {
    // Benign: every real server side by side.
    let benign: Vec<ServerTools> = corpus("benign")
        .iter()
        .map(|(name, v)| ServerTools::from_json(name.as_str(), v).unwrap())
        .collect();
    let benign_tools: usize = benign.iter().map(|s| s.tools.len()).sum();
    let findings = scan_servers(&benign);
    let mut false_positives: BTreeMap<Category, Vec<String>> = BTreeMap::new();
    for f in findings.iter().filter(|f| counts(f)) {
        let who = format!(
            "{}/{} ({})",
            f.server,
            f.tool.as_deref().unwrap_or("-"),
            f.id
        );
        false_positives.entry(f.category).or_default().push(who);
    }
    let fp_tools: std::collections::BTreeSet<(String, Option<String>)> = findings
        .iter()
        .filter(|f| counts(f))
        .map(|f| (f.server.clone(), f.tool.clone()))
        .collect();

    // Malicious: each example on its own (with the servers it needs beside it).
    let mut caught: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for (name, v) in corpus("malicious") {
        let servers: Vec<ServerTools> = match v.get("side_by_side").and_then(Value::as_object) {
            Some(map) => map
                .iter()
                .map(|(s, t)| ServerTools::from_json(s.as_str(), t).unwrap())
                .collect(),
            None => vec![ServerTools::from_json(name.as_str(), &v).unwrap()],
        };
        let category = v["expect"]["category"].as_str().unwrap().to_string();
        let tool = v["expect"]["tool"].as_str();
        let found = scan_servers(&servers).iter().any(|f| {
            counts(f)
                && f.category.as_str() == category
                && (tool.is_none() || f.tool.as_deref() == tool)
        });
        let e = caught.entry(category).or_default();
        e.1 += 1;
        if found {
            e.0 += 1;
        } else {
            missed.push(name);
        }
    }

    println!(
        "| category | caught / examples | recall | benign tools flagged (of {benign_tools}) | precision |"
    );
    println!("|---|---|---|---|---|");
    let mut all = (0, 0);
    for (cat, (hit, total)) in &caught {
        let fp = false_positives
            .iter()
            .filter(|(c, _)| c.as_str() == cat)
            .map(|(_, v)| v.len())
            .sum::<usize>();
        println!(
            "| {cat} | {hit} / {total} | {:.1}% | {fp} | {:.1}% |",
            100.0 * *hit as f64 / *total as f64,
            100.0 * *hit as f64 / (*hit + fp).max(1) as f64
        );
        all = (all.0 + hit, all.1 + total);
    }
    let recall = all.0 as f64 / all.1 as f64;
    let fp_rate = fp_tools.len() as f64 / benign_tools as f64;
    println!(
        "| **all** | {} / {} | {:.1}% | {} ({:.2}%) | |",
        all.0,
        all.1,
        100.0 * recall,
        fp_tools.len(),
        100.0 * fp_rate
    );
    println!("missed: {missed:?}");
    println!("false positives: {false_positives:?}");

    for (cat, (hit, total)) in &caught {
        let r = *hit as f64 / *total as f64;
        assert!(
            r >= RECALL_FLOOR,
            "recall on {cat} is {:.1}% (floor {:.0}%); missed: {missed:?}",
            100.0 * r,
            100.0 * RECALL_FLOOR
        );
    }
    assert!(
        fp_rate <= FALSE_POSITIVE_CEILING,
        "{} of {benign_tools} benign tools flagged ({:.2}%, ceiling {:.0}%): {false_positives:?}",
        fp_tools.len(),
        100.0 * fp_rate,
        100.0 * FALSE_POSITIVE_CEILING
    );
    assert!(
        benign_tools >= 100,
        "the benign corpus should hold at least 100 real tools"
    );
}
