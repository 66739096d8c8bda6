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
pub use diagnostic::{LoadError, Position, Problem};
pub use engine::YamlPolicy;
pub use explain::{Explanation, RuleTrace, Status};
pub use limits::Limits;
pub use rego::RegoPolicy;
pub use rule::TIERS;
pub use set::{Document, PolicySet};
pub use source::{EXTENSIONS, Source, Watched, is_policy_file};
