//! Warden's vocabulary.
//!
//! Every door into Warden (CLI, HTTP, MCP proxy, hook, Python) builds an [`Action`]; every
//! policy engine answers with [`Match`]es; the decision path turns them into one [`Decision`]
//! carrying a [`Verdict`]. This crate holds only those words and the errors that go with them:
//! no I/O and no policy language, so everything else can depend on it.

mod action;
mod decision;
mod error;
mod places;

pub use action::{Action, json_kind};
pub use decision::{Decision, Match, Verdict};
pub use error::{ActionError, PolicyError};
pub use places::{Place, Places};

/// A compiled policy that can judge an action.
///
/// Implementations return the *strongest* rule that applies (deny over require-approval over
/// allow), or `None` when no rule applies, so that callers can apply their own default.
/// An `Err` means the policy could not tell; callers must treat it as a deny.
pub trait Policy: Send + Sync {
    /// Judge one action.
    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError>;
}
