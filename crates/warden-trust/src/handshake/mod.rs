//! The inter-agent trust handshake: two Warden-governed agents prove who they are to each
//! other and agree on a short-lived session grant, over two HTTP requests.
//!
//! ```text
//! initiator A                                              responder B (warden serve)
//!  hello {initiator: A, nonce_a, capabilities}      ──▶   (nothing stored)
//!                                                    ◀──  challenge {A, nonce_a, B, nonce_b,
//!                                                          capabilities, issued_at, expires_at,
//!                                                          cookie = BLAKE3-keyed MAC of the rest}
//!  proof {challenge, A's chain, A's keys,
//!         A's hybrid signature over the challenge}  ──▶   cookie + expiry; A's chain (B's roots,
//!                                                          revocations); keys hash to A; signature;
//!                                                          nonce_b unseen → stored until expiry
//!                                                    ◀──  grant {session, A, B, both nonces,
//!                                                          capabilities = asked ∩ A's chain,
//!                                                          ceiling = min(A's, B's chain), times}
//!                                                          + B's chain, B's keys, B's hybrid
//!                                                          signature over challenge and grant
//!  B's chain (A's roots), keys hash to B, signature, both nonces are this handshake's,
//!  capabilities ⊆ asked; B's trust from A's own records
//! ```
//!
//! What each check stops: the cookie makes challenges stateless, so unauthenticated hellos
//! cost the responder nothing to remember (the reference toolkit stored 3,000 against a
//! cap of 1,000); every field of the challenge is under the MAC and both signatures, so a
//! capability list cannot be edited; `nonce_b` is stored only after A's signature verified,
//! and a second use is refused (replay); the grant names `nonce_a`, which A made fresh for
//! this handshake, so a captured or relayed grant fails anywhere else; each side signs with
//! its own key and verifies the other's chain itself — no side ever holds the other's
//! secret; the peer's trust comes from the verifier's own records, never from the peer.

mod grant;
mod http;
mod nonces;
mod protocol;

pub use grant::Grant;
pub use http::{HttpError, MAX_MESSAGE_BYTES, post_json};
pub use nonces::NonceStore;
pub use protocol::{
    Challenge, GrantMessage, HANDSHAKE_VERSION, Hello, Initiator, Pending, Proof, Refusal,
    Responder, Session,
};
