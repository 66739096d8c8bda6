//! [`Grant`]: what a completed handshake grants. Its own module because both the protocol
//! (which signs it) and the nonce store (which keeps it until it expires) need it.

use serde::{Deserialize, Serialize};

/// What the responder grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A random session id (32 hex digits).
    pub session: String,
    /// Who it is granted to.
    pub initiator: String,
    /// Who grants.
    pub responder: String,
    /// The initiator's nonce of this handshake.
    pub initiator_nonce: String,
    /// The responder's nonce of this handshake.
    pub responder_nonce: String,
    /// What was asked ∩ what the initiator's chain grants.
    pub capabilities: Vec<String>,
    /// The lower of the two chains' effective ceilings.
    pub ceiling: u16,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}
