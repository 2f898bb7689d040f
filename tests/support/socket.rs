//! A Socket.IO test client (the `rust_socketio` crate, protocol v5) that
//! records every event it receives, in order, and awaits acks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// How long any expected event or ack may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Inbox {
    events: Mutex<Vec<(String, Value, Instant)>>,
    arrived: Notify,
}

fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        Payload::Text(_) => Value::Null,
        #[allow(deprecated)]
        Payload::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Payload::Binary(b) => Value::String(format!("<{} bytes>", b.len())),
    }
}

/// A connected client.
pub struct SocketClient {
    client: Client,
    inbox: Arc<Inbox>,
}

impl SocketClient {
    /// Connects to `url` (the server's base URL) over websocket.
    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, None).await
    }

    /// Connects with the handshake `auth` payload `{"token": token}`.
    pub async fn connect_as(url: &str, token: &str) -> Self {
        Self::connect_with(url, Some(serde_json::json!({ "token": token }))).await
    }

    async fn connect_with(url: &str, auth: Option<Value>) -> Self {
        let inbox = Arc::new(Inbox::default());
        let any = inbox.clone();
        let err = inbox.clone();
        let (opened, is_open) = oneshot::channel();
        let opened = Arc::new(Mutex::new(Some(opened)));
        let mut builder = ClientBuilder::new(url);
        if let Some(auth) = auth {
            builder = builder.auth(auth);
        }
        let client = builder
            .namespace("/")
            .reconnect(false)
            .on_any(move |event, payload, _| {
                let inbox = any.clone();
                async move {
                    let name = String::from(event);
                    let event = (name, first_value(payload), Instant::now());
                    inbox.events.lock().unwrap().push(event);
                    inbox.arrived.notify_waiters();
                }
                .boxed()
            })
            .on("error", move |payload, _| {
                let inbox = err.clone();
                async move {
                    let event = ("error".into(), first_value(payload), Instant::now());
                    inbox.events.lock().unwrap().push(event);
                    inbox.arrived.notify_waiters();
                }
                .boxed()
            })
            // The namespace is joined when the server's CONNECT arrives;
            // events sent before that would be dropped.
            .on("open", move |_, _| {
                let opened = opened.clone();
                async move {
                    if let Some(tx) = opened.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
                .boxed()
            })
            .connect()
            .await
            .expect("socket.io connects");
        tokio::time::timeout(PATIENCE, is_open)
            .await
            .expect("namespace connected in time")
            .expect("connect event");
        SocketClient { client, inbox }
    }

    /// Emits without an ack.
    pub async fn emit(&self, event: &str, data: Value) {
        self.client.emit(event, data).await.expect("emit");
    }

    /// Emits and waits for the ack's first value.
    pub async fn call(&self, event: &str, data: Value) -> Value {
        self.call_within(event, data, PATIENCE)
            .await
            .unwrap_or_else(|| panic!("no ack for {event}"))
    }

    /// Emits and waits up to `patience` for the ack's first value; `None`
    /// if none came.
    pub async fn call_within(&self, event: &str, data: Value, patience: Duration) -> Option<Value> {
        let (tx, rx) = oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        self.client
            .emit_with_ack(event, data, patience, move |payload, _| {
                let tx = tx.clone();
                async move {
                    // An ack's arguments arrive as one array.
                    let value = match first_value(payload) {
                        Value::Array(mut args) if args.len() == 1 => args.swap_remove(0),
                        other => other,
                    };
                    if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = tx.send(value);
                    }
                }
                .boxed()
            })
            .await
            .expect("emit with ack");
        tokio::time::timeout(patience, rx).await.ok()?.ok()
    }

    /// Joins `room` as `username`; the ack, which must be `ok`.
    pub async fn join(&self, room: i64, username: &str) -> Value {
        let ack = self
            .call("join_room", json!({"room_id": room, "username": username}))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        ack
    }

    /// Removes and returns the first received `event`, waiting for it.
    pub async fn expect(&self, event: &str) -> Value {
        self.expect_timed(event).await.0
    }

    /// Like [`Self::expect`], with the instant the event arrived.
    pub async fn expect_timed(&self, event: &str) -> (Value, Instant) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let arrived = self.inbox.arrived.notified();
            if let Some(value) = self.take(event) {
                return value;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "no {event:?} event within {PATIENCE:?}; got {:?}",
                    self.inbox.events.lock().unwrap()
                );
            }
        }
    }

    /// Waits for `n` events named `event` and returns them in arrival order.
    pub async fn expect_n(&self, event: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.expect(event).await);
        }
        out
    }

    /// Waits for `n` events named any of `events` and returns them, with
    /// their names, in arrival order (across names).
    pub async fn expect_any_n(&self, events: &[&str], n: usize) -> Vec<(String, Value)> {
        self.expect_any_n_timed(events, n)
            .await
            .into_iter()
            .map(|(name, (value, _))| (name, value))
            .collect()
    }

    /// Like [`Self::expect_any_n`], with the instant each arrived.
    pub async fn expect_any_n_timed(
        &self,
        events: &[&str],
        n: usize,
    ) -> Vec<(String, (Value, Instant))> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let arrived = self.inbox.arrived.notified();
            let next = {
                let mut inbox = self.inbox.events.lock().unwrap();
                let i = inbox
                    .iter()
                    .position(|(name, _, _)| events.contains(&name.as_str()));
                i.map(|i| inbox.remove(i))
            };
            if let Some((name, value, at)) = next {
                out.push((name, (value, at)));
                continue;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "{} of {n} {events:?} events within {PATIENCE:?}; inbox {:?}",
                    out.len(),
                    self.inbox.events.lock().unwrap()
                );
            }
        }
        out
    }

    fn take(&self, event: &str) -> Option<(Value, Instant)> {
        let mut events = self.inbox.events.lock().unwrap();
        let i = events.iter().position(|(name, _, _)| name == event)?;
        let (_, value, at) = events.remove(i);
        Some((value, at))
    }

    /// Every received `event` not yet taken, after waiting `settle` for
    /// stragglers (to prove something did *not* arrive).
    pub async fn drain(&self, event: &str, settle: Duration) -> Vec<Value> {
        tokio::time::sleep(settle).await;
        let mut events = self.inbox.events.lock().unwrap();
        let (taken, kept): (Vec<_>, Vec<_>) =
            events.drain(..).partition(|(name, _, _)| name == event);
        *events = kept;
        taken.into_iter().map(|(_, v, _)| v).collect()
    }

    /// New messages up to (not including) the one with `id`, skipping
    /// other fences.
    async fn messages_until(&self, id: &Value) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            let m = self.expect("new_message").await;
            if m["id"] == *id {
                return before;
            }
            if m["sender"] != FENCE_SENDER {
                before.push(m);
            }
        }
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}

/// Who posts fences ([`messages_before_fence`]); their messages are never
/// counted as anything else.
pub const FENCE_SENDER: &str = "fence";

/// What each of `clients` (members of `room`) got as `new_message` before
/// a fence: one message posted to `room` over REST at `base` now, which
/// reaches every member after everything committed before it (delivery is
/// in `seq` order, across rooms too). An empty list proves that nothing
/// more came (a duplicate, a late delivery, a message after a leave)
/// without waiting and hoping: a late event would arrive before the fence.
/// Earlier fences are skipped, so checks can follow one another.
pub async fn messages_before_fence(
    base: &str,
    room: i64,
    clients: &[&SocketClient],
) -> Vec<Vec<Value>> {
    let fence = crate::http::post_message(base, room, FENCE_SENDER, "fence").await;
    let mut got = Vec::new();
    for c in clients {
        got.push(c.messages_until(&fence["id"]).await);
    }
    got
}

/// What each of `clients` (members of `room` at `url`) got named `event`
/// before a fence that stores nothing: a new socket joining `room`, whose
/// `user_joined` each member gets after every event already sent to it
/// (one socket's events leave in the order they were sent). For events
/// that are not messages (typing, read receipts): an empty list proves
/// none came, without a wait. The fence socket is returned, still in the
/// room (it joins with a name of its own; other joins are skipped).
pub async fn events_before_join_fence(
    url: &str,
    room: i64,
    event: &str,
    clients: &[&SocketClient],
) -> (SocketClient, Vec<Vec<Value>>) {
    static FENCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FENCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{FENCE_SENDER}-{n}");
    let fence = SocketClient::connect(url).await;
    fence.join(room, &name).await;
    let mut got = Vec::new();
    for c in clients {
        let mut before = Vec::new();
        loop {
            let (kind, data) = c.expect_any_n(&[event, "user_joined"], 1).await.remove(0);
            if kind == "user_joined" {
                if data["username"] == name.as_str() {
                    break;
                }
            } else {
                before.push(data);
            }
        }
        got.push(before);
    }
    (fence, got)
}
