//! The default run of chatroom: the REST component served by the embedded
//! Spin-compatible host and Socket.IO by the embedded sidecar, on one port,
//! one process, one SQLite file, served through `chatroom_front` like the
//! other binaries. [`app`] builds the router without a socket, so tests
//! drive exactly what `chatroom` serves.

pub mod cli;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use chatroom_front::access::Access;
use chatroom_host::SpinHost;
use chatroom_sidecar::{Sidecar, SidecarConfig};

/// Socket.IO (`/socket.io/`) and `/metrics` from the sidecar, everything
/// else from the Spin component, behind `access`. Serve it on
/// [`Sidecar::front`].
pub fn app(host: Arc<SpinHost>, sidecar: &Sidecar, access: &Access) -> Router {
    access.around(sidecar.router(chatroom_host::router(host)))
}

/// The sidecar's set-up for sharing this process with a host: it is given
/// the host's database file ([`SpinHost::database`]), so their writes take
/// turns at one gate and its broadcast tail wakes on every REST commit
/// directly (it watches no file).
pub fn beside_host(
    host: &SpinHost,
    config: impl FnOnce(PathBuf) -> SidecarConfig,
) -> SidecarConfig {
    let file = host.database();
    let mut config = config(file.path().to_owned());
    config.database = Some(file);
    config.watch_file = false;
    config
}
