//! What the HTTP front of every chatroom binary (`chatroom`,
//! `chatroom-host`, `chatroom-sidecar`) shares, so that they log, stop and
//! refuse oversized bodies the same way:
//!
//! - [`logging`]: the `--log` flag and `tracing` output to stderr;
//! - [`shutdown`]: SIGTERM/SIGINT, the `--shutdown-grace-secs` flag, and
//!   draining (stop accepting, finish what is in flight, bounded);
//! - [`body`]: a refused request body is read and thrown away (bounded),
//!   so the client sees the answer (`413`) instead of a reset connection.

pub mod body;
pub mod logging;
pub mod shutdown;
