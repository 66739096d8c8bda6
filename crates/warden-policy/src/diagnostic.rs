//! Load-time errors that point at the exact place in a policy file.
//!
//! Every problem found while loading a policy becomes a [`Problem`]: a message, a position
//! (file, line, column, byte span) and, where we can guess what was meant, a hint. Loading
//! collects all problems it can find in one pass, so `warden policy validate` shows them all.

use std::fmt;
use std::path::{Path, PathBuf};
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

/// One thing wrong with a policy file.
#[derive(Debug, Clone)]
pub struct Problem {
    file: Arc<Path>,
    source: Arc<str>,
    position: Position,
    message: String,
    hint: Option<String>,
}

impl Problem {
    pub(crate) fn new(source: &Source, position: Position, message: impl Into<String>) -> Self {
        Problem {
            file: source.path.clone(),
            source: source.text.clone(),
            position,
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

    /// Where in the file.
    pub fn position(&self) -> Position {
        self.position
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What was probably meant, if we can tell.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Render with a source snippet, for people.
    pub fn report(&self) -> miette::Report {
        let named = NamedSource::new(self.file.display().to_string(), self.source.to_string());
        miette::Report::new(Located(self.clone())).with_source_code(named)
    }
}

/// `file:line:col: message (hint)` on one line — greppable, and what editors understand.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// A [`Problem`] as a miette diagnostic with a labelled span.
#[derive(Debug, Error)]
#[error("{}", .0.message)]
struct Located(Problem);

impl Diagnostic for Located {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("warden::policy"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0
            .hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let p = self.0.position;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some("here".into()),
            p.offset,
            p.len,
        ))))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        None
    }
}

/// A policy set that failed to load: every problem found, in file order.
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

impl LoadError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        LoadError { problems }
    }

    /// An error that is about a whole file rather than a place in it (unreadable, not UTF-8…).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        let source = Source::new(path, "");
        LoadError::new(vec![Problem::new(
            &source,
            Position {
                line: 1,
                column: 1,
                ..Position::default()
            },
            message,
        )])
    }

    /// Every problem, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

/// The text of a policy file and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub(crate) path: Arc<Path>,
    pub(crate) text: Arc<str>,
}

impl Source {
    /// A source with this path and text.
    pub fn new(path: impl Into<PathBuf>, text: &str) -> Self {
        Source {
            path: Arc::from(path.into().into_boxed_path()),
            text: Arc::from(text),
        }
    }

    /// The file name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Line and column (1-based) of a byte offset.
    pub(crate) fn position_of(&self, offset: usize, len: usize) -> Position {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position {
            line,
            column,
            offset,
            len,
        }
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

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let s = Source::new("p.yaml", "ab\nçd: x\n");
        let p = s.position_of(s.text.find('x').unwrap(), 1);
        assert_eq!((p.line, p.column), (2, 5));
        assert_eq!(s.position_of(0, 0).line, 1);
    }

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
            p.to_string(),
            "dir/p.yaml:2:5: unknown field `efect` (hint: did you mean `effect`?)"
        );
    }
}
