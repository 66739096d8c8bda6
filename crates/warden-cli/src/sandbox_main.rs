//! `warden-sandbox SPEC`: the helper `warden exec` starts for each boxed run. It closes the
//! box described by SPEC (JSON, see `warden_runtime::sandbox::Spec`) around its own process —
//! cgroups, resource limits, Landlock, seccomp — and then becomes the program.
//!
//! Why a binary of its own and not `warden __sandbox`: it is paid on every run, and the
//! `warden` binary (every command, every dependency) takes about a millisecond longer to start
//! than this one (bench/sandbox.sh, BENCHMARKS.md). It parses no flags and logs nothing.
//! Only restricting, never widening: calling it by hand runs a program in a box, no more.
//!
//! When the box cannot be closed or the program cannot be started, the reason goes to the
//! SPEC's status file (opened before the box closes, as the box may not let it be opened
//! after), and it exits 127 without running anything.

// The helper's one line of output (a protection dropped with --weaker-box) goes to stderr.
#![allow(clippy::print_stderr)]

use std::io::Write;
use std::process::ExitCode;

use warden_runtime::sandbox::{Spec, confine};

fn main() -> ExitCode {
    let Some(text) = std::env::args_os()
        .nth(1)
        .and_then(|s| s.into_string().ok())
    else {
        eprintln!("warden-sandbox: give the box's specification (JSON); `warden exec` does");
        return ExitCode::from(2);
    };
    let spec: Spec = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("warden-sandbox: not a box specification: {e}");
            return ExitCode::from(2);
        }
    };
    let mut status = match std::fs::OpenOptions::new().write(true).open(&spec.status) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("warden-sandbox: {}: {e}", spec.status.display());
            return ExitCode::from(2);
        }
    };
    let error = match confine(&spec) {
        Ok(confined) => {
            for dropped in &confined.dropped {
                eprintln!("warden: weaker box: without {dropped}");
            }
            confined.exec()
        }
        Err(e) => e,
    };
    let _ = status.write_all(error.to_string().as_bytes());
    ExitCode::from(127)
}
