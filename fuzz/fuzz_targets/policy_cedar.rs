//! Cedar loading: any text either compiles or gives problems; never a panic or a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Action;
use warden_policy::{PolicySet, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicySet::compile(&[Source::new("/nonexistent/fuzz.cedar", text)]) {
        Ok(set) => {
            let action = Action::new("deploy")
                .with_agent("ci-bot")
                .with_arg("n", 5.5);
            let _ = set.decide(&action);
        }
        Err(e) => assert!(!e.problems().is_empty()),
    }
});
