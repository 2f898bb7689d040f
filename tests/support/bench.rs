//! What the benchmarks (`tests/benches`) share: clients joined to a room
//! with the `user_joined` storm forgotten, and a fan-out measured from one
//! sender's back-to-back messages to every member.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
    fan_out_keyed(sender, room, members, messages, None).await
}

/// [`fan_out`], each message with a `client_id` (`{prefix}-{i}`) when
/// `keys` names a prefix: what remembering keys costs.
pub async fn fan_out_keyed(
    sender: &SocketClient,
    room: i64,
    members: &[SocketClient],
    messages: usize,
    keys: Option<&str>,
) -> FanOut {
    let start = Instant::now();
    for i in 0..messages {
        let mut payload = json!({"room_id": room, "sender": "fan", "message": format!("{i}")});
        if let Some(prefix) = keys {
            payload["client_id"] = format!("{prefix}-{i}").into();
        }
        sender.emit("send_message", payload).await;
    }
    // The sender's numbers, each one more than the last.
    let number = |m: &Value| {
        m["content"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(-1)
    };
    gather(
        start,
        members,
        &["new_message"],
        messages,
        number,
        -1,
        |p, n| n == p + 1,
    )
    .await
}

/// Waits for `n` events of `events` at every member, timed from `start`
/// to the last delivery; each event's `key` must `follow` the one before
/// it (the first follows `first`), or it counts as out of order.
async fn gather(
    start: Instant,
    members: &[SocketClient],
    events: &[&str],
    n: usize,
    key: impl Fn(&Value) -> i64,
    first: i64,
    follows: impl Fn(i64, i64) -> bool,
) -> FanOut {
    let mut last = start;
    let mut out_of_order = 0;
    for c in members {
        let mut previous = first;
        for (_, (data, at)) in c.expect_any_n_timed(events, n).await {
            last = last.max(at);
            let k = key(&data);
            if !follows(previous, k) {
                out_of_order += 1;
            }
            previous = k;
        }
    }
    FanOut {
        deliveries: members.len() * n,
        secs: (last - start).as_secs_f64(),
        out_of_order,
    }
}

/// The change events a member counts in a mixed fan-out.
const CHANGE_EVENTS: [&str; 3] = ["new_message", "message_edited", "reaction_added"];

/// A mixed stream: `sender` (joined to `room` as `fan`) sends `rounds`
/// rounds of a new message, an edit and a reaction to an earlier message
/// of its own, and a typing refresh, back to back; every member must get
/// every message, edit and reaction (typing is throttled and not counted).
/// Timed until the last delivery; `out_of_order` counts changes whose
/// `seq` did not grow.
pub async fn fan_out_mixed(
    sender: &SocketClient,
    room: i64,
    members: &[SocketClient],
    rounds: usize,
) -> FanOut {
    sender.join(room, "fan").await;
    // Messages to edit and react to, sent (and delivered) before the clock.
    let mut targets = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let ack = sender
            .call(
                "send_message",
                json!({"room_id": room, "message": format!("target {i}")}),
            )
            .await;
        targets.push(ack["id"].as_i64().expect("a stored message"));
    }
    for c in members {
        c.expect_n("new_message", rounds).await;
    }
    sender.drain("new_message", Duration::ZERO).await;
    let start = Instant::now();
    for (i, target) in targets.iter().enumerate() {
        sender
            .emit(
                "send_message",
                json!({"room_id": room, "message": format!("{i}")}),
            )
            .await;
        sender
            .emit(
                "edit_message",
                json!({"room_id": room, "message_id": target, "message": format!("edited {i}")}),
            )
            .await;
        sender
            .emit(
                "add_reaction",
                json!({"room_id": room, "message_id": target, "emoji": "👍"}),
            )
            .await;
        sender
            .emit("typing", json!({"room_id": room, "typing": true}))
            .await;
    }
    let changes = rounds * CHANGE_EVENTS.len();
    // A change's seq (a new message's is its id) only grows.
    let seq = |d: &Value| d["seq"].as_i64().or(d["id"].as_i64()).unwrap_or(0);
    gather(start, members, &CHANGE_EVENTS, changes, seq, 0, |p, s| {
        s > p
    })
    .await
}
