//! A small Spin-compatible host: it reads `spin.toml`, runs the same `.wasm`
//! `spin up` runs (the `wasi:http` 0.2 world) on wasmtime, and gives it
//! Spin's SQLite interface on the same `.spin/sqlite_db.db`, Spin's variables
//! (`[variables]`, `SPIN_VARIABLE_<NAME>`) and outbound Redis.
//!
//! Spin itself is not installable from any package registry the project can
//! reach, so the tests and the default run use this host; `spin up` works the
//! same on the same files. [`SpinHost::handle`] answers one request, and
//! [`router`] answers every request with it, alone (`chatroom-host`) or
//! behind the Socket.IO sidecar's routes (`chatroom`).

mod allowed_hosts;
pub mod cli;
mod compile_cache;
mod headers;
mod manifest;
mod outbound;
mod redis;
mod response;
mod routes;
mod runtime_config;
mod server;
mod sqlite;
mod variables;
mod well_known;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http_body_util::BodyExt;

pub use allowed_hosts::{AllowedHosts, AllowedHostsError, EntryError};
pub use compile_cache::CompileCache;
pub use manifest::{ComponentSpec, HttpRoute, Manifest, ManifestError};
pub use response::{ResponseBody, error_response};
pub use routes::RouteError;
pub use runtime_config::{RuntimeConfig, RuntimeConfigError};
pub use server::{HostLimits, HostOptions, INSTANCE_KEEP_RESIDENT_BYTES, SpinHost};
pub use variables::{AppVariables, Template, Variable, VariableSource, VariablesError};

/// Every request answered by `host`'s components, as `spin up` answers
/// it. Serve it with `chatroom_front::serve::Front::serve` (which gives
/// handlers the peer's address), alone or behind other routes (the
/// default run's Socket.IO).
pub fn router(host: Arc<SpinHost>) -> Router {
    Router::new().fallback(to_component).with_state(host)
}

async fn to_component(
    State(host): State<Arc<SpinHost>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let req = req.map(|body| {
        body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
    });
    host.handle(req, client).await.map(Body::new)
}
