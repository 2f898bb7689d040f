//! `RoomRegistry`: who is in which room, and how each member is being fed.
//!
//! The registry is the only place changes (new messages, edits, deletes,
//! reactions: the change log) are handed to sockets. The tail calls
//! [`RoomRegistry::deliver`] with each new batch of changes, in `seq`
//! order, and the registry's `cursor` moves with it under the same lock. A
//! joining socket is registered at the current cursor, so from that
//! instant every newer change reaches it through the registry; if it asked
//! for `since`, newer changes are kept in its *backlog* while its own
//! connection task replays `(since, cursor]` from the log, then the backlog
//! is flushed and it turns live. So a replay never holds up anyone else,
//! and the socket sees every change once, in order, with no gap.
//!
//! Nothing here waits on a socket: a member whose outgoing buffer is full,
//! or whose backlog outgrows [`MAX_BACKLOG`], is evicted (see `peer`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use std::time::{Duration, Instant};

use chatroom_core::{
    ApiError, Change, ChangeEvent, MembershipEvent, MembershipKind, Presence, Removal,
    RemovalReason, ServerEvent,
};
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::socket::Sid;

use crate::metrics::Metrics;
use crate::peer::{Peer, Sent};
use crate::presence::PresenceStore;
use crate::relay::{PresenceRelay, Relayed};

/// Changes a catching-up member may have waiting behind its replay before
/// it is considered unable to keep up.
pub const MAX_BACKLOG: usize = 10_000;

/// A change's event, encoded once, sent to every member as is.
#[derive(Clone)]
pub struct Encoded {
    pub event: ChangeEvent,
    pub data: Arc<RawValue>,
}

/// One change for [`RoomRegistry::deliver`]: where it goes, and when it
/// was committed (for the broadcast lag).
pub struct Delivery {
    pub seq: i64,
    pub room_id: i64,
    pub encoded: Encoded,
    pub at: String,
    /// For a `membership` change: what it does to the sockets here.
    pub membership: Option<MembershipEvent>,
}

impl From<Change> for Delivery {
    fn from(change: Change) -> Self {
        let membership = (change.event == ChangeEvent::Membership)
            .then(|| serde_json::from_str(change.data.get()))
            .transpose()
            .unwrap_or_else(|e| {
                tracing::error!(seq = change.seq, error = %e, "a membership change not understood");
                None
            });
        Delivery {
            seq: change.seq,
            room_id: change.room_id,
            encoded: Encoded {
                event: change.event,
                data: Arc::from(change.data),
            },
            at: change.at,
            membership,
        }
    }
}

/// What a join that raced `removal` is told.
fn refusal(removal: &MembershipEvent) -> ApiError {
    match removal.change {
        MembershipKind::Banned => ApiError::Banned,
        MembershipKind::Kicked => ApiError::Forbidden("you were kicked from this room".to_owned()),
        _ => ApiError::RoomNotFound,
    }
}

/// How long a removal is remembered for joins that checked the walls
/// before it was delivered (edge calls take at most 10 s each).
const REMOVAL_MEMORY: Duration = Duration::from_secs(60);

struct Member {
    peer: Arc<Peer>,
    /// Only changes with a greater `seq` are delivered by the registry.
    after: i64,
    /// `Some` while a replay is running: live messages wait here.
    backlog: Option<Vec<Encoded>>,
    /// A mute in force, until when (Unix ms; `i64::MAX` for ever).
    muted_until_ms: Option<i64>,
}

/// A connection's rooms, in order of joining, with the username of each.
#[derive(Default)]
struct Joined {
    rooms: Vec<(i64, Option<String>)>,
}

#[derive(Default)]
struct Inner {
    /// `seq` of the last change delivered.
    cursor: i64,
    rooms: HashMap<i64, Vec<Member>>,
    peers: HashMap<Sid, Joined>,
    /// Recent removals by (room, username): their `seq`, what they were,
    /// and when they were delivered, so a join whose check of the walls
    /// read an older snapshot is refused.
    removals: HashMap<(i64, String), (i64, MembershipEvent, Instant)>,
    /// Sockets removed while their join was still replaying, by (socket,
    /// room): what arrived before the removal, and why it came. Their
    /// replay sends these last, so `removed_from_room` follows every
    /// change before it, and refuses the join.
    caught_out: HashMap<(Sid, i64), CaughtOut>,
}

/// A removal that found its socket still catching up.
struct CaughtOut {
    backlog: Vec<Encoded>,
    notice: ServerEvent,
    refusal: ApiError,
}

/// The next step of a replay's join, once the log's part is sent.
pub enum CatchUp {
    /// What arrived meanwhile, to send before asking again.
    Backlog(Vec<Encoded>),
    /// Nothing more: the socket is live in the room.
    Live,
    /// Removed meanwhile: send this backlog, then the notice, and refuse
    /// the join with the refusal.
    Removed {
        backlog: Vec<Encoded>,
        notice: ServerEvent,
        refusal: ApiError,
    },
}

/// What a join needs to do before it is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Nothing to replay: the socket is live in the room.
    Live,
    /// Replay `(since, through]`, then [`RoomRegistry::finish_catch_up`].
    Replay { since: i64, through: i64 },
}

/// The socket left (or was evicted) while joining.
#[derive(Debug)]
pub struct Gone;

/// What the walls said when a socket asked to join a room, for
/// [`RoomRegistry::admit`].
pub struct Admit {
    pub username: Option<String>,
    pub since: Option<i64>,
    /// The change log's `seq` when the walls were read.
    pub checked_at: i64,
    pub muted_until_ms: Option<i64>,
}

pub struct RoomRegistry {
    inner: Mutex<Inner>,
    presence: PresenceStore,
    /// Where presence events go for the other sidecars (edge mode with
    /// Redis).
    relay: OnceLock<PresenceRelay>,
    metrics: Metrics,
    /// Members here beyond which a room's presence events go only to the
    /// socket they are about ([`RoomRegistry::announce_presence`]).
    presence_room_max: usize,
    /// Itself, for the tasks that finish an eviction.
    me: std::sync::Weak<RoomRegistry>,
}

impl RoomRegistry {
    pub fn new(
        cursor: i64,
        presence: PresenceStore,
        metrics: Metrics,
        presence_room_max: usize,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| RoomRegistry {
            inner: Mutex::new(Inner {
                cursor,
                ..Inner::default()
            }),
            presence,
            relay: OnceLock::new(),
            metrics,
            presence_room_max,
            me: me.clone(),
        })
    }

    /// Sends presence events to the other sidecars through `relay` too.
    pub fn relay_to(&self, relay: PresenceRelay) {
        let _ = self.relay.set(relay);
    }

    /// A presence event another sidecar announced: for the members here.
    pub fn relayed(&self, relayed: &Relayed) {
        let own = self.relay.get().is_some_and(|r| r.is_own(relayed));
        if own {
            return;
        }
        match relayed.event.as_str() {
            "user_joined" | "user_left" => {
                self.announce_presence_here(relayed.room_id, &relayed.event, &relayed.data, None)
            }
            "typing" | "read" => {
                self.announce_here(relayed.room_id, &relayed.event, &relayed.data, None)
            }
            _ => {}
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// The `seq` of the last change delivered.
    pub fn cursor(&self) -> i64 {
        self.lock().cursor
    }

    /// Hands a batch of new changes (in `seq` order, all above the cursor)
    /// to the members of their rooms.
    pub fn deliver(&self, batch: &[Delivery]) {
        let mut full = Vec::new();
        let mut removed = Vec::new();
        {
            let mut inner = self.lock();
            for change in batch {
                if change.seq <= inner.cursor {
                    continue;
                }
                if let Some(note) = &change.membership {
                    removed.extend(inner.apply_membership(change, note));
                }
                let mut sent = 0;
                if let Some(members) = inner.rooms.get_mut(&change.room_id) {
                    for m in members.iter_mut().filter(|m| change.seq > m.after) {
                        match &mut m.backlog {
                            Some(backlog) if backlog.len() >= MAX_BACKLOG => {
                                full.push(m.peer.clone())
                            }
                            Some(backlog) => backlog.push(change.encoded.clone()),
                            None => {
                                let Encoded { event, data } = &change.encoded;
                                if m.peer.send(event.as_str(), &**data) == Sent::Full {
                                    full.push(m.peer.clone());
                                } else {
                                    sent += 1;
                                }
                            }
                        }
                    }
                }
                if sent > 0 {
                    self.metrics.delivered.inc_by(sent);
                    self.metrics.observe_lag(&change.at);
                }
                inner.cursor = change.seq;
            }
        }
        self.evict_all(full);
        self.say_removed(removed);
    }

    /// Tells the removed sockets why, then forgets their presence and
    /// tells the room they left (on a task: nothing here waits).
    fn say_removed(&self, removed: Vec<Removed>) {
        if removed.is_empty() {
            return;
        }
        let Some(registry) = self.me.upgrade() else {
            return;
        };
        for r in &removed {
            if let Some(notice) = &r.notice {
                r.peer.send_event(notice);
            }
        }
        tokio::spawn(async move {
            for r in removed {
                if let Err(e) = registry.presence.leave(r.peer.public_id(), r.room_id).await {
                    tracing::warn!(error = %e, room = r.room_id, "presence of a removed socket");
                }
                registry.say_goodbye(&r.peer, &[(r.room_id, r.username)]);
            }
        });
    }

    /// Whether `peer` is muted in `room_id` now.
    pub fn muted(&self, peer: &Peer, room_id: i64) -> bool {
        let inner = self.lock();
        let now = now_ms();
        inner
            .rooms
            .get(&room_id)
            .and_then(|ms| ms.iter().find(|m| m.peer.sid() == peer.sid()))
            .and_then(|m| m.muted_until_ms)
            .is_some_and(|until| until > now)
    }

    /// `(joined sockets, rooms with members)` now, for the metrics.
    pub fn occupancy(&self) -> (usize, usize) {
        let inner = self.lock();
        let joined = inner.rooms.values().map(Vec::len).sum();
        (joined, inner.rooms.len())
    }

    /// The sidecar's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Registers `peer` in `room_id` at the current cursor. A rejoin
    /// replaces the earlier membership (new username, new `since`).
    ///
    /// A removal of the user from the room that the tail delivered after
    /// the walls were read (`checked_at`) refuses the join: the socket
    /// never sees a change after its removal.
    pub fn admit(
        &self,
        peer: &Arc<Peer>,
        room_id: i64,
        join: Admit,
    ) -> Result<Admission, ApiError> {
        let Admit {
            username,
            since,
            checked_at,
            muted_until_ms,
        } = join;
        let mut inner = self.lock();
        inner
            .removals
            .retain(|_, (_, _, at)| at.elapsed() < REMOVAL_MEMORY);
        if let Some(name) = &username
            && let Some((seq, note, _)) = inner.removals.get(&(room_id, name.clone()))
            && *seq > checked_at
        {
            return Err(refusal(note));
        }
        let cursor = inner.cursor;
        let (after, admission) = match since {
            Some(since) if since < cursor => (
                cursor,
                Admission::Replay {
                    since,
                    through: cursor,
                },
            ),
            Some(since) => (since, Admission::Live),
            None => (cursor, Admission::Live),
        };
        let backlog = matches!(admission, Admission::Replay { .. }).then(Vec::new);
        let member = Member {
            peer: peer.clone(),
            after,
            backlog,
            muted_until_ms,
        };
        let members = inner.rooms.entry(room_id).or_default();
        match members.iter_mut().find(|m| m.peer.sid() == peer.sid()) {
            Some(existing) => *existing = member,
            None => members.push(member),
        }
        let joined = inner.peers.entry(peer.sid()).or_default();
        match joined.rooms.iter_mut().find(|(r, _)| *r == room_id) {
            Some(entry) => entry.1 = username,
            None => joined.rooms.push((room_id, username)),
        }
        Ok(admission)
    }

    /// After a replay: what arrived meanwhile (ask again after sending it),
    /// until the member is live or was removed meanwhile.
    pub fn finish_catch_up(&self, peer: &Peer, room_id: i64) -> Result<CatchUp, Gone> {
        let mut inner = self.lock();
        if let Some(out) = inner.caught_out.remove(&(peer.sid(), room_id)) {
            return Ok(CatchUp::Removed {
                backlog: out.backlog,
                notice: out.notice,
                refusal: out.refusal,
            });
        }
        let member = inner
            .rooms
            .get_mut(&room_id)
            .and_then(|ms| ms.iter_mut().find(|m| m.peer.sid() == peer.sid()))
            .ok_or(Gone)?;
        match member.backlog.as_mut() {
            Some(backlog) if !backlog.is_empty() => Ok(CatchUp::Backlog(std::mem::take(backlog))),
            _ => {
                member.backlog = None;
                Ok(CatchUp::Live)
            }
        }
    }

    /// The username `peer` joined `room_id` with; `Err` if not a member.
    pub fn username(&self, peer: &Peer, room_id: i64) -> Result<Option<String>, Gone> {
        let inner = self.lock();
        let joined = inner.peers.get(&peer.sid()).ok_or(Gone)?;
        joined
            .rooms
            .iter()
            .find(|(r, _)| *r == room_id)
            .map(|(_, u)| u.clone())
            .ok_or(Gone)
    }

    /// Every listed membership: `(public id, room, username)`, for
    /// recording presence again after a lapsed lease.
    pub fn listed(&self) -> Vec<(String, i64, String)> {
        let inner = self.lock();
        let mut listed = Vec::new();
        for (room_id, members) in &inner.rooms {
            for m in members {
                let username = inner.peers.get(&m.peer.sid()).and_then(|joined| {
                    joined
                        .rooms
                        .iter()
                        .find(|(r, _)| r == room_id)
                        .and_then(|(_, u)| u.clone())
                });
                if let Some(username) = username {
                    listed.push((m.peer.public_id().to_owned(), *room_id, username));
                }
            }
        }
        listed
    }

    /// Sends `event` (`typing`, `read`) to every member of `room_id` but
    /// `except` (the socket the event is about), here and (when relayed)
    /// on the other sidecars; members whose buffer is full are evicted.
    pub fn announce_except(&self, room_id: i64, event: &ServerEvent, except: Sid) {
        self.announce_here(room_id, event.name(), event, Some(except));
        if let Some(relay) = self.relay.get() {
            relay.publish(room_id, event);
        }
    }

    /// `user_joined` or `user_left` about `about`'s socket, to the members
    /// of `room_id`; in a large room (more than `presence_room_max`
    /// members here, counting a leaver, who is no longer listed) only to
    /// `about` itself, if it is one. Published to
    /// the other sidecars either way: each applies the rule to its own
    /// members.
    pub fn announce_presence(&self, room_id: i64, event: &ServerEvent, about: &Peer) {
        self.announce_presence_here(room_id, event.name(), event, Some(about.sid()));
        if let Some(relay) = self.relay.get() {
            relay.publish(room_id, event);
        }
    }

    fn announce_presence_here<P: Serialize + ?Sized>(
        &self,
        room_id: i64,
        event: &str,
        payload: &P,
        about: Option<Sid>,
    ) {
        let own = {
            let inner = self.lock();
            let members = inner.rooms.get(&room_id).map_or(&[][..], Vec::as_slice);
            let counted = members.len() + usize::from(event == "user_left");
            if counted <= self.presence_room_max {
                None
            } else {
                let own = members.iter().find(|m| Some(m.peer.sid()) == about);
                Some(own.map(|m| m.peer.clone()))
            }
        };
        match own {
            None => self.announce_here(room_id, event, payload, None),
            Some(Some(peer)) => {
                if peer.send(event, payload) == Sent::Full {
                    self.evict_all(vec![peer]);
                }
            }
            Some(None) => {}
        }
    }

    /// Sends `event` to the members of `room_id` on this sidecar (but
    /// `except`).
    fn announce_here<P: Serialize + ?Sized>(
        &self,
        room_id: i64,
        event: &str,
        payload: &P,
        except: Option<Sid>,
    ) {
        let mut full = Vec::new();
        {
            let inner = self.lock();
            for m in inner.rooms.get(&room_id).into_iter().flatten() {
                if Some(m.peer.sid()) == except {
                    continue;
                }
                if m.peer.send(event, payload) == Sent::Full {
                    full.push(m.peer.clone());
                }
            }
        }
        self.evict_all(full);
    }

    /// Removes `peer` from `room_id`; the username it had there, or `Err`
    /// if it was not in the room. Does not announce it.
    pub fn remove(&self, peer: &Peer, room_id: i64) -> Result<Option<String>, Gone> {
        let mut inner = self.lock();
        let joined = inner.peers.get_mut(&peer.sid()).ok_or(Gone)?;
        let at = joined
            .rooms
            .iter()
            .position(|(r, _)| *r == room_id)
            .ok_or(Gone)?;
        let (_, username) = joined.rooms.remove(at);
        if joined.rooms.is_empty() {
            inner.peers.remove(&peer.sid());
        }
        if let Some(members) = inner.rooms.get_mut(&room_id) {
            members.retain(|m| m.peer.sid() != peer.sid());
            if members.is_empty() {
                inner.rooms.remove(&room_id);
            }
        }
        Ok(username)
    }

    /// Takes `peer` out of every room, forgets its presence and then tells
    /// the rooms (`user_left`), in that order, so a client that reacts to
    /// `user_left` by asking for the users no longer finds it listed. For a
    /// disconnect, or a join undone because the socket went meanwhile.
    pub async fn leave_all(&self, peer: &Peer) {
        let rooms = self.take_out(peer);
        self.presence.forget(peer.public_id()).await;
        self.say_goodbye(peer, &rooms);
    }

    /// Removes `peer` from the maps; the rooms it was in.
    fn take_out(&self, peer: &Peer) -> Vec<(i64, Option<String>)> {
        let mut inner = self.lock();
        inner.caught_out.retain(|(sid, _), _| *sid != peer.sid());
        let Some(joined) = inner.peers.remove(&peer.sid()) else {
            return Vec::new();
        };
        for (room_id, _) in &joined.rooms {
            if let Some(members) = inner.rooms.get_mut(room_id) {
                members.retain(|m| m.peer.sid() != peer.sid());
                if members.is_empty() {
                    inner.rooms.remove(room_id);
                }
            }
        }
        joined.rooms
    }

    fn say_goodbye(&self, peer: &Peer, rooms: &[(i64, Option<String>)]) {
        for (room_id, username) in rooms {
            let left = ServerEvent::UserLeft(Presence {
                sid: peer.public_id().to_owned(),
                username: username.clone(),
                room_id: *room_id,
            });
            self.announce_presence(*room_id, &left, peer);
        }
    }

    /// Evicts members that cannot keep up: they get nothing more at once;
    /// their presence and `user_left` follow on a task (nothing here waits).
    fn evict_all(&self, peers: Vec<Arc<Peer>>) {
        for peer in peers {
            if !peer.evict() {
                continue;
            }
            self.metrics.slow_disconnects.inc();
            let rooms = self.take_out(&peer);
            let Some(registry) = self.me.upgrade() else {
                continue;
            };
            tokio::spawn(async move {
                registry.presence.forget(peer.public_id()).await;
                registry.say_goodbye(&peer, &rooms);
            });
        }
    }

    /// Evicts one member that cannot keep up.
    pub fn evict(&self, peer: &Arc<Peer>) {
        self.evict_all(vec![peer.clone()]);
    }
}

/// A socket a `membership` change took out of a room.
struct Removed {
    peer: Arc<Peer>,
    room_id: i64,
    username: Option<String>,
    /// `removed_from_room`, unless the socket's replay sends it.
    notice: Option<ServerEvent>,
}

impl Inner {
    /// What a `membership` change does here, at its `seq`, before anything
    /// after it is delivered: a removal takes the user's sockets out of the
    /// room (returned, to be told), a mute or unmute is noted on them.
    fn apply_membership(&mut self, change: &Delivery, note: &MembershipEvent) -> Vec<Removed> {
        let room_id = change.room_id;
        if matches!(note.change, MembershipKind::Muted | MembershipKind::Unmuted) {
            self.note_mute(room_id, note);
            return Vec::new();
        }
        let Some(reason) = RemovalReason::of(note.change) else {
            return Vec::new();
        };
        self.removals.insert(
            (room_id, note.username.clone()),
            (change.seq, note.clone(), Instant::now()),
        );
        let Some(members) = self.rooms.get_mut(&room_id) else {
            return Vec::new();
        };
        let peers = &self.peers;
        let (gone, kept): (Vec<Member>, Vec<Member>) = members
            .drain(..)
            .partition(|m| joined_as(peers, m, room_id, &note.username));
        *members = kept;
        if members.is_empty() {
            self.rooms.remove(&room_id);
        }
        let notice = ServerEvent::RemovedFromRoom(Removal {
            room_id,
            reason,
            by: note.by.clone(),
            seq: change.seq,
        });
        gone.into_iter()
            .map(|m| self.remove_member(m, room_id, note, &notice))
            .collect()
    }

    /// Takes member `m` out of `room_id` at removal `note`; a socket still
    /// replaying is told by its replay, after what came before the
    /// removal, the others by `notice` now.
    fn remove_member(
        &mut self,
        m: Member,
        room_id: i64,
        note: &MembershipEvent,
        notice: &ServerEvent,
    ) -> Removed {
        let sid = m.peer.sid();
        if let Some(joined) = self.peers.get_mut(&sid) {
            joined.rooms.retain(|(r, _)| *r != room_id);
            if joined.rooms.is_empty() {
                self.peers.remove(&sid);
            }
        }
        let notice = match m.backlog {
            Some(backlog) => {
                let out = CaughtOut {
                    backlog,
                    notice: notice.clone(),
                    refusal: refusal(note),
                };
                self.caught_out.insert((sid, room_id), out);
                None
            }
            None => Some(notice.clone()),
        };
        Removed {
            peer: m.peer,
            room_id,
            username: Some(note.username.clone()),
            notice,
        }
    }

    /// A mute or unmute of a user in `room_id`: noted on their sockets
    /// there (until when, `None` for no longer).
    fn note_mute(&mut self, room_id: i64, note: &MembershipEvent) {
        let until = match (note.change, &note.until) {
            (MembershipKind::Unmuted, _) => None,
            (_, None) => Some(i64::MAX),
            (_, Some(until)) => Some(rfc3339_ms(until).unwrap_or(i64::MAX)),
        };
        let peers = &self.peers;
        for m in self.rooms.get_mut(&room_id).into_iter().flatten() {
            if joined_as(peers, m, room_id, &note.username) {
                m.muted_until_ms = until;
            }
        }
    }
}

/// Whether member `m` joined `room_id` under `username`.
fn joined_as(peers: &HashMap<Sid, Joined>, m: &Member, room_id: i64, username: &str) -> bool {
    peers.get(&m.peer.sid()).is_some_and(|joined| {
        joined
            .rooms
            .iter()
            .any(|(r, u)| *r == room_id && u.as_deref() == Some(username))
    })
}

/// Now, Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An RFC 3339 timestamp (as SQLite writes them) in Unix milliseconds.
fn rfc3339_ms(at: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(at).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}
