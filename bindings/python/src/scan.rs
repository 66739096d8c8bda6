//! `scan_text`: the MCP gateway's text detector (instructions aimed at the model, invisible
//! text, credentials) over any string — a tool's result before the model reads it, a
//! document, a web page. The same rules as `warden scan text`.

use pyo3::prelude::*;
use warden_mcp::detect::{self, Mode};

/// One rule firing on the text.
#[pyclass(frozen, name = "Finding", module = "warden")]
pub struct PyFinding {
    /// Stable rule id, `category.rule` (e.g. `poisoning.secrecy`).
    #[pyo3(get)]
    id: &'static str,
    /// `poisoning`, `hidden`, `secret`, …
    #[pyo3(get)]
    category: &'static str,
    /// `info`, `low`, `medium`, `high` or `critical`.
    #[pyo3(get)]
    severity: &'static str,
    /// Where the offending text starts, as an index into the str (code points).
    #[pyo3(get)]
    start: usize,
    /// Where it ends (exclusive).
    #[pyo3(get)]
    end: usize,
    /// The offending text with invisible characters made visible, cut to 120 characters.
    #[pyo3(get)]
    excerpt: String,
    /// Why it matters.
    #[pyo3(get)]
    why: String,
}

#[pymethods]
impl PyFinding {
    fn __repr__(&self) -> String {
        format!(
            "Finding(id={:?}, severity={:?}, start={}, end={}, excerpt={:?})",
            self.id, self.severity, self.start, self.end, self.excerpt
        )
    }
}

/// Scan `text` with the rules for tool output and other text; findings in text order.
#[pyfunction]
pub fn scan_text(py: Python<'_>, text: String) -> Vec<PyFinding> {
    py.detach(|| {
        let hits = detect::scan(&text, Mode::Output);
        hits.into_iter()
            .map(|h| {
                let (a, b) = (h.span.0.min(text.len()), h.span.1.min(text.len()));
                let start = text.get(..a).map_or(0, |s| s.chars().count());
                let len = text.get(a..b).map_or(0, |s| s.chars().count());
                PyFinding {
                    id: h.id,
                    category: h.category.as_str(),
                    severity: h.severity.as_str(),
                    start,
                    end: start + len,
                    excerpt: warden_mcp::finding::visible(text.get(a..b).unwrap_or_default(), 120),
                    why: h.why,
                }
            })
            .collect()
    })
}
