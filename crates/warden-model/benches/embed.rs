//! Embedding speed: one 128-token window, a short tool card, texts of 8 and 32 windows, and 64
//! tool cards one by one and batched across cards.
//! Needs the model in `WARDEN_MODEL_DIR` (`warden model fetch`); without it the benches say so
//! and measure nothing. Run: `WARDEN_MODEL_DIR=… cargo bench -p warden-model --bench embed`.
//! The model runs on `RAYON_NUM_THREADS` threads (default: the cores): run once with
//! `RAYON_NUM_THREADS=1` and once with `RAYON_NUM_THREADS=2` to compare.
#![allow(clippy::print_stderr)]

use std::sync::OnceLock;

use warden_model::Model;

fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = std::env::var_os("WARDEN_MODEL_DIR")?;
            match Model::load(std::path::Path::new(&dir)) {
                Ok(m) => Some(m),
                Err(e) => {
                    eprintln!("no model: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Exactly 126 content tokens (one full window): "word" is one token.
fn full_window() -> String {
    "word ".repeat(126)
}

#[divan::bench]
fn window_128_tokens(b: divan::Bencher) {
    let Some(m) = model() else {
        eprintln!("WARDEN_MODEL_DIR is not set: nothing measured");
        return;
    };
    let text = full_window();
    assert_eq!(m.window_ids(&text).map(|w| w.len()).ok(), Some(1));
    b.bench(|| m.embed(divan::black_box(&text)).map(|e| e.windows.len()));
}

#[divan::bench]
fn tool_card_short(b: divan::Bencher) {
    let Some(m) = model() else { return };
    let card =
        "read_file\nRead a file from the workspace and return its contents.\npath: Path to read";
    b.bench(|| m.embed(divan::black_box(card)).map(|e| e.windows.len()));
}

/// `tokens` one-token words from a cycle of 37, so that no two windows are the same (identical
/// windows would be embedded once).
fn varied_text(tokens: usize) -> String {
    const WORDS: [&str; 37] = [
        "the", "cat", "dog", "house", "red", "blue", "green", "tree", "water", "fire", "stone",
        "river", "city", "road", "book", "paper", "light", "night", "day", "sun", "moon", "star",
        "bird", "fish", "horse", "table", "chair", "door", "window", "garden", "music", "song",
        "game", "ball", "ship", "train", "car",
    ];
    (0..tokens)
        .map(|i| WORDS[i % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn text_of_windows(b: divan::Bencher, windows: usize) {
    let Some(m) = model() else { return };
    // 126 + (windows − 1) × 64 content tokens.
    let text = varied_text(126 + (windows - 1) * 64);
    assert_eq!(m.window_ids(&text).map(|w| w.len()).ok(), Some(windows));
    b.bench(|| m.embed(divan::black_box(&text)).map(|e| e.windows.len()));
}

#[divan::bench]
fn text_8_windows(b: divan::Bencher) {
    text_of_windows(b, 8);
}

#[divan::bench]
fn text_32_windows(b: divan::Bencher) {
    text_of_windows(b, 32);
}

/// 64 tool cards of different lengths (10–60 tokens), as a `tools/list` has them.
fn cards() -> Vec<String> {
    (0..64)
        .map(|i| {
            format!(
                "tool_{i}\nRead a file from the workspace and return its contents.{}\npath: Path to read",
                " It also lists the directory when asked.".repeat(i % 6)
            )
        })
        .collect()
}

#[divan::bench]
fn tool_cards_64_one_by_one(b: divan::Bencher) {
    let Some(m) = model() else { return };
    let cards = cards();
    b.bench(|| {
        cards
            .iter()
            .map(|c| m.embed(divan::black_box(c)).map(|e| e.windows.len()))
            .collect::<Vec<_>>()
    });
}

#[divan::bench]
fn tool_cards_64_batched(b: divan::Bencher) {
    let Some(m) = model() else { return };
    let cards = cards();
    let refs: Vec<&str> = cards.iter().map(String::as_str).collect();
    b.bench(|| m.embed_batch(divan::black_box(&refs)).map(|e| e.len()));
}

fn main() {
    divan::main();
}
