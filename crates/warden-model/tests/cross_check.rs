//! This runtime against the training side's independent implementation (`bench/detect/embed.py`,
//! numpy): the same tool cards byte for byte, the same window token ids, and the same
//! embeddings (max abs difference ≤ 1e-4, cosine ≥ 0.999). The fixtures are committed under
//! `bench/detect/fixtures/`; the embedding check needs the model (`WARDEN_MODEL_DIR`; under CI a
//! missing model fails).
#![allow(clippy::print_stderr)]

use std::path::PathBuf;

use serde_json::Value;
use warden_model::{Model, tool_card};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/detect/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn tool_cards_match_the_training_side_byte_for_byte() {
    let cases = fixture("tool_cards.json");
    let cases = cases["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        assert_eq!(
            tool_card(&case["tool"]),
            case["card"].as_str().expect("card"),
            "tool {}",
            case["tool"]
        );
    }
}

#[test]
fn embeddings_match_the_numpy_reference() {
    let dir = match std::env::var_os("WARDEN_MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but WARDEN_MODEL_DIR is not set: run `warden model fetch` first"
            );
            eprintln!("skipped: WARDEN_MODEL_DIR is not set (run `warden model fetch`)");
            return;
        }
    };
    let model = Model::load(&dir).expect("model loads");
    let fx = fixture("embeddings.json");
    assert_eq!(fx["model_sha256"], warden_model::MODEL_SHA256);
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() >= 3);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let expected_ids: Vec<Vec<u32>> =
            serde_json::from_value(case["window_ids"].clone()).expect("ids");
        assert_eq!(
            model.window_ids(text).expect("tokenizes"),
            expected_ids,
            "{text:?}"
        );
        let expected: Vec<Vec<f32>> =
            serde_json::from_value(case["embeddings"].clone()).expect("embeddings");
        let got = model.embed(text).expect("embeds");
        assert_eq!(got.windows.len(), expected.len(), "{text:?}");
        for (w, e) in got.windows.iter().zip(&expected) {
            let max_diff = w
                .embedding
                .iter()
                .zip(e)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let cosine: f32 = w.embedding.iter().zip(e).map(|(a, b)| a * b).sum();
            assert!(max_diff <= 1e-4, "{text:?}: max abs difference {max_diff}");
            assert!(cosine >= 0.999, "{text:?}: cosine {cosine}");
        }
    }
}
