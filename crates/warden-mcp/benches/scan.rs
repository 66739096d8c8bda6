//! Scanner throughput: 1,000 real tools (the benign corpus, renamed copies) on 10 servers
//! side by side — the per-tool rules and the cross-server checks — and one poisoned tool.

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
