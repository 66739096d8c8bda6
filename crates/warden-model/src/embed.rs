//! The embedding model: all-MiniLM-L6-v2 (a 6-layer BERT) in candle, on the CPU.
//!
//! Texts longer than one window are cut into overlapping windows so nothing is dropped at the
//! model's 128-token horizon and an instruction buried in a long tool output gets a window of
//! its own.
//!
//! How the windows are run (measured in docs/model.md "Speed"): identical windows (the same
//! token ids, within one call) are embedded once; the distinct windows are sorted by length
//! and grouped into forward passes of at most [`PASS_TOKENS`] tokens (two full windows, or up
//! to [`PASS_WINDOWS`] short ones, padded to the longest and masked), and the passes are
//! shared out over the model's own rayon pool: two cores run two passes at once. Inside a
//! pass candle's matrix products split their work over the same pool, so a single window
//! uses the idle core too. Small passes also keep each tensor of a pass small (at most
//! ~1.5 MB), so the allocator reuses its memory instead of mapping and faulting fresh pages
//! for every pass (8-window passes cost the 1,000-tool scan 18 s of page faults).

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
/// Tokens per forward pass, padding included: two full windows, or more shorter ones (their
/// matrix products then read the weights once for several windows). Larger passes saved a
/// few per cent of CPU and brought the page faults back.
const PASS_TOKENS: usize = 2 * WINDOW;
/// Most windows in one pass.
const PASS_WINDOWS: usize = 8;
/// Most threads a model uses when nothing says how many.
const MAX_DEFAULT_THREADS: usize = 8;
/// Most threads a model uses at all.
pub const MAX_THREADS: usize = 64;
const CLS: u32 = 101;
const SEP: u32 = 102;

/// The loaded model: tokenizer and network. `Send + Sync`; embedding takes `&self`.
pub struct Model {
    tokenizer: Tokenizer,
    bert: Bert,
    device: Device,
    dir: PathBuf,
    pool: rayon::ThreadPool,
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

/// The number of threads [`Model::load`] gives a model: `RAYON_NUM_THREADS` when it is set to
/// a positive number (the variable candle and rayon read too; at most [`MAX_THREADS`]), else
/// the cores this process may run on, at most 8.
pub fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(MAX_THREADS))
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_DEFAULT_THREADS)
        })
}

fn build_pool(threads: usize) -> Result<rayon::ThreadPool, ModelError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.clamp(1, MAX_THREADS))
        .thread_name(|i| format!("warden-model-{i}"))
        .build()
        .map_err(|e| ModelError::Threads(e.to_string()))
}

impl Model {
    /// Load `model.safetensors`, `tokenizer.json` and `config.json` from `dir`, checking each
    /// against its pinned SHA-256 (a partial or swapped file is refused, not half-loaded).
    /// The model runs on [`default_threads`] threads of its own.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        Model::load_with_threads(dir, default_threads())
    }

    /// [`Model::load`] with `threads` threads (0 counts as 1, more than [`MAX_THREADS`] as
    /// that many). The embeddings do not depend on the number of threads, only the time does.
    pub fn load_with_threads(dir: &Path, threads: usize) -> Result<Model, ModelError> {
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
            pool: build_pool(threads)?,
        })
    }

    /// The number of threads the model runs on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embed `text`: one normalised embedding per window.
    pub fn embed(&self, text: &str) -> Result<Embedded, ModelError> {
        self.embed_batch(&[text])?
            .pop()
            .ok_or_else(|| ModelError::Candle(candle_core::Error::Msg("no embedding".into())))
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
        let window = &cut.ids[range];
        let e = self
            .pool
            .install(|| self.forward(&[window]))?
            .pop()
            .ok_or_else(|| ModelError::Candle(candle_core::Error::Msg("no embedding".into())))?;
        Ok((e, whole))
    }

    /// Embed several texts, each as [`Model::embed`] would, in the order of `texts`. The
    /// windows of all the texts are run together: identical windows once, the rest in
    /// passes of similar lengths shared out over the model's threads.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Embedded>, ModelError> {
        let cuts = texts
            .iter()
            .map(|t| self.cut(t))
            .collect::<Result<Vec<Cut>, ModelError>>()?;
        // Each text's windows as indices into the distinct windows.
        let mut distinct: Vec<&[u32]> = Vec::new();
        let mut seen: std::collections::HashMap<&[u32], usize> = std::collections::HashMap::new();
        let refs: Vec<Vec<usize>> = cuts
            .iter()
            .map(|cut| {
                cut.starts
                    .iter()
                    .map(|&s| {
                        let ids = &cut.ids[cut.range(s)];
                        *seen.entry(ids).or_insert_with(|| {
                            distinct.push(ids);
                            distinct.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let passes = plan_passes(&distinct);
        tracing::debug!(
            texts = texts.len(),
            windows = refs.iter().map(Vec::len).sum::<usize>(),
            distinct = distinct.len(),
            tokens = distinct.iter().map(|w| w.len() + 2).sum::<usize>(),
            passes = passes.len(),
            threads = self.threads(),
            "embedding"
        );
        let results: Vec<Result<Vec<[f32; EMBED_DIM]>, ModelError>> = self.pool.install(|| {
            use rayon::prelude::*;
            passes
                .par_iter()
                .with_max_len(1)
                .map(|pass| {
                    let windows: Vec<&[u32]> = pass.iter().map(|&i| distinct[i]).collect();
                    self.forward(&windows)
                })
                .collect()
        });
        let mut embeddings = vec![[0f32; EMBED_DIM]; distinct.len()];
        for (pass, result) in passes.iter().zip(results) {
            for (&i, e) in pass.iter().zip(result?) {
                embeddings[i] = e;
            }
        }
        Ok(cuts
            .iter()
            .zip(refs)
            .map(|(cut, refs)| Embedded {
                windows: cut
                    .starts
                    .iter()
                    .zip(refs)
                    .map(|(&s, i)| Window {
                        span: cut.span(&cut.range(s)),
                        embedding: embeddings[i],
                    })
                    .collect(),
                truncated: cut.truncated,
            })
            .collect())
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

    /// One forward pass over a batch of windows (their content tokens, without `[CLS]` and
    /// `[SEP]`), padded to the longest.
    fn forward(&self, windows: &[&[u32]]) -> Result<Vec<[f32; EMBED_DIM]>, ModelError> {
        let len = windows.iter().map(|w| w.len() + 2).max().unwrap_or(2);
        let mut input = Vec::with_capacity(windows.len() * len);
        let mut mask = Vec::with_capacity(windows.len() * len);
        for w in windows {
            let used = w.len() + 2;
            input.push(CLS);
            input.extend_from_slice(w);
            input.push(SEP);
            input.extend(std::iter::repeat_n(0u32, len - used));
            // Added to the attention scores: padding gets a large negative score.
            mask.extend(std::iter::repeat_n(0f32, used));
            mask.extend(std::iter::repeat_n(-1e9f32, len - used));
        }
        let shape = (windows.len(), len);
        let input = Tensor::from_vec(input, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self
            .bert
            .forward(&input, &mask)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if hidden.len() != windows.len() * len * EMBED_DIM {
            return Err(ModelError::Candle(candle_core::Error::Msg(format!(
                "the encoder gave {} values, expected {}",
                hidden.len(),
                windows.len() * len * EMBED_DIM
            ))));
        }
        // Mean over the real tokens, then L2 normalisation.
        let mut out = Vec::with_capacity(windows.len());
        for (w, rows) in windows.iter().zip(hidden.chunks_exact(len * EMBED_DIM)) {
            let used = w.len() + 2;
            let mut sum = [0f32; EMBED_DIM];
            for row in rows.chunks_exact(EMBED_DIM).take(used) {
                for (s, v) in sum.iter_mut().zip(row) {
                    *s += v;
                }
            }
            let count = used as f32;
            for s in &mut sum {
                *s /= count;
            }
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            for s in &mut sum {
                *s /= norm;
            }
            out.push(sum);
        }
        Ok(out)
    }
}

/// Group windows (indices into `windows`) into forward passes: sorted by length, so a pass
/// pads little, and each pass at most [`PASS_TOKENS`] tokens (padding included) and
/// [`PASS_WINDOWS`] windows, or a single window. The grouping depends only on the windows,
/// never on the number of threads, so neither do the embeddings.
pub(crate) fn plan_passes(windows: &[&[u32]]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| windows[i].len());
    let mut passes: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted: this window is the longest of the pass so far.
        let padded = (current.len() + 1) * (windows[i].len() + 2);
        if !current.is_empty() && (padded > PASS_TOKENS || current.len() == PASS_WINDOWS) {
            passes.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        passes.push(current);
    }
    passes
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
    fn passes_cover_every_window_once_within_their_bounds() {
        let ids: Vec<Vec<u32>> = [
            126usize, 3, 0, 126, 40, 41, 60, 126, 5, 5, 5, 5, 5, 5, 5, 5, 5, 90,
        ]
        .iter()
        .map(|&n| vec![7u32; n])
        .collect();
        let windows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let passes = plan_passes(&windows);
        let mut all: Vec<usize> = passes.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..windows.len()).collect::<Vec<_>>());
        for p in &passes {
            let longest = p.iter().map(|&i| windows[i].len() + 2).max().unwrap_or(0);
            assert!(p.len() == 1 || p.len() * longest <= PASS_TOKENS, "{p:?}");
            assert!(p.len() <= PASS_WINDOWS, "{p:?}");
        }
        // The nine 5-token windows share passes of at most eight.
        assert!(passes.iter().any(|p| p.len() == PASS_WINDOWS));
        assert!(plan_passes(&[]).is_empty());
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
