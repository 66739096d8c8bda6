// This example reports measurements to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

//! Measure the scanner's rules on labelled tool sets outside the repository's corpus.
//!
//! ```text
//! cargo run -p warden-mcp --example detect_eval -- [--show] <file or dir>...
//! ```
//!
//! Each argument is a saved `tools/list` capture (`*.json`, one server, benign), or a
//! `tools/<source>.jsonl` file of the detection data set (one tool per line, with `label`,
//! `class` and `server`), or a directory of either. Benign tools are scanned side by side,
//! server by server, as a user with all of them configured would; a benign tool with a
//! finding of medium or above (capability notes and coverage notes excluded) is a false
//! positive. Each attack row is scanned with its own server; it is caught when any finding
//! of medium or above lands on it; with `--beside-benign` it is scanned side by side with
//! every benign server (so collisions with real tools can be seen). `--show` lists every
//! false positive and every miss; `--show-source=NAME` the misses of one source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use warden_mcp::{Category, Finding, ServerTools, Severity, scan_servers};

fn counts(f: &Finding) -> bool {
    f.severity >= Severity::Medium
        && !matches!(f.category, Category::Capability | Category::Incomplete)
}

fn files(arg: &Path, out: &mut Vec<PathBuf>) {
    if arg.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(arg)
            .unwrap_or_else(|e| panic!("{}: {e}", arg.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            files(&e, out);
        }
    } else if arg.extension().is_some_and(|x| x == "json" || x == "jsonl") {
        out.push(arg.to_path_buf());
    }
}

fn main() {
    let mut show = false;
    let mut beside = false;
    let mut only: Option<String> = None;
    let mut paths = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--show" {
            show = true;
        } else if a == "--beside-benign" {
            beside = true;
        } else if let Some(src) = a.strip_prefix("--show-source=") {
            only = Some(src.to_string());
        } else {
            files(Path::new(&a), &mut paths);
        }
    }
    // Benign servers by name; attack rows as (source, class, server, tool).
    let mut benign: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut attacks: Vec<(String, String, String, Value)> = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        if p.extension().is_some_and(|x| x == "jsonl") {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let row: Value = serde_json::from_str(line).unwrap();
                let s = |k: &str| row[k].as_str().unwrap_or("").to_string();
                if s("label") == "benign" {
                    benign
                        .entry(format!("{}:{}", s("source"), s("server")))
                        .or_default()
                        .push(row["tool"].clone());
                } else {
                    attacks.push((s("source"), s("class"), s("server"), row["tool"].clone()));
                }
            }
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            let name = ServerTools::name_in(&v)
                .map(String::from)
                .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned());
            if let Some(s) = ServerTools::from_json(name, &v) {
                benign.entry(s.server.clone()).or_default().extend(s.tools);
            }
        }
    }

    let servers: Vec<ServerTools> = benign
        .into_iter()
        .map(|(server, tools)| ServerTools {
            server,
            tools,
            ..ServerTools::default()
        })
        .collect();
    let total: usize = servers.iter().map(|s| s.tools.len()).sum();
    let started = std::time::Instant::now();
    for together in [false, true] {
        if total == 0 || (together && std::env::var_os("ALONE_ONLY").is_some()) {
            break;
        }
        // Alone: each server on its own (the per-tool rules). Together: all side by side,
        // which adds the cross-server checks (collisions, look-alike names, references).
        let findings: Vec<Finding> = if together {
            scan_servers(&servers)
        } else {
            servers
                .iter()
                .flat_map(|s| scan_servers(std::slice::from_ref(s)))
                .collect()
        };
        let mut flagged: BTreeMap<(String, String), Vec<&Finding>> = BTreeMap::new();
        for f in findings.iter().filter(|f| counts(f)) {
            flagged
                .entry((f.server.clone(), f.tool.clone().unwrap_or_default()))
                .or_default()
                .push(f);
        }
        let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
        for fs in flagged.values() {
            let mut ids: Vec<&str> = fs.iter().map(|f| f.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                *by_rule.entry(id).or_default() += 1;
            }
        }
        println!(
            "benign, {}: {} tools on {} servers, {} flagged ({:.2}%)",
            if together {
                "side by side"
            } else {
                "each server alone"
            },
            total,
            servers.len(),
            flagged.len(),
            100.0 * flagged.len() as f64 / total as f64
        );
        for (id, n) in &by_rule {
            println!("  {id}: {n} tools");
        }
        if show && (!together || std::env::var_os("SHOW_TOGETHER").is_some()) {
            for ((server, tool), fs) in &flagged {
                for f in fs {
                    println!(
                        "  FP {server} / {tool}: {} at {}: {}",
                        f.id, f.field, f.excerpt
                    );
                }
            }
        }
    }

    eprintln!("benign scans took {:?}", started.elapsed());
    if !attacks.is_empty() {
        // (source, class) -> (caught, total)
        let mut table: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
        let mut by_class: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        // The benign servers reduced to their tools' names: all the cross-server checks
        // need, and the per-tool rules on them (whose findings are not counted here) are
        // not run again for every attack.
        let names_only: Vec<ServerTools> = servers
            .iter()
            .map(|s| ServerTools {
                server: s.server.clone(),
                tools: s
                    .tools
                    .iter()
                    .map(|t| serde_json::json!({"name": t["name"]}))
                    .collect(),
                ..ServerTools::default()
            })
            .collect();
        for (source, class, server, tool) in &attacks {
            let s = ServerTools {
                server: format!("attack:{server}"),
                tools: vec![tool.clone()],
                ..ServerTools::default()
            };
            // Beside the benign servers (a user who also has them configured), the
            // cross-server checks can see what the attack imitates.
            let mut all = vec![s];
            if beside {
                all.extend(names_only.iter().cloned());
            }
            let caught = scan_servers(&all)
                .iter()
                .any(|f| counts(f) && f.server.starts_with("attack:"));
            for e in [
                table.entry((source.clone(), class.clone())).or_default(),
                by_class.entry(class.clone()).or_default(),
            ] {
                e.1 += 1;
                e.0 += usize::from(caught);
            }
            if (show || only.as_deref() == Some(source.as_str())) && !caught {
                let d = tool["description"].as_str().unwrap_or("");
                println!(
                    "  MISS {source} [{class}] {}: {}",
                    tool["name"],
                    d.chars().take(200).collect::<String>()
                );
            }
        }
        let (c, t) = by_class
            .values()
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        println!(
            "attacks: {c}/{t} caught ({:.2})",
            c as f64 / t.max(1) as f64
        );
        for (class, (c, t)) in &by_class {
            println!("  {class}: {c}/{t} ({:.2})", *c as f64 / *t as f64);
        }
        for ((source, class), (c, t)) in &table {
            println!("  {source} / {class}: {c}/{t}");
        }
    }
}
