#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod condition;
mod diagnostic;
mod domain;
mod engine;
mod explain;
mod pattern;
mod rule;
mod set;
pub mod testing;
mod yaml;

pub use diagnostic::{LoadError, Position, Problem, Source};
pub use engine::YamlPolicy;
pub use explain::{Explanation, RuleTrace, Status};
pub use set::{Document, EXTENSIONS, PolicySet};
