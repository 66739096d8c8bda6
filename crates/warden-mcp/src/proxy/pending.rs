//! Requests waiting for their answer, one table per direction.
//!
//! An answer is passed on only when it answers a request that is waiting (same id by value
//! and JSON type, see [`crate::jsonrpc::id`]) and only once; it then goes out with the id
//! exactly as the request had it. Everything else — answers to ids nobody sent, second
//! answers, `"1"` for `1` — is dropped by the caller. The table is bounded: a peer that
//! never answers cannot make the proxy remember without end.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::method::Special;
use crate::jsonrpc::id::{self, IdKey};

/// A request waiting for its answer.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    /// The id as the sender wrote it.
    pub(crate) id: Value,
    /// The method, when the gateway treats it specially.
    pub(crate) special: Option<Special>,
    /// The method as sent.
    pub(crate) method: String,
    /// What it is about: the tool, prompt or resource.
    pub(crate) target: Option<String>,
    /// A tool call's place among the agent's running calls (its ring's `max_concurrent`),
    /// given back when the request leaves the table (answered, cancelled, or the proxy ends);
    /// held, never read.
    pub(crate) _permit: Option<std::sync::Arc<warden::CallPermit>>,
    /// Set while the proxy holds the request for a person's approval (it has not reached
    /// the other side yet): the flag is raised when its sender cancels it. A held request
    /// keeps its id taken, and nothing can answer it but the proxy.
    pub(crate) held: Option<Arc<AtomicBool>>,
    /// A memory write's signed provenance, recorded when the server answers the call with
    /// success (and dropped with the request otherwise).
    pub(crate) provenance: Option<warden::memory::PendingProvenance>,
}

/// Why a request cannot wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A request with this id (or one a client could confuse with it) is already waiting.
    Duplicate,
    /// The table is full.
    Full,
}

/// Why an answer answers nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Unmatched {
    /// No request with this id is waiting (never sent, already answered, or cancelled).
    Nothing,
    /// A request is waiting whose id has the same value but another JSON type (or another
    /// spelling of a numeric string).
    OtherType(Value),
}

/// One direction's waiting requests.
#[derive(Debug)]
pub(crate) struct Pending {
    waiting: HashMap<IdKey, Waiting>,
    limit: usize,
}

impl Pending {
    pub(crate) fn new(limit: usize) -> Pending {
        Pending {
            waiting: HashMap::new(),
            limit,
        }
    }

    /// Whether a request with this id could wait now.
    pub(crate) fn check(&self, id: &Value) -> Result<(), Refusal> {
        let key = id::key(id).ok_or(Refusal::Duplicate)?;
        if self.waiting.contains_key(&key) {
            return Err(Refusal::Duplicate);
        }
        if self.waiting.len() >= self.limit {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// Remember a request (after [`Pending::check`]).
    pub(crate) fn insert(&mut self, waiting: Waiting) -> Result<(), Refusal> {
        self.check(&waiting.id)?;
        let key = id::key(&waiting.id).ok_or(Refusal::Duplicate)?;
        self.waiting.insert(key, waiting);
        Ok(())
    }

    /// The request an answer with this id answers, removed from the table.
    pub(crate) fn take(&mut self, answer_id: &Value) -> Result<Waiting, Unmatched> {
        let key = id::key(answer_id).ok_or(Unmatched::Nothing)?;
        let waiting = self.waiting.get(&key).ok_or(Unmatched::Nothing)?;
        if waiting.held.is_some() {
            // Not sent yet: an answer to it is a guess (or a forgery).
            return Err(Unmatched::Nothing);
        }
        if !id::same_id(&waiting.id, answer_id) {
            return Err(Unmatched::OtherType(waiting.id.clone()));
        }
        self.waiting.remove(&key).ok_or(Unmatched::Nothing)
    }

    /// Forget a request (cancelled by its sender): a late answer is then dropped.
    pub(crate) fn cancel(&mut self, id: &Value) {
        if let Some(key) = id::key(id)
            && self
                .waiting
                .get(&key)
                .is_some_and(|w| id::same_id(&w.id, id))
            && let Some(w) = self.waiting.remove(&key)
            && let Some(flag) = w.held
        {
            flag.store(true, Ordering::Release);
        }
    }

    /// A held request was let through: it now waits for the other side's answer like any
    /// other, with its call permit. `false` when it is no longer held (cancelled meanwhile).
    /// `hold` is the request's own cancel flag: a cancelled request's id may have been taken
    /// by a new request since (held too), which this must not release.
    pub(crate) fn release(
        &mut self,
        id: &Value,
        hold: &Arc<AtomicBool>,
        permit: Option<std::sync::Arc<warden::CallPermit>>,
    ) -> bool {
        let Some(w) = id::key(id).and_then(|key| self.waiting.get_mut(&key)) else {
            return false;
        };
        match &w.held {
            Some(flag)
                if Arc::ptr_eq(flag, hold)
                    && id::same_id(&w.id, id)
                    && !flag.load(Ordering::Acquire) =>
            {
                w.held = None;
                w._permit = permit;
                true
            }
            _ => false,
        }
    }

    /// A held request was refused (the proxy answers it): forget it. `false` when it is no
    /// longer here (cancelled meanwhile; its id may be a new request's now, left alone).
    pub(crate) fn abandon(&mut self, id: &Value, hold: &Arc<AtomicBool>) -> bool {
        if let Some(key) = id::key(id)
            && self.waiting.get(&key).is_some_and(|w| {
                w.held.as_ref().is_some_and(|f| Arc::ptr_eq(f, hold)) && id::same_id(&w.id, id)
            })
        {
            self.waiting.remove(&key);
            return true;
        }
        false
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn waiting(id: Value) -> Waiting {
        Waiting {
            id,
            special: None,
            method: "ping".into(),
            target: None,
            _permit: None,
            held: None,
            provenance: None,
        }
    }

    #[test]
    fn answers_match_by_value_and_type_once() {
        let mut p = Pending::new(10);
        p.insert(waiting(json!(1))).unwrap();
        assert_eq!(
            p.take(&json!("1")).unwrap_err(),
            Unmatched::OtherType(json!(1))
        );
        assert_eq!(p.take(&json!(2)).unwrap_err(), Unmatched::Nothing);
        let w = p.take(&serde_json::from_str("1.0").unwrap()).unwrap();
        assert_eq!(w.id, json!(1));
        assert_eq!(p.take(&json!(1)).unwrap_err(), Unmatched::Nothing);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn confusable_ids_cannot_wait_together_and_the_table_is_bounded() {
        let mut p = Pending::new(2);
        p.insert(waiting(json!(1))).unwrap();
        assert_eq!(p.insert(waiting(json!("1"))), Err(Refusal::Duplicate));
        assert_eq!(p.insert(waiting(json!(1))), Err(Refusal::Duplicate));
        p.insert(waiting(json!("a"))).unwrap();
        assert_eq!(p.insert(waiting(json!("b"))), Err(Refusal::Full));
        p.cancel(&json!("1"));
        assert_eq!(p.len(), 2, "cancelling `\"1\"` does not cancel 1");
        p.cancel(&json!(1));
        p.insert(waiting(json!("b"))).unwrap();
    }

    #[test]
    fn a_held_request_cannot_be_answered_until_released_and_cancelling_it_raises_its_flag() {
        let mut p = Pending::new(10);
        let flag = Arc::new(AtomicBool::new(false));
        let mut w = waiting(json!(7));
        w.held = Some(flag.clone());
        p.insert(w).unwrap();
        assert_eq!(p.insert(waiting(json!(7))), Err(Refusal::Duplicate));
        assert_eq!(p.take(&json!(7)).unwrap_err(), Unmatched::Nothing);
        assert!(
            !p.release(&json!(7), &Arc::new(AtomicBool::new(false)), None),
            "not its hold"
        );
        assert!(p.release(&json!(7), &flag, None));
        assert!(!p.release(&json!(7), &flag, None), "released once");
        assert_eq!(p.take(&json!(7)).unwrap().id, json!(7));

        let mut w = waiting(json!("h"));
        w.held = Some(flag.clone());
        p.insert(w).unwrap();
        p.cancel(&json!("h"));
        assert!(flag.load(Ordering::Acquire));
        assert!(
            !p.release(&json!("h"), &flag, None),
            "cancelled requests stay cancelled"
        );
        assert_eq!(p.len(), 0);
    }
}
