//! Reading the audit log back from Python: `query_audit` (filtered records, as dicts) and
//! `verify_audit` (the whole chain and its signed checkpoints). Both open the log read-only,
//! so they are safe beside running writers; both release the GIL while SQLite works.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use warden::Verdict;
use warden_audit::{Filter, Timestamp, VerifyReport, parse_verifying_key};

use crate::convert::to_py;
use crate::errors;

fn timestamp(v: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Timestamp>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    // A datetime says when in its own words; `isoformat()` is RFC 3339 once it has a zone.
    let text: String = if v.hasattr("isoformat")? {
        if v.getattr("tzinfo")?.is_none() {
            return Err(PyValueError::new_err(format!(
                "{name}: a datetime without a time zone is ambiguous (use timezone.utc)"
            )));
        }
        v.call_method0("isoformat")?.extract()?
    } else {
        v.extract()?
    };
    Timestamp::parse_rfc3339(&text)
        .map(Some)
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// The records of the log at `db` that match every filter given, oldest first, as dicts (the
/// JSON lines `warden audit export` writes). `limit` keeps the last N.
#[pyfunction]
#[pyo3(signature = (db, *, agent=None, action=None, tool=None, rule=None, verdict=None, since=None, until=None, limit=None))]
pub fn query_audit<'py>(
    py: Python<'py>,
    db: PathBuf,
    agent: Option<String>,
    action: Option<String>,
    tool: Option<String>,
    rule: Option<String>,
    verdict: Option<String>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    limit: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let verdict = verdict
        .map(|v| v.parse::<Verdict>().map_err(PyValueError::new_err))
        .transpose()?;
    let filter = Filter {
        agent,
        action,
        tool,
        rule,
        verdict,
        since: timestamp(since, "since")?,
        until: timestamp(until, "until")?,
        limit,
    };
    let records = py
        .detach(|| warden_audit::query(&db, &filter))
        .map_err(|e| errors::audit(py, &e))?;
    let out = PyList::empty(py);
    for r in &records {
        let value = serde_json::to_value(r).map_err(|e| PyValueError::new_err(e.to_string()))?;
        out.append(to_py(py, &value)?)?;
    }
    Ok(out)
}

/// What `verify_audit` found: `intact`, or where the first tampering is.
#[pyclass(frozen, name = "VerifyResult", module = "warden")]
pub struct PyVerifyResult {
    report: VerifyReport,
}

#[pymethods]
impl PyVerifyResult {
    /// True when every record and every checkpoint signature checked out.
    #[getter]
    fn intact(&self) -> bool {
        self.report.is_intact()
    }

    /// `"intact"` or `"tampered"`.
    #[getter]
    fn status(&self) -> &'static str {
        match self.report {
            VerifyReport::Intact(_) => "intact",
            VerifyReport::Tampered { .. } => "tampered",
            VerifyReport::Error(_) => "error",
        }
    }

    /// What was checked: records, first/last seq, head hash, checkpoints, keys, unanchored…
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.report
            .summary()
            .map(|s| {
                let v =
                    serde_json::to_value(s).map_err(|e| PyValueError::new_err(e.to_string()))?;
                to_py(py, &v)
            })
            .transpose()
    }

    /// The first thing found wrong (`seq`, `kind`, `detail`), or None.
    #[getter]
    fn tampering<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.report
            .tampering()
            .map(|t| {
                let v =
                    serde_json::to_value(t).map_err(|e| PyValueError::new_err(e.to_string()))?;
                to_py(py, &v)
            })
            .transpose()
    }

    /// The CLI's exit code for this result: 0 intact, 1 tampered.
    #[getter]
    fn exit_code(&self) -> i32 {
        self.report.exit_code()
    }

    fn __str__(&self) -> String {
        self.report.to_string()
    }

    fn __repr__(&self) -> String {
        format!("VerifyResult({:?})", self.report.to_string())
    }
}

/// Check the whole chain of the log at `db` and its signed checkpoints (as `warden audit
/// verify` does). `key` pins the public key (64 hex digits or a `.pub` file) that must have
/// signed it. A log that cannot be read raises `AuditError`; a tampered one is a result.
#[pyfunction]
#[pyo3(signature = (db, *, key=None))]
pub fn verify_audit(py: Python<'_>, db: PathBuf, key: Option<String>) -> PyResult<PyVerifyResult> {
    let pinned = key
        .map(|k| parse_verifying_key(&k))
        .transpose()
        .map_err(|e| errors::audit(py, &e))?;
    let report = py.detach(|| warden_audit::verify(&db, pinned, |_, _| {}));
    if let VerifyReport::Error(e) = &report {
        return Err(errors::audit(py, e));
    }
    Ok(PyVerifyResult { report })
}
