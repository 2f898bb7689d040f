//! `Peer`: one Socket.IO connection as the rest of the sidecar sees it.
//!
//! It carries the connection's *public* id (the `sid` of `user_joined` and
//! `user_left`), which is random and unrelated to the Engine.IO session id:
//! socketioxide makes `socket.id` equal to the transport session id, and
//! knowing that id is enough to read and write someone else's long-polling
//! transport, so it is never sent to anyone (docs/protocol.md §3, "Public ids").
//!
//! Sending never waits. A connection whose outgoing buffer is full cannot
//! keep up: it is *evicted* (it gets nothing more, and is disconnected as
//! soon as the disconnect packet fits) rather than silently skipped, so a
//! client never misses a message without seeing its connection drop; on
//! reconnect it catches up with `since`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chatroom_core::auth::Principal;
use chatroom_core::{Sender, ServerEvent, Viewer};
use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError};

/// How often an evicted connection's disconnect is retried while its buffer
/// is still full, and for how long (Engine.IO's heartbeat closes a
/// connection that stays full anyway: its ping cannot be queued either).
const EVICT_RETRY: Duration = Duration::from_millis(5);
const EVICT_PATIENCE: Duration = Duration::from_secs(60);

/// How long a first event waits for socketioxide to mark its socket
/// connected ([`Peer::until_connected`]), and how often it looks.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);
const CONNECT_RETRY: Duration = Duration::from_millis(1);

/// What became of one emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for the client.
    Queued,
    /// The outgoing buffer is full: the client is not keeping up.
    Full,
    /// The connection is closed (or was evicted).
    Gone,
}

/// How many connections the sidecar holds state for; a connection's state
/// must go when it does (a reference cycle with the socket would keep both
/// forever).
#[derive(Clone, Debug, Default)]
pub struct ConnectionCount(Arc<AtomicUsize>);

impl ConnectionCount {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl ConnectionCount {
    /// Counts one more connection until the returned guard is dropped.
    pub fn count(&self) -> Arc<Counted> {
        self.0.fetch_add(1, Ordering::AcqRel);
        Arc::new(Counted(self.clone()))
    }
}

/// Counts one connection while alive (shared by what holds its state).
pub struct Counted(ConnectionCount);

impl Drop for Counted {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One connection.
pub struct Peer {
    socket: SocketRef,
    public_id: Sid,
    /// Who the token speaks for, when auth is on.
    principal: Option<Principal>,
    evicted: AtomicBool,
    /// Seen connected once (or waited for in vain): no more waiting.
    settled: AtomicBool,
    _counted: Arc<Counted>,
}

impl Peer {
    /// `public_id` from [`Peer::new_public_id`]; `counted` is the
    /// connection's place in the [`ConnectionCount`].
    pub fn new(
        socket: SocketRef,
        public_id: Sid,
        counted: Arc<Counted>,
        principal: Option<Principal>,
    ) -> Arc<Self> {
        Arc::new(Peer {
            socket,
            public_id,
            principal,
            evicted: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            _counted: counted,
        })
    }

    /// Waits until socketioxide has marked the socket connected, which it
    /// does just *after* sending the namespace `CONNECT`: a client may emit
    /// the moment it sees that packet, and until the mark whatever is sent
    /// to the socket (the event's ack, a join's `user_joined`) is dropped
    /// as if the socket had gone. Microseconds, except on a loaded machine
    /// where the connecting task can be preempted in between; a socket that
    /// closes before it was ever marked waits [`CONNECT_PATIENCE`] once.
    pub async fn until_connected(&self) {
        if self.settled.load(Ordering::Acquire) {
            return;
        }
        let deadline = tokio::time::Instant::now() + CONNECT_PATIENCE;
        while !self.socket.connected() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(CONNECT_RETRY).await;
        }
        self.settled.store(true, Ordering::Release);
    }

    /// A fresh public id, unrelated to the session id (and, like it, 16
    /// characters kept inline).
    pub fn new_public_id() -> Sid {
        Sid::new()
    }

    /// The transport session id: a key for the sidecar's own maps only.
    pub fn sid(&self) -> Sid {
        self.socket.id
    }

    /// Who the connection's token speaks for (auth on), or `None`.
    pub fn user(&self) -> Option<&Sender> {
        self.principal.as_ref().map(|p| &p.user)
    }

    /// Who the connection is to the walls (docs/protocol.md §10): its
    /// user, and whether it is an operator.
    pub fn viewer(&self) -> Viewer {
        self.principal.clone().map(Viewer::from).unwrap_or_default()
    }

    /// The id others may see.
    pub fn public_id(&self) -> &str {
        self.public_id.as_str()
    }

    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// Not evicted. (A socket that disconnected is not asked: its
    /// departure is the last job of its queue, after every event it sent,
    /// and its events may come before socketioxide counts it connected.)
    pub fn is_live(&self) -> bool {
        !self.evicted.load(Ordering::Acquire)
    }

    /// Queues one event without waiting.
    /// Sends one of the server's events (but the change events).
    pub fn send_event(&self, event: &ServerEvent) -> Sent {
        self.send(event.name(), event)
    }

    pub fn send<T: ?Sized + Serialize>(&self, event: &str, data: &T) -> Sent {
        if self.evicted.load(Ordering::Acquire) {
            return Sent::Gone;
        }
        match self.socket.emit(event, data) {
            Ok(()) => Sent::Queued,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Sent::Full,
            Err(SendError::Socket(SocketError::Closed)) => Sent::Gone,
            Err(SendError::Serialize(e)) => {
                // Our own types always serialise; nothing a client controls.
                tracing::error!(error = %e, event, "could not encode an event");
                Sent::Gone
            }
        }
    }

    /// Queues one event, waiting (up to `patience`) while the outgoing
    /// buffer is full; for replays, which may be long. `Full` means it
    /// stayed full that long: the caller evicts it.
    pub async fn send_patiently<T: ?Sized + Serialize>(
        &self,
        event: &str,
        data: &T,
        patience: Duration,
    ) -> Sent {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.send(event, data) {
                Sent::Full if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                sent => return sent,
            }
        }
    }

    /// Marks the connection as unable to keep up, and disconnects it: now
    /// if the disconnect packet fits, else as soon as it does. Returns
    /// `true` the first time (the caller then forgets its memberships).
    pub fn evict(self: &Arc<Self>) -> bool {
        if self.evicted.swap(true, Ordering::AcqRel) {
            return false;
        }
        tracing::warn!(sid = %self.public_id, "member cannot keep up: disconnecting it");
        let peer = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + EVICT_PATIENCE;
            loop {
                match peer.socket.clone().disconnect() {
                    Err(SocketError::InternalChannelFull)
                        if tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(EVICT_RETRY).await;
                    }
                    _ => return,
                }
            }
        });
        true
    }
}
