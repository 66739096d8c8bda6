//! The seam between the gateway and a local detection model.
//!
//! Why a trait: the model (all-MiniLM-L6-v2 in candle, crate `warden-model`) is a heavy build
//! and a 90 MB download, and the scanner is also built on its own for the benchmarks. The
//! proxy needs only "does this text, or this tool, read like injected instructions?", so it
//! asks a [`TextClassifier`]; the `warden` binary hands it the real model. The rules always
//! run first; a classifier sees only what the rules passed.

use std::ops::Range;

use serde_json::Value;
use thiserror::Error;

/// A model's verdict on one text or one tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVerdict {
    /// The highest score over the text's windows, in [0, 1].
    pub score: f32,
    /// The threshold the score was compared with.
    pub threshold: f32,
    /// `score >= threshold`.
    pub flagged: bool,
    /// Byte ranges of the scored text that the model flagged (each window at or above the
    /// threshold); empty when not flagged, and for tools.
    pub spans: Vec<Range<usize>>,
    /// Part of the text was too long to score, and was not.
    pub truncated: bool,
}

/// The model could not give a verdict. Callers treat it as a flag (fail closed).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct ClassifyError(pub String);

/// A model that reads texts and tool metadata for injected instructions.
pub trait TextClassifier: Send + Sync + std::fmt::Debug {
    /// Score a text an agent will read: a tool result, a resource, a prompt, server
    /// instructions.
    fn score_text(&self, text: &str) -> Result<ModelVerdict, ClassifyError>;

    /// Score MCP tool objects (and prompt or resource entries, which have the same name and
    /// description), in the order given. One call for a whole listing lets an
    /// implementation batch them.
    fn score_tools(&self, tools: &[&Value]) -> Result<Vec<ModelVerdict>, ClassifyError>;

    /// Whether this classifier reads tool metadata at all. `false` (a texts-only model): tool,
    /// prompt and resource listings are left to the rules, and `score_tools` is not called.
    fn reads_tools(&self) -> bool {
        true
    }
}
