//! `serve`: how every chatroom binary serves its router: on the
//! [`listener`](crate::listener) (connection cap, idle timeout, upgraded
//! reads), with each request's peer address (`ConnectInfo<SocketAddr>`),
//! until it is told to stop; then it drains as
//! [`shutdown::drain`](crate::shutdown::drain) says.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::listener::{self, FrontLimits, UpgradedReadsFactory};
use crate::logging::LogFlags;
use crate::shutdown::{self, DEFAULT_GRACE, ShutdownFlags};

/// The flags of every binary's front: its listener's limits, logging and
/// draining.
#[derive(Debug, Clone, clap::Args)]
pub struct FrontFlags {
    /// Connections open at once; further clients wait in the kernel's
    /// backlog until one closes.
    #[arg(long, default_value_t = FrontLimits::default().max_connections, env = "CHATROOM_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Seconds a connection may go without a byte either way before it is
    /// closed (a websocket is left to Engine.IO's heartbeat). Behind a
    /// load balancer, keep it above the balancer's own idle timeout.
    #[arg(long, default_value_t = FrontLimits::default().idle_timeout.as_secs(), env = "CHATROOM_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: u64,
    #[command(flatten)]
    pub log: LogFlags,
    #[command(flatten)]
    pub shutdown: ShutdownFlags,
}

impl FrontFlags {
    /// Starts logging as `--log` says; the front these flags ask for.
    pub fn start(&self) -> anyhow::Result<Front> {
        self.log.start()?;
        Ok(Front {
            limits: FrontLimits {
                max_connections: self.max_connections.max(1),
                idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            },
            grace: self.shutdown.grace(),
            ..Front::default()
        })
    }
}

/// How a binary's front serves.
#[derive(Debug, Clone, Copy)]
pub struct Front {
    pub limits: FrontLimits,
    /// What upgraded connections are read through (the sidecar's check of
    /// Socket.IO event names in websocket frames); nothing when `None`.
    pub upgraded: Option<UpgradedReadsFactory>,
    /// How long draining may take.
    pub grace: Duration,
}

impl Default for Front {
    fn default() -> Self {
        Front {
            limits: FrontLimits::default(),
            upgraded: None,
            grace: DEFAULT_GRACE,
        }
    }
}

impl Front {
    /// Serves `app` on `listener` until `stop` is cancelled; then stops
    /// accepting, lets the requests in flight finish (idle keep-alive
    /// connections are closed at once) and runs `closing` (what else must
    /// be let go of), within the grace period. A server that fails by
    /// itself cancels `stop`, so `closing` runs then too.
    pub async fn serve(
        &self,
        listener: TcpListener,
        app: Router,
        stop: CancellationToken,
        closing: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let listener = listener::listen(listener, self.limits, self.upgraded);
        let serving = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .into_future();
        shutdown::drain(&stop, self.grace, serving, closing).await
    }
}
