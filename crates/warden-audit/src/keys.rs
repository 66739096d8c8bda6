//! The node's checkpoint signing key: generating it, storing it, loading it, naming it.
//!
//! A key file holds the 32-byte Ed25519 secret as 64 hex digits and a newline, readable only
//! by its owner (mode 0600). The public key goes beside it in `<file>.pub`, also as hex, so it
//! can be copied to wherever logs are verified and pinned there.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::AuditError;
use crate::hex::{from_hex, to_hex};

/// The signature scheme of checkpoints written by this build. Stored with every checkpoint so
/// that a post-quantum scheme (ML-DSA-65) can be added beside it later.
pub const SCHEME_ED25519: &str = "ed25519";

/// A short, stable name for a public key: the first 8 bytes of BLAKE3(public key), as hex.
pub fn key_id(key: &VerifyingKey) -> String {
    to_hex(&blake3::hash(key.as_bytes()).as_bytes()[..8])
}

/// The public key as 64 hex digits.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    to_hex(key.as_bytes())
}

/// Generate a new signing key from the operating system's random source.
pub fn generate_signing_key() -> Result<SigningKey, AuditError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| AuditError::Key {
        path: PathBuf::from("<os random source>"),
        detail: format!("cannot get random bytes for a new key: {e}"),
    })?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Generate a key and write it to `path` (secret, mode 0600) and `<path>.pub` (public key).
///
/// Refuses to overwrite an existing file: losing a node key makes its old checkpoints
/// unverifiable against a pinned key.
pub fn generate_key_file(path: impl AsRef<Path>) -> Result<SigningKey, AuditError> {
    let path = path.as_ref();
    let key = generate_signing_key()?;
    match write_new(path, &format!("{}\n", to_hex(key.as_bytes())), true)? {
        Written::Created => {}
        Written::Exists => {
            return Err(AuditError::Key {
                path: path.to_path_buf(),
                detail: "a key file is already there; it is never overwritten".to_string(),
            });
        }
    }
    write_public(path, &key)?;
    Ok(key)
}

/// The node key at `path`, created (with `<path>.pub`) if there is none.
///
/// Safe when many processes do this at once for the same path (every `warden hook` call on a
/// fresh log): each writes its candidate to a private temporary file and links it into place;
/// exactly one link succeeds, and the others load the winner's key. So all of them sign with
/// the same key, and nobody sees a half-written file.
pub fn load_or_create_key_file(path: impl AsRef<Path>) -> Result<SigningKey, AuditError> {
    let path = path.as_ref();
    let key = if path.exists() {
        load_signing_key(path)?
    } else {
        let candidate = generate_signing_key()?;
        match write_new(path, &format!("{}\n", to_hex(candidate.as_bytes())), true)? {
            Written::Created => candidate,
            Written::Exists => load_signing_key(path)?,
        }
    };
    write_public(path, &key)?;
    Ok(key)
}

/// Make sure `<path>.pub` holds `key`'s public key: create it if missing, check it if not.
fn write_public(secret_path: &Path, key: &SigningKey) -> Result<(), AuditError> {
    let pub_path = public_key_path(secret_path);
    let expected = public_key_hex(&key.verifying_key());
    if let Written::Exists = write_new(&pub_path, &format!("{expected}\n"), false)? {
        let found = fs::read_to_string(&pub_path)
            .map_err(AuditError::io(&pub_path, "cannot read public key file"))?;
        if found.trim() != expected {
            return Err(AuditError::Key {
                path: pub_path,
                detail: format!(
                    "holds another public key than the secret key {} (expected {expected})",
                    secret_path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Where [`generate_key_file`] puts the public key for a secret key file.
pub fn public_key_path(secret_path: &Path) -> PathBuf {
    let mut name = secret_path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

enum Written {
    Created,
    Exists,
}

/// Write `contents` to `path` unless a file is already there, atomically: a reader sees
/// either no file or the whole file.
fn write_new(path: &Path, contents: &str, secret: bool) -> Result<Written, AuditError> {
    static WRITING: AtomicU64 = AtomicU64::new(0);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{file_name}.writing-{}-{}",
        std::process::id(),
        WRITING.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let result = options
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .map_err(AuditError::io(path, "cannot create key file"))
        .and_then(|()| match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(Written::Created),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Written::Exists),
            Err(e) => Err(AuditError::io(path, "cannot create key file")(e)),
        });
    let _ = fs::remove_file(&tmp);
    result
}

/// Where a log's node key lives unless told otherwise: `<db>.key`.
pub fn default_key_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".key");
    PathBuf::from(name)
}

/// Load a signing key written by [`generate_key_file`].
///
/// On Unix a key file that group or others can read is refused, as ssh does: a leaked node
/// key lets anyone re-sign a rewritten log.
pub fn load_signing_key(path: impl AsRef<Path>) -> Result<SigningKey, AuditError> {
    let path = path.as_ref();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(AuditError::io(path, "cannot read key file"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuditError::Key {
                path: path.to_path_buf(),
                detail: format!(
                    "key file is accessible by other users (mode {mode:o}); run `chmod 600` on it"
                ),
            });
        }
    }
    let text = fs::read_to_string(path).map_err(AuditError::io(path, "cannot read key file"))?;
    let secret = from_hex::<32>(text.trim()).ok_or_else(|| AuditError::Key {
        path: path.to_path_buf(),
        detail: "expected 64 hex digits (a 32-byte Ed25519 secret key)".to_string(),
    })?;
    Ok(SigningKey::from_bytes(&secret))
}

/// A public key from 64 hex digits, or from a file holding them (such as `<key>.pub`).
pub fn parse_verifying_key(hex_or_file: &str) -> Result<VerifyingKey, AuditError> {
    let (text, path) = match from_hex::<32>(hex_or_file.trim()) {
        Some(_) => (
            hex_or_file.trim().to_string(),
            PathBuf::from("<key argument>"),
        ),
        None => {
            let path = PathBuf::from(hex_or_file);
            let public = public_key_path(&path);
            if public.exists() || path.extension().is_some_and(|e| e == "key") {
                return Err(AuditError::SecretKeyGiven { path, public });
            }
            let text = fs::read_to_string(&path).map_err(|e| AuditError::Key {
                path: path.clone(),
                detail: format!("neither 64 hex digits nor a readable public key file ({e})"),
            })?;
            (text.trim().to_string(), path)
        }
    };
    let bytes = from_hex::<32>(&text).ok_or_else(|| AuditError::Key {
        path: path.clone(),
        detail: "expected 64 hex digits (a 32-byte Ed25519 public key)".to_string(),
    })?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| AuditError::Key {
        path,
        detail: format!("not a valid Ed25519 public key: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_files_load_back_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = generate_key_file(&path).unwrap();
        assert_eq!(load_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
        let pub_path = public_key_path(&path);
        let public = parse_verifying_key(pub_path.to_str().unwrap()).unwrap();
        assert_eq!(public, key.verifying_key());
        let hex = public_key_hex(&public);
        assert_eq!(parse_verifying_key(&hex).unwrap(), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Never overwrites.
        assert!(generate_key_file(&path).is_err());
        assert_eq!(load_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
        // The secret key where a public one is expected is named for what it is.
        let e = parse_verifying_key(path.to_str().unwrap()).unwrap_err();
        assert!(
            matches!(e, AuditError::SecretKeyGiven { .. })
                && e.to_string().contains("this is a secret signing key")
                && e.to_string().contains("node.key.pub"),
            "{e}"
        );
        assert_eq!(key_id(&public).len(), 16);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_readable_key_files_and_garbage() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        generate_key_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signing_key(&path).unwrap_err().to_string();
        assert!(e.contains("node.key") && e.contains("chmod 600"), "{e}");
        let junk = dir.path().join("junk.key");
        fs::write(&junk, "not hex").unwrap();
        fs::set_permissions(&junk, fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_signing_key(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.key") && e.contains("64 hex digits"), "{e}");
        let e = parse_verifying_key("/nonexistent/key.pub")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/key.pub"), "{e}");
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;

    /// Many threads creating the same missing key at once all end up with one key, and the
    /// files are complete and private. (The multi-process version is in `tests/writers.rs`.)
    #[test]
    fn concurrent_first_use_agrees_on_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("warden.db.key");
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| load_or_create_key_file(&path).unwrap().to_bytes()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]));
            let public = parse_verifying_key(public_key_path(&path).to_str().unwrap()).unwrap();
            assert_eq!(
                public.to_bytes(),
                SigningKey::from_bytes(&keys[0]).verifying_key().to_bytes()
            );
            let leftovers = fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(leftovers, 2, "only the key and its .pub remain");
        }
    }
}
