//! The exit codes, in one place.

/// Allowed, or the command succeeded.
pub const OK: i32 = 0;
/// Denied, or a policy test failed.
pub const DENY: i32 = 1;
/// Usage error, invalid input or invalid policy.
pub const ERROR: i32 = 2;
