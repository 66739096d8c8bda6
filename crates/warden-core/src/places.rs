//! A fixed number of places for something that holds a resource while it waits (a thread, a
//! socket): a call held for approval, a long-poll. Taking a place past the limit fails at once
//! instead of queueing, so the caller can refuse with a reason; a place is given back when its
//! guard drops, on every path out, including a panic or a client that hangs up.

use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `limit` places taken at once. Meant for a `static`: `Places::new(64)`.
#[derive(Debug)]
pub struct Places {
    taken: AtomicUsize,
    limit: usize,
}

/// One taken place among [`Places`], given back when dropped.
#[derive(Debug)]
#[must_use = "the place is given back as soon as this guard drops"]
pub struct Place<'a>(&'a Places);

impl Places {
    /// `limit` places, none taken.
    pub const fn new(limit: usize) -> Places {
        Places {
            taken: AtomicUsize::new(0),
            limit,
        }
    }

    /// A place, or `None` when all `limit` are taken.
    pub fn take(&self) -> Option<Place<'_>> {
        if self.taken.fetch_add(1, Ordering::AcqRel) < self.limit {
            Some(Place(self))
        } else {
            self.taken.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }

    /// How many places there are.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_run_out_and_come_back() {
        let places = Places::new(2);
        let a = places.take().expect("first");
        let b = places.take().expect("second");
        assert!(places.take().is_none(), "a third place past the limit of 2");
        drop(a);
        let c = places.take().expect("a place given back is taken again");
        assert!(places.take().is_none());
        drop((b, c));
        assert!(places.take().is_some());
    }

    #[test]
    fn a_refused_take_takes_nothing() {
        let places = Places::new(1);
        let _held = places.take().expect("first");
        for _ in 0..1000 {
            assert!(places.take().is_none());
        }
        drop(_held);
        assert!(places.take().is_some(), "refusals left no place taken");
    }
}
