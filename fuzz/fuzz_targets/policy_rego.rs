//! Rego loading: any text either compiles or gives problems; a compiled policy decides
//! within its limits without panicking or overflowing the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Action;
use warden_policy::{PolicySet, Source};

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts on every panic, even one the code catches. Warden catches panics
    // inside regorus and denies (as a server built with unwinding does), so replace its hook:
    // a panic that escapes the policy engine still reaches libfuzzer-sys' `catch_unwind` and
    // aborts, and is reported as a crash.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // The message only: printing a backtrace from deep inside regorus can itself run
        // out of stack.
        std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    });
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
