//! The schema, created idempotently by whichever process opens the database
//! first (the Spin component on its first request, or the sidecar at start).
//!
//! `PRAGMA user_version` records the applied version so the common case costs
//! one read. The tables are created inside `BEGIN IMMEDIATE`, so two processes
//! starting together serialise on the write lock instead of racing.

use crate::db::{Database, StoreError};

/// The newest schema version: the last of [`MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = 7;

/// Writes the wire object of the row a `chatrooms` trigger is on (`NEW`):
/// the one statement both of version 7's triggers run.
macro_rules! write_new_room_wire {
    () => {
        concat!(
            "UPDATE chatrooms SET wire = (SELECT ",
            room_json!(),
            " FROM chatrooms AS m WHERE m.id = NEW.id) WHERE id = NEW.id;"
        )
    };
}

/// Each version's statements, applied in order to a database below it.
///
/// 1. Rooms and messages. Room names are unique by `name_key`, the
///    Unicode-lowercased name.
/// 2. Presence is not history (docs/protocol.md): each row names the
///    sidecar (`node_id`) holding the connection, and each sidecar holds a
///    lease in `presence_nodes`; the version 1 table is dropped, not
///    migrated.
/// 3. Conversations: edits, tombstones, reactions, read positions, and the
///    change log. Every change to a room (a message created, edited or
///    deleted, a reaction added or removed) is a row of `changes`, written
///    by a trigger in the same statement as the change itself, so no writer
///    can forget it. `seq` is one sequence for the whole database and a
///    message's id is the `seq` of its creation, so `since` (a message id,
///    as clients written before the log already send) is a position in the
///    log. Writers serialise, so rows commit in `seq` order and a cursor
///    never skips one. Existing messages get their `new_message` rows.
/// 4. Walls (docs/protocol.md §10): a room's `visibility` (`public`,
///    `private`, `dm`; existing rooms are public), its `members` with
///    their roles, and `restrictions` (bans and mutes, each with an
///    optional expiry in Unix milliseconds). A membership change is a row
///    of the change log (`membership`, `message_id` 0) whose payload is
///    in `detail`, written with the change in one transaction by
///    `walls::change_membership`, the only writer of these tables.
/// 5. Idempotent sends: a message may carry its client's key
///    (`client_id`), unique per room and sender while it is set, so two
///    repeats racing on two sidecars are settled here, not in a process.
/// 6. Retention (`retention`): how far each room's history was pruned
///    (`pruned_through`, a `seq`; 0 for nothing), and the later edits,
///    deletes and reactions of each message indexed by it, so pruning a
///    message takes them too (partial: a new message's row never needs
///    it, and posting pays nothing for it). And the key of a message's last
///    edit (`edit_client_id`): a repeat of that edit changes nothing.
/// 7. A room's wire object (`wire`), kept by triggers from the one
///    definition (`room_json!`): a listing of rooms joins these texts
///    instead of building each object again on every request.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
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
        ],
    ),
    (
        2,
        &[
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
        ],
    ),
    (
        3,
        &[
            "ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE messages ADD COLUMN edited_at TEXT",
            "ALTER TABLE messages ADD COLUMN deleted_at TEXT",
            "CREATE TABLE changes (
                seq INTEGER PRIMARY KEY,
                room_id INTEGER NOT NULL,
                message_id INTEGER NOT NULL,
                event TEXT NOT NULL,
                at TEXT NOT NULL,
                emoji TEXT,
                username TEXT
            )",
            "CREATE INDEX changes_by_room ON changes (room_id, seq)",
            "INSERT INTO changes (seq, room_id, message_id, event, at)
                SELECT id, room_id, id, 'new_message', timestamp FROM messages",
            "CREATE TABLE reactions (
                message_id INTEGER NOT NULL,
                emoji TEXT NOT NULL,
                username TEXT NOT NULL,
                PRIMARY KEY (message_id, emoji, username)
            )",
            "CREATE TABLE read_positions (
                room_id INTEGER NOT NULL,
                username TEXT NOT NULL,
                message_id INTEGER NOT NULL,
                PRIMARY KEY (username, room_id)
            )",
            // A message's id is given by its insert (the next seq); this
            // logs its creation under the same number.
            "CREATE TRIGGER message_created AFTER INSERT ON messages BEGIN
                INSERT INTO changes (seq, room_id, message_id, event, at)
                VALUES (NEW.id, NEW.room_id, NEW.id, 'new_message', NEW.timestamp);
            END",
            // An edit bumps `version`; a delete sets `deleted_at` and takes
            // the message's reactions with it (unlogged: the tombstone says
            // they are gone).
            "CREATE TRIGGER message_changed AFTER UPDATE OF version, deleted_at ON messages BEGIN
                INSERT INTO changes (seq, room_id, message_id, event, at)
                VALUES (
                    (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes), NEW.room_id, NEW.id,
                    CASE WHEN NEW.deleted_at IS NULL THEN 'message_edited' ELSE 'message_deleted' END,
                    strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
                DELETE FROM reactions WHERE message_id = NEW.id AND NEW.deleted_at IS NOT NULL;
            END",
            "CREATE TRIGGER reaction_added AFTER INSERT ON reactions BEGIN
                INSERT INTO changes (seq, room_id, message_id, event, at, emoji, username)
                SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes), room_id, id,
                    'reaction_added', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), NEW.emoji, NEW.username
                FROM messages WHERE id = NEW.message_id;
            END",
            "CREATE TRIGGER reaction_removed AFTER DELETE ON reactions BEGIN
                INSERT INTO changes (seq, room_id, message_id, event, at, emoji, username)
                SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes), room_id, id,
                    'reaction_removed', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), OLD.emoji, OLD.username
                FROM messages WHERE id = OLD.message_id AND deleted_at IS NULL;
            END",
        ],
    ),
    (
        4,
        &[
            "ALTER TABLE chatrooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'",
            "CREATE TABLE members (
                room_id INTEGER NOT NULL,
                username TEXT NOT NULL,
                role TEXT NOT NULL,
                PRIMARY KEY (room_id, username)
            )",
            "CREATE INDEX members_by_user ON members (username, room_id)",
            "CREATE TABLE restrictions (
                room_id INTEGER NOT NULL,
                username TEXT NOT NULL,
                kind TEXT NOT NULL,
                expires_at INTEGER,
                PRIMARY KEY (room_id, username, kind)
            )",
            "ALTER TABLE changes ADD COLUMN detail TEXT",
        ],
    ),
    (
        5,
        &[
            "ALTER TABLE messages ADD COLUMN client_id TEXT",
            "CREATE UNIQUE INDEX messages_by_client_id ON messages (room_id, sender, client_id) \
             WHERE client_id IS NOT NULL",
        ],
    ),
    (
        6,
        &[
            "ALTER TABLE chatrooms ADD COLUMN pruned_through INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE messages ADD COLUMN edit_client_id TEXT",
            "CREATE INDEX changes_by_message ON changes (message_id) WHERE event IN \
             ('message_edited', 'message_deleted', 'reaction_added', 'reaction_removed')",
        ],
    ),
    (
        7,
        &[
            "ALTER TABLE chatrooms ADD COLUMN wire TEXT",
            concat!(
                "UPDATE chatrooms SET wire = (SELECT ",
                room_json!(),
                " FROM chatrooms AS m WHERE m.id = chatrooms.id)"
            ),
            concat!(
                "CREATE TRIGGER room_wire_created AFTER INSERT ON chatrooms BEGIN ",
                write_new_room_wire!(),
                " END"
            ),
            concat!(
                "CREATE TRIGGER room_wire_changed ",
                "AFTER UPDATE OF name, created_at, visibility ON chatrooms BEGIN ",
                write_new_room_wire!(),
                " END"
            ),
        ],
    ),
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
        MIGRATIONS
            .iter()
            .filter(|(step, _)| *step > version)
            .flat_map(|(_, statements)| statements.iter())
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
