//! The errors of identities: [`IdentityError`] for keys, files, DIDs and stores, and
//! [`ChainError`] for a credential or delegation chain that does not verify. A chain error
//! always says which link failed and why, because "invalid credential" tells an operator
//! nothing they can act on.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Something about keys, DIDs, files or the revocation store went wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A key file could not be read, written or understood.
    #[error("{}: {detail}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A DID that is not one Warden understands.
    #[error("`{did}` is not a usable DID: {detail}")]
    Did {
        /// The text given (shortened when long).
        did: String,
        /// What is wrong.
        detail: String,
    },
    /// A credential or chain file that is not well formed (before any signature is checked).
    #[error("{what}: {detail}")]
    Format {
        /// What was being read (a file name, `chain`, `links[2]`).
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// Asked to issue something the issuer may not issue (wider than its own chain, …).
    #[error("cannot issue: {0}")]
    Issue(String),
    /// The operating system's random source failed.
    #[error("cannot get random bytes: {0}")]
    Random(String),
    /// The chain did not verify.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The revocation store (the Warden database) failed.
    #[error("{}: {detail}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the audit layer reported.
        detail: String,
    },
}

impl IdentityError {
    pub(crate) fn key_file(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        IdentityError::KeyFile {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn did(did: &str, detail: impl Into<String>) -> Self {
        IdentityError::Did {
            did: shorten(did),
            detail: detail.into(),
        }
    }
}

/// Text from outside, cut to a length an error message can carry.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.escape_debug().to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s[..end].escape_debug())
}

/// Why a chain (a credential is a chain of one link) did not verify, and at which link.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ChainError {
    link: Option<usize>,
    failure: Failure,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.link {
            Some(i) => write!(f, "link {i}: {}", self.failure),
            None => write!(f, "{}", self.failure),
        }
    }
}

impl ChainError {
    pub(crate) fn new(link: Option<usize>, failure: Failure) -> Self {
        ChainError { link, failure }
    }

    pub(crate) fn at(link: usize, failure: Failure) -> Self {
        ChainError {
            link: Some(link),
            failure,
        }
    }

    /// The link (0 = the root's) that failed, when one did.
    pub fn link(&self) -> Option<usize> {
        self.link
    }

    /// What failed.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }
}

/// Which half of a hybrid signature failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// The classical Ed25519 signature.
    Ed25519,
    /// The post-quantum ML-DSA-65 signature.
    MlDsa65,
}

impl fmt::Display for Half {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Half::Ed25519 => "Ed25519",
            Half::MlDsa65 => "ML-DSA-65",
        })
    }
}

/// The reasons a chain fails, one per check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Failure {
    /// The chain has no links.
    #[error("the chain has no links")]
    Empty,
    /// More links than the verifier allows.
    #[error("the chain has {depth} links; at most {max} are accepted")]
    TooDeep {
        /// Links in the chain.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A link that is not well formed.
    #[error("malformed link: {0}")]
    Malformed(String),
    /// The public keys in the link do not hash to the issuer's DID: someone swapped a key.
    #[error("the issuer's public keys do not belong to its DID {did}")]
    KeysNotTheIssuers {
        /// The DID the link names.
        did: String,
    },
    /// A signature does not verify.
    #[error("the {half} signature of {did} does not verify")]
    BadSignature {
        /// Which half failed (for a hybrid signature, the first that did).
        half: Half,
        /// The signer.
        did: String,
    },
    /// A hybrid identity's signature lacks its post-quantum half.
    #[error("the signature of {did} has no ML-DSA-65 part, but its DID is hybrid")]
    MissingPostQuantum {
        /// The signer.
        did: String,
    },
    /// A classical-only identity where the verifier requires hybrid ones.
    #[error(
        "{did} is a classical-only (Ed25519) identity, and classical-only identities are not accepted here"
    )]
    ClassicalNotAllowed {
        /// The identity.
        did: String,
    },
    /// The root's issuer is not one the verifier trusts.
    #[error("the chain is rooted at {did}, which is not a trusted root")]
    UntrustedRoot {
        /// The root issuer.
        did: String,
    },
    /// The verifier was given no trusted roots at all.
    #[error("no trusted roots are configured, so no chain can be accepted")]
    NoRoots,
    /// A link's issuer is not the previous link's subject.
    #[error("signed by {issuer}, but the parent link was issued to {parent_subject}")]
    NotTheParent {
        /// Who signed this link.
        issuer: String,
        /// Who the parent link names.
        parent_subject: String,
    },
    /// A link does not name the parent link it extends.
    #[error("the link does not name its parent link (parent hash {found}, expected {expected})")]
    WrongParentHash {
        /// What the link names.
        found: String,
        /// The parent link's hash.
        expected: String,
    },
    /// A link grants a capability its parent does not hold.
    #[error("capability `{capability}` is wider than anything the parent link grants ({parent})")]
    Widened {
        /// The widening capability.
        capability: String,
        /// The parent's capabilities.
        parent: String,
    },
    /// A link's ceiling is above its parent's.
    #[error("trust ceiling {ceiling} is above the parent link's {parent}")]
    CeilingRaised {
        /// This link's ceiling.
        ceiling: u16,
        /// The parent's.
        parent: u16,
    },
    /// A link outlives its parent.
    #[error("expires at {expires} (unix seconds), after the parent link ({parent})")]
    OutlivesParent {
        /// This link's expiry.
        expires: u64,
        /// The parent's.
        parent: u64,
    },
    /// A link's audience differs from (or widens) its parent's.
    #[error("audience {found} differs from the parent link's {parent}")]
    AudienceWidened {
        /// This link's audience.
        found: String,
        /// The parent's.
        parent: String,
    },
    /// The link has expired.
    #[error("expired at {expires} (unix seconds; now {now})")]
    Expired {
        /// Expiry.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The link is not valid yet (issued in the future beyond the allowed clock skew).
    #[error("issued at {issued} (unix seconds), in the future (now {now})")]
    NotYetValid {
        /// Issue time.
        issued: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The link lives longer than the verifier accepts.
    #[error("lives {lifetime} s; at most {max} s are accepted")]
    TooLong {
        /// expires_at − issued_at.
        lifetime: u64,
        /// The limit.
        max: u64,
    },
    /// The link, or an identity in it, was revoked.
    #[error("{what} was revoked{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Revoked {
        /// The credential id or DID.
        what: String,
        /// The operator's reason, when given.
        reason: Option<String>,
    },
    /// The chain was issued for another audience.
    #[error("the chain is for audience {found}, not this verifier ({expected})")]
    WrongAudience {
        /// The chain's audience.
        found: String,
        /// What the verifier accepts.
        expected: String,
    },
    /// The revocation list could not be read: the chain cannot be accepted.
    #[error("cannot check revocations: {0}")]
    RevocationsUnavailable(String),
}
