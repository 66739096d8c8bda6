//! Reading policy files: what a path stands for, the text of each file, and positions in it.
//!
//! Every backend reads files the same way (bounded size, UTF-8, a problem naming the path when
//! it cannot), and every problem needs a line and column; both live here, below the backends,
//! so that no backend depends on another. Line starts are indexed once per file, so turning a
//! byte offset into a position is a binary search rather than a scan from the file start (which
//! made loading a large file quadratic).
//!
//! What a directory stands for is decided here too, strictly: an entry that looks like a policy
//! and cannot be read is a load error, never a silently smaller set.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Located, Position, Problem};
use crate::limits::Limits;

/// File extensions the loader understands (compared case-insensitively).
pub const EXTENSIONS: &[&str] = &["yaml", "yml", "cedar", "rego"];

/// The text of a policy file and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub(crate) path: Arc<Path>,
    pub(crate) text: Arc<str>,
    /// Byte offset of the start of each line (the first is 0).
    lines: Arc<[usize]>,
    /// Byte offsets of UTF-8 continuation bytes, so columns count characters in O(log n).
    continuation: Arc<[usize]>,
}

impl Source {
    /// A source with this path and text.
    pub fn new(path: impl Into<PathBuf>, text: &str) -> Self {
        let mut lines = vec![0];
        let mut continuation = Vec::new();
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                lines.push(i + 1);
            } else if b & 0xC0 == 0x80 {
                continuation.push(i);
            }
        }
        Source {
            path: Arc::from(path.into().into_boxed_path()),
            text: Arc::from(text),
            lines: lines.into(),
            continuation: continuation.into(),
        }
    }

    /// The file name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A document's name when the file does not give one: its stem (`brief` for `dir/brief.cedar`).
    pub(crate) fn stem(&self) -> Arc<str> {
        Arc::from(
            self.path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("policy"),
        )
    }

    /// Line and column (1-based) of a byte offset.
    pub(crate) fn position_of(&self, offset: usize, len: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.lines.partition_point(|&start| start <= offset);
        let line_start = self.lines[line - 1];
        let wide = self.continuation.partition_point(|&c| c < offset)
            - self.continuation.partition_point(|&c| c < line_start);
        Position {
            line,
            column: offset - line_start - wide + 1,
            offset,
            len,
        }
    }

    /// Byte offset of a 1-based line and (character) column, clamped to the text.
    pub(crate) fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.lines.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        start
            + rest
                .char_indices()
                .take_while(|(_, c)| *c != '\n')
                .nth(column.saturating_sub(1))
                .map_or_else(|| rest.find('\n').unwrap_or(rest.len()), |(i, _)| i)
    }
}

impl Located for Source {
    fn file(&self) -> &Arc<Path> {
        &self.path
    }
    fn text(&self) -> &Arc<str> {
        &self.text
    }
}

/// Read a file as UTF-8 text of at most `limits.max_file_bytes`.
pub(crate) fn read(path: &Path, limits: &Limits) -> Result<Source, Problem> {
    let cannot = |e: std::io::Error| {
        Problem::whole_file(path, format!("cannot read policy: {}", io_message(&e)))
    };
    // A FIFO would block `open` until someone writes to it, and a device may never end: only
    // regular files hold policies. Checked before opening, and again on what was opened.
    let not_regular = || Problem::whole_file(path, "cannot read policy: not a regular file");
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let file = File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let too_big = || {
        Problem::whole_file(
            path,
            format!(
                "the file is larger than the limit of {} bytes",
                limits.max_file_bytes
            ),
        )
    };
    if meta.len() > limits.max_file_bytes as u64 {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The length can change between `metadata` and the read; never read past the limit.
    file.take(limits.max_file_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > limits.max_file_bytes {
        return Err(too_big());
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(path, &text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let source = Source::new(path, &prefix);
            Err(Problem::new(
                &source,
                source.position_of(valid, 0),
                "the file is not valid UTF-8 text",
            ))
        }
    }
}

/// The offset of the first bracket that nests deeper than `max`, if any, in Cedar or Rego
/// text (`comment` starts a line comment; strings in `"…"` and Rego's raw `` `…` `` are
/// skipped). The parsers of both languages recurse on nesting; this check runs first, so a
/// file of ten thousand `[` cannot run them out of stack.
pub(crate) fn nesting_too_deep(text: &str, comment: &str, max: usize) -> Option<usize> {
    brackets_too_deep(text, comment, b"([{", max)
}

/// [`nesting_too_deep`] counting only the brackets opened by `openers`.
pub(crate) fn brackets_too_deep(
    text: &str,
    comment: &str,
    openers: &[u8],
    max: usize,
) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' => i = string_end(bytes, i),
            b'(' | b'[' | b'{' if openers.contains(&bytes[i]) => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' if openers.contains(&opener(bytes[i])) => {
                depth = depth.saturating_sub(1);
            }
            _ if bytes[i..].starts_with(comment.as_bytes()) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The offset of the first operator character past `max` in one expression, if any: the
/// parsers (and evaluators) of CEL and Cedar recurse once per operator of a chain such as
/// `1 + 1 + …` or `a.b.c…`, so a long enough chain exhausts the stack however shallow its
/// brackets. `separator` ends an expression (Cedar's `;`); strings in `"…"` and `'…'` and
/// comments after `comment` are skipped.
pub(crate) fn too_many_operators(
    text: &str,
    comment: Option<&str>,
    separator: Option<u8>,
    max: usize,
) -> Option<usize> {
    let (bytes, mut i, mut count) = (text.as_bytes(), 0, 0usize);
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' | b'\'' => i = string_end(bytes, i),
            _ if Some(b) == separator => count = 0,
            _ if comment.is_some_and(|c| bytes[i..].starts_with(c.as_bytes())) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'<' | b'>' | b'=' | b'&' | b'|' | b'.'
            | b'?' | b'^' => {
                count += 1;
                if count > max {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string opened at `start` (or the end of the text).
/// Backslash escapes count, except in Rego's raw `` `…` `` strings.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != quote {
        if quote != b'`' && bytes[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// The problem for [`too_many_operators`].
pub(crate) fn too_many_operators_problem(source: &Source, at: usize, limits: &Limits) -> Problem {
    Problem::new(
        source,
        source.position_of(at, 1),
        format!(
            "an expression with more than {} operators (counting `.` and each character of `==`, `&&`…)",
            limits.max_expression_operators
        ),
    )
    .with_hint("split the condition into several rules")
}

fn opener(closer: u8) -> u8 {
    match closer {
        b')' => b'(',
        b']' => b'[',
        _ => b'{',
    }
}

/// The problem for [`nesting_too_deep`].
pub(crate) fn too_deep(source: &Source, at: usize, limits: &Limits) -> Problem {
    Problem::new(
        source,
        source.position_of(at, 1),
        format!(
            "brackets nest deeper than {} levels",
            limits.max_nesting_depth
        ),
    )
}

/// An I/O error in the words of the rest of our messages (no `(os error 2)`).
pub(crate) fn io_message(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "no such file or directory".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(cut) => text[..cut].to_string(),
                None => text,
            }
        }
    }
}

/// Something a reloader must watch to notice every change that could change a policy set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Watched {
    /// A file that was read; a change to it (or its removal) changes the set.
    File(PathBuf),
    /// A file that was looked for and is absent (a Cedar schema or entities file); its
    /// appearance changes the set.
    Absent(PathBuf),
    /// A directory whose entries were listed; an entry added, removed or renamed may change
    /// the set (use [`is_policy_file`] to tell whether a new entry matters).
    Directory(PathBuf),
}

impl Watched {
    /// The path to watch.
    pub fn path(&self) -> &Path {
        match self {
            Watched::File(p) | Watched::Absent(p) | Watched::Directory(p) => p,
        }
    }
}

/// Whether a directory entry with this name is loaded as a policy: a policy extension
/// (case-insensitive), not a `*.test.yaml` test file, not hidden (`.name`).
pub fn is_policy_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    !lower.starts_with('.')
        && has_policy_extension(&lower)
        && !lower.ends_with(".test.yaml")
        && !lower.ends_with(".test.yml")
}

fn has_policy_extension(lower_name: &str) -> bool {
    lower_name
        .rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext))
}

/// The language a file's extension names, compared case-insensitively (YAML when none).
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The policy files `path` stands for (itself, or the policy files of a directory, sorted by
/// name), recording what was looked at in `watched`. Problems are pushed, not returned, so
/// that every path is checked.
pub(crate) fn expand(
    path: &Path,
    problems: &mut Vec<Problem>,
    watched: &mut Vec<Watched>,
) -> Vec<PathBuf> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            watched.push(Watched::Absent(path.to_path_buf()));
            problems.push(Problem::whole_file(
                path,
                format!("cannot read policy: {}", io_message(&e)),
            ));
            return Vec::new();
        }
    };
    if !meta.is_dir() {
        let lower = path.to_string_lossy().to_ascii_lowercase();
        if !has_policy_extension(&lower) {
            problems.push(Problem::whole_file(
                path,
                format!(
                    "not a policy file: expected one of .{}",
                    EXTENSIONS.join(", .")
                ),
            ));
            return Vec::new();
        }
        return vec![path.to_path_buf()];
    }
    watched.push(Watched::Directory(path.to_path_buf()));
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::whole_file(
                path,
                format!("cannot read directory: {}", io_message(&e)),
            ));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    let before = problems.len();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry.path(),
            Err(e) => {
                problems.push(Problem::whole_file(
                    path,
                    format!("cannot read directory: {}", io_message(&e)),
                ));
                continue;
            }
        };
        let hidden = entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        // `metadata` follows symbolic links: a dangling link named `x.yaml` fails here.
        match std::fs::metadata(&entry) {
            Ok(m) if m.is_dir() => problems.push(
                Problem::whole_file(&entry, "a policy directory must not hold directories")
                    .with_hint("directories are read one level deep: pass this directory as its own path, or move it out"),
            ),
            Ok(_) if is_policy_file(&entry) => files.push(entry),
            Ok(_) => {}
            Err(e) if is_policy_file(&entry) => {
                problems.push(Problem::whole_file(&entry, format!("cannot read policy: {}", io_message(&e))));
            }
            Err(_) => {}
        }
    }
    files.sort();
    if files.is_empty() && problems.len() == before {
        problems.push(Problem::whole_file(
            path,
            format!(
                "no policy files (.{}) in this directory",
                EXTENSIONS.join(", .")
            ),
        ));
    }
    files
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
        assert_eq!(s.position_of(3, 0).column, 1);
        assert_eq!(s.offset_of(2, 5), s.text.find('x').unwrap());
        // Past the end, and inside a character, clamp.
        assert_eq!(s.position_of(1000, 0).line, 3);
        assert_eq!(s.position_of(4, 0).column, 1);
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        assert_eq!(nesting_too_deep("((()))", "//", 3), None);
        assert_eq!(nesting_too_deep("(((())))", "//", 3), Some(3));
        assert_eq!(nesting_too_deep(r#""((((\"((((" ((("#, "//", 3), None);
        assert_eq!(nesting_too_deep("# ((((\n((", "#", 3), None);
        assert_eq!(nesting_too_deep("`((((` (", "#", 3), None);
        assert_eq!(brackets_too_deep("[{([{", "#", b"[{", 3), Some(4));
        assert_eq!(brackets_too_deep("((((([{", "#", b"[{", 3), None);
    }

    #[test]
    fn operators_are_counted_per_expression_outside_strings() {
        assert_eq!(too_many_operators("a + b + c", None, None, 2), None);
        assert_eq!(too_many_operators("a + b + c + d", None, None, 2), Some(10));
        assert_eq!(
            too_many_operators("a + b; c + d; e + f", None, Some(b';'), 1),
            None
        );
        assert_eq!(too_many_operators("'+++' + \"...\"", None, None, 1), None);
        assert_eq!(
            too_many_operators("a // ++++\n+ b", Some("//"), None, 1),
            None
        );
    }

    #[test]
    fn policy_files_by_name() {
        for (name, want) in [
            ("a.yaml", true),
            ("Guard.YAML", true),
            ("x.Rego", true),
            ("p.cedar", true),
            ("cases.test.yaml", false),
            ("Cases.TEST.yml", false),
            (".hidden.yaml", false),
            ("notes.txt", false),
            ("x.entities.json", false),
            ("yaml", false),
        ] {
            assert_eq!(is_policy_file(Path::new(name)), want, "{name}");
        }
    }
}
