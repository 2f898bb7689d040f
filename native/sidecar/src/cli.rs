//! The sidecar's command line: flags, logging, serving until SIGTERM or
//! Ctrl-C, then draining. `main.rs` only calls [`main`]; [`command`] is the
//! same definition, for checks of the deployment files.
//!
//! It listens at once. In edge mode it then waits for the REST deployment
//! (retrying with capped backoff, saying why): meanwhile `/healthz` answers
//! `503` and Socket.IO is refused with `503`, while REST is forwarded as
//! usual. A refused certificate or internal token stops the start with a
//! message saying what to fix; an upstream that is only away does not.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::{CommandFactory, Parser};
use tower::ServiceExt;

use chatroom_core::{ApiError, Retention};
use chatroom_front::access::{Access, AccessFlags};
use chatroom_front::serve::FrontFlags;
use chatroom_front::shutdown;

use crate::edge::{EdgeApi, Readiness};
use crate::{
    DataSource, EdgeConfig, EventLimits, RedisConfig, Sidecar, SidecarConfig, SocketLimits, wakeups,
};
use chatroom_front::forward as upstream;
use chatroom_front::rest_upstream::{self, RestUpstream};

/// The database file when neither `--db` nor `--rest-upstream` is given.
const DEFAULT_DB: &str = ".spin/sqlite_db.db";

/// Socket.IO rooms, presence and broadcasts for chatroom: on the SQLite
/// file the Spin component uses (file mode, `--db`), or through the REST
/// deployment's API alone (edge mode: `--rest-upstream` without `--db`).
#[derive(Debug, Parser)]
#[command(name = "chatroom-sidecar", version)]
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
    /// The REST deployment (e.g. http://127.0.0.1:3000 for `spin up`, or
    /// https://app.example.com/chat: the path prefix is kept). Every
    /// non-Socket.IO request is forwarded there, so one origin serves REST
    /// and Socket.IO; without `--db` it is also where the data is.
    #[arg(long, env = "CHATROOM_REST_UPSTREAM")]
    rest_upstream: Option<String>,
    /// PEM certificates of a private CA to trust for an https:// upstream
    /// and rediss:// Redis, beyond the system's roots; default: the file
    /// `SSL_CERT_FILE` names, if set.
    #[arg(long, env = "CHATROOM_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Edge mode: the token of the component's internal API (its
    /// `internal_token` variable).
    #[arg(long, env = "CHATROOM_INTERNAL_TOKEN", hide_env_values = true)]
    internal_token: Option<String>,
    /// Edge mode: the Redis server the component publishes new messages on
    /// (`redis://[user:password@]host:port`, or `rediss://` for TLS; its
    /// `redis_url` variable). Without it the feed is polled every
    /// `--poll-ms`.
    #[arg(long, env = "CHATROOM_REDIS_URL", hide_env_values = true)]
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
    #[command(flatten)]
    access: AccessFlags,
    #[command(flatten)]
    front: FrontFlags,
}

impl Args {
    /// [`Args::source`], checked before anything is served: Redis answers
    /// (edge mode), and a TLS upstream's certificate verifies (file mode
    /// with forwarding).
    async fn checked_source(
        &self,
        upstream: Option<&RestUpstream>,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<DataSource> {
        let source = self.source(upstream, ca_file)?;
        if let DataSource::Edge {
            redis: Some(redis), ..
        } = &source
        {
            wakeups::check(redis).await?;
        }
        if let (DataSource::File(_), Some(upstream)) = (&source, upstream) {
            upstream.check_tls().await?;
        }
        Ok(source)
    }

    /// The sidecar's configuration for `source`, from the flags.
    fn config(&self, source: DataSource) -> SidecarConfig {
        let mut config = self.flags.clone().config(source);
        if let Some(node) = &self.node_id {
            config.node_id = node.clone();
        }
        config.presence_lease = Duration::from_secs(self.presence_lease_secs.max(3));
        config
    }

    /// Where the data is, from `--db`, `--rest-upstream` and the edge flags.
    fn source(
        &self,
        upstream: Option<&RestUpstream>,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<DataSource> {
        match (&self.db, upstream) {
            (Some(path), _) => Ok(DataSource::File(path.clone())),
            (None, None) => Ok(DataSource::File(DEFAULT_DB.into())),
            (None, Some(upstream)) => {
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
                let ca_pem = ca_file.map(rest_upstream::read_ca_file).transpose()?;
                Ok(DataSource::Edge {
                    api: EdgeConfig {
                        upstream: upstream.clone(),
                        token,
                    },
                    redis: self
                        .redis
                        .clone()
                        .filter(|r| !r.is_empty())
                        .map(|url| RedisConfig {
                            url,
                            channel: self.redis_channel.clone(),
                            ca_pem,
                        }),
                })
            }
        }
    }
}

/// The Socket.IO flags the sidecar shares with the default run
/// (`chatroom`).
#[derive(Debug, Clone, clap::Args)]
pub struct SidecarFlags {
    /// Safety poll of the database (or, in edge mode, of the component's
    /// feed) by the broadcast tail, in milliseconds. Default: 500; an edge
    /// sidecar with `--redis` is woken by Redis, so its poll is only a
    /// safety net for a lost wake-up, every 30 s (each poll is a component
    /// call a metered host counts: docs/operations.md).
    #[arg(long, env = "CHATROOM_POLL_MS")]
    poll_ms: Option<u64>,
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
    /// Members of one room on this sidecar beyond which `user_joined` and
    /// `user_left` go only to the socket they are about.
    #[arg(long, default_value_t = 1000, env = "CHATROOM_PRESENCE_ROOM_MAX")]
    presence_room_max: usize,
    /// The secret of user tokens (HS256; the component's `auth_secret`):
    /// Socket.IO handshakes then need `auth: {token}`, and a connection
    /// speaks only as the token's user. Empty or unset: no auth.
    #[arg(long, env = "CHATROOM_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    /// Retention (docs/protocol.md §4.6): messages older than this many
    /// seconds are pruned, with their reactions and change-log rows
    /// (nothing younger than a minute ever is). Unset: kept for ever.
    #[arg(long, env = "CHATROOM_RETENTION_MAX_AGE_SECS")]
    retention_max_age_secs: Option<u64>,
    /// Retention: each room keeps its newest this many messages, and older
    /// ones are pruned. Unset: no limit.
    #[arg(long, env = "CHATROOM_RETENTION_MAX_MESSAGES")]
    retention_max_messages: Option<u64>,
    /// How often retention is applied, in seconds.
    #[arg(long, default_value_t = 60, env = "CHATROOM_RETENTION_INTERVAL_SECS")]
    retention_interval_secs: u64,
    /// How long a message's `client_id` is remembered, in seconds: a
    /// repeat within it stores nothing (file mode; the component's
    /// `client_id_window_secs` must say the same, and decides in edge
    /// mode).
    #[arg(long, default_value_t = 86_400, env = "CHATROOM_CLIENT_ID_WINDOW_SECS")]
    pub client_id_window_secs: u64,
}

/// The safety poll unless `--poll-ms` says otherwise: 500 ms, or 30 s for
/// an edge sidecar that Redis wakes.
pub const POLL: Duration = Duration::from_millis(500);
pub const POLL_WITH_REDIS: Duration = Duration::from_secs(30);

fn default_poll(source: &DataSource) -> Duration {
    match source {
        DataSource::Edge { redis: Some(_), .. } => POLL_WITH_REDIS,
        _ => POLL,
    }
}

impl SidecarFlags {
    /// The sidecar's configuration on `source`.
    pub fn config(self, source: DataSource) -> SidecarConfig {
        let auth = self
            .auth_secret
            .as_deref()
            .and_then(chatroom_core::auth::TokenKey::new);
        SidecarConfig {
            auth,
            poll_interval: self
                .poll_ms
                .map_or_else(|| default_poll(&source), Duration::from_millis),
            limits: SocketLimits {
                events: EventLimits {
                    rate: self.event_rate.max(0.0),
                    burst: self.event_burst,
                    queue: self.event_queue,
                },
                max_buffered_packets: self.max_buffered_packets,
                presence_room_max: self.presence_room_max,
                ..SocketLimits::default()
            },
            retention: Retention {
                max_age_ms: self
                    .retention_max_age_secs
                    .map(|secs| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)),
                max_messages: self
                    .retention_max_messages
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            },
            retention_interval: Duration::from_secs(self.retention_interval_secs.max(1)),
            client_id_window: Duration::from_secs(self.client_id_window_secs),
            ..SidecarConfig::with_source(source)
        }
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
    let front = Sidecar::front(args.front.start()?);
    let ca_file = rest_upstream::ca_file(args.ca_file.clone());
    let upstream = args
        .rest_upstream
        .as_deref()
        .map(|base| RestUpstream::new(base, ca_file.as_deref()))
        .transpose()?;
    let source = args
        .checked_source(upstream.as_ref(), ca_file.as_deref())
        .await?;
    let config = args.config(source.clone());

    let stop = shutdown::on_signal();
    let rest = match upstream.clone() {
        Some(upstream) => upstream::forward_to(upstream),
        None => upstream::not_found(),
    };
    let gate = Gate {
        rest,
        ready: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    // The only line on stdout (logs go to stderr): what a script or test
    // that asked for port 0 reads to find the sidecar.
    println!("listening on http://{local}");
    tracing::info!(
        socket_io = %format!("http://{local}/socket.io/"),
        data = %describe(&source),
        rest_upstream = ?upstream.as_ref().map(RestUpstream::base),
        "serving"
    );
    let app = Access::new(&args.access.config()).around(gate.router());
    let ready = gate.ready.clone();
    let closing = async move {
        if let Some(sidecar) = ready.get() {
            sidecar.0.close().await;
        }
    };
    let serving = {
        let stop = stop.clone();
        async move { front.serve(listener, app, stop, closing).await }
    };
    let server = tokio::spawn(serving);

    let started = tokio::select! {
        started = start_when_ready(config, gate.rest.clone()) => Some(started?),
        () = stop.cancelled() => None,
    };
    if let Some(sidecar) = started {
        let _ = gate.ready.set(sidecar);
        tracing::info!("ready: Socket.IO served");
    }
    match server.await {
        Ok(served) => served.map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::anyhow!("the server task failed: {e}")),
    }
}

/// The sidecar with the router serving it, once started.
struct Ready(Sidecar, Router);

/// What the listener serves: REST forwarding from the start, `/healthz`,
/// and the sidecar's router once it is [`Ready`].
#[derive(Clone)]
struct Gate {
    rest: Router,
    ready: Arc<OnceLock<Ready>>,
}

impl Gate {
    fn router(&self) -> Router {
        Router::new()
            .route("/healthz", upstream::get_only(axum::routing::get(health)))
            .fallback(gated)
            .with_state(self.clone())
    }
}

/// Starts the sidecar; in edge mode, first waits for the REST deployment,
/// retrying with capped backoff.
async fn start_when_ready(config: SidecarConfig, rest: Router) -> anyhow::Result<Ready> {
    const FIRST: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(10);
    let DataSource::Edge { api, .. } = &config.source else {
        let sidecar = Sidecar::start(config.clone()).await?;
        return Ok(Ready::new(sidecar, rest));
    };
    let probe = EdgeApi::new(api);
    let mut pause = FIRST;
    loop {
        let why = match probe.probe().await {
            Readiness::Ready => match Sidecar::start(config.clone()).await {
                Ok(sidecar) => return Ok(Ready::new(sidecar, rest)),
                Err(e) => format!("{e:#}"),
            },
            Readiness::Misconfigured(why) => anyhow::bail!(why),
            Readiness::Unavailable(why) => why,
        };
        tracing::warn!(
            error = %why,
            retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "the REST deployment is not serving the feed yet; not ready"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CAP);
    }
}

impl Ready {
    /// `sidecar` serving Socket.IO and `/metrics` in front of `rest`.
    fn new(sidecar: Sidecar, rest: Router) -> Self {
        let router = sidecar.router(rest);
        Ready(sidecar, router)
    }
}

/// `/healthz`: `200` once started and while new messages can be read,
/// `503` before and during an outage of the database or the REST side.
async fn health(State(gate): State<Gate>) -> Response {
    let why = match gate.ready.get() {
        Some(ready) if ready.0.is_reading() => {
            let json = [(header::CONTENT_TYPE, chatroom_core::CONTENT_TYPE)];
            return (StatusCode::OK, json, r#"{"status":"ok"}"#).into_response();
        }
        Some(_) => "New messages cannot be read; retrying",
        None => "Starting: waiting for the REST deployment",
    };
    upstream::error_response(&ApiError::UpstreamUnavailable(why.into()))
}

/// Everything but `/healthz`: the sidecar's router once ready; before,
/// REST is forwarded and Socket.IO refused with `503`.
async fn gated(State(gate): State<Gate>, req: Request) -> Response {
    let router = match gate.ready.get() {
        Some(ready) => ready.1.clone(),
        None if chatroom_front::is_socket_io(req.uri().path()) => {
            let why = "Starting: waiting for the REST deployment";
            return upstream::error_response(&ApiError::UpstreamUnavailable(why.into()));
        }
        None => gate.rest.clone(),
    };
    match router.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Where the data is, for the log (never the token).
fn describe(source: &DataSource) -> String {
    match source {
        DataSource::File(path) => format!("file {}", path.display()),
        DataSource::Edge { api, redis } => format!(
            "edge: REST {} with {}",
            api.upstream.base(),
            redis
                .as_ref()
                .map_or("feed polling".to_owned(), |r| format!(
                    "Redis wake-ups on {}",
                    r.channel
                ))
        ),
    }
}
