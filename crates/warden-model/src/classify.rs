//! The classifier: the model and its two heads, one for tool metadata and one for texts.

use std::ops::Range;

use serde_json::Value;

use crate::card::tool_card;
use crate::embed::{Embedded, Model};
use crate::error::ModelError;
use crate::head::{Head, HeadKind};

/// The model's verdict on one tool or text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Score {
    /// The highest window score, in [0, 1].
    pub score: f32,
    /// The head's threshold.
    pub threshold: f32,
    /// `score >= threshold`.
    pub flagged: bool,
    /// Byte range of the scored text (the tool card for tools) of the highest-scoring window.
    pub span: Range<usize>,
    /// Windows scored.
    pub windows: usize,
    /// Part of the text was too long to score (past the byte or window cap).
    pub truncated: bool,
}

/// The heads built into this binary, when the source tree had them (`heads/*.json`).
pub fn bundled_heads() -> Option<(&'static str, &'static str)> {
    #[cfg(warden_heads)]
    {
        Some((
            include_str!("../heads/tools.json"),
            include_str!("../heads/texts.json"),
        ))
    }
    #[cfg(not(warden_heads))]
    {
        None
    }
}

/// The model with a head for tools and a head for texts.
#[derive(Debug)]
pub struct Classifier {
    model: Model,
    tools: Head,
    texts: Head,
}

impl Classifier {
    /// Put a model and two heads together, checking that each head is of its kind and was
    /// trained on these weights.
    pub fn new(model: Model, tools: Head, texts: Head) -> Result<Classifier, ModelError> {
        for (head, kind) in [(&tools, HeadKind::Tools), (&texts, HeadKind::Texts)] {
            if head.kind() != kind {
                return Err(ModelError::Head {
                    what: kind.as_str().to_owned(),
                    message: format!("is a {} head", head.kind().as_str()),
                });
            }
            if head.model_sha256() != crate::MODEL_SHA256 {
                return Err(ModelError::Head {
                    what: kind.as_str().to_owned(),
                    message: format!(
                        "was trained on weights with SHA-256 {}, these are {}",
                        head.model_sha256(),
                        crate::MODEL_SHA256
                    ),
                });
            }
        }
        Ok(Classifier {
            model,
            tools,
            texts,
        })
    }

    /// The model and the heads built into this binary. `Ok(None)` when this build has no
    /// trained heads.
    pub fn load_bundled(dir: &std::path::Path) -> Result<Option<Classifier>, ModelError> {
        let Some((tools, texts)) = bundled_heads() else {
            return Ok(None);
        };
        let tools = Head::from_json(tools)?;
        let texts = Head::from_json(texts)?;
        Classifier::new(Model::load(dir)?, tools, texts).map(Some)
    }

    /// The embedding model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Score an MCP tool object by its tool card.
    pub fn score_tool(&self, tool: &Value) -> Result<Score, ModelError> {
        let card = tool_card(tool);
        Ok(score(&self.tools, &self.model.embed(&card)?))
    }

    /// Score many MCP tool objects, their cards batched across tools (see
    /// [`Model::embed_batch`]); the scores are in the order of `tools`.
    pub fn score_tools(&self, tools: &[&Value]) -> Result<Vec<Score>, ModelError> {
        let cards: Vec<String> = tools.iter().map(|t| tool_card(t)).collect();
        let refs: Vec<&str> = cards.iter().map(String::as_str).collect();
        Ok(self
            .model
            .embed_batch(&refs)?
            .iter()
            .map(|e| score(&self.tools, e))
            .collect())
    }

    /// Score a text (a tool output, a file, a page).
    pub fn score_text(&self, text: &str) -> Result<Score, ModelError> {
        Ok(score(&self.texts, &self.model.embed(text)?))
    }

    /// Score a text, with the byte range of *every* window at or above the threshold (not only
    /// the highest), for callers that cut out what the model flagged (the proxy's `redact`).
    pub fn score_text_spans(&self, text: &str) -> Result<(Score, Vec<Range<usize>>), ModelError> {
        let embedded = self.model.embed(text)?;
        let spans = flagged_spans(&self.texts, &embedded);
        Ok((score(&self.texts, &embedded), spans))
    }
}

/// The spans of the windows at or above the head's threshold (a NaN score counts as flagged).
pub(crate) fn flagged_spans(head: &Head, embedded: &Embedded) -> Vec<Range<usize>> {
    embedded
        .windows
        .iter()
        .filter(|w| {
            let s = head.score(&w.embedding);
            s.is_nan() || s >= head.threshold()
        })
        .map(|w| w.span.clone())
        .collect()
}

/// The maximum over windows.
pub(crate) fn score(head: &Head, embedded: &Embedded) -> Score {
    let mut best = (f32::NEG_INFINITY, 0..0);
    for w in &embedded.windows {
        let mut s = head.score(&w.embedding);
        if s.is_nan() {
            // Fail closed: a window the network cannot score counts as flagged.
            tracing::warn!(span = ?w.span, "the model gave no score for a window; counting it as flagged");
            s = 1.0;
        }
        if s > best.0 {
            best = (s, w.span.clone());
        }
    }
    let value = if best.0.is_finite() { best.0 } else { 0.0 };
    Score {
        score: value,
        threshold: head.threshold(),
        flagged: value >= head.threshold(),
        span: best.1,
        windows: embedded.windows.len(),
        truncated: embedded.truncated,
    }
}
