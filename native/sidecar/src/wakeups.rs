//! `RedisWakeups`: in edge mode, the component publishes each stored
//! message on a Redis channel (SPEC §6); this subscription wakes the
//! [`MessageTail`] for each one, so sockets get it at once. The same
//! subscription brings the other sidecars' presence events (`relay`).
//!
//! A publish is only a wake-up, never the message itself: the tail reads
//! the feed from its cursor, so a lost, late or repeated publish cannot
//! lose, repeat or reorder anything. While Redis is unreachable the tail's
//! poll carries delivery, and the subscription is retried; on every
//! (re)subscription the tail is woken once to catch up on what the
//! subscription may have missed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::relay::{PresenceRelay, Relayed, presence_channel};
use crate::rooms::RoomRegistry;
use crate::tail::MessageTail;

/// Pause between attempts to reach Redis.
const RETRY: Duration = Duration::from_secs(1);

/// The running subscription; dropping it stops it.
pub struct RedisWakeups {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RedisWakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisWakeups {
    /// Subscribes to `channel` on the Redis server at `url`
    /// (`redis://host:port`), retrying for as long as it runs, and relays
    /// `rooms`' presence events as sidecar `node`.
    pub fn start(
        url: &str,
        channel: &str,
        node: &str,
        tail: MessageTail,
        rooms: Arc<RoomRegistry>,
    ) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        rooms.relay_to(PresenceRelay::start(client.clone(), channel, node));
        let channel = channel.to_owned();
        let task = tokio::spawn(async move {
            loop {
                match follow(&client, &channel, &tail, &rooms).await {
                    Ok(()) => tracing::warn!("Redis closed the subscription; resubscribing"),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis unavailable; the feed is polled meanwhile")
                    }
                }
                tokio::time::sleep(RETRY).await;
            }
        });
        Ok(RedisWakeups { task })
    }
}

/// Subscribes once and wakes the tail for every message, until the
/// connection ends.
async fn follow(
    client: &redis::Client,
    channel: &str,
    tail: &MessageTail,
    rooms: &RoomRegistry,
) -> Result<(), redis::RedisError> {
    let presence = presence_channel(channel);
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&[channel, presence.as_str()]).await?;
    tracing::info!(channel, "following Redis wake-ups");
    // Anything published before the subscription took is in the feed.
    tail.wake();
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        if msg.get_channel_name() != presence {
            tail.wake();
            continue;
        }
        match serde_json::from_slice::<Relayed>(msg.get_payload_bytes()) {
            Ok(relayed) => rooms.relayed(&relayed),
            Err(e) => tracing::debug!(error = %e, "ignoring a malformed presence event"),
        }
    }
    Ok(())
}
