//! A Claude Code hook payload whose `tool_input` the model wrote: arbitrary bytes → the
//! hook's own payload type → the actions Warden judges → decisions with the example policy.
//! Properties: nothing panics; every file path judged is absolute when the payload has a
//! `cwd`; an action for a path is never judged "inside the project" unless it is under `cwd`.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden::{PolicySet, Warden};

// The hook's mapping, compiled here as it is in the binary (it lives in warden-cli).
#[allow(dead_code)]
#[path = "../../crates/warden-cli/src/hook/claude.rs"]
mod claude;

fn warden() -> &'static Warden {
    static W: OnceLock<Warden> = OnceLock::new();
    W.get_or_init(|| {
        let policy = include_str!("../../examples/claude-code.yaml");
        Warden::new(PolicySet::from_yaml("claude-code.yaml", policy).expect("the example loads"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<claude::Payload>(data) else {
        return;
    };
    let Ok(actions) = payload.actions() else {
        return;
    };
    let cwd = payload.cwd();
    for a in &actions {
        if let (Some(path), Some(cwd)) = (a.arg_str("path"), &cwd) {
            if !path.is_empty() {
                assert!(Path::new(path).is_absolute(), "{path:?} from {cwd:?}");
            }
            if a.context["inside_project"] == true {
                assert!(
                    Path::new(path).starts_with(cwd),
                    "{path:?} is not under {cwd:?}"
                );
            }
        }
        let _ = warden().decide(a);
    }
});
