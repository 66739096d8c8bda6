//! The hashed n-gram features of texts, for the training side (`bench/detect/ngram.py
//! --featurizer`): so a classifier is trained on exactly what `warden_model::ngram` computes.
//!
//! Reads one JSON string per line on stdin; writes one line per text on stdout, its features
//! as `slot:value` pairs separated by spaces (values as Rust prints an `f32`, which reads back
//! to the same `f32`). The only argument is `bits` (slots per family, as a power of two).
#![allow(clippy::print_stderr)] // a tool for the training scripts: its errors go to stderr

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let bits = match std::env::args().nth(1).map(|b| b.parse::<u32>()) {
        Some(Ok(b)) if (1..=warden_model::ngram::MAX_BITS).contains(&b) => b,
        _ => {
            eprintln!(
                "usage: ngram_features BITS (1..={}) < texts.jsonl",
                warden_model::ngram::MAX_BITS
            );
            return ExitCode::from(2);
        }
    };
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (i, line) in stdin.lines().enumerate() {
        let text: String = match line
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string()))
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("line {}: {e}", i + 1);
                return ExitCode::FAILURE;
            }
        };
        let mut first = true;
        for (slot, value) in warden_model::ngram::features(&text, bits) {
            let sep = if first { "" } else { " " };
            first = false;
            if write!(out, "{sep}{slot}:{value}").is_err() {
                return ExitCode::FAILURE;
            }
        }
        if writeln!(out).is_err() {
            return ExitCode::FAILURE;
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
