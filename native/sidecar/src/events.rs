//! The Socket.IO events of SPEC §3 on the default namespace: `join_room`,
//! `leave_room`, `send_message`, `typing` (never stored: see `typing`),
//! and what a disconnect does.
//!
//! Each connection that has sent an event has one task that handles its
//! events one after another, in the order they arrived (socketioxide runs
//! every handler as its own task, which would let two sends from one
//! socket be stored out of order); an idle connection has none. The
//! handler socketioxide calls only checks the connection's rate limit and
//! queues the event, synchronously, so the queue's order is the arrival
//! order. Excess events, beyond the rate or the queue, get a
//! `rate_limited` error and the connection stays.
//!
//! With an auth secret, a handshake without a valid token is refused
//! (`identity`), and a connection speaks only as its token's user.
//!
//! Every failure is an `error` event to the sender (and `{"ok": false}` on
//! its ack); the connection and other clients are never disturbed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatroom_core::auth::TokenKey;
use chatroom_core::limits::HISTORY_PAGE_ROWS;
use chatroom_core::{
    ApiError, JoinRequest, MessageDraft, Sender, StoreError, TypingRequest, event_object,
    room_id_field,
};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;

use crate::address_limits::ConnectionSlot;
use crate::event_guard::INVALID_EVENT;
use crate::identity::{self, Unauthorized};
use crate::peer::{ConnectionCount, Counted, Peer, Sent};
use crate::presence::PresenceStore;
use crate::rooms::{Admission, RoomRegistry, encode};
use crate::store::ChatStore;
use crate::tail::MessageTail;
use crate::typing::TypingBoard;

/// How long a `since` replay waits for a socket whose buffer is full before
/// it counts as unable to keep up.
const REPLAY_PATIENCE: Duration = Duration::from_secs(10);

/// Per-connection event limits (SPEC §3, "Limits and fairness").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventLimits {
    /// Sustained events per second; 0 turns the rate limit off.
    pub rate: f64,
    /// Events allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Events waiting for the connection's task; more are refused.
    pub queue: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            rate: 50.0,
            burst: 100,
            queue: 128,
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` a second.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(limits: &EventLimits) -> Self {
        let burst = f64::from(limits.burst.max(1));
        TokenBucket {
            rate: limits.rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the connection tasks share.
pub struct Chat {
    pub store: ChatStore,
    pub tail: MessageTail,
    pub rooms: Arc<RoomRegistry>,
    pub presence: PresenceStore,
    pub limits: EventLimits,
    pub connections: ConnectionCount,
    /// The auth secret's key: with one, handshakes need a token.
    pub auth: Option<TokenKey>,
    /// Who is typing where.
    pub typing: Arc<TypingBoard>,
}

/// One unit of work for a connection's task.
enum Job {
    Event {
        name: String,
        data: Result<Value, String>,
        ack: AckSender,
    },
    Disconnect,
}

/// Why an event got no success answer.
enum Refusal {
    /// Tell the client.
    Api(ApiError),
    /// The connection closed or was evicted meanwhile: nobody to tell.
    Gone,
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Api(e.into())
    }
}

/// A connection's side of its events: its rate limit, and its queue once
/// it has sent an event. The queue and the task that serves it are made by
/// the first event, so an idle connection (most of them, most of the time)
/// costs neither: a task and a queue block are several KiB each.
struct Lane {
    chat: Arc<Chat>,
    public_id: Sid,
    counted: Arc<Counted>,
    /// The token's user, when auth is on.
    user: Option<Sender>,
    /// The connection's place among its address's connections (when those
    /// are limited), held as long as the connection.
    _slot: Option<ConnectionSlot>,
    bucket: TokenBucket,
    /// `Some` from the first event until the disconnect.
    jobs: Option<mpsc::Sender<Job>>,
}

impl Lane {
    /// The connection's queue, made (with its task) on first use.
    fn jobs(&mut self, s: &SocketRef) -> &mpsc::Sender<Job> {
        self.jobs.get_or_insert_with(|| {
            let (jobs, queue) = mpsc::channel(self.chat.limits.queue.max(1));
            let peer = Peer::new(
                s.clone(),
                self.public_id,
                self.counted.clone(),
                self.user.clone(),
            );
            tokio::spawn(serve_connection(self.chat.clone(), peer, queue));
            jobs
        })
    }
}

/// Registers the namespace `/`: each connection gets its rate limit, and
/// its task and queue once it sends an event.
pub fn register(io: &SocketIo, chat: Arc<Chat>) {
    let key = chat.auth.clone();
    // Refuses a handshake without a valid token (when auth is on) before
    // the socket joins the namespace: the client gets `connect_error`.
    let check = move |TryData(auth): TryData<Value>| {
        let refused = identity::user_of(key.as_ref(), auth.ok().as_ref()).err();
        async move { refused.map_or(Ok(()), Err::<(), Unauthorized>) }
    };
    let connect = move |s: SocketRef, TryData(auth): TryData<Value>| {
        // Checked by `check` already; this takes the user it proved.
        let user = identity::user_of(chat.auth.as_ref(), auth.ok().as_ref())
            .ok()
            .flatten();
        let public_id = Peer::new_public_id();
        tracing::debug!(sid = %public_id, "connected");
        let metrics = chat.rooms.metrics().clone();
        // The handlers live inside the socket: they must not hold the
        // `Peer` (which holds the socket), or neither would ever be freed.
        let lane = Arc::new(Mutex::new(Lane {
            chat: chat.clone(),
            public_id,
            counted: chat.connections.count(),
            user,
            _slot: s.req_parts().extensions.get::<ConnectionSlot>().cloned(),
            bucket: TokenBucket::new(&chat.limits),
            jobs: None,
        }));
        let events = lane.clone();
        s.on_fallback(
            move |s: SocketRef,
                  Event(name): Event,
                  TryData(data): TryData<Value>,
                  ack: AckSender| {
                // Runs inline, in arrival order: only check and queue here.
                let mut lane = events.lock().unwrap_or_else(|p| p.into_inner());
                let allowed = lane.bucket.allow();
                let data = data.map_err(|e| e.to_string());
                let job = Job::Event { name, data, ack };
                let refused = if allowed {
                    lane.jobs(&s).try_send(job).err().and_then(|e| match e {
                        mpsc::error::TrySendError::Full(job) => Some(job),
                        mpsc::error::TrySendError::Closed(_) => None,
                    })
                } else {
                    Some(job)
                };
                let public_id = lane.public_id;
                drop(lane);
                if let Some(Job::Event { name, ack, .. }) = refused {
                    tracing::debug!(sid = %public_id, event = %name, "event refused: rate limited");
                    metrics.refuse(ApiError::RateLimited.code());
                    let (event, reply) = error_replies(&ApiError::RateLimited);
                    let _ = s.emit("error", &event);
                    let _ = ack.send(&reply);
                }
                std::future::ready(())
            },
        );
        s.on_disconnect(move || async move {
            let (jobs, public_id) = {
                let mut lane = lane.lock().unwrap_or_else(|p| p.into_inner());
                (lane.jobs.take(), lane.public_id)
            };
            match jobs {
                // Waits for room in the queue: the task must see it.
                Some(jobs) => {
                    let _ = jobs.send(Job::Disconnect).await;
                }
                // No event, no task: nothing was joined.
                None => tracing::debug!(sid = %public_id, "disconnected"),
            }
        });
        std::future::ready(())
    };
    io.ns("/", connect.with(check));
}

/// Consecutive `send_message` events stored in one transaction at most.
const SEND_BATCH: usize = 64;

/// The connection's task: its events, in order, then its departure.
/// Consecutive `send_message` events already queued are stored together
/// (one commit), still in order, each with its own answer.
async fn serve_connection(chat: Arc<Chat>, peer: Arc<Peer>, mut queue: mpsc::Receiver<Job>) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        let (name, data, ack) = match job {
            Job::Disconnect => break,
            Job::Event { name, data, ack } => (name, data, ack),
        };
        if !peer.is_live() {
            continue;
        }
        let result = match name.as_str() {
            "join_room" => join_room(&chat, &peer, data).await,
            "leave_room" => leave_room(&chat, &peer, data).await,
            "typing" => typing(&chat, &peer, &data),
            "send_message" => {
                let mut sends = vec![(data, ack)];
                while sends.len() < SEND_BATCH {
                    match queue.try_recv() {
                        Ok(Job::Event { name, data, ack }) if name == "send_message" => {
                            sends.push((data, ack));
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                send_messages(&chat, &peer, sends).await;
                continue;
            }
            INVALID_EVENT => Err(Refusal::Api(ApiError::InvalidPayload(
                "the event name must be a plain string, without control characters or escapes"
                    .to_owned(),
            ))),
            // Unknown events are ignored (they still count against the rate).
            _ => continue,
        };
        answer(&chat, &peer, ack, &name, result);
    }
    tracing::debug!(sid = %peer.public_id(), "disconnected");
    chat.typing.stopped_everywhere(peer.sid());
    chat.rooms.leave_all(&peer).await;
}

/// Answers an event: the ack (if the client asked for one) and, on failure,
/// an `error` event to the sender.
fn answer(chat: &Chat, peer: &Peer, ack: AckSender, event: &str, result: Result<Value, Refusal>) {
    let reply = match result {
        Ok(mut value) => {
            value["ok"] = Value::Bool(true);
            value
        }
        Err(Refusal::Gone) => return,
        Err(Refusal::Api(e)) => {
            if e.status() >= 500 {
                tracing::error!(sid = %peer.public_id(), event, error = %e, "event failed");
            } else {
                tracing::debug!(sid = %peer.public_id(), event, error = %e, "event refused");
            }
            chat.rooms.metrics().refuse(e.code());
            let (event, reply) = error_replies(&e);
            peer.send("error", &event);
            reply
        }
    };
    let _ = ack.send(&reply);
}

/// The `error` event and the failed ack for `e`.
fn error_replies(e: &ApiError) -> (Value, Value) {
    let detail = e.public_detail();
    (
        json!({"error": detail, "code": e.code()}),
        json!({"ok": false, "error": detail, "code": e.code()}),
    )
}

fn payload(data: &Result<Value, String>) -> Result<&Value, ApiError> {
    data.as_ref()
        .map_err(|e| ApiError::InvalidPayload(format!("the event payload is not valid: {e}")))
}

async fn join_room(
    chat: &Chat,
    peer: &Arc<Peer>,
    data: Result<Value, String>,
) -> Result<Value, Refusal> {
    let req = JoinRequest::from_object(event_object(payload(&data)?)?)?;
    let room_id = req.room_id;
    if !chat.store.room_exists(room_id).await? {
        return Err(ApiError::RoomNotFound.into());
    }
    let asked = req.username.as_ref().map(|u| u.as_str());
    let username = identity::name_for(peer.user(), asked)?;
    match &username {
        Some(name) => chat.presence.join(peer.public_id(), room_id, name).await?,
        // A rejoin without a name is not listed.
        None => chat.presence.leave(peer.public_id(), room_id).await?,
    }
    let replayed = match chat.rooms.admit(peer, room_id, username.clone(), req.since) {
        Admission::Live => 0,
        Admission::Replay { since, through } => {
            let metrics = chat.rooms.metrics();
            metrics.replays.inc();
            let sent = replay(chat, peer, room_id, since, through).await?;
            metrics.replayed.inc_by(sent as u64);
            metrics.delivered.inc_by(sent as u64);
            sent
        }
    };
    if !peer.is_live() {
        // Gone while joining: undo whatever the departure did not see.
        chat.rooms.leave_all(peer).await;
        return Err(Refusal::Gone);
    }
    let joined = json!({"sid": peer.public_id(), "username": username, "room_id": room_id});
    chat.rooms.announce(room_id, "user_joined", &joined);
    Ok(json!({"room_id": room_id, "username": username, "replayed": replayed}))
}

/// Sends `(since, through]` of the room from the database, then whatever
/// arrived meanwhile, and makes the member live. How many were sent.
async fn replay(
    chat: &Chat,
    peer: &Arc<Peer>,
    room_id: i64,
    since: i64,
    through: i64,
) -> Result<usize, Refusal> {
    let before = through.saturating_add(1);
    let mut after = since;
    let mut replayed = 0;
    loop {
        let page = chat.store.room_page(room_id, after, before).await?;
        for message in &page {
            send_replayed(chat, peer, &encode(message)).await?;
            replayed += 1;
        }
        match page.last() {
            Some(last) if (page.len() as i64) >= HISTORY_PAGE_ROWS => after = last.id,
            _ => break,
        }
    }
    while let Some(backlog) = chat
        .rooms
        .finish_catch_up(peer, room_id)
        .map_err(|_| Refusal::Gone)?
    {
        for encoded in &backlog {
            send_replayed(chat, peer, encoded).await?;
            replayed += 1;
        }
    }
    Ok(replayed)
}

async fn send_replayed(
    chat: &Chat,
    peer: &Arc<Peer>,
    encoded: &serde_json::value::RawValue,
) -> Result<(), Refusal> {
    match peer
        .send_patiently("new_message", encoded, REPLAY_PATIENCE)
        .await
    {
        Sent::Queued => Ok(()),
        Sent::Full => {
            chat.rooms.evict(peer);
            Err(Refusal::Gone)
        }
        Sent::Gone => Err(Refusal::Gone),
    }
}

async fn leave_room(
    chat: &Chat,
    peer: &Arc<Peer>,
    data: Result<Value, String>,
) -> Result<Value, Refusal> {
    let room_id = room_id_field(event_object(payload(&data)?)?)?;
    let username = chat
        .rooms
        .remove(peer, room_id)
        .map_err(|_| ApiError::NotInRoom(room_id))?;
    chat.typing.stopped(room_id, peer.sid());
    let left = json!({"sid": peer.public_id(), "username": username, "room_id": room_id});
    // The leaver is told too, then the room.
    peer.send("user_left", &left);
    chat.rooms.announce(room_id, "user_left", &left);
    chat.presence.leave(peer.public_id(), room_id).await?;
    Ok(json!({"room_id": room_id}))
}

/// `typing` in a room the socket joined: announced to the other members
/// (throttled), never stored.
fn typing(chat: &Chat, peer: &Peer, data: &Result<Value, String>) -> Result<Value, Refusal> {
    let req = TypingRequest::from_object(event_object(payload(data)?)?)?;
    let username = chat
        .rooms
        .username(peer, req.room_id)
        .map_err(|_| ApiError::NotInRoom(req.room_id))?
        .unwrap_or_default();
    if req.typing {
        chat.typing.typing(req.room_id, peer.sid(), &username);
    } else {
        chat.typing.stopped(req.room_id, peer.sid());
    }
    Ok(json!({"room_id": req.room_id, "typing": req.typing}))
}

/// Stores a run of `send_message` events in one transaction, in order, and
/// answers each.
async fn send_messages(
    chat: &Chat,
    peer: &Arc<Peer>,
    sends: Vec<(Result<Value, String>, AckSender)>,
) {
    let mut drafts = Vec::with_capacity(sends.len());
    let mut outcomes: Vec<Result<usize, ApiError>> = Vec::with_capacity(sends.len());
    for (data, _) in &sends {
        match message_draft(chat, peer, data) {
            Ok(draft) => {
                outcomes.push(Ok(drafts.len()));
                drafts.push(draft);
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    let stored = if drafts.is_empty() {
        Ok(Vec::new())
    } else {
        chat.store.insert_messages(drafts).await
    };
    if matches!(&stored, Ok(results) if results.iter().any(Result::is_ok)) {
        // Stored: the tail delivers them to their rooms, this socket included.
        chat.tail.wake();
    }
    for ((_, ack), outcome) in sends.into_iter().zip(outcomes) {
        let result = match (outcome, &stored) {
            (Err(e), _) => Err(e),
            (Ok(i), Ok(results)) => match results.get(i) {
                Some(Ok(message)) => {
                    let mut reply = serde_json::to_value(message).unwrap_or_default();
                    reply["message"] = serde_json::to_value(message).unwrap_or_default();
                    Ok(reply)
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err(ApiError::Storage(StoreError::Shape("missing result"))),
            },
            (Ok(_), Err(e)) => Err(ApiError::Storage(e.clone())),
        };
        answer(
            chat,
            peer,
            ack,
            "send_message",
            result.map_err(Refusal::Api),
        );
    }
}

/// A `send_message` payload as a draft: `(room_id, draft)`.
fn message_draft(
    chat: &Chat,
    peer: &Peer,
    data: &Result<Value, String>,
) -> Result<(i64, MessageDraft), ApiError> {
    let obj = event_object(payload(data)?)?;
    let room_id = room_id_field(obj)?;
    let default_sender = match peer.user() {
        Some(user) => Some(user.as_str().to_owned()),
        None => chat.rooms.username(peer, room_id).ok().flatten(),
    };
    let draft = MessageDraft::from_object(obj, default_sender.as_deref())?;
    identity::name_for(peer.user(), Some(draft.sender.as_str()))?;
    Ok((room_id, draft))
}
