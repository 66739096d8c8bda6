//! The workspace's shape, checked: no module of any crate depends on itself through others.
//!
//! A cycle (`log` uses `writer`, `writer` uses `super::` items of `log`, `verify` uses both)
//! is where code stops being readable one file at a time. The check reads every crate's
//! `src/`, takes each file as a module, collects the modules its paths name (`use crate::…`,
//! `crate::…`, `super::…`, `self::…`, brace groups expanded; names re-exported by the crate
//! root resolve to the module that defines them), and reports every strongly connected group.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::root;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `a/b.rs` and `a/b/mod.rs` → `a::b`; `lib.rs`/`main.rs` → `` (the root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod")
        || (parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main"))
    {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Source text without comments, strings and `#[cfg(test)]` modules (tests may reach
/// anywhere in their own file's module); inline `mod name { … }` blocks are returned apart,
/// as the child modules they are.
fn code(text: &str) -> (String, Vec<(String, String)>) {
    let mut out = String::with_capacity(text.len());
    let mut inline = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.starts_with("#[cfg(test)]") {
            // Skip the following item up to its closing brace at the same indentation.
            for l in lines.by_ref() {
                if l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}') {
                    break;
                }
            }
            continue;
        }
        let decl = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(name) = decl
            .strip_prefix("mod ")
            .and_then(|r| r.strip_suffix(" {"))
            .filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}') {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            let (clean, _) = code(&body);
            inline.push((name.to_string(), clean));
            continue;
        }
        let t = line.split("//").next().unwrap_or("");
        out.push_str(t);
        out.push('\n');
    }
    // Blank out string literals (paths in messages are not imports).
    let mut clean = String::with_capacity(out.len());
    let mut in_str = false;
    let mut prev = ' ';
    for c in out.chars() {
        if c == '"' && prev != '\\' {
            in_str = !in_str;
            clean.push('"');
        } else if !in_str {
            clean.push(c);
        }
        prev = c;
    }
    (clean, inline)
}

/// Every path a `use` statement names, brace groups expanded.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::").trim();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap().trim();
        out.push(join(prefix, name));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// The paths a file names: `use` trees and inline `crate::…`/`super::…` paths.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().next_back();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            expand("", &after[..end].replace(['\n', ' '], ""), &mut out);
        }
        rest = &after[end.min(after.len())..];
    }
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(root) {
            let start = from + i;
            let path: String = code[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(path.trim_end_matches(':').to_string());
            from = start + root.len();
        }
    }
    out
}

/// Names a module re-exports: (module, name) → the module that defines the name.
type Reexports = BTreeMap<(String, String), String>;

/// The module a path refers to, from module `here`, among `modules`; a name a module only
/// re-exports (`pub use child::X`) resolves to where it is defined.
fn target(
    path: &str,
    here: &str,
    modules: &BTreeSet<String>,
    reexports: &Reexports,
) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let split = |m: &str| -> Vec<String> {
        m.split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    let base: Vec<String> = match parts.first().copied() {
        Some("crate") => {
            parts.remove(0);
            Vec::new()
        }
        Some("super") | Some("self") => {
            let mut base = split(here);
            while let Some(&p) = parts.first() {
                match p {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                parts.remove(0);
            }
            base
        }
        // `use writer::X` in `log.rs`: a child module, named relative to here.
        Some(first) if modules.contains(&join(here, first)) => split(here),
        _ => return None,
    };
    let mut best = base.join("::");
    let mut cur = base;
    for p in parts {
        cur.push(p.to_string());
        let name = cur.join("::");
        if modules.contains(&name) {
            best = name;
        } else {
            // `best::p`: an item of `best`, or one `best` re-exports from elsewhere.
            if let Some(origin) = reexports.get(&(best.clone(), p.to_string())) {
                best = origin.clone();
            }
            break;
        }
    }
    Some(best)
}

/// `pub use` / `pub(crate) use` / `pub(super) use` statements: a module's facade.
fn is_reexport(stmt: &str) -> bool {
    let t = stmt.trim_start();
    ["pub use ", "pub(crate) use ", "pub(super) use "]
        .iter()
        .any(|p| t.starts_with(p))
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut texts: Vec<(String, String)> = Vec::new();
    for f in &files {
        let here = module_of(src, f);
        let (text, inline) = code(&std::fs::read_to_string(f).unwrap());
        // Inline `mod name { … }` blocks are modules too.
        for (name, body) in inline {
            texts.push((join(&here, &name), body));
        }
        texts.push((here, text));
    }
    let modules: BTreeSet<String> = texts.iter().map(|(m, _)| m.clone()).collect();
    // Each module's re-exports, resolved to the module that defines each name (followed
    // through chains of re-exports).
    let mut reexports = Reexports::new();
    for _ in 0..4 {
        for (here, text) in &texts {
            for stmt in text.split(';').filter(|s| is_reexport(s)) {
                let tree = stmt.trim_start().split_once("use ").map_or("", |x| x.1);
                let mut ps = Vec::new();
                expand("", &tree.replace(['\n', ' '], ""), &mut ps);
                for p in ps {
                    let name = p.rsplit("::").next().unwrap_or("").to_string();
                    if let Some(t) = target(&p, here, &modules, &reexports)
                        && t != *here
                        && !name.is_empty()
                    {
                        reexports.insert((here.clone(), name), t);
                    }
                }
            }
        }
    }
    let mut g = Graph::new();
    for (here, text) in &texts {
        let edges = g.entry(here.clone()).or_default();
        // A module's `pub use` lines are its facade, not dependencies of its own.
        let own: String = text
            .split(';')
            .filter(|stmt| !is_reexport(stmt))
            .collect::<Vec<_>>()
            .join(";");
        for p in paths(&own) {
            if let Some(t) = target(&p, here, &modules, &reexports)
                && t != *here
            {
                edges.insert(t);
            }
        }
    }
    g
}

/// Strongly connected groups of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        if let Some(edges) = t.g.get(v) {
            for w in edges {
                let w = w.as_str();
                if !t.g.contains_key(w) {
                    continue;
                }
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(lw));
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(iw));
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                t.out.push(group);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_module_depends_on_itself() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(Result::unwrap)
    {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        for group in cycles(&graph(&src)) {
            found.push(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                group.join(" ↔ ")
            ));
        }
    }
    found.sort();
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

#[test]
fn the_checker_sees_cycles_through_super_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("log")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod log; mod verify; pub use log::Log;\n",
    )
    .unwrap();
    std::fs::write(src.join("log.rs"), "mod writer;\nuse writer::{W, X};\n").unwrap();
    std::fs::write(
        src.join("log/writer.rs"),
        "use super::Config;\nuse crate::{verify::{a, b}};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("verify.rs"),
        "fn f() { crate::Log::new(); }\n// crate::log::x in a comment\n",
    )
    .unwrap();
    let g = graph(src);
    assert_eq!(
        cycles(&g),
        vec![vec![
            "log".to_string(),
            "log::writer".into(),
            "verify".into()
        ]],
        "{g:?}"
    );
    std::fs::write(src.join("verify.rs"), "fn f() { let s = \"crate::log\"; }\n#[cfg(test)]\nmod tests {\n    use crate::log::x;\n}\n").unwrap();
    assert_eq!(
        cycles(&graph(src)),
        vec![vec!["log".to_string(), "log::writer".into()]]
    );
}
