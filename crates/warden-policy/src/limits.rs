//! Bounds on everything a policy file or a request controls.
//!
//! A policy set is loaded from files an operator wrote, but files are edited by hand, copied
//! from the internet, or planted by whoever can write the policy directory; requests come from
//! the agent being governed. Either side must not be able to make one load or one decision take
//! unbounded memory, stack or time. Every limit here has a default that is far above what a
//! real policy needs and far below what would hurt a server; exceeding one is a load error (at
//! load) or an error that denies (at decision time).

use std::time::Duration;

/// The bounds a [`crate::PolicySet`] is loaded and evaluated under. `Limits::default()` is what
/// [`crate::PolicySet::load`] uses; see `docs/policy.md` for each default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest policy file (and Cedar schema or entities file) read, in bytes.
    pub max_file_bytes: usize,
    /// Most documents (files) in one set.
    pub max_documents: usize,
    /// Most rules in one document (YAML rules, Cedar policies, Rego rules and functions).
    pub max_rules_per_document: usize,
    /// Most YAML nodes in one file, counting every node an alias expands to.
    pub max_yaml_nodes: usize,
    /// Deepest nesting of lists, mappings and brackets in a policy file.
    pub max_nesting_depth: usize,
    /// Most operator characters (`.` included) in one expression: a CEL `when`, one Cedar
    /// policy; and the longest run of unary `-` in Rego is `max_nesting_depth`.
    pub max_expression_operators: usize,
    /// Deepest nesting of `[` and `{` in a Rego file: regorus' parser takes time exponential
    /// in it (2^n: 16 levels take seconds), so it is kept low.
    pub rego_max_literal_nesting: usize,
    /// Longest one Rego evaluation may run before it is stopped (and the request denied).
    pub rego_time_limit: Duration,
    /// Most elements a Rego `numbers.range` or `numbers.range_step` call may produce.
    pub rego_max_range: usize,
    /// Longest string, in bytes, a Rego `replace` or `strings.replace_n` call may produce.
    pub rego_max_string_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 8 * 1024 * 1024,
            max_documents: 1_000,
            max_rules_per_document: 100_000,
            max_yaml_nodes: 2_000_000,
            max_nesting_depth: 64,
            max_expression_operators: 512,
            rego_max_literal_nesting: 10,
            rego_time_limit: Duration::from_millis(250),
            rego_max_range: 100_000,
            rego_max_string_bytes: 1024 * 1024,
        }
    }
}
