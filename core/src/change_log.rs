//! Reading the change log (`changes`, written by the schema's triggers):
//! every room's changes after a `seq` for the sidecar's tail (file mode)
//! and the component's feed (edge mode), and one room's changes for a
//! `since` replay. Each row comes out as its Socket.IO event, the payload
//! built by SQLite once, so a change is encoded once however many members
//! receive it.
//!
//! A change's payload carries its message as it is *now*: an edit read
//! after a later delete shows the tombstone. Clients replace a message by
//! id with whatever arrives, so the last event they get is the truth, and
//! a deleted message's content is never sent again, even in a replay.

use crate::db::{Database, Row, StoreError, Value};
use crate::error::ApiError;
use crate::retention::check_kept;
use crate::wire::{Change, ChangeEvent};

/// Changes joined with their messages, as `(seq, room_id, event, data,
/// at)`, under a condition on `c` with parameters from `?1`; ordered by
/// `seq` and limited by the parameter `?$limit`.
macro_rules! changes_where {
    ($condition:literal, $limit:literal) => {
        concat!(
            "SELECT c.seq AS seq, c.room_id AS room_id, c.event AS event, CASE WHEN c.event = 'new_message' THEN ",
            message_json!(),
            " WHEN c.event = 'membership' THEN ",
            membership_json!("c."),
            " WHEN c.emoji IS NOT NULL THEN json_object('seq', c.seq, 'room_id', c.room_id, ",
            "'message_id', c.message_id, 'emoji', c.emoji, 'username', c.username, 'message', json(",
            message_json!(),
            ")) ELSE json_object('seq', c.seq, 'room_id', c.room_id, 'message_id', c.message_id, ",
            "'message', json(",
            message_json!(),
            ")) END AS data, c.at AS at FROM changes c LEFT JOIN messages m ON m.id = c.message_id WHERE ",
            $condition,
            " ORDER BY c.seq LIMIT ?",
            $limit,
            " + 0"
        )
    };
}

/// The same rows as one JSON array of `Change` objects.
macro_rules! changes_json {
    ($rows:expr) => {
        concat!(
            "SELECT json_group_array(json_object('seq', seq, 'room_id', room_id, ",
            "'event', event, 'data', json(data), 'at', at)) FROM (",
            $rows,
            ")"
        )
    };
}

const ALL_AFTER: &str = changes_where!("c.seq > ?1", "2");
const ALL_AFTER_JSON: &str = changes_json!(changes_where!("c.seq > ?1", "2"));
const ROOM_RANGE: &str = changes_where!("c.room_id = ?1 AND c.seq > ?2 AND c.seq <= ?3", "4");
const ROOM_RANGE_JSON: &str = changes_json!(changes_where!(
    "c.room_id = ?1 AND c.seq > ?2 AND c.seq <= ?3",
    "4"
));
const LATEST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM changes";

fn change_from(row: &Row) -> Result<Change, StoreError> {
    let event = row.text(2)?;
    Ok(Change {
        seq: row.int(0)?,
        room_id: row.int(1)?,
        event: ChangeEvent::parse(&event).ok_or(StoreError::Shape("an unknown change event"))?,
        data: serde_json::value::RawValue::from_string(row.text(3)?)
            .map_err(|_| StoreError::Shape("a change's payload is not JSON"))?,
        at: row.text(4)?,
    })
}

fn changes(db: &impl Database, sql: &str, params: &[Value]) -> Result<Vec<Change>, StoreError> {
    db.query(sql, params)?.iter().map(change_from).collect()
}

/// Up to `limit` changes of every room with a `seq` above `after`.
pub fn changes_after(
    db: &impl Database,
    after: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    changes(db, ALL_AFTER, &[after.into(), limit.into()])
}

/// Like [`changes_after`], as the JSON array the feed answers with.
pub fn changes_after_json(
    db: &impl Database,
    after: i64,
    limit: i64,
) -> Result<String, StoreError> {
    json_array(db, ALL_AFTER_JSON, &[after.into(), limit.into()])
}

fn json_array(db: &impl Database, sql: &str, params: &[Value]) -> Result<String, StoreError> {
    db.query(sql, params)?
        .first()
        .ok_or(StoreError::Shape("a JSON page query returned no row"))?
        .text(0)
}

/// Up to `limit` changes of room `room` with a `seq` in `(after, through]`;
/// `resync_required` if retention no longer keeps all of them.
pub fn room_changes(
    db: &impl Database,
    room: i64,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<Change>, ApiError> {
    let page = changes(
        db,
        ROOM_RANGE,
        &[room.into(), after.into(), through.into(), limit.into()],
    )?;
    check_kept(db, room, after)?;
    Ok(page)
}

/// Like [`room_changes`], as a JSON array (`GET /chatrooms/{id}/changes`).
/// Without `after`, from the oldest change kept.
pub fn room_changes_json(
    db: &impl Database,
    room: i64,
    after: Option<i64>,
    through: i64,
    limit: i64,
) -> Result<String, ApiError> {
    let page = json_array(
        db,
        ROOM_RANGE_JSON,
        &[
            room.into(),
            after.unwrap_or(0).into(),
            through.into(),
            limit.into(),
        ],
    )?;
    if let Some(after) = after {
        check_kept(db, room, after)?;
    }
    Ok(page)
}

/// The newest change's `seq` (0 when there is none).
pub fn latest_seq(db: &impl Database) -> Result<i64, StoreError> {
    db.query(LATEST_SEQ, &[])?
        .first()
        .ok_or(StoreError::Shape("MAX(seq) returned no row"))?
        .int(0)
}
