//! `chatroom-host`: serve a Spin application's HTTP components like
//! `spin up`, without Spin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use chatroom_host::{HostOptions, RuntimeConfig, SpinHost, serve};

/// Runs the HTTP components of a Spin manifest with Spin's SQLite store.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The Spin manifest.
    #[arg(
        long,
        short = 'f',
        default_value = "spin.toml",
        env = "CHATROOM_MANIFEST"
    )]
    manifest: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000", env = "CHATROOM_LISTEN")]
    listen: SocketAddr,
    /// Directory for `sqlite_db.db` (Spin's `--state-dir`); default `.spin`
    /// beside the manifest.
    #[arg(long, env = "CHATROOM_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Directory of compiled components, keyed by the `.wasm`'s SHA-256;
    /// default `$XDG_CACHE_HOME/chatroom` (or `~/.cache/chatroom`).
    #[arg(long, env = "CHATROOM_COMPILE_CACHE")]
    compile_cache: Option<PathBuf>,
    /// Spin's runtime config file: `[sqlite_database.default]` with
    /// `type = "spin"` and `path` (relative to the current directory), and
    /// `state_dir`; anything else it names is refused at start-up.
    #[arg(long, env = "CHATROOM_RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let defaults = HostOptions::default();
    let runtime_config = match &args.runtime_config_file {
        Some(file) => RuntimeConfig::load(file)?,
        None => RuntimeConfig::default(),
    };
    let host = SpinHost::load(
        &args.manifest,
        HostOptions {
            state_dir: args.state_dir,
            compile_cache: args.compile_cache.or(defaults.compile_cache.clone()),
            runtime_config,
            ..defaults
        },
    )?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        database = %host.database_path().display(),
        "serving"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    serve(Arc::new(host), listener, shutdown).await?;
    Ok(())
}
