// This file reports measurements to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

//! Measurement, not a pass/fail test (tests never assert on time): the latency the proxy adds
//! to a `tools/call`, side by side with a direct connection to the same real server
//! (server-everything's `echo`), sequential calls after a warm-up.
//!
//! A third side is the floor of what any stdio proxy adds: the same server behind
//! `cat | server | cat`, which copies bytes and decides nothing but puts the same two extra
//! pipe hops (and process wake-ups) on every round trip as the proxy does.
//!
//! Run: `cargo test -p warden-cli --test mcp_latency -- --ignored --nocapture`
//! (docs/mcp.md records the numbers with the machine and the build; `WARDEN_BIN` measures
//! another build of `warden`, e.g. a release one).

mod mcp_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use mcp_common::*;
use serde_json::json;

const WARMUP: usize = 200;
const CALLS: usize = 2000;

/// Round-trip times (ns) of `CALLS` echo calls through `argv`.
fn measure(argv: &[String]) -> Vec<u64> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut rpc = |w: &mut std::process::ChildStdin, msg: serde_json::Value, wait: bool| {
        writeln!(w, "{msg}").unwrap();
        w.flush().unwrap();
        if !wait {
            return;
        }
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v.get("id") == msg.get("id") {
                break;
            }
        }
    };
    rpc(
        &mut w,
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}),
        true,
    );
    rpc(
        &mut w,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        false,
    );
    rpc(
        &mut w,
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        true,
    );
    let mut times = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let msg = json!({"jsonrpc":"2.0","id": 10 + i,"method":"tools/call","params":{"name":"echo","arguments":{"message":"ping"}}});
        let start = Instant::now();
        rpc(&mut w, msg, true);
        if i >= WARMUP {
            times.push(start.elapsed().as_nanos() as u64);
        }
    }
    drop(w);
    let _ = child.kill();
    let _ = child.wait();
    times.sort_unstable();
    times
}

fn pct(t: &[u64], p: f64) -> f64 {
    t[((t.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn proxy_added_latency_per_tools_call() {
    let server = npm_server("mcp-server-everything");
    let policy = gateway_policy();
    let mut proxied = vec![
        warden().display().to_string(),
        "mcp".into(),
        "proxy".into(),
        "--policy".into(),
        policy.display().to_string(),
        "--".into(),
    ];
    proxied.extend(server.iter().cloned());
    let mut relayed = vec![
        "sh".to_string(),
        "-c".into(),
        r#"cat | "$@" | cat"#.into(),
        "relay".into(),
    ];
    relayed.extend(server.iter().cloned());
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("warden: {}", warden().display());
    println!("load average before: {}", load().trim());
    // Alternate runs so machine noise hits every side alike.
    let mut direct = Vec::new();
    let mut through = Vec::new();
    let mut relay = Vec::new();
    for _ in 0..2 {
        direct.extend(measure(&server));
        through.extend(measure(&proxied));
        relay.extend(measure(&relayed));
    }
    println!("load average after: {}", load().trim());
    direct.sort_unstable();
    through.sort_unstable();
    relay.sort_unstable();
    println!("calls per side: {}", direct.len());
    println!("| | p50 µs | p90 µs | p99 µs |");
    println!("|---|---|---|---|");
    for (name, t) in [
        ("direct", &direct),
        ("through `cat \\| server \\| cat`", &relay),
        ("through the proxy", &through),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            pct(t, 0.5),
            pct(t, 0.9),
            pct(t, 0.99)
        );
    }
    println!(
        "| added by the proxy (p50) | {:.1} | | |",
        pct(&through, 0.5) - pct(&direct, 0.5)
    );
    println!(
        "| added by the relay (p50) | {:.1} | | |",
        pct(&relay, 0.5) - pct(&direct, 0.5)
    );
    println!(
        "| proxy over relay (p50) | {:.1} | | |",
        pct(&through, 0.5) - pct(&relay, 0.5)
    );
}
