//! The JSON shapes on the wire, shared by REST responses and Socket.IO events.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A chat room: `{"id", "name", "created_at"}`, and `visibility`
/// (`private`, `dm`) for a room that is not public (docs/protocol.md §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Visibility::is_public")]
    pub visibility: Visibility,
}

/// A message, as REST answers it. A message nobody has touched has exactly
/// the five required keys; the others appear only once they apply.
/// Clients replace a message by `id` with the newest one they get.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields),
    schemars(example = examples::untouched()),
    schemars(example = examples::edited()),
    schemars(example = examples::deleted())
)]
pub struct Message {
    /// Also the seq of its creation in the room's change log.
    pub id: i64,
    pub room_id: i64,
    pub sender: String,
    /// Empty for a deleted message.
    pub content: String,
    /// When it was stored: RFC 3339, UTC, milliseconds.
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub timestamp: String,
    /// The last edit; present once edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", extend("format" = "date-time"))
    )]
    pub edited_at: Option<String>,
    /// 1 + the number of edits; present once edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "i64", range(min = 2)))]
    pub version: Option<i64>,
    /// Present, and true, for a tombstone.
    #[serde(default, skip_serializing_if = "is_false")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "always_true"))]
    pub deleted: bool,
    /// Present for a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", extend("format" = "date-time"))
    )]
    pub deleted_at: Option<String>,
    /// Per emoji, in the order each was first used; present while there
    /// are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub reactions: Vec<Reaction>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A flag that is `true` whenever it is sent (a tombstone's `deleted`, a
/// delete's ack).
#[cfg(feature = "schema")]
pub(crate) fn always_true(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"const": true})
}

/// The documented examples of a message.
#[cfg(feature = "schema")]
mod examples {
    use super::{Message, Reaction};

    pub fn untouched() -> Message {
        Message {
            id: 42,
            room_id: 1,
            sender: "alice".into(),
            content: "Hello".into(),
            timestamp: "2026-01-05T09:30:00.000Z".into(),
            ..Message::default()
        }
    }

    pub fn edited() -> Message {
        Message {
            content: "Hello, everyone".into(),
            edited_at: Some("2026-01-05T09:31:12.345Z".into()),
            version: Some(2),
            reactions: vec![Reaction {
                emoji: "\u{1f44d}".into(),
                count: 1,
                users: vec!["bob".into()],
            }],
            ..untouched()
        }
    }

    pub fn deleted() -> Message {
        Message {
            content: String::new(),
            edited_at: Some("2026-01-05T09:31:12.345Z".into()),
            version: Some(2),
            deleted: true,
            deleted_at: Some("2026-01-05T09:40:00.000Z".into()),
            ..untouched()
        }
    }
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Reaction {
    /// One emoji, or a :short_name:
    pub emoji: String,
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: i64,
    /// Who reacted so, by name.
    pub users: Vec<String>,
}

/// The events of the change log, by their Socket.IO names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeEvent {
    NewMessage,
    MessageEdited,
    MessageDeleted,
    ReactionAdded,
    ReactionRemoved,
    /// A member added, removed or given a role, a kick, a ban or a mute
    /// (docs/protocol.md §10.3): `{"seq", "room_id", "username",
    /// "change", "role", "until", "by"}`.
    Membership,
}

impl ChangeEvent {
    /// Every event, for documentation checks.
    pub const ALL: [ChangeEvent; 6] = [
        ChangeEvent::NewMessage,
        ChangeEvent::MessageEdited,
        ChangeEvent::MessageDeleted,
        ChangeEvent::ReactionAdded,
        ChangeEvent::ReactionRemoved,
        ChangeEvent::Membership,
    ];

    /// The Socket.IO event name (as stored in `changes.event`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeEvent::NewMessage => "new_message",
            ChangeEvent::MessageEdited => "message_edited",
            ChangeEvent::MessageDeleted => "message_deleted",
            ChangeEvent::ReactionAdded => "reaction_added",
            ChangeEvent::ReactionRemoved => "reaction_removed",
            ChangeEvent::Membership => "membership",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A `message_edited` or `message_deleted` event: a change to a message,
/// with the message as it is now.
// SQLite builds the payload (the change log's query); this type is held
// to that text byte for byte in a test (store.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct MessageChange {
    /// The change's place in the log (`GET /chatrooms/{room_id}/changes`);
    /// a `since` to resume after it.
    pub seq: i64,
    pub room_id: i64,
    pub message_id: i64,
    /// The message as it is now (a later delete shows the tombstone).
    pub message: Message,
}

/// A `reaction_added` or `reaction_removed` event: a reaction given or
/// taken back, with the message as it is now.
// Built by SQLite and held to this type as `MessageChange` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct ReactionChange {
    /// The change's place in the log (`GET /chatrooms/{room_id}/changes`);
    /// a `since` to resume after it.
    pub seq: i64,
    pub room_id: i64,
    pub message_id: i64,
    pub emoji: String,
    /// Who reacted (or took it back).
    pub username: String,
    /// The message as it is now, with its reactions.
    pub message: Message,
}

/// One row of a room's change log, as the tail, the feed and a `since`
/// replay carry it: `data` is the event's payload, already JSON (for
/// `new_message` the message itself; for the others `{"seq", "room_id",
/// "message_id", "message"}` with the message as it is now, plus `emoji`
/// and `username` for reactions). `at` is when the change was committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub seq: i64,
    pub room_id: i64,
    pub event: ChangeEvent,
    pub data: Box<serde_json::value::RawValue>,
    pub at: String,
}

/// A user's read position in a room, and what is left to read there: the
/// messages after it that are neither theirs nor deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct ReadPosition {
    pub room_id: i64,
    pub username: String,
    /// The id of the last message read.
    pub last_read_id: i64,
    /// Later messages that are neither the user's own nor deleted.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub unread: i64,
}

/// `GET /users/{name}/unread`: every room the user has a read position in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unread {
    pub username: String,
    pub total: i64,
    pub rooms: Vec<ReadPosition>,
}

/// Who is in a room: distinct usernames in order of joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUsers {
    pub room_id: i64,
    pub user_count: usize,
    pub users: Vec<String>,
}

/// Who can see a room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Public,
    Private,
    Dm,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Dm => "dm",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Visibility::Public, Visibility::Private, Visibility::Dm]
            .into_iter()
            .find(|v| v.as_str() == raw)
    }

    pub fn is_public(&self) -> bool {
        *self == Visibility::Public
    }
}

/// What is kept: a message goes when either limit says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Messages (and changes) older than this many milliseconds go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_ms: Option<i64>,
    /// Beyond the newest this many messages of a room, older ones go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<i64>,
}

impl Retention {
    /// A policy must keep something: a non-negative age and count.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.max_age_ms.is_some_and(|ms| ms < 0) || self.max_messages.is_some_and(|n| n < 0) {
            return Err(ApiError::InvalidPayload(
                "max_age_ms and max_messages must not be negative".to_owned(),
            ));
        }
        Ok(())
    }

    /// Whether anything is ever pruned.
    pub fn is_on(&self) -> bool {
        self.max_age_ms.is_some() || self.max_messages.is_some()
    }
}

/// The internal API of edge mode (docs/protocol.md §6): what the component and the
/// edge-mode sidecars say to each other, behind the deployment's token.
pub mod internal {
    use super::Message;
    use crate::error::ApiError;
    use serde::{Deserialize, Serialize};

    /// The path prefix of the internal API.
    pub const PREFIX: &str = "/internal";
    /// Where new messages are announced on Redis unless configured.
    pub const DEFAULT_CHANNEL: &str = "chatroom:messages";

    /// `GET /internal/feed/head`: the newest change's `seq` (0 for none).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FeedHead {
        pub last_id: i64,
    }

    /// `PUT /internal/nodes/{node}`: take or renew a presence lease.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LeaseRequest {
        pub lease_ms: i64,
    }

    /// Its answer: `renewed` while the lease held, `taken` when the node
    /// had none (or it had run out, and its rows may be gone).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LeaseAnswer {
        pub lease: LeaseState,
    }

    /// What renewing a lease found.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum LeaseState {
        /// The node held a live lease: its rows were counted all along.
        Renewed,
        /// The node had no lease, or it had run out (its rows may have been
        /// swept): the node should record its connections again.
        Taken,
    }

    /// `POST /internal/nodes/{node}/departures`: the connections that went
    /// (at most [`crate::limits::DEPARTURES_MAX`]), unlisted everywhere in
    /// one transaction.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Departures {
        pub sids: Vec<String>,
    }

    /// `PUT /internal/nodes/{node}/presence/{sid}/{room_id}`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PresenceEntry {
        pub username: String,
    }

    /// `POST /internal/prune`: one retention step from room `from_room`
    /// (answered with a `PruneStep`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PruneRequest {
        #[serde(flatten)]
        pub policy: super::Retention,
        pub from_room: i64,
    }

    /// One element of `POST /internal/messages` (an array of them, stored
    /// in order in one transaction).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Draft {
        pub room_id: i64,
        pub sender: String,
        pub message: String,
        /// The socket's key for it: a repeat stores nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_id: Option<String>,
    }

    /// The answer for one draft: the stored message, or why not.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Outcome {
        pub ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<Message>,
        /// A read position (`mark_read`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub read: Option<super::ReadPosition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detail: Option<String>,
        /// `resync_required` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kept_after: Option<i64>,
    }

    impl Outcome {
        /// A success, its result to be filled in.
        pub fn done() -> Self {
            Outcome {
                ok: true,
                message: None,
                read: None,
                code: None,
                detail: None,
                kept_after: None,
            }
        }

        /// A refusal: `e` as the component rendered it.
        pub fn refused(e: &ApiError) -> Self {
            Outcome {
                ok: false,
                code: Some(e.code().to_owned()),
                detail: Some(e.public_detail()),
                kept_after: e.kept_after(),
                ..Outcome::done()
            }
        }

        /// The error a refusal stands for, read back as the component
        /// rendered it.
        pub fn refusal(&self) -> ApiError {
            ApiError::from_wire(
                self.code.as_deref().unwrap_or("no code"),
                self.detail.as_deref().unwrap_or_default(),
                self.kept_after,
            )
        }
    }
}
