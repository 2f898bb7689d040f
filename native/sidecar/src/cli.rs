//! The sidecar's command line: flags, logging, serving until Ctrl-C or
//! SIGTERM. `main.rs` only calls [`main`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::Uri;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::address_limits::AddressLimitsConfig;
use crate::front::{self, FrontLimits};
use crate::{
    DataSource, EdgeConfig, EventLimits, RedisConfig, Sidecar, SidecarConfig, SocketLimits,
    upstream,
};

/// The database file when neither `--db` nor `--rest-upstream` is given.
const DEFAULT_DB: &str = ".spin/sqlite_db.db";

/// Socket.IO rooms, presence and broadcasts for chatroom: on the SQLite
/// file the Spin component uses (file mode, `--db`), or through the REST
/// deployment's API alone (edge mode: `--rest-upstream` without `--db`).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one. Once bound, the
    /// sidecar prints one line on stdout, `listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:3001", env = "CHATROOM_LISTEN")]
    listen: SocketAddr,
    /// The shared SQLite file (Spin's default store): file mode. Default
    /// `.spin/sqlite_db.db`, unless `--rest-upstream` is given, which
    /// without `--db` means edge mode.
    #[arg(long, env = "CHATROOM_DB")]
    db: Option<PathBuf>,
    /// The REST deployment (e.g. http://127.0.0.1:3000 for `spin up`).
    /// Every non-Socket.IO request is forwarded there, so one origin serves
    /// REST and Socket.IO; without `--db` it is also where the data is.
    #[arg(long, env = "CHATROOM_REST_UPSTREAM")]
    rest_upstream: Option<Uri>,
    /// Edge mode: the token of the component's internal API (its
    /// `internal_token` variable).
    #[arg(long, env = "CHATROOM_INTERNAL_TOKEN", hide_env_values = true)]
    internal_token: Option<String>,
    /// Edge mode: the Redis server the component publishes new messages on
    /// (`redis://host:port`, its `redis_url` variable). Without it the
    /// feed is polled every `--poll-ms`.
    #[arg(long, env = "CHATROOM_REDIS_URL")]
    redis: Option<String>,
    /// Edge mode: the Redis channel (the component's `redis_channel`).
    #[arg(long, default_value = chatroom_core::internal::DEFAULT_CHANNEL, env = "CHATROOM_REDIS_CHANNEL")]
    redis_channel: String,
    /// This sidecar's name in the presence table: distinct for every
    /// sidecar of a deployment. A sidecar drops its own node's rows when it
    /// starts. Default: `local` in file mode, random in edge mode.
    #[arg(long, env = "CHATROOM_NODE_ID")]
    node_id: Option<String>,
    /// How long this sidecar's users stay listed if it stops renewing
    /// (it renews every third of this), in seconds.
    #[arg(long, default_value_t = 30, env = "CHATROOM_PRESENCE_LEASE_SECS")]
    presence_lease_secs: u64,
    #[command(flatten)]
    flags: SidecarFlags,
}

impl Args {
    /// Where the data is, from `--db`, `--rest-upstream` and the edge flags.
    fn source(&self) -> anyhow::Result<DataSource> {
        match (&self.db, &self.rest_upstream) {
            (Some(path), _) => Ok(DataSource::File(path.clone())),
            (None, None) => Ok(DataSource::File(DEFAULT_DB.into())),
            (None, Some(rest)) => {
                let token = self
                    .internal_token
                    .clone()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "edge mode (--rest-upstream without --db) needs --internal-token \
                             (or CHATROOM_INTERNAL_TOKEN): the component's internal_token variable"
                        )
                    })?;
                Ok(DataSource::Edge {
                    api: EdgeConfig {
                        rest_url: rest.to_string(),
                        token,
                    },
                    redis: self
                        .redis
                        .clone()
                        .filter(|r| !r.is_empty())
                        .map(|url| RedisConfig {
                            url,
                            channel: self.redis_channel.clone(),
                        }),
                })
            }
        }
    }
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
    /// Socket.IO connections one client address may hold open (`429`
    /// beyond); off unless set. Behind a proxy see --trust-forwarded-for.
    #[arg(long, env = "CHATROOM_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// REST writes one client address may make per minute (`429` with
    /// `Retry-After` beyond); off unless set.
    #[arg(long, env = "CHATROOM_WRITES_PER_MINUTE")]
    writes_per_minute: Option<u32>,
    /// Rooms one client address may create per hour; off unless set.
    #[arg(long, env = "CHATROOM_ROOMS_PER_HOUR")]
    rooms_per_hour: Option<u32>,
    /// Count clients by the last `X-Forwarded-For` entry (set this only
    /// behind a proxy that writes that header).
    #[arg(long, env = "CHATROOM_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// The secret of user tokens (HS256; the component's `auth_secret`):
    /// Socket.IO handshakes then need `auth: {token}`, and a connection
    /// speaks only as the token's user. Empty or unset: no auth.
    #[arg(long, env = "CHATROOM_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
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

    /// The sidecar's configuration on `source`.
    pub fn config(self, source: DataSource) -> SidecarConfig {
        let auth = self
            .auth_secret
            .as_deref()
            .and_then(chatroom_core::auth::TokenKey::new);
        SidecarConfig {
            auth,
            address_limits: AddressLimitsConfig {
                connections: self.max_connections_per_address,
                writes_per_minute: self.writes_per_minute,
                rooms_per_hour: self.rooms_per_hour,
                trust_forwarded_for: self.trust_forwarded_for,
            },
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
            ..SidecarConfig::with_source(source)
        }
    }
}

/// Parses the command line and serves.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.flags.start_logging()?;
    let source = args.source()?;
    let mut config = args.flags.config(source.clone());
    if let Some(node) = args.node_id {
        config.node_id = node;
    }
    config.presence_lease = Duration::from_secs(args.presence_lease_secs.max(3));
    let sidecar = Sidecar::start(config).await?;
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
        data = %describe(&source),
        rest_upstream = ?args.rest_upstream.map(|u| u.to_string()),
        "serving"
    );
    let app = sidecar
        .router(rest)
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(sidecar.shutdown())
        .await?;
    Ok(())
}

/// Where the data is, for the log (never the token).
fn describe(source: &DataSource) -> String {
    match source {
        DataSource::File(path) => format!("file {}", path.display()),
        DataSource::Edge { api, redis } => format!(
            "edge: REST {} with {}",
            api.rest_url,
            redis
                .as_ref()
                .map_or("feed polling".to_owned(), |r| format!(
                    "Redis wake-ups on {}",
                    r.channel
                ))
        ),
    }
}
