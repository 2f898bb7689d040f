//! The chatroom Socket.IO sidecar: persistent connections, rooms, presence,
//! and ordered, exactly-once broadcasts of every new message row, on the same
//! SQLite file the Spin component uses (SPEC §3, §4).
//!
//! [`Sidecar::start`] opens the database, clears presence (a fresh process
//! has no connections), and starts the [`MessageTail`] and the file watch.
//! [`Sidecar::router`] wraps any axum router carrying the non-Socket.IO HTTP
//! (a forwarder to `spin up`, or the embedded Spin host) with Socket.IO on
//! `/socket.io/` and CORS, so one origin serves both; when allowed origins
//! are configured, Socket.IO from other origins is refused (`origin`).

pub mod cli;
mod db;
mod events;
mod origin;
mod tail;
pub mod upstream;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use chatroom_core::presence;
use socketioxide::SocketIo;
use socketioxide::layer::SocketIoLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

pub use crate::db::Db;
use crate::origin::AllowedOrigins;
pub use crate::tail::MessageTail;
use crate::watch::DatabaseWatch;

/// How the sidecar is set up.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// The shared database file (`.spin/sqlite_db.db`).
    pub db_path: PathBuf,
    /// Origins allowed by CORS and to open Socket.IO connections; empty or
    /// `*` allows any.
    pub cors_origins: Vec<String>,
    /// The tail's safety poll, for changes the file watch missed.
    pub poll_interval: Duration,
    /// Watch the file for other processes' commits (the REST component's);
    /// off, only the safety poll finds them. On by default; tests turn it
    /// off to prove each wake-up path alone.
    pub watch_file: bool,
}

impl SidecarConfig {
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        SidecarConfig {
            db_path: db_path.into(),
            cors_origins: Vec::new(),
            poll_interval: Duration::from_millis(500),
            watch_file: true,
        }
    }
}

/// Packets one connection may have queued; generous, so bursts and replays
/// are not refused for an ordinary client.
const MAX_BUFFERED_PACKETS: usize = 16 * 1024;
/// Largest Socket.IO packet the transport accepts. Event payloads above
/// 64 KiB are answered with `payload_too_large`; this only bounds memory.
const MAX_TRANSPORT_PAYLOAD: u64 = 8 << 20;

/// A running sidecar.
pub struct Sidecar {
    io: SocketIo,
    layer: SocketIoLayer,
    tail: MessageTail,
    cors: CorsLayer,
    origins: AllowedOrigins,
    _watch: Option<DatabaseWatch>,
}

impl Sidecar {
    pub async fn start(config: SidecarConfig) -> anyhow::Result<Self> {
        let db = Db::open(&config.db_path)?;
        db.run(presence::clear).await?;
        let (layer, io) = SocketIo::builder()
            .max_buffer_size(MAX_BUFFERED_PACKETS)
            .max_payload(MAX_TRANSPORT_PAYLOAD)
            .build_layer();
        let tail = MessageTail::start(db.clone(), io.clone(), config.poll_interval).await?;
        let chat = Arc::new(events::Chat {
            db,
            tail: tail.clone(),
            members: events::Memberships::default(),
        });
        events::register(&io, chat);
        let watch = config
            .watch_file
            .then(|| DatabaseWatch::start(&config.db_path, tail.clone()))
            .transpose()?;
        Ok(Sidecar {
            io,
            layer,
            tail,
            cors: cors(&config.cors_origins),
            origins: AllowedOrigins::new(&config.cors_origins),
            _watch: watch,
        })
    }

    /// `rest` with Socket.IO on `/socket.io/` (refused to origins not
    /// allowed) and CORS around both.
    pub fn router(&self, rest: Router) -> Router {
        rest.layer(self.layer.clone())
            .layer(from_fn_with_state(self.origins.clone(), origin::check))
            .layer(self.cors.clone())
    }

    /// The Socket.IO handle (for emitting from elsewhere).
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// The message tail (to wake it from elsewhere).
    pub fn tail(&self) -> &MessageTail {
        &self.tail
    }

    /// Resolves on Ctrl-C or SIGTERM once every Socket.IO connection is
    /// closed (clients see a disconnect and reconnect elsewhere), so that a
    /// graceful HTTP shutdown does not wait forever on open sockets.
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let io = self.io.clone();
        async move {
            shutdown_signal().await;
            io.close().await;
        }
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let any = origins.is_empty() || origins.iter().any(|o| o == "*");
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(Any)
        .allow_headers(Any)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
