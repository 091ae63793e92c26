//! [`StreamSlot`]: one of the streams a session may hold open at once
//! ([`ModelGatesConfig::with_max_streams_per_session`](crate::ModelGatesConfig::with_max_streams_per_session)).
//!
//! The rule: a session (one key cookie) may relay at most that many streams at once, on this
//! instance; one more is refused before anything is sent to ModelGates
//! ([`ApiError::TooManyStreams`](crate::api::ApiError::TooManyStreams), 429). A slot is taken
//! when the stream is started and freed when the stream ends or its client goes away (the
//! response body is dropped).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// The open streams of every session, per layer.
pub(crate) struct StreamSlots {
    max: usize,
    open: Mutex<HashMap<[u8; 32], usize>>,
}

impl StreamSlots {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::default(),
        }
    }

    /// The most streams one session may hold open.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A slot for the session whose token hashes to `session`, unless it holds them all.
    pub(crate) fn take(self: &Arc<Self>, session: [u8; 32]) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(session).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: self.clone(),
            session,
        })
    }
}

/// One of a session's open streams, held for as long as the stream is relayed; its place is
/// freed when dropped. From [`ModelGatesKey::stream_slot`](crate::ModelGatesKey::stream_slot),
/// for an app that relays a stream itself; [`ModelGatesKey::stream_chat`](crate::ModelGatesKey::stream_chat)
/// takes one on its own.
#[must_use = "the slot is freed as soon as it is dropped: keep it with the stream"]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    session: [u8; 32],
}

impl fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSlot")
            .field("max", &self.slots.max)
            .finish_non_exhaustive()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_at_most_max_and_drops_free_them() {
        let slots = Arc::new(StreamSlots::new(2));
        let first = slots.take([1; 32]).unwrap();
        let _second = slots.take([1; 32]).unwrap();
        assert!(slots.take([1; 32]).is_none(), "the third is refused");
        assert!(
            slots.take([2; 32]).is_some(),
            "another session is not held up"
        );
        drop(first);
        assert!(slots.take([1; 32]).is_some(), "a freed slot is taken again");
    }

    #[test]
    fn sessions_without_streams_are_forgotten() {
        let slots = Arc::new(StreamSlots::new(1));
        drop(slots.take([3; 32]).unwrap());
        assert!(slots.open.lock().unwrap().is_empty());
    }
}
