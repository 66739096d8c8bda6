//! Embedding speed: one 128-token window, a short tool card, and a text of 8 windows.
//! Needs the model in `WARDEN_MODEL_DIR` (`warden model fetch`); without it the benches say so
//! and measure nothing. Run: `WARDEN_MODEL_DIR=… cargo bench -p warden-model --bench embed`.
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

#[divan::bench]
fn text_8_windows(b: divan::Bencher) {
    let Some(m) = model() else { return };
    // 126 + 7 × 64 = 574 content tokens: eight windows, one batch.
    let text = "word ".repeat(574);
    b.bench(|| m.embed(divan::black_box(&text)).map(|e| e.windows.len()));
}

fn main() {
    divan::main();
}
