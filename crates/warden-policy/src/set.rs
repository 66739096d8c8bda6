//! A set of policy documents judged together: deny overrides require-approval overrides allow.
//!
//! Each document reports its strongest applicable rule; the set keeps the strongest of those.
//! Document defaults apply only when no rule anywhere in the set applies, and then the
//! strictest default wins (one document that says nothing about an action cannot open it for
//! the others).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use warden_core::{Action, Decision, Match, Policy, PolicyError, Verdict};

use crate::cedar::CedarPolicy;
use crate::diagnostic::{LoadError, Position, Problem, Source};
use crate::engine::YamlPolicy;
use crate::explain::{Explanation, Status};
use crate::rego::RegoPolicy;

/// File extensions the loader understands.
pub const EXTENSIONS: &[&str] = &["yaml", "yml", "cedar", "rego"];

/// One loaded document, in whichever language it was written.
#[derive(Debug)]
pub enum Document {
    /// A native YAML policy.
    Yaml(YamlPolicy),
    /// A Cedar policy file (`.cedar`).
    Cedar(CedarPolicy),
    /// A Rego policy file (`.rego`, `package warden`).
    Rego(RegoPolicy),
}

impl Document {
    /// The document's name.
    pub fn name(&self) -> &Arc<str> {
        match self {
            Document::Yaml(p) => p.name(),
            Document::Cedar(p) => p.name(),
            Document::Rego(p) => p.name(),
        }
    }

    /// What the document says when none of its rules applies.
    pub fn default_verdict(&self) -> Verdict {
        match self {
            Document::Yaml(p) => p.default_verdict(),
            Document::Cedar(p) => p.default_verdict(),
            Document::Rego(p) => p.default_verdict(),
        }
    }

    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        match self {
            Document::Yaml(p) => p.evaluate(action),
            Document::Cedar(p) => p.evaluate(action),
            Document::Rego(p) => p.evaluate(action),
        }
    }

    fn trace(&self, action: &Action) -> Vec<crate::explain::RuleTrace> {
        match self {
            Document::Yaml(p) => p.trace(action),
            Document::Cedar(p) => p.trace(action),
            Document::Rego(p) => p.trace(action),
        }
    }

    /// Number of rules or policies in the document.
    pub fn rule_count(&self) -> usize {
        match self {
            Document::Yaml(p) => p.len(),
            Document::Cedar(p) => p.rule_count(),
            Document::Rego(p) => p.rule_count(),
        }
    }
}

/// Compiled policies, ready to judge actions from many threads at once.
#[derive(Debug)]
pub struct PolicySet {
    documents: Vec<Document>,
    /// The strictest document default, and the document that set it.
    default: (Verdict, Arc<str>),
}

impl PolicySet {
    /// Load policy files, or every policy file in the given directories (sorted by name).
    /// Every problem in every file is reported, not just the first.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        let mut sources = Vec::new();
        for path in paths {
            match collect(path.as_ref()) {
                Ok(files) => {
                    for file in files {
                        match read(&file) {
                            Ok(source) => sources.push(source),
                            Err(e) => problems.extend(e.into_problems()),
                        }
                    }
                }
                Err(e) => problems.extend(e.into_problems()),
            }
        }
        if paths.is_empty() {
            return Err(LoadError::file(Path::new("."), "no policy files given"));
        }
        match PolicySet::compile(&sources) {
            Ok(set) if problems.is_empty() => Ok(set),
            Ok(_) => Err(LoadError::new(problems)),
            Err(e) => {
                problems.extend(e.into_problems());
                Err(LoadError::new(problems))
            }
        }
    }

    /// Compile one YAML document from text (`path` names it in errors).
    pub fn from_yaml(path: impl Into<PathBuf>, text: &str) -> Result<Self, LoadError> {
        PolicySet::compile(&[Source::new(path, text)])
    }

    /// Compile already-read sources.
    pub fn compile(sources: &[Source]) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        let mut documents: Vec<Document> = Vec::new();
        for source in sources {
            match compile_one(source) {
                Ok(policy) => {
                    if let Some(other) = documents.iter().find(|d| d.name() == policy.name()) {
                        problems.push(Problem::new(
                            source,
                            source.position_of(0, 0),
                            format!("two policies are named `{}`", other.name()),
                        ).with_hint(
                            "give each document a unique `name:` (Cedar and Rego documents are named after their file)",
                        ));
                    }
                    documents.push(policy);
                }
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::new(problems));
        }
        if documents.is_empty() {
            return Err(LoadError::file(
                Path::new("."),
                "no policy documents to load",
            ));
        }
        let default = documents
            .iter()
            .map(|d| (d.default_verdict(), d.name().clone()))
            .fold(None::<(Verdict, Arc<str>)>, |best, cur| match best {
                Some(b) if b.0 >= cur.0 => Some(b),
                _ => Some(cur),
            })
            .expect("at least one document");
        Ok(PolicySet { documents, default })
    }

    /// The documents, in load order.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// Total number of rules across documents.
    pub fn rule_count(&self) -> usize {
        self.documents.iter().map(Document::rule_count).sum()
    }

    /// Judge an action. Never fails: an evaluation error is a deny naming the error.
    pub fn decide(&self, action: &Action) -> Decision {
        match self.evaluate(action) {
            Ok(Some(m)) => Decision::from_match(&m),
            Ok(None) => self.default_decision(action),
            Err(e) => error_decision(&e),
        }
    }

    fn default_decision(&self, action: &Action) -> Decision {
        let (verdict, policy) = &self.default;
        let mut d = Decision::deny(format!(
            "no rule matched action `{}`; the default of policy `{policy}` is {verdict}",
            action.action
        ));
        d.verdict = *verdict;
        d.policy = Some(policy.clone());
        d
    }

    /// Judge an action and report every rule's part in it.
    pub fn explain(&self, action: &Action) -> Explanation {
        let decision = self.decide(action);
        let mut rules: Vec<_> = self
            .documents
            .iter()
            .flat_map(|d| d.trace(action))
            .collect();
        if let (Some(policy), Some(rule)) = (&decision.policy, &decision.rule)
            && let Some(t) = rules
                .iter_mut()
                .find(|t| &t.policy == policy && &t.rule == rule && t.status != Status::NotMatched)
        {
            t.decided = true;
        }
        Explanation { decision, rules }
    }
}

/// Compile one source with the backend its extension names (YAML when it names none).
fn compile_one(source: &Source) -> Result<Document, Vec<Problem>> {
    match source.path.extension().and_then(|e| e.to_str()) {
        Some("cedar") => CedarPolicy::compile(source).map(Document::Cedar),
        Some("rego") => RegoPolicy::compile(source).map(Document::Rego),
        _ => crate::yaml::compile(source).map(Document::Yaml),
    }
}

fn error_decision(e: &PolicyError) -> Decision {
    let mut d = Decision::deny(format!("denied because the policy could not decide: {e}"));
    d.policy = Some(Arc::from(e.policy()));
    d.rule = Some(Arc::from(e.rule()));
    d
}

impl Policy for PolicySet {
    /// The strongest rule that applies across all documents; `None` if none does.
    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        let mut best: Option<Match> = None;
        for doc in &self.documents {
            if let Some(m) = doc.evaluate(action)? {
                let stronger = best.as_ref().is_none_or(|b| m.verdict > b.verdict);
                if stronger {
                    let is_deny = m.verdict == Verdict::Deny;
                    best = Some(m);
                    if is_deny {
                        break;
                    }
                }
            }
        }
        Ok(best)
    }
}

/// The policy files a path stands for: itself, or the policy files in a directory.
fn collect(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| LoadError::file(path, format!("cannot read policy: {e}")))?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| LoadError::file(path, format!("cannot read directory: {e}")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && has_policy_extension(p) && !is_test_file(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(LoadError::file(
                path,
                format!(
                    "no policy files (.{}) in this directory",
                    EXTENSIONS.join(", .")
                ),
            ));
        }
        return Ok(files);
    }
    if !has_policy_extension(path) {
        return Err(LoadError::file(
            path,
            format!(
                "not a policy file: expected one of .{}",
                EXTENSIONS.join(", .")
            ),
        ));
    }
    Ok(vec![path.to_path_buf()])
}

/// `*.test.yaml` files hold test cases for `warden policy test`; directory scans skip them.
fn is_test_file(path: &Path) -> bool {
    path.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with(".test"))
}

fn has_policy_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// Read a file as UTF-8, pointing at the first invalid byte otherwise.
pub(crate) fn read(path: &Path) -> Result<Source, LoadError> {
    let bytes = std::fs::read(path)
        .map_err(|e| LoadError::file(path, format!("cannot read policy: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(path, &text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let source = Source::new(path, &prefix);
            let at: Position = source.position_of(valid, 0);
            Err(LoadError::new(vec![Problem::new(
                &source,
                at,
                "the file is not valid UTF-8 text",
            )]))
        }
    }
}
