//! Rego loading: any text either compiles or gives problems; a compiled policy decides
//! within its limits without panicking or overflowing the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Action;
use warden_policy::{PolicySet, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicySet::compile(&[Source::new("fuzz.rego", text)]) {
        Ok(set) => {
            let action = Action::new("payments.transfer")
                .with_arg("amount", 500)
                .with_arg("n", 1_000_000_000);
            let _ = set.decide(&action);
        }
        Err(e) => assert!(!e.problems().is_empty()),
    }
});
