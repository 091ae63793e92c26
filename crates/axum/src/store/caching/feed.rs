//! The feed: the trait a revocation channel implements, and the two tasks that listen to it
//! and publish heartbeats on it for a [`CachingStore`](super::CachingStore).

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::{MAX_RESUBSCRIBE_DELAY, Shared};
use crate::store::StoreError;

/// A publish/subscribe channel on which every instance hears the sessions revoked anywhere.
///
/// The store behind the cache publishes the [hash](crate::store::SessionToken::hash) of every
/// session it revokes; the cache subscribes, and publishes its own heartbeats to learn how far
/// behind the channel it is. Implemented by
/// `PostgresRevocations` (`LISTEN`/`NOTIFY`, feature `postgres`) and `RedisRevocations`
/// (pub/sub, feature `redis`).
///
/// The channel must deliver each subscriber's messages in the order they were published, and
/// a subscription must report its loss (`None`) rather than silently skip messages.
pub trait RevocationFeed: Send + Sync + 'static {
    /// A live subscription.
    type Subscription: Send + 'static;

    /// Subscribes; returns once every message published from now on will be received.
    fn subscribe(&self) -> impl Future<Output = Result<Self::Subscription, StoreError>> + Send;

    /// The next message, or `None` when the subscription is lost (it is not used again).
    fn next(
        &self,
        subscription: &mut Self::Subscription,
    ) -> impl Future<Output = Option<String>> + Send;

    /// Publishes `message` to every subscriber.
    fn publish(&self, message: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Hears the feed until the store is dropped, re-subscribing after each loss.
pub(super) async fn receive<F: RevocationFeed>(
    shared: Weak<Shared>,
    feed: Arc<F>,
    mut subscription: F::Subscription,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let message = tokio::select! {
            message = feed.next(&mut subscription) => message,
            _ = stop.changed() => return,
        };
        let Some(shared_now) = shared.upgrade() else {
            return;
        };
        if let Some(message) = message {
            shared_now.hear(&message);
            continue;
        }
        shared_now.lost();
        drop(shared_now);
        let mut delay = Duration::from_millis(50);
        subscription = loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return,
            }
            match feed.subscribe().await {
                Ok(subscription) => break subscription,
                Err(error) => {
                    tracing::warn!(%error, "subscribing to the revocation feed failed; retrying");
                    delay = (delay * 2).min(MAX_RESUBSCRIBE_DELAY);
                }
            }
        };
        let Some(shared_now) = shared.upgrade() else {
            return;
        };
        shared_now.subscribed();
    }
}

/// Publishes a heartbeat every `every` until the store is dropped.
pub(super) async fn send_heartbeats<F: RevocationFeed>(
    shared: Weak<Shared>,
    feed: Arc<F>,
    every: Duration,
    mut stop: watch::Receiver<()>,
) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(message) = shared.upgrade().map(|shared| shared.heartbeat_message()) else {
            return;
        };
        if let Err(error) = feed.publish(&message).await {
            tracing::debug!(%error, "publishing a heartbeat on the revocation feed failed");
        }
    }
}
