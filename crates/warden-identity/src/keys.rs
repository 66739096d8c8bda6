//! Identity keys: a [`KeyPair`] (secret, held by the agent) and its [`PublicKeys`] (what
//! everyone else sees), and the key file that stores the secret.
//!
//! A hybrid identity is an Ed25519 key and an ML-DSA-65 key generated together. The secret
//! file holds only the two 32-byte seeds (FIPS 204 allows an ML-DSA key to be stored as its
//! seed ξ), written once with mode 0600 and never overwritten; loading refuses a file that
//! others can read. Seeds and expanded secret keys are zeroized when dropped. Nothing here
//! logs or prints key material; `Debug` shows only the DID.
//!
//! Key file (text, one field per line; `#` lines are comments):
//!
//! ```text
//! # Warden identity secret key. Keep it private: mode 0600, never share or log it.
//! format warden-identity-key/1
//! did did:warden:z…
//! ed25519-seed <64 hex digits>
//! ml-dsa-65-seed <64 hex digits>        (absent for a classical did:key identity)
//! ```

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use ml_dsa::{ExpandedSigningKey, MlDsa65};
use zeroize::{Zeroize, Zeroizing};

use crate::did::{Did, DidKind, did_document};
use crate::error::{Failure, Half, IdentityError};
use crate::hybrid::{
    ML_DSA_65_PUBLIC_KEY_LEN, ML_DSA_CONTEXT, Signature, bad, signed_bytes, verify_ed25519,
    verify_ml_dsa,
};

/// The first field of every key file.
pub const KEY_FILE_FORMAT: &str = "warden-identity-key/1";
/// Largest key file accepted.
const MAX_KEY_FILE: u64 = 4096;

/// The public half of an identity: its DID and the keys that hash to it.
#[derive(Clone)]
pub struct PublicKeys {
    did: Did,
    ed25519: ed25519_dalek::VerifyingKey,
    ml_dsa_65: Option<Arc<MlDsaPublic>>,
}

/// An ML-DSA-65 public key, encoded and decoded (decoding costs ~0.1 ms, so it is kept).
pub(crate) struct MlDsaPublic {
    bytes: Box<[u8]>,
    key: ml_dsa::VerifyingKey<MlDsa65>,
}

impl std::fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKeys({})", self.did)
    }
}

impl PublicKeys {
    /// Keys from their bytes, with the DID they hash to. `ml_dsa_65` absent makes a
    /// classical `did:key` identity.
    pub fn from_bytes(ed25519: &[u8], ml_dsa_65: Option<&[u8]>) -> Result<Self, String> {
        let ed: [u8; 32] = ed25519
            .try_into()
            .map_err(|_| format!("Ed25519 public key: {} bytes, expected 32", ed25519.len()))?;
        let ed_key = ed25519_dalek::VerifyingKey::from_bytes(&ed)
            .map_err(|_| "Ed25519 public key: not a valid curve point".to_string())?;
        if ed_key.is_weak() {
            return Err("Ed25519 public key: a small-order (weak) key".into());
        }
        match ml_dsa_65 {
            None => Ok(PublicKeys {
                did: Did::classical(&ed),
                ed25519: ed_key,
                ml_dsa_65: None,
            }),
            Some(ml) => {
                if ml.len() != ML_DSA_65_PUBLIC_KEY_LEN {
                    return Err(format!(
                        "ML-DSA-65 public key: {} bytes, expected {ML_DSA_65_PUBLIC_KEY_LEN}",
                        ml.len()
                    ));
                }
                Ok(PublicKeys {
                    did: Did::hybrid(&ed, ml),
                    ed25519: ed_key,
                    ml_dsa_65: Some(decoded(ml)),
                })
            }
        }
    }

    /// The DID these keys hash to.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// Whether these keys are the ones `did` names (the self-certifying check).
    pub fn is_of(&self, did: &Did) -> bool {
        &self.did == did
    }

    /// The Ed25519 public key.
    pub fn ed25519(&self) -> [u8; 32] {
        self.ed25519.to_bytes()
    }

    /// The ML-DSA-65 public key (1952 bytes), for hybrid identities.
    pub fn ml_dsa_65(&self) -> Option<&[u8]> {
        self.ml_dsa_65.as_ref().map(|k| &*k.bytes)
    }

    /// Hybrid or classical.
    pub fn kind(&self) -> DidKind {
        self.did.kind()
    }

    /// The W3C DID document.
    pub fn did_document(&self) -> serde_json::Value {
        did_document(&self.did, &self.ed25519(), self.ml_dsa_65())
    }

    /// Verify `sig` over `domain ‖ 0 ‖ message`. A hybrid identity needs both halves; the
    /// failure names the half that did not verify (Ed25519 is checked first: it is cheaper).
    pub fn verify(&self, domain: &str, message: &[u8], sig: &Signature) -> Result<(), Failure> {
        let m = signed_bytes(domain, message);
        if !verify_ed25519(&self.ed25519, &m, &sig.ed25519) {
            return Err(bad(Half::Ed25519, self.did.as_str()));
        }
        match (&self.ml_dsa_65, &sig.ml_dsa_65) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(Failure::MissingPostQuantum {
                did: self.did.to_string(),
            }),
            (Some(key), Some(s)) => {
                if verify_ml_dsa(&key.key, &m, s) {
                    Ok(())
                } else {
                    Err(bad(Half::MlDsa65, self.did.as_str()))
                }
            }
        }
    }
}

/// Decoded ML-DSA keys by BLAKE3 of their bytes, so a key seen before is not decoded again.
/// Bounded: when full it is emptied (a miss only costs a decode).
fn decoded(bytes: &[u8]) -> Arc<MlDsaPublic> {
    const MAX_KEYS: usize = 4096;
    static KEYS: OnceLock<Mutex<HashMap<[u8; 32], Arc<MlDsaPublic>>>> = OnceLock::new();
    let id = *blake3::hash(bytes).as_bytes();
    let keys = KEYS.get_or_init(Default::default);
    if let Some(k) = keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&id)
    {
        return k.clone();
    }
    // INVARIANT: callers checked the length.
    let enc = ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(bytes).unwrap_or_default();
    let key = Arc::new(MlDsaPublic {
        bytes: bytes.into(),
        key: ml_dsa::VerifyingKey::<MlDsa65>::decode(&enc),
    });
    let mut map = keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() >= MAX_KEYS {
        map.clear();
    }
    map.insert(id, key.clone());
    key
}

/// An identity's secret keys. Zeroized on drop; `Debug` shows only the DID.
pub struct KeyPair {
    ed25519: ed25519_dalek::SigningKey,
    ml_dsa_65: Option<MlDsaSecret>,
    public: PublicKeys,
}

struct MlDsaSecret {
    seed: Zeroizing<[u8; 32]>,
    key: Box<ExpandedSigningKey<MlDsa65>>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({}, secret keys not shown)", self.public.did)
    }
}

fn random_seed() -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| IdentityError::Random(e.to_string()))?;
    Ok(seed)
}

impl KeyPair {
    /// A new hybrid identity (Ed25519 + ML-DSA-65) from the operating system's random source.
    pub fn generate() -> Result<Self, IdentityError> {
        let (ed, ml) = (random_seed()?, random_seed()?);
        Ok(Self::from_seeds(&ed, Some(&ml)))
    }

    /// A new classical-only identity (`did:key`, Ed25519). For interoperating with systems
    /// that have no post-quantum keys; verifiers refuse it unless configured to accept.
    pub fn generate_classical() -> Result<Self, IdentityError> {
        let ed = random_seed()?;
        Ok(Self::from_seeds(&ed, None))
    }

    /// The identity these seeds make (deterministic: the same seeds, the same DID).
    pub fn from_seeds(ed25519_seed: &[u8; 32], ml_dsa_seed: Option<&[u8; 32]>) -> Self {
        let ed25519 = ed25519_dalek::SigningKey::from_bytes(ed25519_seed);
        let ed_pub = ed25519.verifying_key();
        let ml = ml_dsa_seed.map(|seed| {
            let s = ml_dsa::Seed::from(*seed);
            let key = Box::new(ExpandedSigningKey::<MlDsa65>::from_seed(&s));
            MlDsaSecret {
                seed: Zeroizing::new(*seed),
                key,
            }
        });
        let public = match &ml {
            None => PublicKeys {
                did: Did::classical(&ed_pub.to_bytes()),
                ed25519: ed_pub,
                ml_dsa_65: None,
            },
            Some(secret) => {
                let vk = secret.key.verifying_key();
                let bytes: Box<[u8]> = vk.encode().as_slice().into();
                PublicKeys {
                    did: Did::hybrid(&ed_pub.to_bytes(), &bytes),
                    ed25519: ed_pub,
                    ml_dsa_65: Some(Arc::new(MlDsaPublic { bytes, key: vk })),
                }
            }
        };
        KeyPair {
            ed25519,
            ml_dsa_65: ml,
            public,
        }
    }

    /// The public keys.
    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// The DID.
    pub fn did(&self) -> &Did {
        &self.public.did
    }

    /// Sign `domain ‖ 0 ‖ message` with every key this identity has.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Signature, IdentityError> {
        use ed25519_dalek::Signer as _;
        let m = signed_bytes(domain, message);
        let ed25519 = self.ed25519.sign(&m).to_bytes();
        let ml_dsa_65 = match &self.ml_dsa_65 {
            None => None,
            Some(secret) => {
                let sig = secret
                    .key
                    .sign_randomized(&m, ML_DSA_CONTEXT, &mut getrandom::SysRng)
                    .map_err(|e| IdentityError::Random(format!("ML-DSA-65 signing failed: {e}")))?;
                Some(sig.encode().as_slice().into())
            }
        };
        Ok(Signature { ed25519, ml_dsa_65 })
    }

    /// Write this identity's secret key file at `path`: created with mode 0600, never over
    /// an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), IdentityError> {
        let mut text = Zeroizing::new(String::new());
        text.push_str(
            "# Warden identity secret key. Keep it private: mode 0600, never share or log it.\n",
        );
        text.push_str(&format!("format {KEY_FILE_FORMAT}\n"));
        text.push_str(&format!("did {}\n", self.public.did));
        let mut ed_seed = Zeroizing::new(self.ed25519.to_bytes());
        text.push_str(&format!("ed25519-seed {}\n", hex_secret(&ed_seed).as_str()));
        ed_seed.zeroize();
        if let Some(ml) = &self.ml_dsa_65 {
            text.push_str(&format!(
                "ml-dsa-65-seed {}\n",
                hex_secret(&ml.seed).as_str()
            ));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                let detail = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    "a file is already there; an identity key is never overwritten".to_string()
                } else {
                    format!("cannot create the key file: {e}")
                };
                IdentityError::key_file(path, detail)
            })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| IdentityError::key_file(path, format!("cannot write the key file: {e}")))
    }

    /// Load a secret key file. Refuses files others can read or write, and files whose
    /// `did` line does not match the keys.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let err = |d: String| IdentityError::key_file(path, d);
        let meta = fs::symlink_metadata(path)
            .map_err(|e| err(format!("cannot read the key file: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(err("not a regular file".into()));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(err(format!(
                "the key file is readable or writable by others (mode {:o}); make it private \
                 with chmod 600",
                meta.mode() & 0o777
            )));
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(err(format!(
                "larger than {MAX_KEY_FILE} bytes: not a key file"
            )));
        }
        let mut text = Zeroizing::new(String::new());
        fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| err(format!("cannot read the key file: {e}")))?;
        parse_key_file(&text).map_err(err)
    }
}

/// Hex of a secret, in a buffer that is zeroized when dropped.
fn hex_secret(bytes: &[u8; 32]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(64));
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

fn seed_from_hex(text: &str, field: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("`{field}` must be 64 hex digits"));
    }
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => seed[i] = h << 4 | l,
            _ => return Err(format!("`{field}` must be 64 hex digits")),
        }
    }
    Ok(seed)
}

fn parse_key_file(text: &str) -> Result<KeyPair, String> {
    let mut format = None;
    let mut did = None;
    let mut ed = None;
    let mut ml = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (field, value) = line
            .split_once(' ')
            .ok_or_else(|| format!("line {}: expected `field value`", n + 1))?;
        let slot = match field {
            "format" => &mut format,
            "did" => &mut did,
            "ed25519-seed" => {
                if ed.is_some() {
                    return Err(format!("line {}: `ed25519-seed` given twice", n + 1));
                }
                ed = Some(seed_from_hex(value.trim(), field)?);
                continue;
            }
            "ml-dsa-65-seed" => {
                if ml.is_some() {
                    return Err(format!("line {}: `ml-dsa-65-seed` given twice", n + 1));
                }
                ml = Some(seed_from_hex(value.trim(), field)?);
                continue;
            }
            other => {
                return Err(format!(
                    "line {}: unknown field `{}` (not a Warden identity key file?)",
                    n + 1,
                    crate::error::shorten(other)
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("line {}: `{field}` given twice", n + 1));
        }
        *slot = Some(value.trim().to_string());
    }
    match format.as_deref() {
        Some(KEY_FILE_FORMAT) => {}
        Some(other) => {
            return Err(format!(
                "unknown key file format `{}` (this build reads {KEY_FILE_FORMAT})",
                crate::error::shorten(other)
            ));
        }
        None => return Err("not a Warden identity key file (no `format` line)".into()),
    }
    let ed = ed.ok_or("the key file has no `ed25519-seed`")?;
    let pair = KeyPair::from_seeds(&ed, ml.as_deref());
    let named = did.ok_or("the key file has no `did` line")?;
    if named != pair.did().as_str() {
        return Err(format!(
            "the file names {named}, but its keys are {}: the file was edited or damaged",
            pair.did()
        ));
    }
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_both_halves() {
        let k = KeyPair::from_seeds(&[1; 32], Some(&[2; 32]));
        let sig = k.sign("test", b"hello").unwrap();
        k.public().verify("test", b"hello", &sig).unwrap();
        assert!(k.public().verify("other", b"hello", &sig).is_err());
        assert!(k.public().verify("test", b"hellp", &sig).is_err());

        let mut ml_bad = sig.clone();
        if let Some(m) = &mut ml_bad.ml_dsa_65 {
            m[100] ^= 1;
        }
        assert_eq!(
            k.public().verify("test", b"hello", &ml_bad).unwrap_err(),
            Failure::BadSignature {
                half: Half::MlDsa65,
                did: k.did().to_string()
            }
        );
        let stripped = Signature::from_parts(sig.ed25519, None);
        assert!(matches!(
            k.public().verify("test", b"hello", &stripped),
            Err(Failure::MissingPostQuantum { .. })
        ));
    }

    #[test]
    fn same_seeds_same_did() {
        let a = KeyPair::from_seeds(&[3; 32], Some(&[4; 32]));
        let b = KeyPair::from_seeds(&[3; 32], Some(&[4; 32]));
        assert_eq!(a.did(), b.did());
        let pk = PublicKeys::from_bytes(&a.public().ed25519(), a.public().ml_dsa_65()).unwrap();
        assert_eq!(pk.did(), a.did());
        assert!(format!("{a:?}").contains("not shown"));
    }

    #[test]
    fn key_files_are_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        let k = KeyPair::generate().unwrap();
        k.write_new(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(KeyPair::load(&path).unwrap().did(), k.did());
        let e = k.write_new(&path).unwrap_err().to_string();
        assert!(e.contains("never overwritten"), "{e}");

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyPair::load(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let text = fs::read_to_string(&path).unwrap();
        let other = KeyPair::generate().unwrap();
        let edited = text.replace(k.did().as_str(), other.did().as_str());
        let p2 = dir.path().join("b.key");
        fs::write(&p2, edited).unwrap();
        fs::set_permissions(&p2, fs::Permissions::from_mode(0o600)).unwrap();
        let e = KeyPair::load(&p2).unwrap_err().to_string();
        assert!(e.contains("edited or damaged"), "{e}");
    }
}
