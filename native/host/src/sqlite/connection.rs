//! Opening a connection to the database file the way every instance and
//! the group-commit writer use it: only while the file is still the one
//! the host started on, in WAL mode, polling when busy, with no attached
//! databases and a statement cache.

use chatroom_dbfile::FileIdentity;

use super::{Error, io_error};

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Why a connection was refused, logged; the instance is told only that
/// the database is unavailable.
pub(super) fn unavailable(e: chatroom_core::StoreError) -> Error {
    tracing::error!(error = %e, "refusing to open the database");
    Error::Io("the database is unavailable".to_owned())
}

/// A new connection to `file`, if it is still the one in use, in WAL
/// mode, polling when busy, with no attached databases.
pub(super) fn open_connection(file: &FileIdentity) -> Result<rusqlite::Connection, Error> {
    let path = file.path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let conn = rusqlite::Connection::open(path).map_err(io_error)?;
    file.check().map_err(unavailable)?;
    chatroom_dbfile::assert_wal(&conn).map_err(unavailable)?;
    chatroom_dbfile::poll_when_busy(&conn).map_err(io_error)?;
    // No attached databases: a component must not reach other files.
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)
        .map_err(io_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}
