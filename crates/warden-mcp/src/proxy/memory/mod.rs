//! Memory tools behind the proxy: calls to the tools the operator named as memory writes
//! are also decided as `memory.write` (quarantine, provenance: `warden::memory`), and the
//! answers of memory reads are filtered to the texts Warden can vouch for.
//!
//! Which tools write and which read is configuration (`ProxyConfig::memory`, the flags
//! `--memory-write` / `--memory-read`), not knowledge of any one server: for
//! `@modelcontextprotocol/server-memory` the writes are `create_entities`,
//! `add_observations`, `create_relations` and the reads `read_graph`, `search_nodes`,
//! `open_nodes` (and the resource `memory://knowledge-graph`, named the same way).
//!
//! A write: every string in the call's arguments is one text of the write (`args.content`),
//! `context.source` is what the client states in `params._meta["warden/source"]` (else
//! `mcp:<server>/<tool>`), and the `memory.write` is decided **before** the call's own
//! `mcp.tools/call` decision — so a call held for approval has already passed quarantine,
//! and a quarantined write is answered at once with the reason, never forwarded. A clean
//! write's provenance is signed then but recorded only when the server answers the call with
//! success (it travels with the waiting request, or with the held one): a call refused after
//! the memory step, or failed by the server, leaves no record for a text never stored.
//!
//! A read, when the guard requires provenance: the answer is read as items — every element
//! of every list in `structuredContent` (or in the JSON of each text content item) — and an
//! item passes only if every string in it has a valid provenance record and every key in it
//! is a plain name (letters, digits, `_`, at most 64 bytes). The rest are withheld (the
//! other items still reach the client: one planted entity should not hide the whole graph),
//! and their hashes are recorded in the audit log as a `memory.read` refusal. A key that is
//! not a plain name is removed wherever it stands (a property test holds the filter to "no
//! text without provenance and no odd key survives"). Text that is
//! not JSON is one item. With `structuredContent`, the text content is rebuilt from the
//! filtered structure, so the withheld items cannot come back through the text mirror.
//! At most [`MAX_READ_TEXTS`] texts are checked per answer; past that, the rest is withheld.

mod filter;

use super::results::{MODEL_ERROR, MODEL_PARTIAL, MODEL_TEXT};
use crate::detect;

/// Which tools (and resources) of the server are memory writes and reads.
#[derive(Debug, Clone, Default)]
pub struct MemoryTools {
    /// Tools whose calls write memory.
    pub writes: Vec<String>,
    /// Tools (or resource URIs) whose answers are memory read back.
    pub reads: Vec<String>,
}

/// The most texts checked in one read answer.
pub const MAX_READ_TEXTS: usize = 20_000;

/// The detector `memory.write` content goes through: the proxy's text detector in output
/// mode, the one tool results meet (rules). Every door Warden ships hands this to the
/// builder, and with the model [`memory_model_detector`] too.
pub fn memory_detector() -> warden::memory::Detector {
    std::sync::Arc::new(detect::memory_findings)
}

/// The local model as the memory guard's second detector (`WardenBuilder::memory_model`):
/// it reads each write whole, once, on what the rules passed — as on tool results, where
/// the model reads the whole answer: a text the proxy would block as a result must not be
/// written to memory with provenance that vouches for it. Its findings are `model.text`,
/// `model.partial` when the write is longer than the model reads (as on a result: what it
/// did not read is not clean), and `model.error` when it cannot score (each quarantines the
/// write: fail closed; an operator can release it). One
/// call per write keeps the cost of a write at most that of a result (the model's window
/// cap), and a write's short texts (a name, an entity type) are read in their context: alone
/// the model flags some of them (`person` scores 0.97).
pub fn memory_model_detector(
    classifier: std::sync::Arc<dyn crate::TextClassifier>,
) -> warden::memory::Detector {
    std::sync::Arc::new(move |text: &str| match classifier.score_text(text) {
        Ok(v) if v.flagged => vec![MODEL_TEXT.to_string()],
        Ok(v) if v.truncated => vec![MODEL_PARTIAL.to_string()],
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!("the model could not score a memory write: {e}");
            vec![MODEL_ERROR.to_string()]
        }
    })
}
