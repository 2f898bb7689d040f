//! The sidecar's command line: flags, logging, serving until Ctrl-C or
//! SIGTERM. `main.rs` only calls [`main`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::Uri;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::front::{self, FrontLimits};
use crate::{EventLimits, Sidecar, SidecarConfig, SocketLimits, upstream};

/// Socket.IO rooms, presence and broadcasts on chatroom's SQLite file.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one. Once bound, the
    /// sidecar prints one line on stdout, `listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:3001", env = "CHATROOM_LISTEN")]
    listen: SocketAddr,
    /// The shared SQLite file (Spin's default store).
    #[arg(long, default_value = ".spin/sqlite_db.db", env = "CHATROOM_DB")]
    db: PathBuf,
    /// Forward every non-Socket.IO request here (e.g. http://127.0.0.1:3000
    /// for `spin up`), so one origin serves REST and Socket.IO.
    #[arg(long, env = "CHATROOM_REST_UPSTREAM")]
    rest_upstream: Option<Uri>,
    #[command(flatten)]
    flags: SidecarFlags,
}

/// The flags the sidecar shares with the default run (`chatroom`).
#[derive(Debug, clap::Args)]
pub struct SidecarFlags {
    /// Origins allowed by CORS and to open Socket.IO connections (repeat,
    /// or comma-separated); `*` for any. Socket.IO requests from another
    /// browser origin get `403` `origin_not_allowed`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "*",
        env = "CHATROOM_CORS_ORIGINS"
    )]
    cors_origin: Vec<String>,
    /// Safety poll of the database by the broadcast tail, in milliseconds.
    #[arg(long, default_value_t = 500, env = "CHATROOM_POLL_MS")]
    poll_ms: u64,
    /// Events one Socket.IO connection may send per second, sustained
    /// (excess ones get a `rate_limited` error); 0 turns the limit off.
    #[arg(long, default_value_t = 50.0, env = "CHATROOM_EVENT_RATE")]
    event_rate: f64,
    /// Events one connection may send in a burst above that rate.
    #[arg(long, default_value_t = 100, env = "CHATROOM_EVENT_BURST")]
    event_burst: u32,
    /// Events of one connection waiting to be handled; more are refused
    /// as `rate_limited` (raise it with `--event-rate 0` for benchmarks).
    #[arg(long, default_value_t = 128, env = "CHATROOM_EVENT_QUEUE")]
    event_queue: usize,
    /// Outgoing packets queued for one connection before it counts as
    /// unable to keep up and is disconnected.
    #[arg(long, default_value_t = 4096, env = "CHATROOM_MAX_BUFFERED_PACKETS")]
    max_buffered_packets: usize,
    /// Log filter: a level (`debug`) or `tracing` directives
    /// (`info,chatroom_sidecar=debug`).
    #[arg(long, default_value = "info", env = "RUST_LOG")]
    log: String,
}

impl SidecarFlags {
    /// Starts `tracing` output to stderr as `--log` says.
    pub fn start_logging(&self) -> anyhow::Result<()> {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(EnvFilter::try_new(&self.log)?)
            .init();
        Ok(())
    }

    /// The sidecar's configuration on `db_path`.
    pub fn config(self, db_path: PathBuf) -> SidecarConfig {
        SidecarConfig {
            db_path,
            cors_origins: self.cors_origin,
            poll_interval: Duration::from_millis(self.poll_ms),
            limits: SocketLimits {
                events: EventLimits {
                    rate: self.event_rate.max(0.0),
                    burst: self.event_burst,
                    queue: self.event_queue,
                },
                max_buffered_packets: self.max_buffered_packets,
                ..SocketLimits::default()
            },
            watch_file: true,
            commits: None,
        }
    }
}

/// Parses the command line and serves.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.flags.start_logging()?;
    let sidecar = Sidecar::start(args.flags.config(args.db.clone())).await?;
    let rest = match args.rest_upstream.clone() {
        Some(base) => upstream::forward_to(base),
        None => upstream::not_found(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let listener = front::listen(listener, FrontLimits::default());
    // The only line on stdout (logs go to stderr): what a script or test
    // that asked for port 0 reads to find the sidecar.
    println!("listening on http://{local}");
    tracing::info!(
        socket_io = %format!("http://{local}/socket.io/"),
        database = %args.db.display(),
        rest_upstream = ?args.rest_upstream.map(|u| u.to_string()),
        "serving"
    );
    axum::serve(listener, sidecar.router(rest))
        .with_graceful_shutdown(sidecar.shutdown())
        .await?;
    Ok(())
}
