//! The Socket.IO protocol (docs/protocol.md §3) as types: [`ClientEvent`],
//! every event a client sends, parsed once from its name and payload; and
//! [`ServerEvent`], every event the server sends but the change events
//! (`new_message` and the rest, whose payloads are the change log's,
//! [`crate::ChangeEvent`], already JSON; their types are `Message`,
//! `MessageChange`, `ReactionChange` and `MembershipEvent`), each with its
//! payload type. The acks of the
//! events that are not writes have their types here too.
//!
//! A write's payload (`send_message`, the actions) is read as far as it can
//! be without knowing who sends it: the room, and for an action whether it
//! asks for a read receipt; its draft or action is made once the sender is
//! known (the token's user, or the name the socket joined the room with).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::conversation::ActionKind;
use crate::error::{ApiError, EventError};
use crate::input::{
    JoinRequest, LeaveRequest, TypingRequest, event_object, flag_field, room_id_field,
};
use crate::walls::MembershipKind;
use crate::wire::Message;

/// An event a client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    JoinRoom(JoinRequest),
    LeaveRoom(LeaveRequest),
    Typing(TypingRequest),
    /// `send_message`: its fields, made a draft once the sender is known.
    SendMessage {
        room_id: i64,
        fields: Map<String, Value>,
    },
    /// `edit_message`, `delete_message`, `add_reaction`,
    /// `remove_reaction`, `mark_read`: its fields, made an action once the
    /// one acting is known.
    Act {
        kind: ActionKind,
        room_id: i64,
        /// `mark_read` with `receipt: true`: tell the room's other members.
        receipt: bool,
        fields: Map<String, Value>,
    },
}

impl ClientEvent {
    /// The names of the events a client may send, as the protocol lists
    /// them.
    pub const NAMES: [&'static str; 9] = [
        "join_room",
        "leave_room",
        "send_message",
        "typing",
        "edit_message",
        "delete_message",
        "add_reaction",
        "remove_reaction",
        "mark_read",
    ];

    /// The event `name` with `payload` (`Err` with why, when the payload
    /// could not be read). `Ok(None)` for a name this server does not know:
    /// such an event is ignored.
    /// A write's fields are moved out of the payload, not copied: this
    /// runs for every message a socket sends.
    pub fn parse(name: &str, payload: Result<Value, String>) -> Result<Option<Self>, ApiError> {
        if !Self::NAMES.contains(&name) {
            return Ok(None);
        }
        let payload = payload.map_err(|e| {
            ApiError::InvalidPayload(format!("the event payload is not valid: {e}"))
        })?;
        let obj = event_object(&payload)?;
        let event = match name {
            "join_room" => ClientEvent::JoinRoom(JoinRequest::from_object(obj)?),
            "leave_room" => ClientEvent::LeaveRoom(LeaveRequest::from_object(obj)?),
            "typing" => ClientEvent::Typing(TypingRequest::from_object(obj)?),
            "send_message" => ClientEvent::SendMessage {
                room_id: room_id_field(obj)?,
                fields: into_object(payload),
            },
            action => match ActionKind::parse(action) {
                Some(kind) => {
                    let (room_id, receipt) =
                        (room_id_field(obj)?, flag_field(obj, "receipt", false)?);
                    ClientEvent::Act {
                        kind,
                        room_id,
                        receipt,
                        fields: into_object(payload),
                    }
                }
                None => return Ok(None),
            },
        };
        Ok(Some(event))
    }

    /// Whether the event `name` stores something (a message, or a change
    /// to one, or a read mark): consecutive writes are stored together,
    /// those refused as they were parsed among them.
    pub fn names_a_write(name: &str) -> bool {
        name == "send_message" || ActionKind::parse(name).is_some()
    }
}

/// The object `event_object` accepted, taken out of its `Value`.
fn into_object(payload: Value) -> Map<String, Value> {
    match payload {
        Value::Object(fields) => fields,
        _ => Map::new(),
    }
}

/// A string that is always there, `null` when there is none: schemars
/// reads an `Option` as a key that may be left out.
#[cfg(feature = "schema")]
fn nullable_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "null"]})
}

/// A socket joining or leaving a room (`user_joined`, `user_left`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Presence {
    /// A public id of the connection: random, unrelated to the Engine.IO
    /// session id.
    pub sid: String,
    /// `null` for a socket that joined without a name.
    #[cfg_attr(
        feature = "schema",
        schemars(required, schema_with = "nullable_string")
    )]
    pub username: Option<String>,
    pub room_id: i64,
}

/// Someone typing in a room, or stopping (`typing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct TypingNotice {
    pub room_id: i64,
    /// The name the typist joined with (empty if none).
    pub username: String,
    pub typing: bool,
}

/// A read receipt (`read`): a member read the room up to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct ReadReceipt {
    pub room_id: i64,
    pub username: String,
    /// The reader's position (`last_read_id`) after the move.
    pub message_id: i64,
}

/// Why a user's sockets were taken out of a room: the membership changes
/// of the change log (docs/protocol.md §10.3) that end a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RemovalReason {
    Removed,
    Left,
    Kicked,
    Banned,
}

impl RemovalReason {
    /// The reason a logged membership change gives, if that change ends
    /// the membership (`added`, `muted` and the others do not).
    pub fn of(change: MembershipKind) -> Option<Self> {
        match change {
            MembershipKind::Removed => Some(RemovalReason::Removed),
            MembershipKind::Left => Some(RemovalReason::Left),
            MembershipKind::Kicked => Some(RemovalReason::Kicked),
            MembershipKind::Banned => Some(RemovalReason::Banned),
            _ => None,
        }
    }
}

/// The socket was taken out of a room (`removed_from_room`): removed,
/// kicked or banned there, at change `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct Removal {
    pub room_id: i64,
    pub reason: RemovalReason,
    /// Who made the change.
    pub by: String,
    /// The change's position in the log.
    pub seq: i64,
}

/// An event the server sends, but the change events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ServerEvent {
    UserJoined(Presence),
    UserLeft(Presence),
    Typing(TypingNotice),
    Read(ReadReceipt),
    RemovedFromRoom(Removal),
    Error(EventError),
}

impl ServerEvent {
    /// The names of the events [`ServerEvent`] carries.
    pub const NAMES: [&'static str; 6] = [
        "user_joined",
        "user_left",
        "typing",
        "read",
        "removed_from_room",
        "error",
    ];

    /// The event's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            ServerEvent::UserJoined(_) => "user_joined",
            ServerEvent::UserLeft(_) => "user_left",
            ServerEvent::Typing(_) => "typing",
            ServerEvent::Read(_) => "read",
            ServerEvent::RemovedFromRoom(_) => "removed_from_room",
            ServerEvent::Error(_) => "error",
        }
    }
}

/// The ack of a `join_room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct JoinAck {
    pub room_id: i64,
    /// `null` when joined without a name.
    #[cfg_attr(
        feature = "schema",
        schemars(required, schema_with = "nullable_string")
    )]
    pub username: Option<String>,
    /// How many changes after `since` were sent before the ack.
    pub replayed: usize,
}

/// The ack of a `leave_room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct LeaveAck {
    pub room_id: i64,
}

/// The ack of a `typing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct TypingAck {
    pub room_id: i64,
    pub typing: bool,
}

/// The ack of a write answered with its message (`send_message`,
/// `edit_message`, `add_reaction`, `remove_reaction`): the message's keys,
/// and the same object as `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct MessageAck<'a> {
    #[serde(flatten)]
    pub fields: &'a Message,
    pub message: &'a Message,
}

impl<'a> MessageAck<'a> {
    pub fn of(message: &'a Message) -> Self {
        MessageAck {
            fields: message,
            message,
        }
    }
}

/// The ack of a `delete_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct DeleteAck {
    pub room_id: i64,
    pub message_id: i64,
    /// Always `true`: a delete that is answered happened.
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::wire::always_true"))]
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_the_protocol_lists_parses_and_others_are_ignored() {
        let payload = json!({"room_id": 3, "message_id": 4, "content": "hi", "emoji": "👍"});
        for name in ClientEvent::NAMES {
            let event = ClientEvent::parse(name, Ok(payload.clone())).unwrap();
            assert!(event.is_some(), "{name}");
        }
        assert_eq!(
            ClientEvent::parse("dance", Ok(payload.clone())).unwrap(),
            None
        );
        assert_eq!(
            ClientEvent::parse("dance", Err("bad".into())).unwrap(),
            None
        );
    }

    #[test]
    fn a_known_event_with_a_bad_payload_is_refused_in_the_order_the_fields_are_read() {
        assert_eq!(
            ClientEvent::parse("typing", Err("not JSON".into()))
                .unwrap_err()
                .code(),
            "invalid_payload"
        );
        assert_eq!(
            ClientEvent::parse("leave_room", Ok(json!([1])))
                .unwrap_err()
                .code(),
            "invalid_payload"
        );
        assert_eq!(
            ClientEvent::parse("mark_read", Ok(json!({"room_id": 0})))
                .unwrap_err()
                .code(),
            "invalid_room_id"
        );
        let event = ClientEvent::parse(
            "mark_read",
            Ok(json!({"room_id": 2, "message_id": 5, "receipt": true})),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(
            event,
            ClientEvent::Act {
                kind: ActionKind::MarkRead,
                room_id: 2,
                receipt: true,
                ..
            }
        ));
        assert!(ClientEvent::names_a_write("mark_read"));
        assert!(!ClientEvent::names_a_write("typing"));
    }

    #[test]
    fn server_events_name_themselves_and_carry_only_their_payload() {
        let joined = ServerEvent::UserJoined(Presence {
            sid: "s".into(),
            username: None,
            room_id: 1,
        });
        assert_eq!(joined.name(), "user_joined");
        assert_eq!(
            serde_json::to_value(&joined).unwrap(),
            json!({"sid": "s", "username": null, "room_id": 1})
        );
        let error = ServerEvent::Error(ApiError::Banned.event_body());
        assert!(ServerEvent::NAMES.contains(&error.name()));
        assert_eq!(serde_json::to_value(&error).unwrap()["code"], "banned");
    }
}
