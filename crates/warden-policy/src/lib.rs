#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod backend;
mod cedar;
mod condition;
mod diagnostic;
mod domain;
mod engine;
mod explain;
mod fast;
#[doc(hidden)]
pub mod fuzzing;
mod glob_index;
mod limits;
pub mod paths;
mod pattern;
mod rego;
mod rule;
pub mod runtime;
pub mod saga;
mod set;
mod source;
pub mod testing;
pub mod understand;
pub mod verify;
mod yaml;

pub use cedar::CedarPolicy;

/// The context key of goal drift: Warden writes `context.drift` (a number in [0, 2]) when an
/// action declares its task and a model is configured (crate `warden`, module `drift`); the
/// policy engines only read it.
pub const DRIFT_CONTEXT: &str = "drift";

/// `Ok` when `action` carries a measured goal drift (a number in `context.drift`); the reason
/// otherwise. A Rego document that mentions `drift` requires it: in Rego an undefined field
/// makes a rule over it silently not fire. (YAML conditions and Cedar already fail closed on
/// a missing key.)
pub(crate) fn require_drift(action: &warden_core::Action) -> Result<(), String> {
    if action
        .context
        .get(DRIFT_CONTEXT)
        .is_some_and(serde_json::Value::is_number)
    {
        Ok(())
    } else {
        Err(
            "context.drift is absent: goal drift is measured only when the action declares \
             context.task and Warden runs with the local model"
                .into(),
        )
    }
}
pub use diagnostic::{LoadError, Position, Problem};
pub use engine::YamlPolicy;
pub use explain::{Explanation, RuleTrace, Status};
pub use limits::Limits;
pub use rego::RegoPolicy;
pub use rule::TIERS;
pub use set::{Document, PolicySet};
pub use source::{EXTENSIONS, Source, Watched, is_policy_file};
