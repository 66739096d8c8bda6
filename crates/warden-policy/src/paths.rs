//! Paths as the operating system will read them.
//!
//! Shared by the protected-file gate (`warden`'s `protect`) and the `paths:`/`intents:`
//! constraints of YAML rules, so that both read a path the same way.
//!
//! Two readings of one string are compared with what is checked: the *lexical* one (`~`
//! expanded, made absolute against a working directory, `.` removed, `..` taking away the
//! previous component — what Claude Code's tools and most MCP servers do before they touch a
//! file) and the *kernel's* one (components walked left to right, each symlink replaced by its
//! target before the next `..` — what a shell, Python's `open` or `std::fs` get). `q/../x`
//! where `q` links into another directory names a different file in each, and an attacker
//! picks whichever the gate does not check; so both are checked.
//!
//! Every walk is bounded: a path of more than [`MAX_COMPONENTS`] components or
//! [`MAX_PATH_BYTES`] bytes is not resolved at all (the caller denies it), symlinks are
//! followed at most [`MAX_LINKS`] times (the kernel's own limit), and the caller gives each
//! action a budget of components for all its paths together.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Longest path resolved, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Most components in one path.
pub const MAX_COMPONENTS: usize = 256;
/// Most symlinks followed while resolving one path (as Linux's `ELOOP`).
pub const MAX_LINKS: usize = 40;

/// `~` and `~/…` become the home directory (Claude Code and shells expand them; Warden must
/// judge the file that will really be touched).
pub fn expand_home(s: &str) -> String {
    if (s == "~" || s.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        return format!("{}{}", home.to_string_lossy(), &s[1..]);
    }
    s.to_string()
}

/// The path a `file://` URI names (`file:///etc/x`, `file://localhost/etc/x`), percent-decoded;
/// `None` for anything else.
pub fn file_uri(s: &str) -> Option<String> {
    let rest = s
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("file://"))
        .map(|_| &s[7..])?;
    let rest = rest
        .strip_prefix("localhost")
        .filter(|r| r.starts_with('/'))
        .unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = rest
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `path` joined to `cwd` (or the process's directory) when relative, not yet normalised.
pub fn joined(path: &Path, cwd: Option<&Path>) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match cwd {
        Some(c) => c.join(path),
        None => std::env::current_dir()
            .map(|c| c.join(path))
            .unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// `path` made absolute (relative to `cwd`, or the process's directory) and normalised
/// lexically: `.` removed, `..` resolved, never above the root.
pub fn absolute(path: &Path, cwd: Option<&Path>) -> PathBuf {
    normalize(&joined(path, cwd))
}

/// Remove `.` and resolve `..` by the text alone (the file may not exist yet). `..` never
/// climbs above the root, so `/project/../../etc` is `/etc`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
                if out.as_os_str().is_empty() && path.is_absolute() {
                    out.push("/");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// How many components `path` has, or `None` when it is too long to resolve.
pub fn components_within_limits(path: &Path) -> Option<usize> {
    if path.as_os_str().len() > MAX_PATH_BYTES {
        return None;
    }
    let n = path.components().count();
    (n <= MAX_COMPONENTS).then_some(n)
}

/// The kernel's reading of an absolute path: components from the left, each symlink replaced
/// by its target before the next one is read, `..` applied to the real directory reached so
/// far. Components past the first one that does not exist are appended as written (after
/// lexical `..`), which is where a file about to be created would go. `None` when the links
/// loop or exceed the limits.
pub fn resolve(path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(path, &mut pending);
    pending.reverse();
    let mut real = PathBuf::from("/");
    let mut links = 0;
    let mut exists = true;
    let mut steps = 0;
    while let Some(part) = pending.pop() {
        steps += 1;
        if steps > MAX_COMPONENTS * 4 {
            return None;
        }
        if part == ".." {
            real.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        real.push(&part);
        if !exists {
            continue;
        }
        match std::fs::symlink_metadata(&real) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = std::fs::read_link(&real).ok()?;
                real.pop();
                if target.is_absolute() {
                    real = PathBuf::from("/");
                }
                let mut more = Vec::new();
                push_components(&target, &mut more);
                if more.len() + pending.len() > MAX_COMPONENTS * 2 {
                    return None;
                }
                pending.extend(more.into_iter().rev());
            }
            Ok(_) => {}
            Err(_) => exists = false,
        }
    }
    Some(normalize(&real))
}

/// The components of `path` as names (`/` dropped, `.` and `..` kept).
fn push_components(path: &Path, out: &mut Vec<OsString>) {
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {}
            Component::CurDir => out.push(".".into()),
            Component::ParentDir => out.push("..".into()),
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_home() {
        assert_eq!(file_uri("file:///etc/x%20y").as_deref(), Some("/etc/x y"));
        assert_eq!(file_uri("FILE://localhost/a").as_deref(), Some("/a"));
        assert_eq!(file_uri("file://host/a"), None);
        assert_eq!(file_uri("https://x/a"), None);
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(expand_home("~/.ssh/id_rsa"), format!("{home}/.ssh/id_rsa"));
        assert_eq!(expand_home("a~/b"), "a~/b");
    }

    #[test]
    fn the_kernel_reads_dotdot_after_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("secret/inner")).unwrap();
        std::fs::write(root.join("secret/key"), "k").unwrap();
        std::os::unix::fs::symlink(root.join("secret/inner"), root.join("q")).unwrap();
        let tricky = root.join("q/../key");
        // Lexically `q/../key` is `<root>/key`; the kernel reads `<root>/secret/key`.
        assert_eq!(normalize(&tricky), root.join("key"));
        assert_eq!(resolve(&tricky).unwrap(), root.join("secret/key"));
        assert_eq!(
            std::fs::read_to_string(&tricky).unwrap(),
            "k",
            "what the OS really opens"
        );
        // A file about to be created inside a linked directory.
        assert_eq!(
            resolve(&root.join("q/new.txt")).unwrap(),
            root.join("secret/inner/new.txt")
        );
        // A loop is refused, not followed forever.
        std::os::unix::fs::symlink(root.join("loop"), root.join("loop")).unwrap();
        assert_eq!(resolve(&root.join("loop/x")), None);
    }

    #[test]
    fn long_paths_are_not_resolved() {
        let long = format!("/{}", "a/".repeat(300));
        assert_eq!(components_within_limits(Path::new(&long)), None);
        assert_eq!(components_within_limits(Path::new("/a/b")), Some(3));
    }
}
