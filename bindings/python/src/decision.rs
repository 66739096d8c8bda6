//! What Python gets back: [`PyDecision`] (one verdict and why) and [`PyExplanation`] (the
//! decision with every rule's part in it). Both are read-only views over the Rust values;
//! attributes are converted when read, so a decision nobody inspects costs one allocation.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use warden::{Decision, Explanation, Verdict};

use crate::convert::to_py;

/// The answer to one action: `verdict` (`"allow"`, `"deny"` or `"require_approval"`), `reason`,
/// the deciding `rule` and `policy`, `obligations`, `policy_version`, `audit_seq` and
/// `elapsed_ns`. `allowed` is true only for an allow.
#[pyclass(frozen, name = "Decision", module = "warden")]
pub struct PyDecision {
    pub(crate) inner: Decision,
}

#[pymethods]
impl PyDecision {
    /// `"allow"`, `"deny"` or `"require_approval"`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.inner.verdict.as_str()
    }

    /// True only when the verdict is allow.
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.verdict == Verdict::Allow
    }

    /// True when the verdict is deny.
    #[getter]
    fn denied(&self) -> bool {
        self.inner.verdict == Verdict::Deny
    }

    /// True when a person must approve the action first.
    #[getter]
    fn requires_approval(&self) -> bool {
        self.inner.verdict == Verdict::RequireApproval
    }

    /// Why, in words a person can act on.
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }

    /// The deciding rule's id; None when a document's default or an error decided.
    #[getter]
    fn rule(&self) -> Option<&str> {
        self.inner.rule.as_deref()
    }

    /// The deciding policy document, when a rule or a document's default decided.
    #[getter]
    fn policy(&self) -> Option<&str> {
        self.inner.policy.as_deref()
    }

    /// What the caller must also do (e.g. `"redact"`), in the rule's order.
    #[getter]
    fn obligations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.obligations.iter().map(|o| &**o))
    }

    /// Version of the policy set that decided (1 at start, +1 per reload).
    #[getter]
    fn policy_version(&self) -> u64 {
        self.inner.policy_version
    }

    /// Sequence number of the audit record; None without an audit log (or in buffered mode).
    #[getter]
    fn audit_seq(&self) -> Option<u64> {
        self.inner.audit_seq
    }

    /// For require_approval with a database: the approval request a person can answer
    /// (`warden approvals approve ID`); the same action asked again after approval is allowed
    /// once.
    #[getter]
    fn approval_id(&self) -> Option<&str> {
        self.inner.approval_id.as_deref()
    }

    /// Time spent deciding (and recording), in nanoseconds.
    #[getter]
    fn elapsed_ns(&self) -> u64 {
        self.inner.elapsed_ns
    }

    /// True when no rule applied and a document's default decided.
    #[getter]
    fn is_default(&self) -> bool {
        self.inner.is_default()
    }

    /// The decision as a dict (the JSON `warden check --json` prints).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value =
            serde_json::to_value(&self.inner).map_err(|e| PyTypeError::new_err(e.to_string()))?;
        to_py(py, &value)
    }

    fn __repr__(&self) -> String {
        let d = &self.inner;
        let mut s = format!(
            "Decision(verdict={:?}, reason={:?}",
            d.verdict.as_str(),
            &*d.reason
        );
        if let Some(rule) = &d.rule {
            s.push_str(&format!(", rule={:?}", &**rule));
        }
        if let Some(seq) = d.audit_seq {
            s.push_str(&format!(", audit_seq={seq}"));
        }
        s.push(')');
        s
    }

    /// `if decision:` would be true for a deny too; say what is meant instead.
    fn __bool__(&self) -> PyResult<bool> {
        Err(PyTypeError::new_err(
            "a Decision has no truth value: use decision.allowed (or Warden.check, which raises \
             on deny)",
        ))
    }
}

/// A decision with the trace of every rule that was considered.
#[pyclass(frozen, name = "Explanation", module = "warden")]
pub struct PyExplanation {
    pub(crate) inner: Explanation,
}

#[pymethods]
impl PyExplanation {
    /// The decision, exactly as `decide` makes it (not recorded in the audit log).
    #[getter]
    fn decision(&self) -> PyDecision {
        PyDecision {
            inner: self.inner.decision.clone(),
        }
    }

    /// Every rule of every document, in order: dicts with `policy`, `rule`, `verdict`,
    /// `status` (`matched`, `not_matched`, `error`), `detail` and `decided`.
    #[getter]
    fn rules<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for r in &self.inner.rules {
            let d = PyDict::new(py);
            d.set_item("policy", &*r.policy)?;
            d.set_item("rule", &*r.rule)?;
            d.set_item("verdict", r.verdict.as_str())?;
            let status = serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            d.set_item("status", status)?;
            d.set_item("detail", &r.detail)?;
            d.set_item("decided", r.decided)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// The explanation as a dict (the JSON `warden policy explain --json` prints).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value =
            serde_json::to_value(&self.inner).map_err(|e| PyTypeError::new_err(e.to_string()))?;
        to_py(py, &value)
    }

    fn __repr__(&self) -> String {
        format!(
            "Explanation(verdict={:?}, rules={})",
            self.inner.decision.verdict.as_str(),
            self.inner.rules.len()
        )
    }
}
