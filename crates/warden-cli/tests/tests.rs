//! End-to-end tests of the real `warden` binary. One test binary, one harness (`util.rs`):
//! each module is one door or one attacker.

mod util;

mod approvals;
mod audit;
mod claude_code;
mod commands;
mod dashboard;
mod docs;
mod drift;
mod hostile_agent;
mod hostile_approvals;
mod hostile_dashboard_agent;
mod hostile_peer;
mod hostile_program;
mod hostile_saga;
mod hostile_tool_author;
mod hostile_web_page;
mod identity;
mod local_model_verifier;
mod memory;
mod model;
mod runtime;
mod saga;
mod serve;
mod structure;
