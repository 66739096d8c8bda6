#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cedar;
mod condition;
mod diagnostic;
mod domain;
mod engine;
mod explain;
mod fast;
mod pattern;
mod rego;
mod rule;
mod set;
pub mod testing;
mod yaml;

pub use cedar::CedarPolicy;
pub use diagnostic::{LoadError, Position, Problem, Source};
pub use engine::YamlPolicy;
pub use explain::{Explanation, RuleTrace, Status};
pub use rego::RegoPolicy;
pub use set::{Document, EXTENSIONS, PolicySet};
