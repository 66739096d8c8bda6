//! Policy YAML loading: any bytes either compile or give problems with positions inside the
//! file; a compiled set decides without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Action;
use warden_policy::{PolicySet, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicySet::compile(&[Source::new("fuzz.yaml", text)]) {
        Ok(set) => {
            let action = Action::new("http_request")
                .with_arg("url", "https://api.github.com/")
                .with_arg("amount", 5);
            let _ = set.decide(&action);
        }
        Err(e) => {
            assert!(!e.problems().is_empty());
            for p in e.problems() {
                assert!(p.position().offset <= text.len(), "{p}");
            }
        }
    }
});
