//! The schema, created idempotently by whichever process opens the database
//! first (the Spin component on its first request, or the sidecar at start).
//!
//! `PRAGMA user_version` records the applied version so the common case costs
//! one read. The tables are created inside `BEGIN IMMEDIATE`, so two processes
//! starting together serialise on the write lock instead of racing.

use crate::db::{Database, StoreError};

/// Bumped whenever [`MIGRATION`] changes.
pub const SCHEMA_VERSION: i64 = 2;

/// The tables. Room names are unique by `name_key`, the Unicode-lowercased
/// name; `AUTOINCREMENT` keeps message ids increasing and never reused, which
/// the sidecar's tail cursor relies on.
///
/// Presence is not history (SPEC §4): version 2 gave each row the sidecar
/// (`node_id`) that holds the connection, and each sidecar a lease in
/// `presence_nodes`, by dropping the version 1 table rather than migrating
/// its rows.
const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS chatrooms (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room_id INTEGER NOT NULL,
        sender TEXT NOT NULL,
        content TEXT NOT NULL,
        timestamp TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room_id, id)",
    "DROP TABLE IF EXISTS presence",
    "CREATE TABLE presence (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id TEXT NOT NULL,
        sid TEXT NOT NULL,
        room_id INTEGER NOT NULL,
        username TEXT NOT NULL,
        UNIQUE (sid, room_id)
    )",
    "CREATE INDEX presence_by_room ON presence (room_id, id)",
    "CREATE INDEX presence_by_node ON presence (node_id)",
    "CREATE TABLE IF NOT EXISTS presence_nodes (
        node_id TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
    )",
];

fn schema_version(db: &impl Database) -> Result<i64, StoreError> {
    let rows = db.query("PRAGMA user_version", &[])?;
    rows.first()
        .ok_or(StoreError::Shape("PRAGMA user_version returned no row"))?
        .int(0)
}

/// Brings the database to [`SCHEMA_VERSION`]; a no-op when it is there.
pub fn migrate(db: &impl Database) -> Result<(), StoreError> {
    if schema_version(db)? >= SCHEMA_VERSION {
        return Ok(());
    }
    // WAL lets the component read while the sidecar writes (and back); the
    // mode is stored in the file, so setting it once is enough. A remote
    // libSQL database (a Spin runtime config) manages its own journal and
    // may refuse the pragma, which is no reason to refuse to start.
    let _ = db.query("PRAGMA journal_mode = WAL", &[]);
    db.query("BEGIN IMMEDIATE", &[])?;
    // Another process may have migrated while this one waited for the lock.
    let applied = schema_version(db).and_then(|version| {
        if version >= SCHEMA_VERSION {
            return Ok(());
        }
        MIGRATION
            .iter()
            .try_for_each(|sql| db.query(sql, &[]).map(drop))
            .and_then(|()| {
                // PRAGMA takes no bound parameters; the value is our constant.
                db.query(&format!("PRAGMA user_version = {SCHEMA_VERSION}"), &[])
                    .map(drop)
            })
    });
    match applied {
        Ok(_) => db.query("COMMIT", &[]).map(drop),
        Err(e) => {
            let _ = db.query("ROLLBACK", &[]);
            Err(e)
        }
    }
}
