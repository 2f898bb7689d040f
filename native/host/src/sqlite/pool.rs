//! `ConnectionPool`: the connections to one database file, shared by every
//! instance of every component, and the file's owner ([`DatabaseFile`]).
//! A connection is opened in WAL mode, polling when busy, with no attached
//! databases, only while the file is still the one the host started on;
//! one given back is kept (up to [`MAX_IDLE`]) only if it is as good as
//! new.

use parking_lot::Mutex;
use std::sync::OnceLock;

use chatroom_dbfile::DatabaseFile;

use super::Error;
use super::connection::{open_connection, unavailable};
use super::group_commit::GroupCommit;

/// Idle connections kept for reuse; more are closed when given back.
const MAX_IDLE: usize = 64;

/// The connections to one database file, shared by every instance.
#[derive(Debug)]
pub struct ConnectionPool {
    /// The file's owner: its identity (once deleted or replaced under the
    /// running host, opens fail instead of creating a new file), its write
    /// gate, and the commit notification.
    file: DatabaseFile,
    pub(super) idle: Mutex<Vec<rusqlite::Connection>>,
    /// The writer of single statements, started on the first.
    group: OnceLock<GroupCommit>,
}

impl ConnectionPool {
    /// `file.commits()` is woken after every write that commits.
    pub fn new(file: DatabaseFile) -> Self {
        ConnectionPool {
            file,
            idle: Mutex::new(Vec::new()),
            group: OnceLock::new(),
        }
    }

    /// The owner of the file this pool opens.
    pub fn file(&self) -> &DatabaseFile {
        &self.file
    }

    /// An idle connection, if the file is still the one in use.
    pub(super) fn take_idle(&self) -> Result<Option<rusqlite::Connection>, Error> {
        self.file.check().map_err(unavailable)?;
        Ok(self.idle.lock().pop())
    }

    /// A new connection, if the file is still the one in use.
    pub(super) fn open_new(&self) -> Result<rusqlite::Connection, Error> {
        open_connection(self.file.identity())
    }

    pub(super) fn group(&self) -> &GroupCommit {
        self.group
            .get_or_init(|| GroupCommit::start(self.file.clone()))
    }

    /// Takes back a connection an instance is done with.
    pub(super) fn give_back(&self, conn: rusqlite::Connection, reusable: bool) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if !reusable {
            return;
        }
        // SAFETY: the handle is this open connection's own, used on this
        // thread only while `conn` is borrowed.
        unsafe { rusqlite::ffi::sqlite3_set_last_insert_rowid(conn.handle(), 0) };
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}
