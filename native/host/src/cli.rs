//! `chatroom-host`'s command line: serve a Spin application's HTTP
//! components like `spin up`, without Spin, until SIGTERM or Ctrl-C (then
//! drain: see [`chatroom_front::shutdown`]). `main.rs` only calls [`main`];
//! [`command`] is the same definition, for checks of the deployment files.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{CommandFactory, Parser};

use chatroom_front::serve::FrontFlags;
use chatroom_front::shutdown;

use crate::{HostOptions, RuntimeConfig, SpinHost, router};

/// Runs the HTTP components of a Spin manifest with Spin's SQLite store.
#[derive(Debug, Parser)]
#[command(name = "chatroom-host", version)]
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
    listen: std::net::SocketAddr,
    #[command(flatten)]
    host: HostFlags,
    #[command(flatten)]
    front: FrontFlags,
}

/// The host's flags beside the manifest, shared with `chatroom`: where the
/// data and the compiled components live, and Spin's runtime config.
#[derive(Debug, Clone, clap::Args)]
pub struct HostFlags {
    /// Directory of the SQLite file `sqlite_db.db` (Spin's `--state-dir`);
    /// default `.spin` beside the manifest, where `spin up` keeps it.
    #[arg(long, env = "CHATROOM_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory of compiled components, keyed by the `.wasm`'s SHA-256;
    /// default `$XDG_CACHE_HOME/chatroom` (or `~/.cache/chatroom`).
    #[arg(long, env = "CHATROOM_COMPILE_CACHE")]
    pub compile_cache: Option<PathBuf>,
    /// Spin's runtime config file (`spin up --runtime-config-file`):
    /// `[sqlite_database.default]` with `type = "spin"` and `path`
    /// (relative to the current directory), and `state_dir`; anything else
    /// it names is refused at start-up. (In `chatroom`, the sidecar uses
    /// the same file.)
    #[arg(long, env = "CHATROOM_RUNTIME_CONFIG_FILE")]
    pub runtime_config_file: Option<PathBuf>,
}

impl HostFlags {
    /// The host's options these flags ask for (the runtime config read
    /// and checked), over the defaults.
    pub fn options(&self) -> anyhow::Result<HostOptions> {
        let defaults = HostOptions::default();
        let runtime_config = match &self.runtime_config_file {
            Some(file) => RuntimeConfig::load(file)?,
            None => RuntimeConfig::default(),
        };
        Ok(HostOptions {
            state_dir: self.state_dir.clone(),
            compile_cache: self
                .compile_cache
                .clone()
                .or(defaults.compile_cache.clone()),
            runtime_config,
            ..defaults
        })
    }
}

/// The command line, as `--help` shows it.
pub fn command() -> clap::Command {
    Args::command()
}

/// Parses the command line and serves.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let front = args.front.start()?;
    let host = SpinHost::load(&args.manifest, args.host.options()?)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    // The only line on stdout (logs go to stderr), as the sidecar prints
    // it: what a script that asked for port 0 reads.
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        database = %host.database_path().display(),
        "serving"
    );
    let app = router(Arc::new(host));
    front
        .serve(listener, app, shutdown::on_signal(), async {})
        .await?;
    Ok(())
}
