//! `PresenceRelay`: in edge mode with Redis, `user_joined` and `user_left`
//! reach the members of a room on every sidecar, not only on the one
//! holding the socket that joined or left.
//!
//! Presence events are not history (docs/protocol.md §4): nothing stores them, so they
//! travel on Redis itself, on `<channel>:presence`, best effort. A sidecar
//! publishes each one it announces, and announces to its own members the
//! ones other sidecars published. Without Redis, or while it is down, they
//! stay on their own sidecar; `GET /chatrooms/{id}/users` always covers
//! every sidecar.

use std::sync::Arc;

use chatroom_core::ServerEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

/// Presence events waiting to be published; beyond this they are dropped
/// (Redis is slow or down, and they are best effort).
const QUEUE: usize = 4096;

/// One relayed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relayed {
    /// The sidecar that announced it (which ignores its own).
    pub node: String,
    pub room_id: i64,
    pub event: String,
    pub data: Value,
}

/// The channel presence events travel on, beside the messages' one.
pub fn presence_channel(channel: &str) -> String {
    format!("{channel}:presence")
}

/// Publishes this sidecar's presence events.
pub struct PresenceRelay {
    node: Arc<str>,
    queue: mpsc::Sender<Vec<u8>>,
}

impl PresenceRelay {
    /// Starts the publisher for `node` on `channel`'s presence channel.
    pub fn start(client: redis::Client, channel: &str, node: &str) -> Self {
        let (queue, mut events) = mpsc::channel::<Vec<u8>>(QUEUE);
        let channel = presence_channel(channel);
        tokio::spawn(async move {
            let mut conn = None;
            while let Some(event) = events.recv().await {
                if conn.is_none() {
                    conn = client
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(
                            |e| tracing::debug!(error = %e, "presence relay: Redis unavailable"),
                        )
                        .ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                let sent: Result<(), redis::RedisError> = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(event)
                    .query_async(c)
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "presence relay: publish failed");
                    conn = None;
                }
            }
        });
        PresenceRelay {
            node: node.into(),
            queue,
        }
    }

    /// Queues `event` in `room_id` for the other sidecars.
    pub fn publish(&self, room_id: i64, event: &ServerEvent) {
        let relayed = Relayed {
            node: self.node.to_string(),
            room_id,
            event: event.name().to_owned(),
            // Our own types always serialise.
            data: serde_json::to_value(event).unwrap_or_default(),
        };
        if let Ok(bytes) = serde_json::to_vec(&relayed) {
            let _ = self.queue.try_send(bytes);
        }
    }

    /// Whether `relayed` came from this sidecar.
    pub fn is_own(&self, relayed: &Relayed) -> bool {
        *relayed.node == *self.node
    }
}
