//! An action as a door receives it (HTTP body, `check --input`, the Python package): arbitrary
//! bytes → `Action::from_json` → `Warden::decide`. Properties: nothing panics; an action that
//! does not validate is denied; self-protection walks any arguments within its bounds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden::{Action, PolicySet, Verdict, Warden};

fn warden() -> &'static Warden {
    static W: OnceLock<Warden> = OnceLock::new();
    W.get_or_init(|| {
        let policy = include_str!("../../examples/agents.yaml");
        let set = PolicySet::from_yaml("agents.yaml", policy).expect("the example loads");
        let dir = std::env::temp_dir().join("warden-fuzz-protect");
        let _ = std::fs::create_dir_all(&dir);
        Warden::builder()
            .policy_set(set)
            .protect(dir.join("settings.json"))
            .build()
            .expect("builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(action) = Action::from_json(text) else {
        return;
    };
    let d = warden().decide(&action);
    if action.validate().is_err() {
        assert_eq!(
            d.verdict,
            Verdict::Deny,
            "an invalid action was not denied: {d:?}"
        );
    }
    // Explaining the same action agrees on the verdict.
    let e = warden().explain(&action);
    assert_eq!(e.decision.verdict, d.verdict, "{action:?}");
});
