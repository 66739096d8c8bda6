//! `warden`: the command line door into Warden.
//!
//! Exit codes (stable, documented in the README):
//! 0 allow / success · 1 deny / test failure · 3 require approval · 2 usage error, invalid
//! input or invalid policy. Nothing that went wrong ever exits 0.

mod action_args;
mod bench;
mod check;
mod exit;
mod policy;
mod report;

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
    /// Measure decision latency and throughput on a policy.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Bench(args) => bench::run(&args),
    };
    std::process::exit(code);
}
