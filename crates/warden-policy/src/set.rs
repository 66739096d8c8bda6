//! A set of policy documents judged together: deny overrides require-approval overrides allow.
//!
//! Each document reports its strongest applicable rule; the set keeps the strongest of those.
//! Document defaults apply only when no rule anywhere in the set applies, and then the
//! strictest default wins (one document that says nothing about an action cannot open it for
//! the others).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use warden_core::{Action, Decision, Match, Policy, PolicyError, Verdict};

use crate::backend::Backend;
use crate::cedar::CedarPolicy;
use crate::diagnostic::{LoadError, Problem};
use crate::engine::YamlPolicy;
use crate::explain::{Explanation, Status};
use crate::limits::Limits;
use crate::rego::RegoPolicy;
use crate::source::{self, Source, Watched};

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
    fn backend(&self) -> &dyn Backend {
        match self {
            Document::Yaml(p) => p,
            Document::Cedar(p) => p,
            Document::Rego(p) => p,
        }
    }

    /// The document's name.
    pub fn name(&self) -> &Arc<str> {
        self.backend().name()
    }

    /// What the document says when none of its rules applies.
    pub fn default_verdict(&self) -> Verdict {
        self.backend().default_verdict()
    }

    /// Number of rules or policies in the document.
    pub fn rule_count(&self) -> usize {
        self.backend().rule_count()
    }

    /// Every file the document was read from (for Cedar: the policy file, and its schema and
    /// entities files, present or not).
    pub fn sources(&self) -> &[Watched] {
        self.backend().sources()
    }
}

/// Compiled policies, ready to judge actions from many threads at once.
#[derive(Debug)]
pub struct PolicySet {
    documents: Vec<Document>,
    /// The strictest document default, and the document that set it.
    default: (Verdict, Arc<str>),
    /// Directories listed and missing paths, beside the documents' own sources.
    watched: Vec<Watched>,
}

impl PolicySet {
    /// Load policy files, or every policy file in the given directories (sorted by name),
    /// under the default [`Limits`]. Every problem in every file is reported, not just the
    /// first.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        PolicySet::load_with(paths, &Limits::default())
    }

    /// [`PolicySet::load`] under the given limits.
    pub fn load_with<P: AsRef<Path>>(paths: &[P], limits: &Limits) -> Result<Self, LoadError> {
        if paths.is_empty() {
            return Err(LoadError::file(Path::new("."), "no policy files given"));
        }
        let mut problems = Vec::new();
        let mut watched = Vec::new();
        let mut sources = Vec::new();
        for path in paths {
            for file in source::expand(path.as_ref(), &mut problems, &mut watched) {
                match source::read(&file, limits) {
                    Ok(source) => sources.push(source),
                    Err(p) => problems.push(p),
                }
            }
        }
        let compiled = PolicySet::compile_all(&sources, limits, problems);
        compiled.map(|mut set| {
            watched.append(&mut set.watched);
            set.watched = watched;
            set
        })
    }

    /// Compile one YAML document from text (`path` names it in errors).
    pub fn from_yaml(path: impl Into<PathBuf>, text: &str) -> Result<Self, LoadError> {
        PolicySet::compile(&[Source::new(path, text)])
    }

    /// Compile already-read sources under the default [`Limits`].
    pub fn compile(sources: &[Source]) -> Result<Self, LoadError> {
        PolicySet::compile_with(sources, &Limits::default())
    }

    /// Compile already-read sources under the given limits.
    pub fn compile_with(sources: &[Source], limits: &Limits) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        for s in sources {
            if s.text.len() > limits.max_file_bytes {
                problems.push(Problem::whole_file(
                    &s.path,
                    format!(
                        "the file is larger than the limit of {} bytes",
                        limits.max_file_bytes
                    ),
                ));
            }
        }
        PolicySet::compile_all(sources, limits, problems)
    }

    /// Compile every source, adding to the problems already found while reading them.
    fn compile_all(
        sources: &[Source],
        limits: &Limits,
        mut problems: Vec<Problem>,
    ) -> Result<Self, LoadError> {
        if sources.len() > limits.max_documents {
            problems.push(Problem::whole_file(
                &sources[limits.max_documents].path,
                format!(
                    "more than {} policy documents in one set",
                    limits.max_documents
                ),
            ));
            return Err(LoadError::new(problems));
        }
        let mut documents: Vec<Document> = Vec::new();
        let mut names: HashMap<Arc<str>, ()> = HashMap::new();
        for source in sources {
            match compile_one(source, limits) {
                Ok(policy) => {
                    if names.insert(policy.name().clone(), ()).is_some() {
                        problems.push(
                            Problem::new(
                                source,
                                source.position_of(0, 0),
                                format!("two policies are named `{}`", policy.name()),
                            )
                            .with_hint(
                                "give each document a unique `name:` (Cedar and Rego documents are named after their file)",
                            ),
                        );
                    }
                    documents.push(policy);
                }
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::new(problems));
        }
        let Some(default) = documents
            .iter()
            .map(|d| (d.default_verdict(), d.name().clone()))
            .reduce(|best, cur| if best.0 >= cur.0 { best } else { cur })
        else {
            return Err(LoadError::file(
                Path::new("."),
                "no policy documents to load",
            ));
        };
        Ok(PolicySet {
            documents,
            default,
            watched: Vec::new(),
        })
    }

    /// The documents, in load order.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// Whether any document can read an action's `context`: a YAML rule whose `when` names
    /// it, or any Cedar or Rego document (they are handed the whole context).
    pub fn reads_context(&self) -> bool {
        self.documents.iter().any(|d| match d {
            Document::Yaml(p) => p.reads_context(),
            Document::Cedar(_) | Document::Rego(_) => true,
        })
    }

    /// The `verify:` of the rule that made `decision`, when it is an allow by a YAML rule
    /// that asks for verification (the gate then asks before the allow stands).
    pub fn verification(
        &self,
        decision: &warden_core::Decision,
    ) -> Option<Arc<crate::verify::Verify>> {
        if decision.verdict != warden_core::Verdict::Allow {
            return None;
        }
        let (policy, rule) = (decision.policy.as_ref()?, decision.rule.as_ref()?);
        self.documents.iter().find_map(|d| match d {
            Document::Yaml(p) if p.name() == policy => p.verify_of(rule),
            _ => None,
        })
    }

    /// Whether any rule asks for verification (deciding may then wait on the network).
    pub fn verifies(&self) -> bool {
        self.documents.iter().any(|d| match d {
            Document::Yaml(p) => p.verifies(),
            _ => false,
        })
    }

    /// The runtime sections (`rings:`, `rate_limits:`, `breakers:`, `anomaly:`) of the YAML
    /// documents that have any, with the document's name, in load order.
    pub fn runtime_sections(
        &self,
    ) -> impl Iterator<Item = (&Arc<str>, &crate::runtime::RuntimeSections)> {
        self.documents.iter().filter_map(|d| match d {
            Document::Yaml(p) if !p.runtime().is_empty() => Some((d.name(), p.runtime())),
            _ => None,
        })
    }

    /// Every file the set was read from, in load order: policy files, and the Cedar schema
    /// and entities files that were present. A change to any of them changes the set.
    pub fn sources(&self) -> impl Iterator<Item = &Path> {
        self.watched().filter_map(|w| match w {
            Watched::File(p) => Some(p.as_path()),
            _ => None,
        })
    }

    /// Everything a reloader must watch: [`PolicySet::sources`], the directories that were
    /// listed (a policy file may be added), and the files looked for but absent (a Cedar
    /// schema or entities file may appear).
    pub fn watched(&self) -> impl Iterator<Item = &Watched> {
        self.watched
            .iter()
            .chain(self.documents.iter().flat_map(Document::sources))
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
            .flat_map(|d| d.backend().trace(action))
            .collect();
        if let (Some(policy), Some(rule)) = (&decision.policy, &decision.rule)
            && let Some(t) = rules
                .iter_mut()
                .find(|t| &t.policy == policy && &t.rule == rule && t.status != Status::NotMatched)
        {
            t.decided = true;
        }
        let understood = Some(crate::understand::understand(action)).filter(|u| {
            u.commands.is_some()
                || u.sql.is_some()
                || !u.paths.is_empty()
                || !u.intents.is_empty()
                || u.error.is_some()
        });
        Explanation {
            decision,
            rules,
            understood,
            drift: None,
            verification: None,
            memory: None,
        }
    }
}

/// Compile one source with the backend its extension names (YAML when it names none).
fn compile_one(source: &Source, limits: &Limits) -> Result<Document, Vec<Problem>> {
    match source::extension(&source.path).as_str() {
        "cedar" => CedarPolicy::compile(source, limits).map(Document::Cedar),
        "rego" => RegoPolicy::compile(source, limits).map(Document::Rego),
        _ => crate::yaml::compile(source, limits).map(Document::Yaml),
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
            if let Some(m) = doc.backend().evaluate(action)? {
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
