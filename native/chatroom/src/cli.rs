//! `chatroom`'s command line: the whole backend on one port until SIGTERM
//! or Ctrl-C, then draining (stop accepting, finish the requests in
//! flight, close Socket.IO transports, clear presence; bounded by
//! `--shutdown-grace-secs`). `main.rs` only calls [`main`]; [`command`] is
//! the same definition, for checks of the deployment files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

use clap::CommandFactory;

use chatroom_front::access::{Access, AccessFlags};
use chatroom_front::serve::FrontFlags;
use chatroom_front::shutdown;
use chatroom_host::cli::HostFlags;
use chatroom_host::{HostOptions, SpinHost, VariableSource};
use chatroom_sidecar::Sidecar;
use chatroom_sidecar::cli::SidecarFlags;

/// chatroom: REST (the Spin component) and Socket.IO on one port.
#[derive(Debug, Parser)]
#[command(name = "chatroom", version)]
struct Args {
    /// Address to listen on, for REST and Socket.IO alike.
    #[arg(long, default_value = "127.0.0.1:3000", env = "CHATROOM_LISTEN")]
    listen: SocketAddr,
    /// The Spin manifest naming the REST component.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml"), env = "CHATROOM_MANIFEST")]
    manifest: PathBuf,
    #[command(flatten)]
    host: HostFlags,
    /// With `--auth-secret`: reads (rooms, history, users) need a token
    /// too (the component's `auth_private_reads`).
    #[arg(long, env = "CHATROOM_PRIVATE_READS")]
    private_reads: bool,
    #[command(flatten)]
    sidecar: SidecarFlags,
    #[command(flatten)]
    access: AccessFlags,
    #[command(flatten)]
    front: FrontFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Prints a token for `NAME`, signed with `--auth-secret` (or
    /// `CHATROOM_AUTH_SECRET`), for trying auth out locally.
    Token {
        /// The username the token speaks for (its `sub`).
        name: String,
        /// How long it is valid, in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        /// An operator's token: `--admin` moderates every room
        /// (docs/protocol.md §10.4).
        #[arg(long)]
        admin: bool,
    },
}

/// `chatroom token NAME`: a token signed with the auth secret.
fn print_token(secret: Option<&str>, name: &str, ttl: u64, admin: bool) -> anyhow::Result<()> {
    let key = secret
        .and_then(chatroom_core::auth::TokenKey::new)
        .ok_or_else(|| {
            anyhow::anyhow!("no secret: pass --auth-secret or set CHATROOM_AUTH_SECRET")
        })?;
    let user = chatroom_core::Sender::parse(name)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let roles: &[&str] = if admin {
        &[chatroom_core::auth::OPERATOR_ROLE]
    } else {
        &[]
    };
    let exp = now.as_secs().saturating_add(ttl);
    println!("{}", key.sign_with_roles(user.as_str(), exp, roles)?);
    Ok(())
}

/// The command line, as `--help` shows it.
pub fn command() -> clap::Command {
    Args::command()
}

/// Parses the command line and serves (or prints a token).
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Token { name, ttl, admin }) = &args.command {
        return print_token(args.sidecar.auth_secret.as_deref(), name, *ttl, *admin);
    }
    let front = Sidecar::front(args.front.start()?);
    let manifest = std::path::absolute(&args.manifest)?;
    let options = HostOptions {
        variables: component_settings(&args),
        ..args.host.options()?
    };
    let host = SpinHost::load(&manifest, options)?;
    let db_path = host.database_path();
    let config = crate::beside_host(&host, |path| {
        args.sidecar
            .config(chatroom_sidecar::DataSource::File(path))
    });
    let sidecar = Sidecar::start(config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let access = Access::new(&args.access.config());
    let app = crate::app(Arc::new(host), &sidecar, &access);
    println!("chatroom is up");
    println!("  REST       http://{local}/chatrooms");
    println!("  Socket.IO  http://{local}/socket.io/ (same origin)");
    println!("  data       {}", db_path.display());
    println!("Ctrl-C stops it.");
    front
        .serve(listener, app, shutdown::on_signal(), sidecar.close())
        .await?;
    Ok(())
}

/// The component's variables the command line sets (the auth secret, so
/// the component and the sidecar share it), over the environment's
/// `SPIN_VARIABLE_*`.
fn component_settings(args: &Args) -> VariableSource {
    let mut given = std::collections::BTreeMap::new();
    if let Some(secret) = args.sidecar.auth_secret.as_ref().filter(|s| !s.is_empty()) {
        given.insert("SPIN_VARIABLE_AUTH_SECRET".to_owned(), secret.clone());
    }
    given.insert(
        "SPIN_VARIABLE_CLIENT_ID_WINDOW_SECS".to_owned(),
        args.sidecar.client_id_window_secs.to_string(),
    );
    if args.private_reads {
        given.insert(
            "SPIN_VARIABLE_AUTH_PRIVATE_READS".to_owned(),
            "true".to_owned(),
        );
    }
    VariableSource::EnvironmentWith(given)
}
