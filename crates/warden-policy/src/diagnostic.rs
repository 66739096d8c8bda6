//! Load-time errors that point at the exact place in a policy file.
//!
//! Every problem found while loading a policy becomes a [`Problem`]: a message, a position
//! (file, line, column, byte span) and, where we can guess what was meant, a hint. Loading
//! collects all problems it can find in one pass, so `warden policy validate` shows them all.
//!
//! The convention follows cedar-policy's `api/err.rs`: a [`LoadError`] is a miette
//! [`Diagnostic`] whose related diagnostics are its problems, and each [`Problem`] is a
//! diagnostic of its own with its source snippet, a label at its span and its hint as help.
//! Messages never name command-line flags: the caller knows how the path was given.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use thiserror::Error;

/// A position in a source file: 1-based line and column, and a byte range for snippets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Byte offset of the start.
    pub offset: usize,
    /// Length in bytes (0 for a point).
    pub len: usize,
}

/// The start of a file, for problems about a whole file.
const FILE_START: Position = Position {
    line: 1,
    column: 1,
    offset: 0,
    len: 0,
};

/// One thing wrong with a policy file.
#[derive(Debug, Clone)]
pub struct Problem {
    file: Arc<Path>,
    /// Boxed: a `Result<_, Problem>` stays small on the success path.
    code: Box<NamedSource<Arc<str>>>,
    position: Position,
    /// False for problems about a whole file (unreadable, missing…): no line, no snippet.
    located: bool,
    message: String,
    hint: Option<String>,
}

/// What a problem points into: a file's path and its text. (`Source` is one; the trait keeps
/// this module below the one that reads files.)
pub(crate) trait Located {
    /// The file.
    fn file(&self) -> &Arc<Path>;
    /// Its whole text.
    fn text(&self) -> &Arc<str>;
}

impl Problem {
    pub(crate) fn new(
        source: &impl Located,
        position: Position,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: source.file().clone(),
            code: Box::new(NamedSource::new(
                source.file().display().to_string(),
                source.text().clone(),
            )),
            position,
            located: true,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem about a whole file rather than a place in it.
    pub(crate) fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        Problem {
            file: Arc::from(path),
            code: Box::new(NamedSource::new(path.display().to_string(), Arc::from(""))),
            position: FILE_START,
            located: false,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn set_hint(&mut self, hint: impl Into<String>) {
        self.hint = Some(hint.into());
    }

    pub(crate) fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// The file the problem is in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file (line 1, column 1 for a problem about the whole file).
    pub fn position(&self) -> Position {
        self.position
    }

    /// Whether the problem is about a place in the file (false: about the whole file).
    pub fn is_located(&self) -> bool {
        self.located
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What was probably meant, if we can tell.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// `file:line:col: message (hint: …)` on one line — greppable, and what editors understand.
    pub fn one_line(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self} (hint: {hint})"),
            None => self.to_string(),
        }
    }

    /// Render with a source snippet, for people.
    pub fn report(&self) -> miette::Report {
        miette::Report::new(self.clone())
    }
}

/// `file:line:col: message` (`file: message` for a problem about a whole file). The hint is
/// the diagnostic's help; [`Problem::one_line`] adds it.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.located {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.position.line,
                self.position.column,
                self.message
            )
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl std::error::Error for Problem {}

/// No `code`: one code for every kind of problem told nothing (it printed `warden::policy`
/// under every diagnostic).
impl Diagnostic for Problem {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if !self.located {
            return None;
        }
        let p = self.position;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some("here".into()),
            p.offset,
            p.len,
        ))))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.located.then_some(&*self.code as &dyn SourceCode)
    }
}

/// A policy set that failed to load: every problem found, in file order. As a miette
/// diagnostic it renders every problem (they are its related diagnostics).
#[derive(Debug, Clone, Error)]
#[error("{}", summary(.problems))]
pub struct LoadError {
    problems: Vec<Problem>,
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more problems)", rest.len()),
        [] => "policy failed to load".to_string(),
    }
}

impl Diagnostic for LoadError {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

impl LoadError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        LoadError { problems }
    }

    /// An error that is about a whole file rather than a place in it (unreadable, not UTF-8…).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        LoadError::new(vec![Problem::whole_file(path, message)])
    }

    /// Every problem, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

/// The known word closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&word, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance over characters, counting a swap of two neighbours as one edit
/// (optimal string alignment), since `nmae` for `name` is the commonest typo of all.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    #[test]
    fn suggests_close_words_only() {
        let known = ["effect", "action", "agents", "reason"];
        assert_eq!(did_you_mean("efect", &known), Some("effect"));
        assert_eq!(did_you_mean("Acton", &known), Some("action"));
        assert_eq!(did_you_mean("agent", &known), Some("agents"));
        assert_eq!(did_you_mean("zzzzzz", &known), None);
        assert_eq!(did_you_mean("nmae", &["name", "rules"]), Some("name"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }

    #[test]
    fn display_is_one_greppable_line() {
        let s = Source::new("dir/p.yaml", "rules:\n  - efect: deny\n");
        let p = Problem::new(&s, s.position_of(11, 5), "unknown field `efect`")
            .with_hint("did you mean `effect`?");
        assert_eq!(
            p.one_line(),
            "dir/p.yaml:2:5: unknown field `efect` (hint: did you mean `effect`?)"
        );
        assert_eq!(p.to_string(), "dir/p.yaml:2:5: unknown field `efect`");
        let whole = Problem::whole_file(
            Path::new("gone.yaml"),
            "cannot read policy: no such file or directory",
        );
        assert_eq!(
            whole.to_string(),
            "gone.yaml: cannot read policy: no such file or directory"
        );
    }
}
