//! The sidecar's command line: flags, logging, serving until Ctrl-C or
//! SIGTERM. `main.rs` only calls [`main`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::Uri;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{Sidecar, SidecarConfig, upstream};

/// Socket.IO rooms, presence and broadcasts on chatroom's SQLite file.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3001", env = "CHATROOM_LISTEN")]
    listen: SocketAddr,
    /// The shared SQLite file (Spin's default store).
    #[arg(long, default_value = ".spin/sqlite_db.db", env = "CHATROOM_DB")]
    db: PathBuf,
    /// Forward every non-Socket.IO request here (e.g. http://127.0.0.1:3000
    /// for `spin up`), so one origin serves REST and Socket.IO.
    #[arg(long, env = "CHATROOM_REST_UPSTREAM")]
    rest_upstream: Option<Uri>,
    /// Origins allowed by CORS (repeat, or comma-separated); `*` for any.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "*",
        env = "CHATROOM_CORS_ORIGINS"
    )]
    cors_origin: Vec<String>,
    /// Safety poll of the database, in milliseconds.
    #[arg(long, default_value_t = 500, env = "CHATROOM_POLL_MS")]
    poll_ms: u64,
    /// Log filter: a level (`debug`) or `tracing` directives
    /// (`info,chatroom_sidecar=debug`).
    #[arg(long, default_value = "info", env = "RUST_LOG")]
    log: String,
}

/// Starts `tracing` output to stderr with `filter` (see `--log`).
pub fn init_logging(filter: &str) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter)?)
        .init();
    Ok(())
}

/// Parses the command line and serves.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args.log)?;
    let sidecar = Sidecar::start(SidecarConfig {
        db_path: args.db.clone(),
        cors_origins: args.cors_origin,
        poll_interval: Duration::from_millis(args.poll_ms),
    })
    .await?;
    let rest = match args.rest_upstream.clone() {
        Some(base) => upstream::forward_to(base),
        None => upstream::not_found(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(
        socket_io = %format!("http://{}/socket.io/", listener.local_addr()?),
        database = %args.db.display(),
        rest_upstream = ?args.rest_upstream.map(|u| u.to_string()),
        "serving"
    );
    axum::serve(listener, sidecar.router(rest))
        .with_graceful_shutdown(sidecar.shutdown())
        .await?;
    Ok(())
}
