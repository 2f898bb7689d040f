//! `chatroom`: the whole backend on one port. `cargo run --release` builds
//! the Spin component and starts this.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use chatroom_host::{HostOptions, RuntimeConfig, SpinHost};
use chatroom_sidecar::Sidecar;
use chatroom_sidecar::cli::SidecarFlags;
use chatroom_sidecar::front::{self, FrontLimits};

/// chatroom: REST (the Spin component) and Socket.IO on one port.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on, for REST and Socket.IO alike.
    #[arg(long, default_value = "127.0.0.1:3000", env = "CHATROOM_LISTEN")]
    listen: SocketAddr,
    /// The Spin manifest naming the REST component.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml"), env = "CHATROOM_MANIFEST")]
    manifest: PathBuf,
    /// Directory of the SQLite file `sqlite_db.db` (Spin's `--state-dir`);
    /// default `.spin` beside the manifest, where `spin up` keeps it.
    #[arg(long, env = "CHATROOM_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Directory of compiled components, keyed by the `.wasm`'s SHA-256;
    /// default `$XDG_CACHE_HOME/chatroom` (or `~/.cache/chatroom`).
    #[arg(long, env = "CHATROOM_COMPILE_CACHE")]
    compile_cache: Option<PathBuf>,
    /// Spin's runtime config file (`spin up --runtime-config-file`):
    /// `[sqlite_database.default]` with `type = "spin"` and `path`
    /// (relative to the current directory), and `state_dir`; anything else
    /// it names is refused at start-up. The sidecar uses the same file.
    #[arg(long, env = "CHATROOM_RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,
    #[command(flatten)]
    sidecar: SidecarFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.sidecar.start_logging()?;
    let manifest = std::path::absolute(&args.manifest)?;
    let defaults = HostOptions::default();
    let commits = defaults.commits.clone();
    let runtime_config = match &args.runtime_config_file {
        Some(file) => RuntimeConfig::load(file)?,
        None => RuntimeConfig::default(),
    };
    let host = SpinHost::load(
        &manifest,
        HostOptions {
            state_dir: args.state_dir,
            compile_cache: args.compile_cache.or(defaults.compile_cache.clone()),
            runtime_config,
            ..defaults
        },
    )?;
    let db_path = host.database_path();
    let config = chatroom::beside_host(
        args.sidecar
            .config(chatroom_sidecar::DataSource::File(db_path.clone())),
        commits,
    );
    let sidecar = Sidecar::start(config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let listener = front::listen(listener, FrontLimits::default());
    let app = chatroom::app(Arc::new(host), &sidecar, local);
    println!("chatroom is up");
    println!("  REST       http://{local}/chatrooms");
    println!("  Socket.IO  http://{local}/socket.io/ (same origin)");
    println!("  data       {}", db_path.display());
    println!("Ctrl-C stops it.");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(sidecar.shutdown())
    .await?;
    Ok(())
}
