//! A small Spin-compatible host: it reads `spin.toml`, runs the same `.wasm`
//! `spin up` runs (the `wasi:http` 0.2 world) on wasmtime, and gives it
//! Spin's SQLite interface on the same `.spin/sqlite_db.db`.
//!
//! Spin itself is not installable from any package registry the project can
//! reach, so the tests and the default run use this host; `spin up` works the
//! same on the same files. [`SpinHost::handle`] answers one request, so other
//! servers (the Socket.IO sidecar) can embed it; [`serve`] runs it alone.

mod manifest;
mod outbound;
mod routes;
mod server;
mod sqlite;

use std::future::Future;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use manifest::{ComponentSpec, HttpRoute, Manifest, ManifestError};
pub use server::{HostOptions, ResponseBody, SpinHost};

/// Serves HTTP/1.1 on `listener` until `shutdown` completes.
pub async fn serve(
    host: Arc<SpinHost>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let host = host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let host = host.clone();
                async move { Ok::<_, std::convert::Infallible>(host.handle(req, local, client).await) }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, %client, "connection ended with an error");
            }
        });
    }
}
