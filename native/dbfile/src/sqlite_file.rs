//! Opening the database file as native code does (WAL asserted, the
//! schema brought up to date, busy waits polled every millisecond), and
//! [`FileIdentity`], which notices the file being deleted or replaced
//! under a running process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use chatroom_core::StoreError;

/// Opens (creating if needed) the database file and brings it to the current
/// schema, in WAL mode (asserted on every open: a file swapped for one in
/// another journal mode would make the two processes block each other).
/// A busy wait polls every millisecond for up to [`BUSY_TIMEOUT`].
pub fn open_file(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.to_string()))?;
    }
    let conn = rusqlite::Connection::open(path).map_err(db_err)?;
    poll_when_busy(&conn).map_err(db_err)?;
    assert_wal(&conn)?;
    chatroom_core::migrate(&conn)?;
    Ok(conn)
}

/// How long a statement waits for another connection's lock before
/// failing with "database is locked" (Spin's busy timeout).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The step of that wait.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// Makes `conn` wait for a lock held elsewhere by polling every
/// millisecond, up to [`BUSY_TIMEOUT`]. SQLite's own busy timeout sleeps
/// in steps growing to 100 ms, so a writer could sleep long after the
/// lock was free.
pub fn poll_when_busy(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    fn poll(attempts: i32) -> bool {
        let waited = BUSY_POLL * u32::try_from(attempts).unwrap_or(u32::MAX);
        if waited >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(BUSY_POLL);
        true
    }
    conn.busy_handler(Some(poll))
}

/// Puts the file in WAL mode, or fails.
pub fn assert_wal(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db_err)?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "the database refused WAL mode (it is in {mode} mode)"
        )))
    }
}

/// The file a process works on, by identity (device and inode) rather than
/// by name: [`FileIdentity::check`] fails once the file at the path was
/// deleted or replaced, so a process never goes on silently with a new,
/// empty database while clients believe their history is there.
#[derive(Debug)]
pub struct FileIdentity {
    path: PathBuf,
    seen: OnceLock<(u64, u64)>,
}

impl FileIdentity {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileIdentity {
            path: path.into(),
            seen: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Ok` while the path names the file first seen there (or no file was
    /// seen yet: the first open creates it).
    pub fn check(&self) -> Result<(), StoreError> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => {
                let id = identity(&meta);
                if *self.seen.get_or_init(|| id) == id {
                    Ok(())
                } else {
                    Err(StoreError::Database(format!(
                        "the database file {} was replaced while in use; restart to use the new one",
                        self.path.display()
                    )))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.seen.get().is_none() => {
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::Database(format!(
                    "the database file {} was deleted while in use",
                    self.path.display()
                )))
            }
            Err(e) => Err(StoreError::Database(format!(
                "cannot read {}: {e}",
                self.path.display()
            ))),
        }
    }
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}
