//! A small Spin-compatible host: it reads `spin.toml`, runs the same `.wasm`
//! `spin up` runs (the `wasi:http` 0.2 world) on wasmtime, and gives it
//! Spin's SQLite interface on the same `.spin/sqlite_db.db`, Spin's variables
//! (`[variables]`, `SPIN_VARIABLE_<NAME>`) and outbound Redis.
//!
//! Spin itself is not installable from any package registry the project can
//! reach, so the tests and the default run use this host; `spin up` works the
//! same on the same files. [`SpinHost::handle`] answers one request, so other
//! servers (the Socket.IO sidecar) can embed it; [`serve`] runs it alone.

mod allowed_hosts;
pub mod cli;
mod compile_cache;
mod headers;
mod manifest;
mod outbound;
mod redis;
mod routes;
mod runtime_config;
mod server;
mod sqlite;
mod variables;
mod well_known;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use allowed_hosts::{AllowedHosts, AllowedHostsError, EntryError};
pub use compile_cache::CompileCache;
pub use manifest::{ComponentSpec, HttpRoute, Manifest, ManifestError};
pub use routes::RouteError;
pub use runtime_config::{RuntimeConfig, RuntimeConfigError};
pub use server::{HostLimits, HostOptions, ResponseBody, SpinHost, error_response};
pub use variables::{AppVariables, Template, Variable, VariableSource, VariablesError};

/// Open connections served at once; further ones wait in the kernel's
/// backlog until one closes.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then drains:
/// stops accepting, lets the requests in flight finish (idle keep-alive
/// connections are closed at once) and returns when they have, or after
/// `grace`.
pub async fn serve(
    host: Arc<SpinHost>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let host = host.clone();
        let service = hyper::service::service_fn(move |req| {
            let host = host.clone();
            async move { Ok::<_, std::convert::Infallible>(host.handle(req, local, client).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %client, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("no longer accepting; finishing the requests in flight");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "grace period over: exiting with requests still in flight"
        );
    }
    Ok(())
}
