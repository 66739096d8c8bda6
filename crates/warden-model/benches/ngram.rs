//! The n-gram texts head: scoring a short tool output, a 4 KiB file and a 64 KiB file (whole
//! text and up to 64 pieces), and 1,000 tool cards' worth of text. Needs no model files.
//! Run: `cargo bench -p warden-model --bench ngram`.

use warden_model::ngram::NgramHead;

fn head() -> NgramHead {
    NgramHead::bundled_texts()
        .expect("the committed head loads")
        .expect("the source tree has heads/ngram-texts.json")
}

fn text(bytes: usize) -> String {
    let line = "- Step 12: run `make check` in the build directory and compare the output.\n";
    line.repeat(bytes / line.len() + 1)[..bytes].to_owned()
}

#[divan::bench(args = [80, 4096, 65536])]
fn score_text(b: divan::Bencher, bytes: usize) {
    let head = head();
    let t = text(bytes);
    b.bench(|| head.score(divan::black_box(&t)));
}

/// 1,000 texts of ~600 bytes (a real tool card's median is ~150 tokens).
#[divan::bench]
fn score_1000_cards(b: divan::Bencher) {
    let head = head();
    let cards: Vec<String> = (0..1000)
        .map(|i| format!("tool_{i}\n{}", text(600)))
        .collect();
    b.bench(|| {
        cards
            .iter()
            .filter(|c| head.score(divan::black_box(c)).flagged)
            .count()
    });
}

fn main() {
    divan::main();
}
