//! One lookup of the model directory for every test binary that runs the model: the harness
//! (`util.rs`) and the separate MCP test binaries (`mcp_common`) include this file.

/// The model directory the test setup installs (`WARDEN_MODEL_DIR`); `None` (skip, saying
/// so) when it is not set locally, a failure under CI.
#[allow(clippy::print_stderr, dead_code)]
pub fn model_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("WARDEN_MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(d) => Some(d.into()),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but WARDEN_MODEL_DIR is not set: run `warden model fetch` first"
            );
            eprintln!("skipped: WARDEN_MODEL_DIR is not set (run `warden model fetch`)");
            None
        }
    }
}
