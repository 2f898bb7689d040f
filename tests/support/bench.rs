//! What the benchmarks (`tests/benches`) share: clients joined to a room
//! with the `user_joined` storm forgotten, and a fan-out measured from one
//! sender's back-to-back messages to every member.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::socket::SocketClient;

/// `n` clients on `url` joined to `room` as `{tag}0`, `{tag}1`, ...
pub async fn joined_clients(url: &str, room: i64, n: usize, tag: &str) -> Vec<SocketClient> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let c = SocketClient::connect(url).await;
        c.join(room, &format!("{tag}{i}")).await;
        clients.push(c);
    }
    // Let the user_joined storm settle, then forget it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &clients {
        c.drain("user_joined", Duration::ZERO).await;
    }
    clients
}

/// A fan-out's figures.
#[derive(Debug, Clone, Copy)]
pub struct FanOut {
    pub deliveries: usize,
    pub secs: f64,
    /// Deliveries out of the sender's order, over all members.
    pub out_of_order: usize,
}

impl FanOut {
    pub fn per_sec(&self) -> f64 {
        self.deliveries as f64 / self.secs
    }
}

/// `sender` sends `messages` to `room` back to back; every member must get
/// them all. Timed until the last delivery.
pub async fn fan_out(
    sender: &SocketClient,
    room: i64,
    members: &[SocketClient],
    messages: usize,
) -> FanOut {
    let start = Instant::now();
    for i in 0..messages {
        sender
            .emit(
                "send_message",
                json!({"room_id": room, "sender": "fan", "message": format!("{i}")}),
            )
            .await;
    }
    let mut last = start;
    let mut out_of_order = 0;
    for c in members {
        let mut previous = -1i64;
        for _ in 0..messages {
            let (message, at) = c.expect_timed("new_message").await;
            last = last.max(at);
            let n: i64 = message["content"]
                .as_str()
                .unwrap_or("")
                .parse()
                .unwrap_or(-1);
            if n != previous + 1 {
                out_of_order += 1;
            }
            previous = n;
        }
    }
    FanOut {
        deliveries: members.len() * messages,
        secs: (last - start).as_secs_f64(),
        out_of_order,
    }
}
