//! Wake-ups for edge-mode sidecars (docs/protocol.md §6): after a message is stored,
//! it is published on a Redis channel through Spin's outbound Redis, when
//! the `redis_url` variable names a server.
//!
//! A publish is only a wake-up: the database stays the source of truth and
//! sidecars fill any gap from the feed, so a failed publish is logged and
//! the request still succeeds (the message is stored; polling finds it).

use std::cell::OnceCell;

use chatroom_core::internal::DEFAULT_CHANNEL;
use spin_sdk::redis::Connection;

/// Publishes stored messages, if Redis is configured; the connection is
/// opened on the first message and reused for the rest of the request.
pub struct Announcer {
    target: Option<(String, String)>,
    conn: OnceCell<Option<Connection>>,
}

impl Announcer {
    /// From the `redis_url` and `redis_channel` variables; silent when
    /// `redis_url` is empty or undefined.
    pub fn from_variables() -> Self {
        let url = spin_sdk::variables::get("redis_url").unwrap_or_default();
        let channel = spin_sdk::variables::get("redis_channel")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_CHANNEL.to_owned());
        Announcer {
            target: (!url.trim().is_empty()).then(|| (url.trim().to_owned(), channel)),
            conn: OnceCell::new(),
        }
    }

    /// Publishes `change` (a stored message, or the action that changed
    /// one; its JSON) on the channel.
    pub fn announce(&self, change: &impl serde::Serialize) {
        let Some((url, channel)) = &self.target else {
            return;
        };
        let conn = self.conn.get_or_init(|| match Connection::open(url) {
            Ok(conn) => Some(conn),
            Err(e) => {
                eprintln!("chatroom-rest: cannot reach Redis (sidecars will poll the feed): {e}");
                None
            }
        });
        let Some(conn) = conn else { return };
        let payload = serde_json::to_vec(change).unwrap_or_default();
        if let Err(e) = conn.publish(channel, &payload) {
            eprintln!(
                "chatroom-rest: publishing a change to Redis failed (sidecars will find it by the feed): {e}"
            );
        }
    }
}
