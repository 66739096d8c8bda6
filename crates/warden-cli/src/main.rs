//! `warden`: the command line door into Warden.
//!
//! This file is the table of contents: the commands, the global flags, and the one place
//! where a command's result becomes output and an exit code. Each command lives in its own
//! module, parses its flags into plain values, calls the crates and returns
//! `Result<Exit, Error>`; nothing else prints errors or exits.
//!
//! Exit codes (stable, documented in the README and in [`exit::Exit`]):
//! 0 allow / success · 1 deny / test failure / tampered / findings · 3 require approval ·
//! 2 usage error, invalid input or policy, anything that went wrong. Nothing that went wrong
//! ever exits 0, and a closed pipe never turns into a panic.

// The binary is where output is allowed to happen.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod report;

mod action_args;
mod approvals;
mod args;
mod audit;
mod bench;
mod check;
mod delegate;
mod error;
mod exec;
mod exit;
mod handshake;
mod hook;
mod identity;
mod kill;
mod mcp;
mod memory;
mod model;
mod policy;
mod saga;
mod serve;
mod trust;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::exit::Exit;

/// Warden: allow, deny or require approval for every action an AI agent takes.
#[derive(Parser, Debug)]
#[command(name = "warden", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: report::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide one action: exit 0 allow, 1 deny, 3 require approval, 2 error.
    Check(check::CheckArgs),
    /// Validate, explain and test policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Verify, query and export the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Measure decision latency and throughput on a policy.
    Bench(bench::BenchArgs),
    /// Serve decisions over HTTP, reloading policies when they change.
    Serve(serve::ServeArgs),
    /// Answer an agent's tool-call hook (Claude Code).
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// MCP gateway: scan tool lists, pin them, run a server behind Warden.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Scan text for injected instructions, invisible characters and secrets.
    #[command(subcommand)]
    Scan(mcp::ScanCommand),
    /// The local detection model: fetch it, say where it is and whether it loads.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Agent identities: create, show, revoke, restore.
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Grant capabilities to another identity: a new credential, or one more chain link.
    Delegate(delegate::DelegateArgs),
    /// Verify a credential or delegation chain: exit 0 valid, 1 invalid, 2 error.
    VerifyChain(delegate::VerifyChainArgs),
    /// Trust scores and their history.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Run the inter-agent trust handshake with a `warden serve`: exit 0 granted, 1 refused.
    Handshake(handshake::HandshakeArgs),
    /// Run a program for an agent if the policy allows it (an `execute_code` action), in a box
    /// matched to its ring, ended by the kill switch: exit code passed through, 1 denied, 3
    /// approval needed, 2 killed/timed out/error.
    Exec(exec::ExecArgs),
    /// Stop an agent, a capability or every agent, in every process sharing the database.
    Kill(kill::KillArgs),
    /// Lift a kill switch (an operator's act, recorded with who and why).
    Revive(kill::ReviveArgs),
    /// Elevate, demote or restore an agent's execution ring.
    #[command(subcommand)]
    Ring(kill::RingCommand),
    /// Approval requests (`require_approval` verdicts): list, show, approve, deny.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Multi-step work that finishes or is undone: run, resume after a crash, list, show.
    #[command(subcommand)]
    Saga(saga::SagaCommand),
    /// Memory guards: writes held in quarantine (list, show, release, drop).
    #[command(subcommand)]
    Memory(memory::MemoryCommand),
}

impl Command {
    fn run(self) -> Result<Exit> {
        match self {
            Command::Check(args) => check::run(&args),
            Command::Policy(cmd) => policy::run(cmd),
            Command::Audit(cmd) => audit::run(cmd),
            Command::Bench(args) => bench::run(&args),
            Command::Serve(args) => serve::run(&args),
            Command::Hook(cmd) => hook::run(&cmd),
            Command::Mcp(cmd) => cmd.run(),
            Command::Scan(cmd) => cmd.run(),
            Command::Model(cmd) => cmd.run(),
            Command::Identity(cmd) => identity::run(cmd),
            Command::Delegate(args) => delegate::delegate(&args),
            Command::VerifyChain(args) => delegate::verify(&args),
            Command::Trust(cmd) => trust::run(cmd),
            Command::Handshake(args) => handshake::run(&args),
            Command::Exec(args) => exec::run(&args),
            Command::Kill(args) => kill::kill(&args),
            Command::Revive(args) => kill::revive(&args),
            Command::Ring(cmd) => kill::ring(&cmd),
            Command::Saga(cmd) => saga::run(cmd),
            Command::Approvals(cmd) => approvals::run(cmd),
            Command::Memory(cmd) => memory::run(cmd),
        }
    }

    /// How a failure is reported: as a JSON object when the command was asked for JSON.
    fn error_style(&self) -> report::ErrorStyle {
        match self {
            Command::Check(a) if a.json => report::ErrorStyle::JsonDeny,
            Command::Policy(policy::PolicyCommand::Explain(a)) if a.json => {
                report::ErrorStyle::JsonDeny
            }
            Command::Policy(cmd) if cmd.json() => report::ErrorStyle::Json,
            Command::Bench(a) if a.json => report::ErrorStyle::Json,
            Command::VerifyChain(a) if a.json => report::ErrorStyle::Json,
            Command::Handshake(a) if a.json => report::ErrorStyle::JsonDeny,
            Command::Saga(cmd) if cmd.json() => report::ErrorStyle::Json,
            Command::Approvals(cmd) if cmd.json() => report::ErrorStyle::Json,
            Command::Memory(cmd) if cmd.json() => report::ErrorStyle::Json,
            _ => report::ErrorStyle::Text,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and exit 0; usage errors to stderr, exit 2 — and,
            // when the command line asked for JSON, as a JSON error object on stdout too.
            let _ = e.print();
            if !e.use_stderr() {
                return Exit::Ok.into();
            }
            if std::env::args_os().any(|a| a == "--json") {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                let message = first.strip_prefix("error: ").unwrap_or(first);
                outln!(
                    "{}",
                    serde_json::json!({"error": message, "verdict": "deny"})
                );
            }
            return Exit::Error.into();
        }
    };
    report::init(&cli.global);
    let style = cli.command.error_style();
    match cli.command.run() {
        Ok(exit) => exit.into(),
        Err(e) => {
            report::error(&e, style);
            Exit::Error.into()
        }
    }
}
