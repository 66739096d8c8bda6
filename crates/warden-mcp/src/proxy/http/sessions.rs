//! The sessions the Streamable HTTP proxy remembers, each with its conversation's gateway.
//!
//! Why bounded: session ids come from the upstream, and any local process that reaches the
//! proxy can open sessions without end; each one's gateway keeps state (requests waiting,
//! the tools it withheld, listed schemas up to 64 MiB). Many clients never send `DELETE`, so
//! refusing new sessions once full would lock real users out of a long-running proxy. Past
//! [`MAX_SESSIONS`] the least recently used session is forgotten instead: a client that comes
//! back with its id starts a fresh conversation, as after a proxy restart (with a lock, its
//! tools must be listed again before they can be called).

use std::collections::HashMap;

/// The most sessions remembered at once.
pub(super) const MAX_SESSIONS: usize = 1024;

/// Sessions by id, at most `cap`, the least recently used forgotten first.
pub(super) struct Sessions<T> {
    cap: usize,
    /// A counter standing in for time: each use takes the next value.
    clock: u64,
    map: HashMap<String, (T, u64)>,
}

impl<T: Clone> Sessions<T> {
    pub(super) fn new(cap: usize) -> Sessions<T> {
        Sessions {
            cap: cap.max(1),
            clock: 0,
            map: HashMap::new(),
        }
    }

    /// The session's value, marked as just used.
    pub(super) fn get(&mut self, id: &str) -> Option<T> {
        self.clock += 1;
        let now = self.clock;
        self.map.get_mut(id).map(|(value, used)| {
            *used = now;
            value.clone()
        })
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// Remember `value` for `id` unless the id is known already (the first one stays).
    /// Returns the id forgotten to make room, if one was.
    pub(super) fn keep(&mut self, id: &str, value: T) -> Option<String> {
        self.clock += 1;
        if let Some((_, used)) = self.map.get_mut(id) {
            *used = self.clock;
            return None;
        }
        let mut forgotten = None;
        if self.map.len() >= self.cap {
            // A linear scan: at most `cap` entries, and only when a new session arrives.
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.map.remove(&oldest);
                forgotten = Some(oldest);
            }
        }
        self.map.insert(id.to_owned(), (value, self.clock));
        forgotten
    }

    pub(super) fn remove(&mut self, id: &str) {
        self.map.remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_cap_and_the_least_recently_used_goes_first() {
        let mut s: Sessions<u32> = Sessions::new(3);
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(s.keep(id, i as u32), None);
        }
        // `a` used again: `b` is now the least recently used.
        assert_eq!(s.get("a"), Some(0));
        assert_eq!(s.keep("d", 3).as_deref(), Some("b"));
        assert!(!s.contains("b") && s.contains("a") && s.contains("d"));
        // Keeping a known id changes nothing but its use.
        assert_eq!(s.keep("c", 99), None);
        assert_eq!(s.get("c"), Some(2));
        // A flood of new sessions never grows it past the cap.
        for i in 0..10_000 {
            s.keep(&format!("flood-{i}"), i);
            assert!(s.len() <= 3);
        }
        assert!(!s.contains("a"));
        s.remove("flood-9999");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_cap_of_zero_still_keeps_the_newest() {
        let mut s: Sessions<u8> = Sessions::new(0);
        s.keep("a", 1);
        assert_eq!(s.get("a"), Some(1));
        assert_eq!(s.keep("b", 2).as_deref(), Some("a"));
        assert_eq!(s.len(), 1);
    }
}
