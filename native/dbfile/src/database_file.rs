//! `DatabaseFile`: the one owner of a SQLite file in a process. It carries
//! what everyone in the process who uses the file must share: the file's
//! identity (so a file deleted or replaced under the process is refused,
//! not silently recreated), the [`WriteGate`] its writers take turns at,
//! and the commit notification that wakes the broadcast tail when a write
//! commits.
//!
//! Whoever lays the process out makes it once and hands it explicitly to
//! every user: in the default run the Spin host makes it for its `default`
//! database and the sidecar is given the same one; a process alone with a
//! file (`chatroom-sidecar` beside `spin up`) makes its own. Nothing is
//! looked up by path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::sqlite_file::FileIdentity;
use crate::write_gate::WriteGate;
use chatroom_core::StoreError;

/// A SQLite file as this process's users of it share it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DatabaseFile {
    identity: Arc<FileIdentity>,
    gate: Arc<WriteGate>,
    commits: Arc<Notify>,
}

impl DatabaseFile {
    /// The owner of the file at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DatabaseFile {
            identity: Arc::new(FileIdentity::new(path.into())),
            gate: Arc::new(WriteGate::default()),
            commits: Arc::new(Notify::new()),
        }
    }

    pub fn path(&self) -> &Path {
        self.identity.path()
    }

    /// `Err` once the file at the path is not the one first seen there.
    pub fn check(&self) -> Result<(), StoreError> {
        self.identity.check()
    }

    /// The file's identity, for code that checks it on its own threads.
    pub fn identity(&self) -> &Arc<FileIdentity> {
        &self.identity
    }

    /// The gate the file's writers in this process take turns at.
    pub fn gate(&self) -> &Arc<WriteGate> {
        &self.gate
    }

    /// Woken after a write to the file commits (the broadcast tail waits
    /// here).
    pub fn commits(&self) -> &Arc<Notify> {
        &self.commits
    }
}
