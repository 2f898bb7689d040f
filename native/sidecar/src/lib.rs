//! The chatroom Socket.IO sidecar: persistent connections, rooms, presence,
//! and ordered, exactly-once broadcasts of every new message (docs/protocol.md §3, §4).
//!
//! It reaches the data one of two ways ([`DataSource`]), behind one trait,
//! `store::ChatStore`: in file mode it opens the SQLite file the Spin
//! component uses (`file_store`); in edge mode (docs/protocol.md §6) it has
//! only the component's HTTP API (`edge_store`), and Redis wake-ups when
//! there are any, so several sidecars can serve one REST deployment.
//!
//! [`Sidecar::start`] reaches the data, drops what an earlier process with
//! its node id left in presence (a fresh process has no connections), takes
//! its presence lease, and starts the [`MessageTail`] (which feeds the
//! [`rooms::RoomRegistry`]) and its wake-ups. Each connection's events run
//! in order on its own task (`events`), under the limits of [`SocketLimits`].
//! [`Sidecar::router`] wraps any axum router carrying the non-Socket.IO HTTP
//! (a forwarder to `spin up`, or the embedded Spin host) with Socket.IO on
//! `/socket.io/` and `/metrics`, so one origin serves both; the binaries
//! serve it through `chatroom_front` (access, listener, draining) with the
//! websocket reads of [`Sidecar::front`].

pub mod cli;
mod db;
pub mod edge;
mod edge_store;
mod eraser;
mod event_guard;
mod events;
mod file_store;
mod identity;
pub mod metrics;
mod own_head;
mod peer;
mod presence;
mod pruner;
mod relay;
pub mod rooms;
mod store;
mod tail;
mod typing;
mod wakeups;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chatroom_core::Retention;
use chatroom_dbfile::DatabaseFile;
use socketioxide::SocketIo;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::Notify;

pub use crate::db::Db;
pub use crate::edge::EdgeConfig;
use crate::eraser::OldPageEraser;
pub use crate::events::EventLimits;
use crate::metrics::{Metrics, Snapshot};
pub use crate::peer::ConnectionCount;
use crate::presence::PresenceStore;
use crate::rooms::RoomRegistry;
use crate::store::SharedStore;
pub use crate::tail::MessageTail;
use crate::wakeups::RedisWakeups;
use crate::watch::DatabaseWatch;
use chatroom_front::serve::Front;

/// Where the sidecar reads and writes chat data.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// File mode: the SQLite file Spin's `default` store uses
    /// (`.spin/sqlite_db.db`), opened directly.
    File(PathBuf),
    /// Edge mode: only the REST component's API, woken by Redis when
    /// `redis` is set, else polling the feed.
    Edge {
        api: EdgeConfig,
        redis: Option<RedisConfig>,
    },
}

/// The Redis server and channel the component publishes new messages on.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port`, or `rediss://` for TLS.
    pub url: String,
    pub channel: String,
    /// A private CA's certificates (PEM) to trust for `rediss://`, beyond
    /// the system's.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &wakeups::without_password(&self.url))
            .field("channel", &self.channel)
            .field("private_ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// The default presence lease (docs/protocol.md §6).
pub const PRESENCE_LEASE: Duration = Duration::from_secs(30);
/// How often retention is applied unless configured: once a minute.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// The node id of a file-mode sidecar unless told otherwise: one sidecar
/// per file, so a restart drops whatever its predecessor left.
pub const FILE_NODE_ID: &str = "local";

/// The websocket read buffer of one connection, in bytes.
const WS_READ_BUFFER: usize = 128;

/// How the sidecar is set up.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// Where the data is.
    pub source: DataSource,
    /// This sidecar's name in the presence table. A sidecar starting drops
    /// the rows of its node id; distinct sidecars need distinct ids.
    pub node_id: String,
    /// How long this sidecar's presence rows count without a renewal.
    pub presence_lease: Duration,
    /// The tail's safety poll, for changes the file watch or Redis missed
    /// (in edge mode without Redis, the only way new messages are found).
    pub poll_interval: Duration,
    /// What one connection may send and have queued.
    pub limits: SocketLimits,
    /// Watch the file for other processes' commits (the REST component's);
    /// off, only the safety poll finds them. On by default; tests turn it
    /// off to prove each wake-up path alone.
    pub watch_file: bool,
    /// The owner of the database file when something else in this process
    /// uses it too (the default run's Spin host: `SpinHost::database`): the
    /// sidecar's writes take turns with the host's at its gate, and the
    /// tail delivers on its commits at once, with no file watch needed.
    /// Must be the file of `source`; `None` makes one of its own.
    pub database: Option<DatabaseFile>,
    /// The auth secret's key (docs/protocol.md §7): with one, Socket.IO handshakes need
    /// a token and a connection speaks only as the token's user.
    pub auth: Option<chatroom_core::auth::TokenKey>,
    /// What history is kept (docs/protocol.md §4.6): everything unless
    /// set.
    pub retention: Retention,
    /// How often the retention policy is applied.
    pub retention_interval: Duration,
    /// How long a message's `client_id` is remembered (file mode; in edge
    /// mode the component's `client_id_window_secs`).
    pub client_id_window: Duration,
}

/// The limits on one Socket.IO connection (docs/protocol.md §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SocketLimits {
    /// Incoming events: rate, burst and queue.
    pub events: EventLimits,
    /// Outgoing packets queued for one connection; a member whose buffer
    /// is full cannot keep up and is disconnected.
    pub max_buffered_packets: usize,
    /// Largest incoming Engine.IO payload (a polling body, a websocket
    /// message or frame); beyond it the connection is closed. Event
    /// payloads above 64 KiB but within this get a `payload_too_large`.
    pub max_payload: u64,
    /// A room with more members than this on one sidecar is large: its
    /// `user_joined` and `user_left` go only to the socket they are about
    /// (announcing every join to everyone is n² deliveries).
    pub presence_room_max: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            events: EventLimits::default(),
            max_buffered_packets: 4096,
            max_payload: (1 << 20) + (16 << 10),
            presence_room_max: 1000,
        }
    }
}

impl SidecarConfig {
    /// File mode on `db_path`.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        SidecarConfig::with_source(DataSource::File(db_path.into()))
    }

    /// Defaults for `source`: node id [`FILE_NODE_ID`] in file mode, a
    /// random one in edge mode.
    pub fn with_source(source: DataSource) -> Self {
        let node_id = match source {
            DataSource::File(_) => FILE_NODE_ID.to_owned(),
            DataSource::Edge { .. } => random_node_id(),
        };
        SidecarConfig {
            source,
            node_id,
            presence_lease: PRESENCE_LEASE,
            poll_interval: Duration::from_millis(500),
            limits: SocketLimits::default(),
            watch_file: true,
            database: None,
            auth: None,
            retention: Retention::default(),
            retention_interval: RETENTION_INTERVAL,
            client_id_window: Duration::from_millis(
                chatroom_core::limits::CLIENT_ID_WINDOW_MS.unsigned_abs(),
            ),
        }
    }
}

/// A running sidecar.
pub struct Sidecar {
    io: SocketIo,
    connections: ConnectionCount,
    presence: PresenceStore,
    max_payload: u64,
    layer: SocketIoLayer,
    tail: MessageTail,
    rooms: Arc<RoomRegistry>,
    _watch: Option<DatabaseWatch>,
    _redis: Option<RedisWakeups>,
}

/// Where a sidecar's data is, as it starts: the store, what wakes its tail
/// when another process commits, and (file mode only) the eraser of old
/// pages.
struct Storage {
    store: SharedStore,
    commits: Arc<Notify>,
    eraser: Option<OldPageEraser>,
}

impl Storage {
    fn open(config: &SidecarConfig) -> anyhow::Result<Self> {
        match &config.source {
            DataSource::File(path) => {
                let file = match &config.database {
                    Some(file) if file.path() == path => file.clone(),
                    Some(file) => anyhow::bail!(
                        "the database file given ({}) is not the source's ({})",
                        file.path().display(),
                        path.display()
                    ),
                    None => DatabaseFile::new(path),
                };
                let commits = file.commits().clone();
                let db = Db::open(file)?;
                Ok(Storage {
                    eraser: Some(OldPageEraser::start(db.clone())),
                    store: Arc::new(db),
                    commits,
                })
            }
            DataSource::Edge { api, .. } => Ok(Storage {
                store: Arc::new(edge::EdgeApi::new(api)),
                commits: Arc::new(Notify::new()),
                eraser: None,
            }),
        }
    }
}

/// Socket.IO's layer and handle, within the sidecar's limits.
fn socket_io(limits: &SocketLimits) -> (SocketIoLayer, SocketIo) {
    let frame = usize::try_from(limits.max_payload).unwrap_or(usize::MAX);
    SocketIo::builder()
        .req_path(chatroom_front::SOCKET_IO_PATH)
        .max_buffer_size(limits.max_buffered_packets.max(1))
        .max_payload(limits.max_payload)
        .ws_max_message_size(frame)
        .ws_max_frame_size(frame)
        // Each websocket keeps its read buffer while idle: chat frames
        // are small (bigger ones are read in steps, from the front
        // listener's buffer, not the socket), 4 KiB by default.
        .ws_read_buffer_size(WS_READ_BUFFER)
        .build_layer()
}

/// What wakes the tail besides its own writes: in file mode the file's
/// watch (unless off), in edge mode Redis (when configured).
fn wake_ups(
    config: &SidecarConfig,
    tail: &MessageTail,
    rooms: &Arc<RoomRegistry>,
) -> anyhow::Result<(Option<DatabaseWatch>, Option<RedisWakeups>)> {
    Ok(match &config.source {
        DataSource::File(path) => (
            config
                .watch_file
                .then(|| DatabaseWatch::start(path, tail.clone()))
                .transpose()?,
            None,
        ),
        DataSource::Edge { redis, .. } => (
            None,
            redis
                .as_ref()
                .map(|r| RedisWakeups::start(r, &config.node_id, tail.clone(), rooms.clone()))
                .transpose()?,
        ),
    })
}

/// A node id no other sidecar has: `edge-` and 64 random bits.
fn random_node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("edge-{:016x}", h.finish())
}

impl Sidecar {
    pub async fn start(config: SidecarConfig) -> anyhow::Result<Self> {
        let Storage {
            store,
            commits,
            eraser,
        } = Storage::open(&config)?;
        chatroom_core::parse_node_token("node id", &config.node_id)?;
        let presence = PresenceStore::new(store.clone(), &config.node_id, config.presence_lease);
        presence.start().await?;
        let presence_handle = presence.clone();
        let limits = config.limits;
        let (layer, io) = socket_io(&limits);
        let cursor = store.latest_seq().await?;
        let metrics = Metrics::default();
        let rooms = RoomRegistry::new(cursor, presence.clone(), metrics, limits.presence_room_max);
        presence.keep_lease(Arc::downgrade(&rooms), RoomRegistry::listed);
        let tail = MessageTail::start(
            store.clone(),
            rooms.clone(),
            config.poll_interval,
            commits,
            eraser.clone(),
        );
        pruner::start(
            store.clone(),
            config.retention,
            config.retention_interval,
            eraser,
        );
        let connections = ConnectionCount::default();
        let typing = typing::TypingBoard::new(&rooms);
        let chat = Arc::new(events::Chat {
            store,
            tail: tail.clone(),
            rooms,
            presence,
            limits: limits.events,
            connections: connections.clone(),
            auth: config.auth.clone(),
            typing,
            client_id_window_ms: i64::try_from(config.client_id_window.as_millis())
                .unwrap_or(i64::MAX),
            clock: governor::clock::DefaultClock::default(),
        });
        events::register(&io, chat.clone());
        let (watch, redis) = wake_ups(&config, &tail, &chat.rooms)?;
        Ok(Sidecar {
            io,
            connections,
            presence: presence_handle,
            max_payload: limits.max_payload,
            layer,
            tail,
            rooms: chat.rooms.clone(),
            _watch: watch,
            _redis: redis,
        })
    }

    /// `front`, to serve a sidecar's router on: with websocket frames read
    /// through the event-name guard.
    pub fn front(front: Front) -> Front {
        Front {
            upgraded: Some(event_guard::frame_guard),
            ..front
        }
    }

    /// `rest` with Socket.IO on `/socket.io/` and the metrics on
    /// `/metrics`. Long-polling bodies pass the event-name guard first
    /// (websocket frames pass it in the listener of [`Sidecar::front`]).
    pub fn router(&self, rest: Router) -> Router {
        let max_payload = usize::try_from(self.max_payload).unwrap_or(usize::MAX);
        let (rooms, connections) = (self.rooms.clone(), self.connections.clone());
        let metrics = axum::routing::get(move || {
            let (joined_sockets, rooms_with_members) = rooms.occupancy();
            let now = Snapshot {
                connections: connections.get(),
                joined_sockets,
                rooms_with_members,
            };
            std::future::ready(rooms.metrics().render(now))
        });
        rest.route("/metrics", chatroom_front::forward::get_only(metrics))
            .layer(self.layer.clone())
            .layer(axum::middleware::from_fn(own_head::for_socket_io))
            .layer(axum::middleware::from_fn(move |req, next| {
                event_guard::guard_polling(max_payload, req, next)
            }))
    }

    /// How many connections it holds state for, live.
    pub fn connections(&self) -> ConnectionCount {
        self.connections.clone()
    }

    /// The Socket.IO handle (for emitting from elsewhere).
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// The message tail (to wake it from elsewhere).
    pub fn tail(&self) -> &MessageTail {
        &self.tail
    }

    /// Lets go of everything held open, on the way out: every Socket.IO
    /// connection's transport is closed (clients see the transport close
    /// and reconnect, elsewhere behind a load balancer), and this node's
    /// users leave the presence table, so REST does not list them once it
    /// is gone.
    pub async fn close(&self) {
        self.io.close().await;
        if let Err(e) = self.presence.drop_all().await {
            tracing::warn!(error = %e, "could not clear presence on the way out");
        }
    }

    /// Whether the tail's last read of new messages worked.
    pub fn is_reading(&self) -> bool {
        self.tail.is_reading()
    }
}
