//! A room's row: creating one (public and ownerless here; with an owner and
//! walls in `walls`), finding one by id, and reading one into its wire
//! shape.

use crate::db::{Database, Row, StoreError};
use crate::error::ApiError;
use crate::validate::RoomName;
use crate::wire::{Room, Visibility};

pub(crate) const INSERT_ROOM: &str = concat!(
    "INSERT INTO chatrooms (name, name_key, created_at, visibility) VALUES (?1, ?2, ",
    now_utc_millis!(),
    ", ?3) ON CONFLICT (name_key) DO NOTHING RETURNING id, name, created_at, visibility"
);
const SELECT_ROOM: &str = "SELECT id, name, created_at, visibility FROM chatrooms WHERE id = ?1";

pub(crate) fn room_from(row: &Row) -> Result<Room, StoreError> {
    Ok(Room {
        id: row.int(0)?,
        name: row.text(1)?,
        created_at: row.text(2)?,
        visibility: Visibility::parse(&row.text(3)?)
            .ok_or(StoreError::Shape("an unknown room visibility"))?,
    })
}

/// Creates a public room without an owner (identity off); rooms with an
/// owner are `walls::create_owned_room`. `RoomExists` if the name is
/// taken, ignoring case.
pub fn create_room(db: &impl Database, name: &RoomName) -> Result<Room, ApiError> {
    let params = [
        name.as_str().into(),
        name.key().into(),
        Visibility::Public.as_str().into(),
    ];
    let rows = db.query(INSERT_ROOM, &params)?;
    match rows.first() {
        Some(row) => Ok(room_from(row)?),
        None => Err(ApiError::RoomExists(name.as_str().to_owned())),
    }
}

/// The room with this id, if any.
pub fn find_room(db: &impl Database, id: i64) -> Result<Option<Room>, StoreError> {
    db.query(SELECT_ROOM, &[id.into()])?
        .first()
        .map(room_from)
        .transpose()
}
