//! Raising the package's own exceptions (defined in Python, `warden/_errors.py`, so they
//! have ordinary constructors, docstrings and pickling) with the messages the CLI prints.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};
use warden::{BuildError, LoadError};
use warden_audit::AuditError;

static POLICY_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static AUDIT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static WARDEN_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DENIED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static APPROVAL_REQUIRED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn raise<'py, A>(py: Python<'py>, cell: &PyOnceLock<Py<PyType>>, name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let made = cell
        .import(py, "warden._errors", name)
        .and_then(|class| class.call1(args));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// `warden.PolicyError`: one line per problem, `file:line:col: message (hint: …)` (`file:
/// message` for a problem about a whole file) — the lines `warden policy validate` prints
/// after `error: ` — and `.problems` as dicts (`line`/`column` None for a whole file).
pub fn policy(py: Python<'_>, e: &LoadError) -> PyErr {
    let lines: Vec<String> = e.problems().iter().map(|p| p.one_line()).collect();
    let problems = PyList::empty(py);
    for p in e.problems() {
        let d = PyDict::new(py);
        let filled = d
            .set_item("file", p.file().display().to_string())
            .and_then(|()| d.set_item("line", p.is_located().then(|| p.position().line)))
            .and_then(|()| d.set_item("column", p.is_located().then(|| p.position().column)))
            .and_then(|()| d.set_item("message", p.message()))
            .and_then(|()| d.set_item("hint", p.hint()))
            .and_then(|()| problems.append(d));
        if let Err(err) = filled {
            return err;
        }
    }
    raise(
        py,
        &POLICY_ERROR,
        "PolicyError",
        (lines.join("\n"), problems),
    )
}

/// `warden.AuditError` with the library's message and the keyword that gets past it (the
/// CLI names its flag instead; the library names neither).
pub fn audit(py: Python<'_>, e: &AuditError) -> PyErr {
    let hint = match e {
        AuditError::TamperedTail { .. } => {
            " (check it with `warden audit verify`; allow_tampered_log=True appends anyway, \
             after recording an incident)"
        }
        AuditError::OldFormat { .. } => " (give db= a new file)",
        _ => "",
    };
    raise(py, &AUDIT_ERROR, "AuditError", (format!("{e}{hint}"),))
}

/// The exception for a Warden that could not be built.
pub fn build(py: Python<'_>, e: &BuildError) -> PyErr {
    match e {
        BuildError::Policy(e) => policy(py, e),
        BuildError::Audit(e) => audit(py, e),
        other => warden_error(py, &other.to_string()),
    }
}

/// `warden.WardenError` with `message`.
pub fn warden_error(py: Python<'_>, message: &str) -> PyErr {
    raise(py, &WARDEN_ERROR, "WardenError", (message.to_string(),))
}

/// `warden.Denied(decision)`.
pub fn denied(py: Python<'_>, decision: Py<PyAny>) -> PyErr {
    raise(py, &DENIED, "Denied", (decision,))
}

/// `warden.ApprovalRequired(decision)`.
pub fn approval_required(py: Python<'_>, decision: Py<PyAny>) -> PyErr {
    raise(py, &APPROVAL_REQUIRED, "ApprovalRequired", (decision,))
}
