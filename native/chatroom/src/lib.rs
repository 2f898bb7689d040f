//! The default run of chatroom: the REST component served by the embedded
//! Spin-compatible host and Socket.IO by the embedded sidecar, on one port,
//! one process, one SQLite file. [`app`] builds the router without a socket,
//! so tests drive exactly what `chatroom` serves.

pub mod cli;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use chatroom_host::SpinHost;
use chatroom_sidecar::{Sidecar, SidecarConfig};
use http_body_util::BodyExt;
use tokio::sync::Notify;

#[derive(Clone)]
struct Rest {
    host: Arc<SpinHost>,
    local: SocketAddr,
}

/// Socket.IO (`/socket.io/`) from the sidecar, everything else from the
/// Spin component. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`; `local` is the
/// address it listens on (Spin reports it to the component).
pub fn app(host: Arc<SpinHost>, sidecar: &Sidecar, local: SocketAddr) -> Router {
    let rest = Router::new()
        .fallback(to_component)
        .with_state(Rest { host, local });
    sidecar.router(rest)
}

/// The sidecar's set-up for sharing this process with a host whose
/// `commits` ([`chatroom_host::HostOptions::commits`]) it is given: its
/// broadcast tail wakes on every REST commit directly, so it watches no file.
pub fn beside_host(mut config: SidecarConfig, commits: Arc<Notify>) -> SidecarConfig {
    config.commits = Some(commits);
    config.watch_file = false;
    config
}

async fn to_component(
    State(rest): State<Rest>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let req = req.map(|body| {
        body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
    });
    rest.host
        .handle(req, rest.local, client)
        .await
        .map(Body::new)
}
