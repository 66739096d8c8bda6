//! [`PyWarden`] (`warden.Warden`) and [`PyAction`] (`warden.Action`): the gate, built through
//! the same [`WardenBuilder`] as every other door, and the action it judges.
//!
//! Deciding never raises for what an agent controls: arguments that have no JSON form, or
//! are too big or too deep, make a deny whose reason names the problem, recorded in the audit
//! log like any other decision. The GIL is released while Warden decides and records, so
//! other Python threads run meanwhile.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use warden::{Action, AuditConfig, Decision, Verdict, Warden, WardenBuilder};
use warden_audit::{Entry, Mode};

use crate::convert::{LIMITS, ToJson};
use crate::decision::{PyDecision, PyExplanation};
use crate::errors;

/// One action to judge, converted from Python once. Build it to judge the same action more
/// than once, or to fix its arguments before handing it to another thread (`adecide` does).
#[pyclass(frozen, name = "Action", module = "warden")]
pub struct PyAction {
    action: Action,
    /// Why `args` or `context` could not be converted; the action is then judged a deny
    /// (`action` holds the names, with empty `args` and `context`).
    error: Option<String>,
}

impl PyAction {
    fn build(
        action: String,
        agent: Option<String>,
        tool: Option<String>,
        args: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        resource: Option<String>,
    ) -> PyAction {
        let mut a = Action::new(action);
        a.agent = agent;
        a.tool = tool;
        a.resource = resource;
        let mut conv = ToJson::new(LIMITS);
        let converted = conv
            .object(args, "args")
            .and_then(|args| Ok((args, conv.object(context, "context")?)));
        match converted {
            Ok((args, context)) => {
                a.args = args;
                a.context = context;
                PyAction {
                    action: a,
                    error: None,
                }
            }
            Err(e) => PyAction {
                action: a,
                error: Some(e),
            },
        }
    }
}

#[pymethods]
impl PyAction {
    #[new]
    #[pyo3(signature = (action, *, agent=None, tool=None, args=None, context=None, resource=None))]
    fn new(
        action: String,
        agent: Option<String>,
        tool: Option<String>,
        args: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        resource: Option<String>,
    ) -> Self {
        PyAction::build(action, agent, tool, args, context, resource)
    }

    /// The action's name (`execute_code`, `tool_call`, …).
    #[getter]
    fn action(&self) -> &str {
        &self.action.action
    }

    /// Who asks.
    #[getter]
    fn agent(&self) -> Option<&str> {
        self.action.agent.as_deref()
    }

    /// The tool called.
    #[getter]
    fn tool(&self) -> Option<&str> {
        self.action.tool.as_deref()
    }

    /// Why the arguments or context could not be read (the action is then denied), or None.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The action as a dict (the JSON `POST /v1/decide` takes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value =
            serde_json::to_value(&self.action).map_err(|e| PyTypeError::new_err(e.to_string()))?;
        crate::convert::to_py(py, &value)
    }

    fn __repr__(&self) -> String {
        format!(
            "Action(action={:?}, agent={:?}, tool={:?})",
            self.action.action, self.action.agent, self.action.tool
        )
    }
}

/// The gate: policies in, one decision out, every decision recorded when `db` is given.
#[pyclass(frozen, subclass, weakref, name = "Warden", module = "warden")]
pub struct PyWarden {
    inner: ArcSwapOption<Warden>,
    /// Set in a child process after `fork`: the Warden (and its audit writer thread) belong
    /// to the parent, so this copy only denies.
    forked: AtomicBool,
    db: Option<PathBuf>,
    policy_paths: Vec<PathBuf>,
}

/// `policy=` as a list of paths: one path (`str` or `os.PathLike`) or a sequence of them.
fn policy_paths(policy: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = policy.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    policy.extract::<Vec<PathBuf>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "policy must be a path or a list of paths, not {}",
            crate::convert::type_name(policy)
        ))
    })
}

impl PyWarden {
    fn warden(&self) -> Option<Arc<Warden>> {
        self.inner.load_full()
    }

    /// Decide `prepared` on this Warden, with the GIL released.
    fn judge(&self, py: Python<'_>, prepared: &PyAction) -> Decision {
        let Some(warden) = self.warden() else {
            return Decision::deny(if self.forked.load(Ordering::Relaxed) {
                FORKED
            } else {
                "denied: this Warden was closed"
            });
        };
        py.detach(|| match &prepared.error {
            None => warden.decide(&prepared.action),
            Some(e) => refuse(&warden, &prepared.action, e),
        })
    }
}

const FORKED: &str = "denied: this Warden was built before the process forked, and its audit \
                      writer stayed in the parent: build a new Warden in this process";

/// The deny for an action whose arguments could not be read, recorded like any decision.
fn refuse(warden: &Warden, action: &Action, error: &str) -> Decision {
    let mut d = Decision::deny(format!("denied: {error}"));
    d.policy_version = warden.policy_version();
    if let Some(log) = warden.audit() {
        match log.append(Entry::new(action, &d)) {
            Ok(seq) => d.audit_seq = seq,
            Err(e) => {
                d.reason = format!(
                    "denied: {error}; and the decision could not be recorded in the audit log: {e}"
                )
                .into();
            }
        }
    }
    d
}

/// The action `decide` was called with: an `Action`, or a name and keywords.
fn prepare<'py>(
    action: &Bound<'py, PyAny>,
    agent: Option<String>,
    tool: Option<String>,
    args: Option<&Bound<'py, PyAny>>,
    context: Option<&Bound<'py, PyAny>>,
    resource: Option<String>,
) -> PyResult<Prepared<'py>> {
    if let Ok(a) = action.cast::<PyAction>() {
        if agent.is_some()
            || tool.is_some()
            || args.is_some()
            || context.is_some()
            || resource.is_some()
        {
            return Err(PyTypeError::new_err(
                "give either an Action or an action name with keywords, not both",
            ));
        }
        return Ok(Prepared::Built(a.clone()));
    }
    let Ok(name) = action.extract::<String>() else {
        return Err(PyTypeError::new_err(format!(
            "action must be a str or a warden.Action, not {}",
            crate::convert::type_name(action)
        )));
    };
    Ok(Prepared::Made(PyAction::build(
        name, agent, tool, args, context, resource,
    )))
}

// Lives on the stack for one call; boxing would cost the hot path an allocation.
#[allow(clippy::large_enum_variant)]
enum Prepared<'py> {
    Built(Bound<'py, PyAction>),
    Made(PyAction),
}

impl Prepared<'_> {
    fn get(&self) -> &PyAction {
        match self {
            Prepared::Built(b) => b.get(),
            Prepared::Made(m) => m,
        }
    }
}

#[pymethods]
impl PyWarden {
    #[new]
    #[pyo3(signature = (policy, *, db=None, audit_mode="durable", signing_key=None, allow_tampered_log=false, protect=None))]
    fn new(
        py: Python<'_>,
        policy: &Bound<'_, PyAny>,
        db: Option<PathBuf>,
        audit_mode: &str,
        signing_key: Option<PathBuf>,
        allow_tampered_log: bool,
        protect: Option<Vec<PathBuf>>,
    ) -> PyResult<Self> {
        let paths = policy_paths(policy)?;
        let mode = match audit_mode {
            "durable" => Mode::Durable,
            "buffered" => Mode::Buffered,
            other => {
                return Err(PyValueError::new_err(format!(
                    "audit_mode must be \"durable\" or \"buffered\", not {other:?}"
                )));
            }
        };
        if db.is_none() && (signing_key.is_some() || allow_tampered_log || audit_mode != "durable")
        {
            return Err(PyValueError::new_err(
                "audit_mode, signing_key and allow_tampered_log need db= (an audit log)",
            ));
        }
        let mut builder = WardenBuilder::new().policies(paths.iter().cloned());
        if let Some(db) = &db {
            let mut config = AuditConfig::default();
            config.mode = mode;
            config.allow_tampered_tail = allow_tampered_log;
            builder = builder.audit_log(db, config);
            if let Some(key) = signing_key {
                builder = builder.signing_key(key);
            }
        }
        for p in protect.unwrap_or_default() {
            builder = builder.protect(p);
        }
        // `memory.write` is guarded as through every other door: the same detector
        // quarantines flagged content; provenance is recorded in `db` when there is one.
        builder = builder.memory_guard(
            std::sync::Arc::new(warden_mcp::detect::memory_findings),
            false,
        );
        let warden = py
            .detach(|| builder.build())
            .map_err(|e| errors::build(py, &e))?;
        Ok(PyWarden {
            inner: ArcSwapOption::from_pointee(warden),
            forked: AtomicBool::new(false),
            db,
            policy_paths: paths,
        })
    }

    /// Judge one action; never raises for what the agent controls (see the module docs).
    #[pyo3(signature = (action, *, agent=None, tool=None, args=None, context=None, resource=None))]
    fn decide(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        agent: Option<String>,
        tool: Option<String>,
        args: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        resource: Option<String>,
    ) -> PyResult<PyDecision> {
        let prepared = prepare(action, agent, tool, args, context, resource)?;
        Ok(PyDecision {
            inner: self.judge(py, prepared.get()),
        })
    }

    /// Like `decide`, but raise `warden.Denied` or `warden.ApprovalRequired` unless allowed.
    #[pyo3(signature = (action, *, agent=None, tool=None, args=None, context=None, resource=None))]
    fn check(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        agent: Option<String>,
        tool: Option<String>,
        args: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        resource: Option<String>,
    ) -> PyResult<PyDecision> {
        let prepared = prepare(action, agent, tool, args, context, resource)?;
        let decision = self.judge(py, prepared.get());
        match decision.verdict {
            Verdict::Allow => Ok(PyDecision { inner: decision }),
            Verdict::Deny => Err(errors::denied(
                py,
                Py::new(py, PyDecision { inner: decision })?.into_any(),
            )),
            Verdict::RequireApproval => Err(errors::approval_required(
                py,
                Py::new(py, PyDecision { inner: decision })?.into_any(),
            )),
        }
    }

    /// Judge an action and report every rule's part (nothing is recorded).
    #[pyo3(signature = (action, *, agent=None, tool=None, args=None, context=None, resource=None))]
    fn explain(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        agent: Option<String>,
        tool: Option<String>,
        args: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        resource: Option<String>,
    ) -> PyResult<PyExplanation> {
        let prepared = prepare(action, agent, tool, args, context, resource)?;
        let p = prepared.get();
        let Some(warden) = self.warden() else {
            return Err(errors::warden_error(py, "this Warden was closed"));
        };
        let mut e = py.detach(|| warden.explain(&p.action));
        if let Some(err) = &p.error {
            let version = e.decision.policy_version;
            e.decision = Decision::deny(format!("denied: {err}"));
            e.decision.policy_version = version;
        }
        Ok(PyExplanation { inner: e })
    }

    /// Whether deciding `action` may wait on I/O (its audit record, or the file system while
    /// its paths are checked against Warden's own files). `adecide` runs only those on a
    /// thread; the rest take about a microsecond and run inline.
    fn _may_wait(&self, action: &Bound<'_, PyAction>) -> bool {
        self.warden()
            .is_some_and(|w| w.may_wait(&action.get().action))
    }

    /// Load the policies again and swap them in atomically; returns the new version. A set
    /// that fails to load raises `PolicyError` and changes nothing.
    fn reload(&self, py: Python<'_>) -> PyResult<u64> {
        let Some(warden) = self.warden() else {
            return Err(errors::warden_error(py, "this Warden was closed"));
        };
        py.detach(|| warden.reload())
            .map_err(|e| errors::policy(py, &e))
    }

    /// The active policy set's version: 1 at start, +1 per reload.
    #[getter]
    fn policy_version(&self) -> u64 {
        self.warden().map_or(0, |w| w.policy_version())
    }

    /// The audit log's path, or None.
    #[getter]
    fn db(&self) -> Option<PathBuf> {
        self.db.clone()
    }

    /// The policy files and directories, as given.
    #[getter]
    fn policy_paths(&self) -> Vec<PathBuf> {
        self.policy_paths.clone()
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.load().is_none()
    }

    /// Commit every queued audit record (buffered mode) before returning.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let Some(warden) = self.warden() else {
            return Ok(());
        };
        match py.detach(|| warden.audit().map(|l| l.flush()).transpose()) {
            Ok(_) => Ok(()),
            Err(e) => Err(errors::audit(py, &e)),
        }
    }

    /// Called in a child process right after `fork` (the package registers it with
    /// `os.register_at_fork`). The parent's Warden is forgotten, not dropped: dropping its
    /// audit log would wait for a writer thread that does not exist in this process.
    fn _after_fork(&self) {
        self.forked.store(true, Ordering::Relaxed);
        if let Some(parent) = self.inner.swap(None) {
            std::mem::forget(parent);
        }
    }

    /// Commit what is queued and close the audit log; later decisions are denies.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let flushed = self.flush(py);
        let old = self.inner.swap(None);
        py.detach(move || drop(old));
        flushed
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "Warden(policy={:?}, db={:?}, policy_version={})",
            self.policy_paths,
            self.db,
            self.policy_version()
        )
    }
}
