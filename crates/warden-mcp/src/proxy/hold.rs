//! Requests held for a person's approval: the ticket a held request carries from the
//! decision that held it to [`super::Gateway::settle`], which waits for the answer off the
//! transport's reading thread, and the process-wide bound on how many are held at once.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::Value;
use warden::{Action, Place, Places};

use super::method::Special;

/// The most calls held for approval at once in this process: each holds a thread (over
/// Streamable HTTP, one of the runtime's blocking threads), so past this a call that needs
/// approval is refused at once, as without `--approval-wait`.
pub const MAX_HELD: usize = 64;

/// The process's places for held calls; a [`HoldTicket`] carries one.
pub(super) static HELD: Places = Places::new(MAX_HELD);

/// Why a client request does not go on at once.
pub(super) enum Refused {
    /// Refused: this answer goes back.
    Answer(Value),
    /// Held for a person's approval.
    Hold(Box<HoldTicket>),
}

impl From<Value> for Refused {
    fn from(answer: Value) -> Refused {
        Refused::Answer(answer)
    }
}

/// What a held request waits on: its action, the approval request and its place among
/// the [`MAX_HELD`].
pub(super) struct HoldTicket {
    pub(super) action: Action,
    pub(super) approval: Arc<str>,
    pub(super) what: String,
    pub(super) target: String,
    /// A memory write's provenance, recorded only if the call is let through and succeeds.
    pub(super) provenance: Option<warden::memory::PendingProvenance>,
    pub(super) _place: Place<'static>,
}

/// A client request held for a person's approval: the transport hands it to
/// [`Gateway::settle`] off its reading thread, so the conversation goes on meanwhile.
pub struct Held {
    pub(super) ticket: Box<HoldTicket>,
    pub(super) id: Value,
    pub(super) msg: Value,
    pub(super) special: Option<Special>,
    pub(super) cancelled: Arc<AtomicBool>,
}

impl Held {
    /// Whether its client asked for progress notifications (`_meta.progressToken`).
    pub fn wants_progress(&self) -> bool {
        progress_token(&self.msg).is_some()
    }
}

/// The request's `_meta.progressToken`, when it has a usable one (a string or an integer).
pub(super) fn progress_token(msg: &Value) -> Option<&Value> {
    msg.pointer("/params/_meta/progressToken")
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("id", &self.id)
            .field("approval", &self.ticket.approval)
            .field("what", &self.ticket.what)
            .finish_non_exhaustive()
    }
}
