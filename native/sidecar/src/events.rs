//! The Socket.IO events on the default namespace: `join_room`,
//! `leave_room`, `send_message`, `typing` (never stored: see `typing`),
//! the changes people make to messages (`edit_message`, `delete_message`,
//! `add_reaction`, `remove_reaction`: stored through
//! `chatroom_core::apply`, broadcast by the tail from the change log like
//! new messages), `mark_read` (with opt-in `read` receipts), and what a
//! disconnect does.
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

use std::num::NonZeroU32;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use chatroom_core::auth::{Principal, TokenKey};
use chatroom_core::limits::HISTORY_PAGE_ROWS;
use chatroom_core::{
    Action, Actor, ApiError, Applied, ClientEvent, DeleteAck, JoinAck, JoinRequest, LeaveAck,
    MessageAck, MessageDraft, Presence, ReadReceipt, Sender, ServerEvent, StoreError, TypingAck,
    TypingRequest, Write, Written,
};
use governor::clock::DefaultClock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;

use crate::event_guard::INVALID_EVENT;
use crate::identity;
use crate::peer::{ConnectionCount, Counted, Peer, Sent};
use crate::presence::PresenceStore;
use crate::rooms::{Admission, Admit, CatchUp, Delivery, Encoded, Gone, RoomRegistry};
use crate::store::SharedStore;
use crate::tail::MessageTail;
use crate::typing::TypingBoard;
use chatroom_front::address_limits::ConnectionSlot;

/// How long a `since` replay waits for a socket whose buffer is full before
/// it counts as unable to keep up.
const REPLAY_PATIENCE: Duration = Duration::from_secs(10);

/// Per-connection event limits (docs/protocol.md §3, "Limits and fairness").
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

/// A connection's event budget: `rate` events a second sustained, bursts
/// of `burst` (governor's GCRA limiter, a token bucket); `None` when the
/// rate is off.
fn event_budget(limits: &EventLimits, clock: &DefaultClock) -> Option<DefaultDirectRateLimiter> {
    if limits.rate <= 0.0 {
        return None;
    }
    let quota = Quota::with_period(Duration::from_secs_f64(1.0 / limits.rate))?
        .allow_burst(NonZeroU32::new(limits.burst.max(1))?);
    Some(RateLimiter::direct_with_clock(quota, clock.clone()))
}

/// What the connection tasks share.
pub struct Chat {
    pub store: SharedStore,
    pub tail: MessageTail,
    pub rooms: Arc<RoomRegistry>,
    pub presence: PresenceStore,
    pub limits: EventLimits,
    pub connections: ConnectionCount,
    /// The auth secret's key: with one, handshakes need a token.
    pub auth: Option<TokenKey>,
    /// Who is typing where.
    pub typing: Arc<TypingBoard>,
    /// How long a message's `client_id` is remembered (file mode).
    pub client_id_window_ms: i64,
    /// The clock of every connection's event budget. Making a clock asks
    /// the CPU what it has (CPUID, a trap to the hypervisor in a VM), so
    /// it is made once, not per connection.
    pub clock: DefaultClock,
}

/// An event as the fallback parsed it: `Ok(None)` for one this server
/// ignores.
type Parsed = Result<Option<ClientEvent>, ApiError>;

/// One unit of work for a connection's task.
enum Job {
    Event {
        name: String,
        event: Parsed,
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
    /// Who the token speaks for, when auth is on.
    user: Option<Principal>,
    /// The connection's place among its address's connections (when those
    /// are limited), held as long as the connection.
    _slot: Option<ConnectionSlot>,
    /// `None`: not rate-limited.
    budget: Option<DefaultDirectRateLimiter>,
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
///
/// All of it happens in a connect middleware, which socketioxide runs
/// before it tells the client the namespace is connected: a client may
/// emit the moment it hears so, and an event that arrives before a socket
/// has its handlers is dropped, ack and all. (The connect handler proper
/// runs after the `CONNECT` packet has gone out.)
pub fn register(io: &SocketIo, chat: Arc<Chat>) {
    // Refuses a handshake without a valid token (when auth is on) before
    // the socket joins the namespace: the client gets `connect_error`.
    let accept = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let verdict = identity::user_of(chat.auth.as_ref(), auth.ok().as_ref());
        if let Ok(user) = &verdict {
            attach(&s, &chat, user.clone());
        }
        async move { verdict.map(drop) }
    };
    io.ns("/", (|| std::future::ready(())).with(accept));
}

/// Gives an accepted connection its handlers: events are checked against
/// the rate and queued in arrival order; the departure goes last in the
/// queue.
fn attach(s: &SocketRef, chat: &Arc<Chat>, user: Option<Principal>) {
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
        budget: event_budget(&chat.limits, &chat.clock),
        jobs: None,
    }));
    let events = lane.clone();
    s.on_fallback(
        move |s: SocketRef, Event(name): Event, TryData(data): TryData<Value>, ack: AckSender| {
            // Runs inline, in arrival order: only parse, check and queue here.
            let event = parse_event(&name, data);
            let mut lane = events.lock();
            tracing::trace!(sid = %lane.public_id, event = %name, "received");
            let allowed = lane.budget.as_ref().is_none_or(|b| b.check().is_ok());
            let job = Job::Event { name, event, ack };
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
                let _ = s.emit(event.name(), &event);
                let _ = ack.send(&reply);
            }
            std::future::ready(())
        },
    );
    s.on_disconnect(move || async move {
        let (jobs, public_id) = {
            let mut lane = lane.lock();
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
}

/// Consecutive `send_message` events stored in one transaction at most.
const SEND_BATCH: usize = 64;

/// The event `name` with its payload, parsed once, as it arrives.
fn parse_event(name: &str, data: Result<Value, impl std::fmt::Display>) -> Parsed {
    if name == INVALID_EVENT {
        return Err(ApiError::InvalidPayload(
            "the event name must be a plain string, without control characters or escapes"
                .to_owned(),
        ));
    }
    ClientEvent::parse(name, data.map_err(|e| e.to_string()))
}

/// The connection's task: its events, in order, then its departure.
/// Consecutive writes already queued (`send_message`, `edit_message`,
/// reactions, `mark_read`...) are stored together (one commit), still in
/// order, each with its own answer; `typing` events among them are
/// answered as they are met (they store nothing).
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
        let (name, event, ack) = match job {
            Job::Disconnect => break,
            Job::Event { name, event, ack } => (name, event, ack),
        };
        if !peer.is_live() {
            tracing::trace!(sid = %peer.public_id(), event = %name, "event skipped: evicted");
            continue;
        }
        tracing::trace!(sid = %peer.public_id(), event = %name, "event");
        peer.until_connected().await;
        let result = match event {
            Ok(Some(ClientEvent::JoinRoom(req))) => join_room(&chat, &peer, req).await,
            Ok(Some(ClientEvent::LeaveRoom(req))) => leave_room(&chat, &peer, req.room_id).await,
            Ok(Some(ClientEvent::Typing(req))) => typing(&chat, &peer, &req),
            // Unknown events are ignored (they still count against the rate).
            Ok(None) => continue,
            Err(e) if !ClientEvent::names_a_write(&name) => Err(Refusal::Api(e)),
            // A write (or one refused as it was parsed): stored with the
            // writes queued right after it.
            write => {
                let (writes, after) = writes_queued(&chat, &peer, &mut queue, (name, write, ack));
                next = after;
                store_writes(&chat, &peer, writes).await;
                continue;
            }
        };
        answer(&chat, &peer, ack, &name, result);
    }
    tracing::debug!(sid = %peer.public_id(), "disconnected");
    chat.typing.stopped_everywhere(peer.sid());
    chat.rooms.leave_all(&peer).await;
}

/// A run of writes: `first` and the writes queued right after it (up to
/// [`SEND_BATCH`]), with the job that ended the run, if one did. `typing`
/// events met on the way are answered at once: they store nothing, so
/// they do not split a run.
fn writes_queued(
    chat: &Chat,
    peer: &Peer,
    queue: &mut mpsc::Receiver<Job>,
    first: (String, Parsed, AckSender),
) -> (Vec<(String, Parsed, AckSender)>, Option<Job>) {
    let mut writes = vec![first];
    while writes.len() < SEND_BATCH {
        match queue.try_recv() {
            Ok(Job::Event { name, event, ack }) if ClientEvent::names_a_write(&name) => {
                writes.push((name, event, ack));
            }
            Ok(Job::Event { name, event, ack }) if name == "typing" => {
                let result = match event {
                    Ok(Some(ClientEvent::Typing(req))) => typing(chat, peer, &req),
                    Ok(_) => continue,
                    Err(e) => Err(Refusal::Api(e)),
                };
                answer(chat, peer, ack, &name, result);
            }
            Ok(other) => return (writes, Some(other)),
            Err(_) => break,
        }
    }
    (writes, None)
}

/// Answers an event: the ack (if the client asked for one) and, on failure,
/// an `error` event to the sender.
fn answer(chat: &Chat, peer: &Peer, ack: AckSender, event: &str, result: Result<Value, Refusal>) {
    tracing::trace!(sid = %peer.public_id(), event, ok = result.is_ok(), "answered");
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
            peer.send_event(&event);
            reply
        }
    };
    let _ = ack.send(&reply);
}

/// The `error` event and the failed ack for `e`.
fn error_replies(e: &ApiError) -> (ServerEvent, Value) {
    let body = e.event_body();
    let mut reply = ack_of(&body);
    reply["ok"] = false.into();
    (ServerEvent::Error(body), reply)
}

/// An ack's payload, as JSON (`ok` is added by [`answer`]).
fn ack_of<T: Serialize>(ack: &T) -> Value {
    // Our own types always serialise.
    serde_json::to_value(ack).unwrap_or_default()
}

async fn join_room(chat: &Chat, peer: &Arc<Peer>, req: JoinRequest) -> Result<Value, Refusal> {
    let room_id = req.room_id;
    let asked = req.username.as_ref().map(|u| u.as_str());
    let username = identity::name_for(peer.user(), asked)?;
    let access = join_access(chat, peer, &req).await?;
    match &username {
        Some(name) => chat.presence.join(peer.public_id(), room_id, name).await?,
        // A rejoin without a name is not listed.
        None => chat.presence.leave(peer.public_id(), room_id).await?,
    }
    let admit = Admit {
        username: username.clone(),
        since: req.since,
        checked_at: access.seq,
        muted_until_ms: access.muted_until_ms,
    };
    let admission = match chat.rooms.admit(peer, room_id, admit) {
        Ok(admission) => admission,
        Err(e) => {
            chat.presence.leave(peer.public_id(), room_id).await?;
            return Err(e.into());
        }
    };
    let replayed = catch_up(chat, peer, room_id, admission).await?;
    if !peer.is_live() {
        // Gone while joining: undo whatever the departure did not see.
        chat.rooms.leave_all(peer).await;
        return Err(Refusal::Gone);
    }
    let joined = ServerEvent::UserJoined(Presence {
        sid: peer.public_id().to_owned(),
        username: username.clone(),
        room_id,
    });
    chat.rooms.announce_presence(room_id, &joined, peer);
    Ok(ack_of(&JoinAck {
        room_id,
        username,
        replayed,
    }))
}

/// What the joining socket's user may do in the room, checked for a join
/// (the walls, docs/protocol.md §10: who the token says, never a name the
/// socket merely claims), and its `since` against what retention keeps.
async fn join_access(
    chat: &Chat,
    peer: &Peer,
    req: &JoinRequest,
) -> Result<chatroom_core::RoomAccess, Refusal> {
    let viewer = peer.viewer();
    let access = chat
        .store
        .room_access(req.room_id, viewer.user.as_ref().map(Sender::as_str))
        .await?
        .ok_or(ApiError::RoomNotFound)?;
    access.check_join(&viewer)?;
    match req.since {
        Some(since) if since < access.kept_after => Err(ApiError::ResyncRequired {
            kept_after: access.kept_after,
        }
        .into()),
        _ => Ok(access),
    }
}

/// For an admitted join with a `since`, the replay of what it missed; how
/// many changes were sent. A replay that fails (retention pruned past
/// `since` meanwhile, or the store failed) undoes the join.
async fn catch_up(
    chat: &Chat,
    peer: &Arc<Peer>,
    room_id: i64,
    admission: Admission,
) -> Result<usize, Refusal> {
    let Admission::Replay { since, through } = admission else {
        return Ok(0);
    };
    let metrics = chat.rooms.metrics();
    metrics.replays.inc();
    let sent = match replay(chat, peer, room_id, since, through).await {
        Ok(sent) => sent,
        Err(Refusal::Api(e)) => {
            let _ = chat.rooms.remove(peer, room_id);
            chat.presence.leave(peer.public_id(), room_id).await?;
            return Err(e.into());
        }
        Err(Refusal::Gone) => return Err(Refusal::Gone),
    };
    metrics.replayed.inc_by(sent as u64);
    metrics.delivered.inc_by(sent as u64);
    Ok(sent)
}

/// Sends the room's changes in `(since, through]` from the log, then
/// whatever arrived meanwhile, and makes the member live. How many were
/// sent.
async fn replay(
    chat: &Chat,
    peer: &Arc<Peer>,
    room_id: i64,
    since: i64,
    through: i64,
) -> Result<usize, Refusal> {
    let mut after = since;
    let mut replayed = 0;
    loop {
        let page = chat.store.room_changes(room_id, after, through).await?;
        let full = (page.len() as i64) >= HISTORY_PAGE_ROWS;
        let last = page.last().map(|c| c.seq);
        for change in page {
            send_replayed(chat, peer, &Delivery::from(change).encoded).await?;
            replayed += 1;
        }
        match last {
            Some(seq) if full => after = seq,
            _ => break,
        }
    }
    loop {
        match chat.rooms.finish_catch_up(peer, room_id) {
            Ok(CatchUp::Backlog(backlog)) => {
                for encoded in &backlog {
                    send_replayed(chat, peer, encoded).await?;
                    replayed += 1;
                }
            }
            Ok(CatchUp::Live) => return Ok(replayed),
            // Removed while replaying: what came before the removal, then
            // `removed_from_room`, then the join is refused.
            Ok(CatchUp::Removed {
                backlog,
                notice,
                refusal,
            }) => {
                for encoded in &backlog {
                    send_replayed(chat, peer, encoded).await?;
                }
                peer.send_event(&notice);
                return Err(refusal.into());
            }
            Err(Gone) => return Err(Refusal::Gone),
        }
    }
}

async fn send_replayed(chat: &Chat, peer: &Arc<Peer>, encoded: &Encoded) -> Result<(), Refusal> {
    match peer
        .send_patiently(encoded.event.as_str(), &*encoded.data, REPLAY_PATIENCE)
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

async fn leave_room(chat: &Chat, peer: &Arc<Peer>, room_id: i64) -> Result<Value, Refusal> {
    let username = chat
        .rooms
        .remove(peer, room_id)
        .map_err(|_| ApiError::NotInRoom(room_id))?;
    chat.typing.stopped(room_id, peer.sid());
    let left = ServerEvent::UserLeft(Presence {
        sid: peer.public_id().to_owned(),
        username,
        room_id,
    });
    // The leaver is told too, then the room.
    peer.send_event(&left);
    chat.rooms.announce_presence(room_id, &left, peer);
    chat.presence.leave(peer.public_id(), room_id).await?;
    Ok(ack_of(&LeaveAck { room_id }))
}

/// `typing` in a room the socket joined: announced to the other members
/// (throttled), never stored.
fn typing(chat: &Chat, peer: &Peer, req: &TypingRequest) -> Result<Value, Refusal> {
    let username = chat
        .rooms
        .username(peer, req.room_id)
        .map_err(|_| ApiError::NotInRoom(req.room_id))?
        .unwrap_or_default();
    if req.typing && chat.rooms.muted(peer, req.room_id) {
        return Err(ApiError::Muted.into());
    }
    if req.typing {
        chat.typing.typing(req.room_id, peer.sid(), &username);
    } else {
        chat.typing.stopped(req.room_id, peer.sid());
    }
    Ok(ack_of(&TypingAck {
        room_id: req.room_id,
        typing: req.typing,
    }))
}

/// Stores a run of writes in one transaction, in order, and answers each.
/// Stored changes reach their rooms through the change log (the tail),
/// this socket included; a read mark with `receipt: true` is announced to
/// the room's other members as `read`.
async fn store_writes(chat: &Chat, peer: &Arc<Peer>, events: Vec<(String, Parsed, AckSender)>) {
    let mut writes = Vec::with_capacity(events.len());
    let mut plans: Vec<Result<(usize, bool), ApiError>> = Vec::with_capacity(events.len());
    let mut answers = Vec::with_capacity(events.len());
    for (name, event, ack) in events {
        answers.push((name, ack));
        match write_of(chat, peer, event) {
            Ok((write, receipt)) => {
                plans.push(Ok((writes.len(), receipt)));
                writes.push(write);
            }
            Err(e) => plans.push(Err(e)),
        }
    }
    let stored = if writes.is_empty() {
        Ok(Vec::new())
    } else {
        chat.store
            .write_batch(writes, chat.client_id_window_ms)
            .await
    };
    let changed = |w: &Result<Written, ApiError>| {
        matches!(
            w,
            Ok(Written::Message(_))
                | Ok(Written::Applied(
                    Applied::Message(_) | Applied::Deleted { .. }
                ))
        )
    };
    if matches!(&stored, Ok(results) if results.iter().any(changed)) {
        chat.tail.wake();
    }
    for ((name, ack), plan) in answers.into_iter().zip(plans) {
        let result = match (plan, &stored) {
            (Err(e), _) => Err(e),
            (Ok((i, receipt)), Ok(results)) => match results.get(i) {
                Some(Ok(written)) => Ok(reply(chat, peer, written, receipt)),
                Some(Err(e)) => Err(e.clone()),
                None => Err(ApiError::Storage(StoreError::Shape("missing result"))),
            },
            (Ok(_), Err(e)) => Err(ApiError::Storage(e.clone())),
        };
        answer(chat, peer, ack, &name, result.map_err(Refusal::Api));
    }
}

/// A write event as a [`Write`], and whether it asked for a read receipt.
/// The one acting is the token's user, else the payload's `username` (or
/// `sender`), else the name the socket joined the room with.
fn write_of(chat: &Chat, peer: &Peer, event: Parsed) -> Result<(Write, bool), ApiError> {
    match event? {
        Some(ClientEvent::SendMessage { room_id, fields }) => {
            let draft = message_draft(chat, peer, room_id, &fields)?;
            Ok((Write::Message(room_id, draft), false))
        }
        Some(ClientEvent::Act {
            kind,
            room_id,
            receipt,
            fields,
        }) => {
            let joined = chat.rooms.username(peer, room_id).ok().flatten();
            let actor = Actor {
                token_user: peer.user().map(Sender::as_str),
                fallback: joined.as_deref(),
            };
            let action = Action::from_object(kind, &fields, actor)?;
            Ok((Write::Action(action), receipt))
        }
        // `names_a_write` names only the two above.
        _ => Err(ApiError::InvalidPayload("not a write".to_owned())),
    }
}

/// The ack of a stored write: a message's fields and `"message"`, a
/// deletion, or the read position (announcing it when asked).
fn reply(chat: &Chat, peer: &Peer, written: &Written, receipt: bool) -> Value {
    match written {
        Written::Message(message)
        | Written::Applied(Applied::Message(message) | Applied::Repeated(message)) => {
            ack_of(&MessageAck::of(message))
        }
        Written::Applied(Applied::Deleted {
            room_id,
            message_id,
        }) => ack_of(&DeleteAck {
            room_id: *room_id,
            message_id: *message_id,
            deleted: true,
        }),
        Written::Applied(Applied::Read(read)) => {
            if receipt {
                let seen = ServerEvent::Read(ReadReceipt {
                    room_id: read.room_id,
                    username: read.username.clone(),
                    message_id: read.last_read_id,
                });
                chat.rooms.announce_except(read.room_id, &seen, peer.sid());
            }
            ack_of(read)
        }
    }
}

/// A `send_message` payload's fields as a draft for `room_id`.
fn message_draft(
    chat: &Chat,
    peer: &Peer,
    room_id: i64,
    obj: &Map<String, Value>,
) -> Result<MessageDraft, ApiError> {
    let default_sender = match peer.user() {
        Some(user) => Some(user.as_str().to_owned()),
        None => chat.rooms.username(peer, room_id).ok().flatten(),
    };
    let draft = MessageDraft::from_object(obj, default_sender.as_deref())?;
    identity::name_for(peer.user(), Some(draft.sender.as_str()))?;
    Ok(draft)
}
