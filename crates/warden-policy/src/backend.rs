//! What every policy language provides to a set, so the set never needs to know which one it
//! holds (and no backend needs to know about the set or the other backends).

use std::sync::Arc;

use warden_core::{Action, Policy, Verdict};

use crate::explain::RuleTrace;
use crate::source::Watched;

/// A compiled document in some policy language. Deciding is `Policy::evaluate`: the strongest
/// rule that applies, `None` when none does, `Err` when it cannot tell.
pub(crate) trait Backend: Policy + std::fmt::Debug + Send + Sync {
    /// The document's name (unique in a set).
    fn name(&self) -> &Arc<str>;
    /// What the document says when none of its rules applies: deny, unless the language lets
    /// a document say otherwise (Cedar denies what no `permit` allows; Rego what it does not
    /// allow).
    fn default_verdict(&self) -> Verdict {
        Verdict::Deny
    }
    /// Number of rules or policies in the document.
    fn rule_count(&self) -> usize;
    /// Every rule's part in the decision on `action`, for `explain`.
    fn trace(&self, action: &Action) -> Vec<RuleTrace>;
    /// Every file the document was built from, and files whose appearance would change it.
    fn sources(&self) -> &[Watched];
}
