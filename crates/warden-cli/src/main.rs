//! `warden`: the command line door into Warden.
//!
//! Exit codes (stable, documented in the README):
//! 0 allow / success · 1 deny / test failure · 3 require approval · 2 usage error, invalid
//! input or invalid policy. Nothing that went wrong ever exits 0.

// The binary is where output is allowed to happen.
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// `println!` that ignores a closed stdout (`warden check … | head -1`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod action_args;
mod audit;
mod audit_args;
mod bench;
mod check;
mod exit;
mod hook;
mod mcp;
mod policy;
mod report;
mod serve;

use clap::{Parser, Subcommand};

/// Warden: allow, deny or require approval for every action an AI agent takes.
#[derive(Parser, Debug)]
#[command(name = "warden", version, about, long_about = None)]
struct Cli {
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
}

fn main() {
    let cli = Cli::parse();
    // Library crates report through `tracing`; this is the one place it reaches stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .with_target(false)
        .init();
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Bench(args) => bench::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Hook(cmd) => hook::run(&cmd),
        Command::Mcp(cmd) => cmd.run(),
        Command::Scan(cmd) => cmd.run(),
    };
    std::process::exit(code);
}
