//! Scanner throughput: 1,000 real tools (the benign corpus, renamed copies) on 10 servers
//! side by side — the per-tool rules and the cross-server checks — and one poisoned tool;
//! and 1,000 *different* real tools (those of `bench/tools1000.py`), which is what a real
//! listing holds. Copies of 151 tools flatter the rules: their lazy automaton has met every
//! text after the first copy, while different texts keep it building states (a fresh
//! process pays that on every listing: time `warden mcp scan` for the cold number,
//! docs/mcp.md "Performance"). Here the first sample is cold and the median warm.

use std::path::Path;

use serde_json::Value;
use warden_mcp::{ServerTools, scan_servers};

fn corpus_tools() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/benign");
    let mut tools = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for p in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        tools.extend(v["tools"].as_array().unwrap().iter().cloned());
    }
    tools
}

/// `n` tools spread over 10 servers, each a renamed copy of a real tool.
fn servers(n: usize) -> Vec<ServerTools> {
    let base = corpus_tools();
    let mut servers: Vec<ServerTools> = (0..10)
        .map(|i| ServerTools {
            server: format!("server-{i}"),
            tools: Vec::new(),
            ..ServerTools::default()
        })
        .collect();
    for i in 0..n {
        let mut t = base[i % base.len()].clone();
        // A distinct suffix per copy (a 6-letter LCG word), so the copies do not all look
        // like typosquats of each other, as real servers' names do not.
        let mut x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let suffix: String = (0..6)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                (b'a' + (x >> 59) as u8 % 26) as char
            })
            .collect();
        let name = format!("{}_{suffix}", t["name"].as_str().unwrap());
        t["name"] = Value::String(name);
        servers[i % 10].tools.push(t);
    }
    servers
}

#[divan::bench]
fn scan_1000_tools(bencher: divan::Bencher) {
    let s = servers(1000);
    bencher.bench(|| scan_servers(divan::black_box(&s)));
}

#[divan::bench]
fn scan_1000_tools_one_server(bencher: divan::Bencher) {
    let tools: Vec<Value> = servers(1000).into_iter().flat_map(|s| s.tools).collect();
    let s = vec![ServerTools {
        server: "big".into(),
        tools,
        ..ServerTools::default()
    }];
    bencher.bench(|| scan_servers(divan::black_box(&s)));
}

/// The first 1,000 tools of the real servers' captures (`bench/detect/data/tools/servers-h*`),
/// in file order, on one server, as `bench/tools1000.py` writes them for the binary.
fn distinct_real_tools() -> Vec<ServerTools> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/detect/data/tools");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("servers-h") && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    let mut tools = Vec::new();
    for p in files {
        for line in std::fs::read_to_string(p).unwrap().lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            tools.push(row["tool"].clone());
        }
    }
    assert!(tools.len() >= 1000, "only {} real tools", tools.len());
    tools.truncate(1000);
    vec![ServerTools {
        server: "real".into(),
        tools,
        ..ServerTools::default()
    }]
}

#[divan::bench(sample_count = 10)]
fn scan_1000_distinct_real_tools(bencher: divan::Bencher) {
    let s = distinct_real_tools();
    bencher.bench(|| scan_servers(divan::black_box(&s)));
}

#[divan::bench]
fn scan_one_poisoned_tool(bencher: divan::Bencher) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/malicious/invariant-direct-poisoning.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let s = vec![ServerTools::from_json("evil", &v).unwrap()];
    bencher.bench(|| scan_servers(divan::black_box(&s)));
}

fn main() {
    divan::main();
}
