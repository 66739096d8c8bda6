//! `warden._native`: the Rust half of the `warden` Python package.
//!
//! Why a native module rather than calls to `warden serve`: an agent framework calls the
//! gate before every tool, so a decision must cost about what a Python function call costs,
//! with the same engine, the same audit log and the same fail-closed rules as every other
//! door. The pure-Python half (`python/warden/`) adds the async variant, the exceptions and
//! the framework adapters; it never re-implements a decision.
//!
//! The module builds its `Warden` through [`warden::WardenBuilder`], like the CLI, the
//! server, the hook and the proxy.

// Python keyword arguments map one to one to Rust parameters; a struct would only hide them.
#![allow(clippy::too_many_arguments)]

mod audit;
mod convert;
mod decision;
mod errors;
mod gate;
mod scan;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<gate::PyWarden>()?;
    m.add_class::<gate::PyAction>()?;
    m.add_class::<decision::PyDecision>()?;
    m.add_class::<decision::PyExplanation>()?;
    m.add_class::<audit::PyVerifyResult>()?;
    m.add_class::<scan::PyFinding>()?;
    m.add_function(wrap_pyfunction!(audit::query_audit, m)?)?;
    m.add_function(wrap_pyfunction!(audit::verify_audit, m)?)?;
    m.add_function(wrap_pyfunction!(scan::scan_text, m)?)?;
    m.add("MAX_DEPTH", convert::LIMITS.depth)?;
    m.add("MAX_VALUES", convert::LIMITS.values)?;
    m.add("MAX_TEXT_BYTES", convert::LIMITS.bytes)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
