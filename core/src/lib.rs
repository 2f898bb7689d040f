//! What both halves of chatroom share: the schema and its migration, every SQL
//! statement, the validation rules and limits, and the JSON wire types.
//!
//! The Spin component (wasm32) and the native Socket.IO sidecar both depend on
//! this crate, so a rule or a statement exists exactly once. Storage goes
//! through the small [`Database`] trait: the component implements it on Spin's
//! SQLite API, native code on rusqlite (feature `rusqlite`).

#[macro_use]
mod sql;

pub mod auth;
mod change_log;
mod conversation;
mod db;
mod error;
mod forget;
mod input;
pub mod limits;
#[cfg(feature = "schema")]
mod payload_schema;
mod request;
mod retention;
mod rooms;
mod schema;
mod socket_event;
mod store;
mod transaction;
mod validate;
mod walls;
mod wire;
#[cfg(feature = "schema")]
mod write_payload;

#[cfg(feature = "rusqlite")]
mod rusqlite_db;

pub use change_log::{
    changes_after, changes_after_json, latest_seq, room_changes, room_changes_json,
};
pub use conversation::{
    Action, ActionKind, Actor, Applied, Write, Written, apply, truncate_wal, unread, write_batch,
};
pub use db::{Database, Row, StoreError, Value};
pub use error::{ApiError, CONTENT_TYPE, ErrorBody, EventError};
pub use forget::{Forgotten, forget_user};
pub use input::{
    JoinRequest, LeaveRequest, MessageDraft, RoomDraft, TypingRequest, event_object, flag_field,
    json_object, message_id_field, room_id_field,
};
#[cfg(feature = "schema")]
pub use payload_schema::{PayloadSchemas, payload_schemas, write_payload_schemas};
pub use request::{Query, check_path, path_segment};
pub use retention::{
    PruneRange, PruneSearch, PruneStep, check_kept, find_prunable, prune_range, prune_step,
};
pub use rooms::{create_room, find_room};
pub use schema::{SCHEMA_VERSION, migrate};
pub use socket_event::{
    ClientEvent, DeleteAck, JoinAck, LeaveAck, MessageAck, Presence, ReadReceipt, Removal,
    RemovalReason, ServerEvent, TypingAck, TypingNotice,
};
pub use store::{
    HistoryPages, MessagePage, PageDirection, RoomPages, Stored, insert_message, insert_messages,
    message, presence, room_users, store_message,
};
pub use validate::{
    ClientId, Content, Emoji, RoomName, Sender, parse_message_id, parse_node_token, parse_room_id,
};
pub use walls::{
    Member, MemberChange, MembershipEvent, MembershipKind, Moderation, Need, Role, RoomAccess,
    Viewer, change_membership, create_owned_room, members, open_dm, room_access, visible_room,
};
pub use wire::{
    Change, ChangeEvent, Message, MessageChange, Reaction, ReactionChange, ReadPosition, Retention,
    Room, RoomUsers, Unread, Visibility, internal,
};
