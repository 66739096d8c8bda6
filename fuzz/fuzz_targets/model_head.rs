//! Classifier head files (`Head::from_json`) are input: a head is read from JSON and then run
//! on every embedding. Any text must load or be refused cleanly (never panic, never allocate
//! without bound); a head that loads must score any unit embedding without panicking, and
//! its score is a probability or NaN (which the classifier counts as flagged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_model::{EMBED_DIM, Head};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(head) = Head::from_json(text) else {
        return;
    };
    assert!((0.0..=1.0).contains(&head.threshold()), "{text:?}");
    let mut e = [0f32; EMBED_DIM];
    for (i, v) in e.iter_mut().enumerate() {
        // A fixed unit vector with mixed signs.
        *v = if i % 3 == 0 { -1.0 } else { 1.0 } / (EMBED_DIM as f32).sqrt();
    }
    for embedding in [e, [0f32; EMBED_DIM]] {
        let s = head.score(&embedding);
        assert!(s.is_nan() || (0.0..=1.0).contains(&s), "{text:?}: {s}");
    }
});
