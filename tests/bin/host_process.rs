//! The Spin-compatible host as a process of its own, for the edge-mode
//! tests: the REST deployment the sidecars reach only over HTTP. It reads
//! Spin variables from its environment (`SPIN_VARIABLE_<NAME>`), as
//! `spin up` does. Flags: `MANIFEST STATE_DIR [ADDR]`; it binds `ADDR`
//! (default a free port, so a restart can take the same one) and prints
//! `listening on http://ADDR`.

use std::sync::Arc;

use chatroom_front::serve::Front;
use chatroom_host::{HostOptions, SpinHost, router};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(manifest), Some(state_dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: host-process MANIFEST STATE_DIR [ADDR]");
    };
    let addr = args.next().map_or_else(
        || "127.0.0.1:0".to_owned(),
        |a| a.to_string_lossy().into_owned(),
    );
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let host = SpinHost::load(
        std::path::Path::new(&manifest),
        HostOptions {
            state_dir: Some(state_dir.into()),
            ..HostOptions::default()
        },
    )?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let front = Front {
        grace: std::time::Duration::ZERO,
        ..Front::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    front
        .serve(listener, router(Arc::new(host)), stop, async {})
        .await?;
    Ok(())
}
