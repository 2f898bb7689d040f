//! The sidecar's connection to the shared SQLite file. rusqlite is blocking,
//! so every use runs on tokio's blocking pool; the connection sits behind a
//! mutex because SQLite serialises writers anyway.
//!
//! Writes take the file's write gate first (its [`DatabaseFile`], shared
//! with the embedded Spin host in the default run), so they queue with the
//! host's writes instead of meeting them in SQLite's lock.
//!
//! The tail reads first on a connection of its own, on its own thread,
//! without the hop to the blocking pool and back ([`Db::read_here`]): its
//! reads are short and bounded, and on the path of every delivery. That
//! connection never waits for a lock (a checkpoint can hold readers off
//! briefly); whatever it cannot do at once goes the usual way.
//!
//! Presence rows are written on a third connection that does not sync
//! each commit (`synchronous = NORMAL`; [`Db::write_presence`]): they are
//! a cache of who is connected, which a crash makes stale anyway and the
//! lease sweeps. Every other commit syncs (`FULL`), and syncing the WAL
//! syncs whatever presence frames came before it too.
//!
//! A use waits for its connection as a task, not a thread: only the one
//! whose turn it is takes a thread of the blocking pool. A hundred sockets
//! joining at once used to park a thread each on the connection's lock (a
//! fresh default run went from 7 threads to 88 in one such storm; now to
//! about 15).
//!
//! Before each use the file at the path must still be the one opened: if it
//! was deleted or replaced, every use fails loudly (socket events get a
//! storage error, the tail stops delivering) until the sidecar is restarted
//! on the new file, rather than serving a history nobody else sees.

use std::sync::Arc;

use parking_lot::Mutex;

use chatroom_core::StoreError;
use chatroom_dbfile::{BUSY_TIMEOUT, DatabaseFile};

/// A connection its users wait for without a thread (tokio's mutex, fair:
/// in arrival order).
type Shared = Arc<tokio::sync::Mutex<rusqlite::Connection>>;

#[derive(Clone)]
pub struct Db {
    conn: Shared,
    /// The tail's: never held across a write, so never waited on long.
    reader: Arc<Mutex<rusqlite::Connection>>,
    /// Presence writes': commits not synced one by one.
    presence: Shared,
    file: DatabaseFile,
}

impl Db {
    /// Opens the file (creating it and the schema if needed).
    pub fn open(file: DatabaseFile) -> Result<Self, StoreError> {
        let conn = chatroom_dbfile::open_file(file.path())?;
        let reader = chatroom_dbfile::open_file(file.path())?;
        reader
            .busy_handler(None)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let presence = chatroom_dbfile::open_file(file.path())?;
        presence
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| StoreError::Database(e.to_string()))?;
        file.check()?;
        Ok(Db {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            reader: Arc::new(Mutex::new(reader)),
            presence: Arc::new(tokio::sync::Mutex::new(presence)),
            file,
        })
    }

    /// Runs `f`, a short read, right here on the reading connection (one
    /// task's, the tail's, so its lock is never contended), or, if that
    /// fails (busy, say), as [`Db::run`] does.
    pub async fn read_here<T>(
        &self,
        f: impl Fn(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        if self.file.check().is_ok()
            && let Some(reader) = self.reader.try_lock()
            && let Ok(found) = f(&reader)
        {
            return Ok(found);
        }
        self.run(f).await
    }

    /// Runs `f`, which reads, with the connection on the blocking pool.
    pub async fn run<T, E>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.use_conn(&self.conn, false, f).await
    }

    /// Runs `f`, which writes, in its turn at the file's write gate.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.use_conn(&self.conn, true, f).await
    }

    /// Runs `f`, which writes presence rows, in its turn at the write
    /// gate, on the connection whose commits are not synced one by one.
    pub async fn write_presence<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        self.use_conn(&self.presence, true, f).await
    }

    async fn use_conn<T, E>(
        &self,
        conn: &Shared,
        writes: bool,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if let Err(e) = self.file.check() {
            tracing::error!(error = %e, "refusing to use the database");
            return Err(e.into());
        }
        let gate = writes.then(|| self.file.gate().clone());
        // The connection first, then a thread; a panic in `f` unwinds
        // through the guard and leaves the connection usable.
        let conn = conn.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            // Past the wait, SQLite's own busy handling takes over.
            let _turn = gate.and_then(|g| g.acquire(BUSY_TIMEOUT));
            f(&conn)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Database(format!("database task failed: {e}")).into()))
    }
}
