//! The SQLite file as the native processes share it: opening it
//! ([`open_file`]), noticing it replaced ([`FileIdentity`]), the
//! [`WriteGate`] its writers in one process take turns at, and
//! [`DatabaseFile`], the one owner that carries all three with the commit
//! notification. Native runtime (threads, tokio), kept out of
//! `chatroom-core`, which the wasm component builds too.

mod database_file;
mod sqlite_file;
mod write_gate;

pub use database_file::DatabaseFile;
pub use sqlite_file::{BUSY_TIMEOUT, FileIdentity, assert_wal, open_file, poll_when_busy};
pub use write_gate::{WriteGate, WritePermit};
