//! The embedding model: all-MiniLM-L6-v2 (a 6-layer BERT) in candle, on the CPU.
//!
//! Texts longer than one window are cut into overlapping windows so nothing is dropped at the
//! model's 128-token horizon and an instruction buried in a long tool output gets a window of
//! its own. Windows of one text run as one batch (padded to the longest, masked), which is
//! cheaper than one forward pass per window.

use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

use crate::bert::{Bert, Config};

use crate::error::ModelError;
use crate::{EMBED_DIM, MAX_TEXT_BYTES, MAX_WINDOWS, MODEL_FILES, STRIDE, WINDOW};

/// Content tokens per window (the window less `[CLS]` and `[SEP]`).
const CONTENT: usize = WINDOW - 2;
/// Windows per forward pass: bounds the activations' memory (≈ 8 × 128 × 1536 floats per layer).
const BATCH: usize = 8;
const CLS: u32 = 101;
const SEP: u32 = 102;

/// The loaded model: tokenizer and network. `Send + Sync`; embedding takes `&self`.
pub struct Model {
    tokenizer: Tokenizer,
    bert: Bert,
    device: Device,
    dir: PathBuf,
}

/// One window of a text and its embedding.
#[derive(Debug, Clone)]
pub struct Window {
    /// Byte range of the text the window covers.
    pub span: Range<usize>,
    /// Mean-pooled, L2-normalised embedding.
    pub embedding: [f32; EMBED_DIM],
}

/// A text's windows, and whether part of the text was left unscored.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// At least one window (an empty text is one window of `[CLS] [SEP]`).
    pub windows: Vec<Window>,
    /// Part of the text was past [`MAX_TEXT_BYTES`] or [`MAX_WINDOWS`] and not embedded.
    pub truncated: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Load `model.safetensors`, `tokenizer.json` and `config.json` from `dir`, checking each
    /// against its pinned SHA-256 (a partial or swapped file is refused, not half-loaded).
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let read = |name: &str| crate::read_model_file(&dir.join(name));
        let mut files = Vec::with_capacity(MODEL_FILES.len());
        for (name, expected) in MODEL_FILES {
            let bytes = read(name)?;
            let actual = crate::sha256_hex(&bytes);
            if actual != expected {
                return Err(ModelError::Hash {
                    path: dir.join(name),
                    expected: expected.to_owned(),
                    actual,
                });
            }
            files.push(bytes);
        }
        let config_bytes = files.pop().unwrap_or_default();
        let tokenizer_bytes = files.pop().unwrap_or_default();
        let weights = files.pop().unwrap_or_default();

        let config: Config =
            serde_json::from_slice(&config_bytes).map_err(|e| ModelError::Parse {
                path: dir.join("config.json"),
                message: e.to_string(),
            })?;
        config.check().map_err(|message| ModelError::Parse {
            path: dir.join("config.json"),
            message,
        })?;
        let mut tokenizer =
            Tokenizer::from_bytes(&tokenizer_bytes).map_err(|e| ModelError::Parse {
                path: dir.join("tokenizer.json"),
                message: e.to_string(),
            })?;
        // The file asks for truncation and padding to 128; windows are cut here instead.
        tokenizer
            .with_truncation(None)
            .map_err(|e| ModelError::Parse {
                path: dir.join("tokenizer.json"),
                message: e.to_string(),
            })?;
        tokenizer.with_padding(None);

        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let bert = Bert::load(vb, &config)?;
        Ok(Model {
            tokenizer,
            bert,
            device,
            dir: dir.to_owned(),
        })
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embed `text`: one normalised embedding per window.
    pub fn embed(&self, text: &str) -> Result<Embedded, ModelError> {
        let cut = self.cut(text)?;
        let mut windows = Vec::with_capacity(cut.starts.len());
        for batch in cut.starts.chunks(BATCH) {
            let ranges: Vec<Range<usize>> = batch.iter().map(|&s| cut.range(s)).collect();
            let embeddings = self.forward(&cut.ids, &ranges)?;
            for (range, embedding) in ranges.into_iter().zip(embeddings) {
                let span = cut.span(&range);
                windows.push(Window { span, embedding });
            }
        }
        Ok(Embedded {
            windows,
            truncated: cut.truncated,
        })
    }

    /// The embedding of the first window of `text` only (its first 126 content tokens): for
    /// comparing two short texts (goal drift), where the rest would be computed for nothing.
    pub fn embed_first_window(&self, text: &str) -> Result<[f32; EMBED_DIM], ModelError> {
        self.embed_first_window_whole(text).map(|(e, _)| e)
    }

    /// [`Model::embed_first_window`], and whether that window holds all of `text` (it has
    /// one window and nothing was cut): a verdict on the embedding speaks for the whole text
    /// only then.
    pub fn embed_first_window_whole(
        &self,
        text: &str,
    ) -> Result<([f32; EMBED_DIM], bool), ModelError> {
        let cut = self.cut(text)?;
        let range = cut.range(0);
        let whole = !cut.truncated && cut.starts.len() == 1 && range.end == cut.ids.len();
        let e = self
            .forward(&cut.ids, &[range])?
            .pop()
            .ok_or_else(|| ModelError::Candle(candle_core::Error::Msg("no embedding".into())))?;
        Ok((e, whole))
    }

    /// Embed several texts, batching windows *across* texts: a list of short tool cards takes
    /// one forward pass per [`BATCH`] cards instead of one per card. Windows are sorted by
    /// length before batching, so little of each batch is padding. The result is in the order
    /// of `texts`, each as [`Model::embed`] would give it.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Embedded>, ModelError> {
        let cuts = texts
            .iter()
            .map(|t| self.cut(t))
            .collect::<Result<Vec<Cut>, ModelError>>()?;
        // (text, window index, content range), shortest first.
        let mut jobs: Vec<(usize, usize, Range<usize>)> = Vec::new();
        for (t, cut) in cuts.iter().enumerate() {
            for (i, &s) in cut.starts.iter().enumerate() {
                jobs.push((t, i, cut.range(s)));
            }
        }
        jobs.sort_by_key(|(_, _, r)| r.len());
        let mut out: Vec<Embedded> = cuts
            .iter()
            .map(|c| Embedded {
                windows: Vec::with_capacity(c.starts.len()),
                truncated: c.truncated,
            })
            .collect();
        let mut slots: Vec<Vec<Option<Window>>> =
            cuts.iter().map(|c| vec![None; c.starts.len()]).collect();
        for batch in jobs.chunks(BATCH) {
            // Each window's ids copied out, so windows of different texts share one pass.
            let mut ids = Vec::new();
            let mut ranges = Vec::with_capacity(batch.len());
            for (t, _, r) in batch {
                let start = ids.len();
                ids.extend_from_slice(&cuts[*t].ids[r.clone()]);
                ranges.push(start..ids.len());
            }
            let embeddings = self.forward(&ids, &ranges)?;
            for ((t, i, r), embedding) in batch.iter().zip(embeddings) {
                let span = cuts[*t].span(r);
                if let Some(slot) = slots.get_mut(*t).and_then(|s| s.get_mut(*i)) {
                    *slot = Some(Window { span, embedding });
                }
            }
        }
        for (e, s) in out.iter_mut().zip(slots) {
            e.windows = s.into_iter().flatten().collect();
        }
        Ok(out)
    }

    /// The token ids of each window of `text`, `[CLS]` and `[SEP]` included: what
    /// [`Model::embed`] feeds the network (for cross-checking against another implementation).
    pub fn window_ids(&self, text: &str) -> Result<Vec<Vec<u32>>, ModelError> {
        let cut = self.cut(text)?;
        Ok(cut
            .starts
            .iter()
            .map(|&s| {
                let mut w = vec![CLS];
                w.extend_from_slice(&cut.ids[cut.range(s)]);
                w.push(SEP);
                w
            })
            .collect())
    }

    /// Tokenize the capped text and choose its windows.
    fn cut(&self, text: &str) -> Result<Cut, ModelError> {
        let (text, mut truncated) = cap_text(text);
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Tokenize(e.to_string()))?;
        let ids = encoding.get_ids().to_vec();
        let offsets = encoding.get_offsets().to_vec();
        let mut starts = window_starts(ids.len());
        if starts.len() > MAX_WINDOWS {
            starts.truncate(MAX_WINDOWS);
            truncated = true;
        }
        Ok(Cut {
            ids,
            offsets,
            starts,
            truncated,
        })
    }

    /// One forward pass over a batch of windows (content-token ranges of `ids`).
    fn forward(
        &self,
        ids: &[u32],
        ranges: &[Range<usize>],
    ) -> Result<Vec<[f32; EMBED_DIM]>, ModelError> {
        let len = ranges.iter().map(|r| r.len() + 2).max().unwrap_or(2);
        let mut input = Vec::with_capacity(ranges.len() * len);
        let mut mask = Vec::with_capacity(ranges.len() * len);
        for r in ranges {
            let used = r.len() + 2;
            input.push(CLS);
            input.extend_from_slice(&ids[r.clone()]);
            input.push(SEP);
            input.extend(std::iter::repeat_n(0u32, len - used));
            mask.extend(std::iter::repeat_n(1u32, used));
            mask.extend(std::iter::repeat_n(0u32, len - used));
        }
        let shape = (ranges.len(), len);
        let input = Tensor::from_vec(input, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.bert.forward(&input, &mask)?;
        // Mean over the real tokens: sum(hidden * mask) / sum(mask).
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?;
        let counts = maskf.sum(1)?;
        let pooled = summed.broadcast_div(&counts)?.to_vec2::<f32>()?;
        let mut out = Vec::with_capacity(pooled.len());
        for row in pooled {
            let mut e = [0f32; EMBED_DIM];
            if row.len() != EMBED_DIM {
                return Err(ModelError::Candle(candle_core::Error::Msg(format!(
                    "embedding has {} values, expected {EMBED_DIM}",
                    row.len()
                ))));
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            for (o, v) in e.iter_mut().zip(&row) {
                *o = v / norm;
            }
            out.push(e);
        }
        Ok(out)
    }
}

/// A tokenized text and where its windows start.
struct Cut {
    ids: Vec<u32>,
    offsets: Vec<(usize, usize)>,
    starts: Vec<usize>,
    truncated: bool,
}

impl Cut {
    fn range(&self, start: usize) -> Range<usize> {
        start..(start + CONTENT).min(self.ids.len())
    }

    /// The byte range of the text a window's content tokens cover.
    fn span(&self, range: &Range<usize>) -> Range<usize> {
        match (self.offsets.get(range.start), range.end.checked_sub(1)) {
            (Some(first), Some(last)) if range.end > range.start => {
                first.0..self.offsets.get(last).map_or(first.1, |o| o.1)
            }
            _ => 0..0,
        }
    }
}

/// The first [`MAX_TEXT_BYTES`] of `text`, cut at a character boundary, and whether it was cut.
fn cap_text(text: &str) -> (&str, bool) {
    if text.len() <= MAX_TEXT_BYTES {
        return (text, false);
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// Where each window starts, in content tokens: 0, 64, 128, … up to the first window that
/// reaches the end. A text of at most 126 tokens is one window.
pub(crate) fn window_starts(tokens: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut s = 0;
    while s + CONTENT < tokens {
        s += STRIDE;
        starts.push(s);
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_token_and_overlap() {
        assert_eq!(window_starts(0), vec![0]);
        assert_eq!(window_starts(126), vec![0]);
        assert_eq!(window_starts(127), vec![0, 64]);
        assert_eq!(window_starts(190), vec![0, 64]);
        assert_eq!(window_starts(191), vec![0, 64, 128]);
        for n in [0, 1, 126, 127, 500, 4000] {
            let starts = window_starts(n);
            let last = *starts.last().unwrap_or(&0);
            assert!(last + CONTENT >= n, "{n} tokens: last window ends short");
            assert!(last < n.max(1), "{n} tokens: an empty trailing window");
        }
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary_and_says_so() {
        let text = "é".repeat(MAX_TEXT_BYTES); // 2 bytes each
        let (cut, truncated) = cap_text(&text);
        assert!(truncated);
        assert!(cut.len() <= MAX_TEXT_BYTES);
        assert_eq!(cap_text("short"), ("short", false));
    }
}
