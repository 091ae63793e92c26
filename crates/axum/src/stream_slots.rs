//! [`StreamSlot`] and [`OpenStreams`] (re-exported from [`extract`](crate::extract)): one of
//! the streams a session may hold open at once
//! ([`ModelGatesConfig::with_max_streams_per_session`](crate::ModelGatesConfig::with_max_streams_per_session)).
//!
//! The rule: a session (one key cookie) may relay at most that many streams at once, on this
//! instance; one more is refused before anything is sent to ModelGates
//! ([`ApiError::TooManyStreams`](crate::api_error::ApiError::TooManyStreams), 429). A slot is taken
//! when the stream is started and freed when the stream ends or its client goes away (the
//! response body is dropped).
//!
//! For a graceful shutdown, [`OpenStreams::close_all`] (from
//! [`ModelGatesAuth::open_streams`](crate::ModelGatesAuth::open_streams)) ends every open
//! stream with an `error` event `server_restarting` and refuses new ones
//! ([`ApiError::ServerRestarting`](crate::api_error::ApiError::ServerRestarting), 503), so that a
//! long reply does not hold the shutdown: the browser learns its reply was cut short, and why.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// The open streams of every session, per layer.
pub(crate) struct StreamSlots {
    max: usize,
    open: Mutex<HashMap<[u8; 32], usize>>,
    /// `true` once the streams were asked to end.
    closing: watch::Sender<bool>,
}

/// Why a stream cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// The session holds every slot.
    Full,
    /// The server is shutting down.
    Closing,
}

impl StreamSlots {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::default(),
            closing: watch::Sender::new(false),
        }
    }

    /// The most streams one session may hold open.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A slot for the session whose token hashes to `session`, unless it holds them all or
    /// the streams are closing.
    pub(crate) fn take(self: &Arc<Self>, session: [u8; 32]) -> Result<StreamSlot, NoSlot> {
        if *self.closing.borrow() {
            return Err(NoSlot::Closing);
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(session).or_insert(0);
        if *count >= self.max {
            return Err(NoSlot::Full);
        }
        *count += 1;
        crate::observe::stream_opened(true);
        Ok(StreamSlot {
            slots: self.clone(),
            session,
            closing: self.closing.subscribe(),
        })
    }
}

/// Every stream a layer relays, for a graceful shutdown. From
/// [`ModelGatesAuth::open_streams`](crate::ModelGatesAuth::open_streams); cheap to clone.
///
/// ```no_run
/// # async fn run(auth: modelgates_axum::ModelGatesAuth, listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
/// use std::time::Duration;
///
/// let streams = auth.open_streams();
/// let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async move {
///         let _ = tokio::signal::ctrl_c().await;
///         // No new connections from now on; replies under way get 10 s to finish.
///         tokio::spawn(async move {
///             tokio::time::sleep(Duration::from_secs(10)).await;
///             streams.close_all();
///         });
///     })
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct OpenStreams(pub(crate) Arc<StreamSlots>);

impl OpenStreams {
    /// Ends every open stream now, each with an `error` event `server_restarting`, and
    /// refuses new ones (503 `server_restarting`). For the end of a graceful shutdown.
    pub fn close_all(&self) {
        self.0.closing.send_replace(true);
    }

    /// How many streams are open now, all sessions together.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }
}

impl fmt::Debug for OpenStreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenStreams")
            .field("count", &self.count())
            .field("closing", &*self.0.closing.borrow())
            .finish()
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
    closing: watch::Receiver<bool>,
}

impl StreamSlot {
    /// Resolves when the server asks every stream to end ([`OpenStreams::close_all`]): end
    /// the stream then, telling the client why. Never resolves otherwise.
    pub async fn closed(&mut self) {
        if self.closing.wait_for(|closing| *closing).await.is_err() {
            // The layer is gone without closing: nothing will ever ask.
            std::future::pending::<()>().await;
        }
    }
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
        crate::observe::stream_opened(false);
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
        assert_eq!(
            slots.take([1; 32]).err(),
            Some(NoSlot::Full),
            "the third is refused"
        );
        assert!(
            slots.take([2; 32]).is_ok(),
            "another session is not held up"
        );
        drop(first);
        assert!(slots.take([1; 32]).is_ok(), "a freed slot is taken again");
    }

    #[test]
    fn sessions_without_streams_are_forgotten() {
        let slots = Arc::new(StreamSlots::new(1));
        drop(slots.take([3; 32]).unwrap());
        assert!(slots.open.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn closing_ends_open_slots_and_refuses_new_ones() {
        let slots = Arc::new(StreamSlots::new(4));
        let mut open = slots.take([4; 32]).unwrap();
        let streams = OpenStreams(slots.clone());
        assert_eq!(streams.count(), 1);
        streams.close_all();
        tokio::time::timeout(std::time::Duration::from_secs(5), open.closed())
            .await
            .expect("an open stream hears the close");
        assert_eq!(slots.take([5; 32]).err(), Some(NoSlot::Closing));
    }
}
