//! The HTTP front every chatroom binary (`chatroom`, `chatroom-host`,
//! `chatroom-sidecar`) serves through, so that they listen, log, stop,
//! limit and refuse the same way and differ only in what they mount:
//!
//! - [`serve`] and [`listener`]: the listener (connection cap, idle
//!   timeout, upgraded connections' reads) and serving until stopped;
//! - [`logging`]: the `--log` flag and `tracing` output to stderr;
//! - [`shutdown`]: SIGTERM/SIGINT, the `--shutdown-grace-secs` flag, and
//!   draining (stop accepting, finish what is in flight, bounded);
//! - [`body`]: a refused request body is read and thrown away (bounded),
//!   so the client sees the answer (`413`) instead of a reset connection;
//! - [`error`]: every error answer, one shape and content type;
//! - [`access`]: CORS, the origin check and the per-address limits around
//!   what a binary mounts, and their flags;
//! - [`address_limits`]: connections, REST writes and room creations per
//!   client address (`429` with `Retry-After`);
//! - [`metrics`]: `/metrics` answers for the series a binary registers;
//! - [`origin`]: Socket.IO refused from origins not allowed;
//! - [`forward`], [`rest_upstream`] and [`passthrough`]: REST forwarded to
//!   the Spin deployment (`spin up`, or the edge), over HTTP(S) with a
//!   private CA, failing with an [`upstream_error::UpstreamError`].

pub mod access;
pub mod address_limits;
pub mod body;
pub mod error;
pub mod forward;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod origin;
pub mod passthrough;
pub mod rest_upstream;
pub mod serve;
pub mod shutdown;
pub mod upstream_error;

/// The Engine.IO request path (socketioxide's default).
pub const SOCKET_IO_PATH: &str = "/socket.io";

/// Whether a request for `path` is Socket.IO's: `/socket.io` or below it,
/// as socketioxide itself matches its path (so every layer of the front
/// agrees with it on what is Socket.IO and what is REST).
pub fn is_socket_io(path: &str) -> bool {
    path.strip_prefix(SOCKET_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
