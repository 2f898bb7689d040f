//! What both halves of chatroom share: the schema and its migration, every SQL
//! statement, the validation rules and limits, and the JSON wire types.
//!
//! The Spin component (wasm32) and the native Socket.IO sidecar both depend on
//! this crate, so a rule or a statement exists exactly once. Storage goes
//! through the small [`Database`] trait: the component implements it on Spin's
//! SQLite API, native code on rusqlite (feature `rusqlite`).

pub mod auth;
mod db;
mod error;
mod input;
pub mod limits;
mod request;
mod schema;
mod store;
mod validate;
mod wire;

#[cfg(feature = "rusqlite")]
mod sqlite_file;
#[cfg(feature = "rusqlite")]
mod write_gate;

pub use db::{Database, Row, StoreError, Value};
pub use error::ApiError;
pub use input::{
    JoinRequest, MessageDraft, RoomDraft, TypingRequest, event_object, json_object, room_id_field,
};
pub use request::{Query, check_path};
pub use schema::{SCHEMA_VERSION, migrate};
pub use store::{
    HistoryPages, MessagePage, PageDirection, RoomPages, create_room, find_room, insert_message,
    insert_messages, latest_message_id, messages_after, messages_after_json, presence, room_users,
};
pub use validate::{Content, RoomName, Sender, parse_node_token, parse_room_id};
pub use wire::{ErrorBody, Message, Room, RoomUsers, internal};

#[cfg(feature = "rusqlite")]
pub use sqlite_file::{BUSY_TIMEOUT, FileIdentity, assert_wal, open_file, poll_when_busy};
#[cfg(feature = "rusqlite")]
pub use write_gate::{WriteGate, WritePermit};
