//! Goal drift: how far an action is from the task its session declared.
//!
//! Why: an agent that was asked to "fix the failing test in src/parser.rs" and starts reading
//! `~/.aws/credentials` or posting to a pastebin has wandered, whatever each call looks like
//! on its own. When the action's context declares the task (`context.task`, a string) and an
//! [`Embedder`] is configured (the local model, see `warden-model`), Warden writes
//!
//! `context.drift = 1 − cos(embed(task), embed(action text))`, rounded to 3 decimals,
//!
//! a number in [0, 2] (0: the action reads like the task; about 1: unrelated), before the
//! policy runs, so a rule can say `when: context.drift > 0.8` → `require_approval`. The
//! action text is the action name, the tool and the arguments as compact JSON, cut at
//! [`MAX_ACTION_TEXT`] bytes; the task is cut at [`MAX_TASK_TEXT`] bytes; the model reads the
//! first 128 tokens of each. Task embeddings are cached (bounded LRU of [`TASK_CACHE`]
//! entries keyed by a hash of the task, the task itself compared on a hit).
//!
//! `context.drift` is Warden's to write: one the caller sent is removed. Without an embedder,
//! or without a task, it is absent, and a condition that reads it errors — which the policy
//! engines turn into a deny (fail closed). An embedder error is a deny with the reason.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use thiserror::Error;
use warden_core::Action;

/// Longest action text embedded, in bytes (1 KiB; the model reads ~128 tokens of it).
pub const MAX_ACTION_TEXT: usize = 1024;
/// Longest task text embedded, in bytes (4 KiB).
pub const MAX_TASK_TEXT: usize = 4096;
/// Task embeddings kept (least recently used goes first).
pub const TASK_CACHE: usize = 256;
/// The context key Warden writes (and removes from what callers send).
pub const DRIFT_CONTEXT: &str = "drift";
/// The context key a session declares its task in.
pub const TASK_CONTEXT: &str = "task";

/// Turns a text into a unit-length vector (a sentence embedding). Implemented over the local
/// model by the `warden` binary; `warden` itself does not link the model.
pub trait Embedder: Send + Sync {
    /// The L2-normalised embedding of `text` (of its first window, for a windowed model).
    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError>;

    /// [`Embedder::embed`], and whether the model read all of `text` (it fit in the window).
    /// The local model's verification vote needs this: text past the window is text the
    /// model did not judge. The default cannot tell, so it says `false` (the vote is then
    /// always no: fail closed); goal drift itself does not use the flag.
    fn embed_whole(&self, text: &str) -> Result<(Vec<f32>, bool), EmbedError> {
        Ok((self.embed(text)?, false))
    }
}

/// One measurement: the drift, and whether the model read all of both texts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// `1 − cos(task, action)`, in [0, 2], to 3 decimals.
    pub drift: f64,
    /// Neither text was cut (at [`MAX_TASK_TEXT`] / [`MAX_ACTION_TEXT`] bytes, or at the
    /// model's window): the number speaks for all of the action.
    pub whole: bool,
}

/// The embedder could not embed a text.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct EmbedError(pub String);

/// Goal drift could not be measured; the decision is a deny with this as its reason.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DriftError {
    /// The embedder failed.
    #[error("the model could not embed the {what}: {source}")]
    Embed {
        /// `task` or `action`.
        what: &'static str,
        /// Why.
        source: EmbedError,
    },
    /// The two embeddings cannot be compared (different widths, or not finite).
    #[error("the model's embeddings cannot be compared: {0}")]
    Shape(String),
}

/// Measures goal drift with an [`Embedder`], caching task embeddings.
pub struct Drift {
    embedder: Arc<dyn Embedder>,
    tasks: Mutex<TaskCache>,
}

impl std::fmt::Debug for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drift").finish_non_exhaustive()
    }
}

/// One cached task: its text (compared on a hit: the key is only a hash), its embedding,
/// whether the model read all of it, and when it was last used.
type Cached = (Arc<str>, Arc<[f32]>, bool, u64);

struct TaskCache {
    /// hash of the task → the task.
    entries: HashMap<u64, Cached>,
    clock: u64,
}

impl Drift {
    /// Measure with `embedder`.
    pub fn new(embedder: Arc<dyn Embedder>) -> Drift {
        Drift {
            embedder,
            tasks: Mutex::new(TaskCache {
                entries: HashMap::new(),
                clock: 0,
            }),
        }
    }

    /// The drift of `action` from its declared task: `Ok(None)` when the action declares no
    /// task (no `context.task` string).
    pub fn measure(&self, action: &Action) -> Result<Option<f64>, DriftError> {
        Ok(self.measure_whole(action)?.map(|m| m.drift))
    }

    /// [`Drift::measure`], saying also whether the model read all of the task and the action.
    pub fn measure_whole(&self, action: &Action) -> Result<Option<Measure>, DriftError> {
        let Some(task) = action.context.get(TASK_CONTEXT).and_then(Value::as_str) else {
            return Ok(None);
        };
        let task_cut = task.len() > MAX_TASK_TEXT;
        let (t, task_whole) = self.task_embedding(cut(task, MAX_TASK_TEXT))?;
        let (text, action_cut) = action_text_cut(action);
        let (a, action_whole) =
            self.embedder
                .embed_whole(&text)
                .map_err(|source| DriftError::Embed {
                    what: "action",
                    source,
                })?;
        Ok(Some(Measure {
            drift: drift(&t, &a)?,
            whole: task_whole && action_whole && !task_cut && !action_cut,
        }))
    }

    fn task_embedding(&self, task: &str) -> Result<(Arc<[f32]>, bool), DriftError> {
        let key = {
            let mut h = DefaultHasher::new();
            task.hash(&mut h);
            h.finish()
        };
        {
            let mut cache = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            cache.clock += 1;
            let now = cache.clock;
            if let Some((text, embedding, whole, used)) = cache.entries.get_mut(&key)
                && &**text == task
            {
                *used = now;
                return Ok((embedding.clone(), *whole));
            }
        }
        // Embedded outside the lock: other decisions do not wait on the model for it.
        let (embedding, whole) =
            self.embedder
                .embed_whole(task)
                .map_err(|source| DriftError::Embed {
                    what: "task",
                    source,
                })?;
        let embedding: Arc<[f32]> = embedding.into();
        let mut cache = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.entries.len() >= TASK_CACHE
            && !cache.entries.contains_key(&key)
            && let Some(oldest) = cache
                .entries
                .iter()
                .min_by_key(|(_, (_, _, _, used))| *used)
                .map(|(k, _)| *k)
        {
            cache.entries.remove(&oldest);
        }
        let now = cache.clock;
        cache
            .entries
            .insert(key, (Arc::from(task), embedding.clone(), whole, now));
        Ok((embedding, whole))
    }

    /// Task embeddings cached now (for tests and metrics).
    pub fn cached_tasks(&self) -> usize {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

/// What the model reads of an action: `name tool args-as-compact-JSON`, cut at
/// [`MAX_ACTION_TEXT`] bytes.
pub fn action_text(action: &Action) -> String {
    action_text_cut(action).0
}

/// [`action_text`], and whether it was cut.
fn action_text_cut(action: &Action) -> (String, bool) {
    let mut text = action.action.to_string();
    if let Some(tool) = &action.tool {
        text.push(' ');
        text.push_str(tool);
    }
    let no_args = action.args.is_null() || action.args.as_object().is_some_and(|m| m.is_empty());
    if !no_args {
        text.push(' ');
        text.push_str(&action.args.to_string());
    }
    let was_cut = text.len() > MAX_ACTION_TEXT;
    (cut(&text, MAX_ACTION_TEXT).to_owned(), was_cut)
}

/// 1 − cosine similarity of two unit vectors, clamped to [0, 2] and rounded to 3 decimals.
fn drift(a: &[f32], b: &[f32]) -> Result<f64, DriftError> {
    if a.len() != b.len() || a.is_empty() {
        return Err(DriftError::Shape(format!(
            "widths {} and {}",
            a.len(),
            b.len()
        )));
    }
    let cos: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    if !cos.is_finite() {
        return Err(DriftError::Shape("not a finite similarity".into()));
    }
    Ok(((1.0 - cos).clamp(0.0, 2.0) * 1000.0).round() / 1000.0)
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_one_minus_cosine_bounded_and_rounded() {
        assert_eq!(drift(&[1.0, 0.0], &[1.0, 0.0]).unwrap(), 0.0);
        assert_eq!(drift(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), 1.0);
        assert_eq!(drift(&[1.0, 0.0], &[-1.0, 0.0]).unwrap(), 2.0);
        assert_eq!(drift(&[1.0, 0.0], &[0.6, 0.8]).unwrap(), 0.4);
        assert!(drift(&[1.0], &[1.0, 0.0]).is_err());
        assert!(drift(&[], &[]).is_err());
        assert!(drift(&[f32::NAN], &[1.0]).is_err());
        // Not unit length (a broken embedder): still inside [0, 2].
        assert_eq!(drift(&[3.0], &[3.0]).unwrap(), 0.0);
        assert_eq!(drift(&[3.0], &[-3.0]).unwrap(), 2.0);
    }

    #[test]
    fn the_action_text_is_bounded_at_a_char_boundary() {
        let a = Action::new("shell.exec").with_arg("command", "é".repeat(2000));
        let t = action_text(&a);
        assert!(t.len() <= MAX_ACTION_TEXT && t.len() > MAX_ACTION_TEXT - 4);
        assert!(t.starts_with("shell.exec {\"command\":\"é"));
        let a = Action::new("mcp.tools/call").with_tool("read_file");
        assert_eq!(action_text(&a), "mcp.tools/call read_file");
    }
}
