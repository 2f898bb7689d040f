//! Turning what a client sent (a JSON object, or the original's query-string
//! form) into validated drafts. REST and Socket.IO payloads share these rules:
//! `message` or `content` for the text, `sender` optional where a default is
//! known (the username a socket joined with).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::limits::MAX_BODY_BYTES;
use crate::validate::{ClientId, Content, RoomName, Sender, parse_room_id};
use crate::wire::Visibility;

/// Parses a request body that must be one JSON object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidJson("expected a JSON object".to_owned())),
        Err(e) => Err(ApiError::InvalidJson(e.to_string())),
    }
}

/// Reads an optional string field; present with another type is an error.
fn string_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    err: fn(String) -> ApiError,
) -> Result<Option<&'a str>, ApiError> {
    first_string_field(obj, &[field], err)
}

/// The first of `fields` that is present (`null` counts as absent), as a
/// string; present with another type is an error. For fields with
/// aliases: `message` or `content`, `username` or `sender`.
pub(crate) fn first_string_field<'a>(
    obj: &'a Map<String, Value>,
    fields: &[&str],
    err: fn(String) -> ApiError,
) -> Result<Option<&'a str>, ApiError> {
    for field in fields {
        match obj.get(*field) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s)),
            Some(_) => return Err(err(format!("{field} must be a string"))),
        }
    }
    Ok(None)
}

/// A room to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomDraft {
    pub name: RoomName,
    /// `public` unless the body says `"visibility": "private"`.
    pub visibility: Visibility,
}

impl RoomDraft {
    /// From `{"name": "...", "visibility": "public" | "private"}`.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let obj = json_object(body)?;
        let mut draft = Self::from_name(string_field(&obj, "name", ApiError::InvalidName)?)?;
        draft.visibility = match string_field(&obj, "visibility", ApiError::InvalidPayload)? {
            None | Some("public") => Visibility::Public,
            Some("private") => Visibility::Private,
            Some(_) => {
                return Err(ApiError::InvalidPayload(
                    "visibility must be public or private (a DM is POST /dms)".to_owned(),
                ));
            }
        };
        Ok(draft)
    }

    /// From a bare name, e.g. the original's `?name=`: a public room.
    pub fn from_name(name: Option<&str>) -> Result<Self, ApiError> {
        let name = name.ok_or_else(|| ApiError::InvalidName("name is required".to_owned()))?;
        Ok(RoomDraft {
            name: RoomName::parse(name)?,
            visibility: Visibility::Public,
        })
    }
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDraft {
    pub sender: Sender,
    pub content: Content,
    /// The client's key for it, when it sent one: a repeat stores nothing.
    pub client_id: Option<ClientId>,
}

impl MessageDraft {
    /// From `{"sender", "message"}` (or `"content"`); `default_sender` is
    /// used when `sender` is absent.
    pub fn from_object(
        obj: &Map<String, Value>,
        default_sender: Option<&str>,
    ) -> Result<Self, ApiError> {
        let sender = string_field(obj, "sender", ApiError::InvalidSender)?.or(default_sender);
        let text = first_string_field(obj, &["message", "content"], ApiError::InvalidMessage)?;
        let client_id = string_field(obj, "client_id", ApiError::InvalidPayload)?;
        Self::from_fields(sender, text)?.with_client_id(client_id)
    }

    /// With the client's key (`client_id`, or REST's `Idempotency-Key`),
    /// when one was given.
    pub fn with_client_id(mut self, client_id: Option<&str>) -> Result<Self, ApiError> {
        if let Some(raw) = client_id {
            self.client_id = Some(ClientId::parse(raw)?);
        }
        Ok(self)
    }

    /// From a JSON request body; `default_sender` is used when `sender`
    /// is absent.
    pub fn from_json(body: &[u8], default_sender: Option<&str>) -> Result<Self, ApiError> {
        Self::from_object(&json_object(body)?, default_sender)
    }

    /// From loose fields, e.g. the original's `?sender=&content=`.
    pub fn from_fields(sender: Option<&str>, text: Option<&str>) -> Result<Self, ApiError> {
        let sender =
            sender.ok_or_else(|| ApiError::InvalidSender("sender is required".to_owned()))?;
        let text =
            text.ok_or_else(|| ApiError::InvalidMessage("message is required".to_owned()))?;
        Ok(MessageDraft {
            sender: Sender::parse(sender)?,
            content: Content::parse(text)?,
            client_id: None,
        })
    }
}

/// A Socket.IO event payload: one JSON object of at most 64 KiB (the REST
/// body limit) when serialised.
pub fn event_object(payload: &Value) -> Result<&Map<String, Value>, ApiError> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            if self.0 > MAX_BODY_BYTES {
                return Err(std::io::ErrorKind::FileTooLarge.into());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    if serde_json::to_writer(Counter(0), payload).is_err() {
        return Err(ApiError::PayloadTooLarge);
    }
    match payload {
        Value::Object(obj) => Ok(obj),
        _ => Err(ApiError::InvalidPayload(
            "the event payload must be a JSON object".to_owned(),
        )),
    }
}

/// `room_id`: a positive integer, as a JSON number or a decimal string.
pub fn room_id_field(obj: &Map<String, Value>) -> Result<i64, ApiError> {
    id_field(obj, "room_id", ApiError::InvalidRoomId)
}

/// `message_id`: a positive integer, as a JSON number or a decimal string.
pub fn message_id_field(obj: &Map<String, Value>) -> Result<i64, ApiError> {
    id_field(obj, "message_id", ApiError::InvalidMessageId)
}

fn id_field(obj: &Map<String, Value>, name: &str, invalid: ApiError) -> Result<i64, ApiError> {
    let id = match obj.get(name) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => parse_room_id(s).ok(),
        _ => None,
    };
    id.filter(|id| *id > 0).ok_or(invalid)
}

/// An optional flag: `default` when absent or null, else it must be a
/// JSON boolean.
pub fn flag_field(obj: &Map<String, Value>, name: &str, default: bool) -> Result<bool, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::InvalidPayload(format!(
            "{name} must be true or false"
        ))),
    }
}

/// The wire form [`room_id_field`] and [`message_id_field`] read.
#[cfg(feature = "schema")]
pub(crate) fn id_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}]
    })
}

/// The wire form a username is read from ([`Sender::parse_username`]);
/// `null` counts as absent.
#[cfg(feature = "schema")]
pub(crate) fn username_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": crate::limits::SENDER_MAX_CHARS,
    })
}

/// A `typing` payload: `{"room_id", "typing"?}`; `typing` is `true`
/// (started, or still typing) unless it is `false` (stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TypingRequest {
    /// The room: a positive integer (or its decimal string).
    #[cfg_attr(feature = "schema", schemars(schema_with = "id_schema"))]
    pub room_id: i64,
    /// `false` when the user stopped.
    #[cfg_attr(feature = "schema", schemars(default = "typing_default"))]
    pub typing: bool,
}

#[cfg(feature = "schema")]
fn typing_default() -> bool {
    true
}

#[cfg(feature = "schema")]
fn no_username() -> Option<&'static str> {
    None
}

impl TypingRequest {
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, ApiError> {
        let room_id = room_id_field(obj)?;
        let typing = flag_field(obj, "typing", true)?;
        Ok(TypingRequest { room_id, typing })
    }
}

/// A `leave_room` payload: `{"room_id"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LeaveRequest {
    /// The room: a positive integer (or its decimal string).
    #[cfg_attr(feature = "schema", schemars(schema_with = "id_schema"))]
    pub room_id: i64,
}

impl LeaveRequest {
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, ApiError> {
        let room_id = room_id_field(obj)?;
        Ok(LeaveRequest { room_id })
    }
}

/// A `join_room` payload: `{"room_id", "username"?, "since"?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JoinRequest {
    /// The room: a positive integer (or its decimal string).
    #[cfg_attr(feature = "schema", schemars(schema_with = "id_schema"))]
    pub room_id: i64,
    /// How the user is listed and announced (1..64 characters after
    /// trimming).
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "username_schema", default = "no_username")
    )]
    pub username: Option<Sender>,
    /// The last change seq (or message id) the client has; the room's
    /// later changes are replayed first.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub since: Option<i64>,
}

impl JoinRequest {
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, ApiError> {
        let room_id = room_id_field(obj)?;
        let username = string_field(obj, "username", ApiError::InvalidUsername)?
            .map(Sender::parse_username)
            .transpose()?;
        let since = match obj.get("since") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::InvalidPaging("since must be an integer of at least 0".to_owned())
            })?),
        };
        Ok(JoinRequest {
            room_id,
            username,
            since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// asyncapi.json says `username` and `since` may be `null`: read as absent.
    #[test]
    fn a_join_with_null_username_and_since_is_a_silent_join_from_now() {
        let payload = serde_json::json!({"room_id": "7", "username": null, "since": null});
        let join = JoinRequest::from_object(payload.as_object().unwrap()).unwrap();
        assert_eq!(
            join,
            JoinRequest {
                room_id: 7,
                username: None,
                since: None
            }
        );
        let bad = serde_json::json!({"room_id": 7, "since": -1});
        assert_eq!(
            JoinRequest::from_object(bad.as_object().unwrap())
                .unwrap_err()
                .code(),
            "invalid_paging"
        );
    }

    #[test]
    fn a_typing_payload_is_a_room_and_a_flag() {
        let parse = |v: Value| {
            TypingRequest::from_object(v.as_object().expect("an object"))
                .map(|t| (t.room_id, t.typing))
        };
        assert_eq!(parse(serde_json::json!({"room_id": 3})), Ok((3, true)));
        assert_eq!(
            parse(serde_json::json!({"room_id": "3", "typing": false})),
            Ok((3, false))
        );
        assert_eq!(
            parse(serde_json::json!({"room_id": 3, "typing": null})),
            Ok((3, true))
        );
        assert!(matches!(
            parse(serde_json::json!({"room_id": 3, "typing": "yes"})),
            Err(ApiError::InvalidPayload(_))
        ));
        assert_eq!(
            parse(serde_json::json!({"typing": true})),
            Err(ApiError::InvalidRoomId)
        );
    }

    #[test]
    fn room_draft_needs_a_string_name_in_an_object() {
        assert_eq!(
            RoomDraft::from_json(br#"{"name":" General "}"#)
                .unwrap()
                .name
                .as_str(),
            "General"
        );
        assert_eq!(
            RoomDraft::from_json(b"{}").unwrap_err().code(),
            "invalid_name"
        );
        assert_eq!(
            RoomDraft::from_json(br#"{"name":5}"#).unwrap_err().code(),
            "invalid_name"
        );
        assert_eq!(
            RoomDraft::from_json(b"[1]").unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            RoomDraft::from_json(b"{\"name\":").unwrap_err().code(),
            "invalid_json"
        );
    }

    #[test]
    fn message_draft_takes_message_or_content_and_a_default_sender() {
        let m = MessageDraft::from_json(br#"{"sender":"Alice","message":"Hi"}"#, None).unwrap();
        assert_eq!((m.sender.as_str(), m.content.as_str()), ("Alice", "Hi"));
        let m = MessageDraft::from_json(br#"{"sender":"Alice","content":"Yo"}"#, None).unwrap();
        assert_eq!(m.content.as_str(), "Yo");
        let obj = json_object(br#"{"message":"Hi"}"#).unwrap();
        assert_eq!(
            MessageDraft::from_object(&obj, Some("bob"))
                .unwrap()
                .sender
                .as_str(),
            "bob"
        );
        assert_eq!(
            MessageDraft::from_object(&obj, None).unwrap_err().code(),
            "invalid_sender"
        );
        assert_eq!(
            MessageDraft::from_json(br#"{"sender":"a"}"#, None)
                .unwrap_err()
                .code(),
            "invalid_message"
        );
        assert_eq!(
            MessageDraft::from_json(br#"{"sender":"a","message":["x"]}"#, None)
                .unwrap_err()
                .code(),
            "invalid_message"
        );
    }

    #[test]
    fn event_payloads_are_bounded_objects() {
        assert_eq!(
            event_object(&Value::from(5)).unwrap_err().code(),
            "invalid_payload"
        );
        assert_eq!(
            event_object(&Value::Null).unwrap_err().code(),
            "invalid_payload"
        );
        let huge = serde_json::json!({"message": "x".repeat(1 << 20)});
        assert_eq!(event_object(&huge).unwrap_err().code(), "payload_too_large");
        assert!(event_object(&serde_json::json!({"room_id": 1})).is_ok());
    }

    #[test]
    fn join_requests() {
        let parse = |v: Value| JoinRequest::from_object(event_object(&v).unwrap());
        let j = parse(serde_json::json!({"room_id": 3, "username": " al ", "since": 41})).unwrap();
        assert_eq!(
            (j.room_id, j.username.unwrap().as_str(), j.since),
            (3, "al", Some(41))
        );
        assert_eq!(
            parse(serde_json::json!({"room_id": "7"})).unwrap().room_id,
            7
        );
        for (bad, code) in [
            (serde_json::json!({}), "invalid_room_id"),
            (serde_json::json!({"room_id": 0}), "invalid_room_id"),
            (serde_json::json!({"room_id": 1.5}), "invalid_room_id"),
            (serde_json::json!({"room_id": [1]}), "invalid_room_id"),
            (
                serde_json::json!({"room_id": 1, "username": 5}),
                "invalid_username",
            ),
            (
                serde_json::json!({"room_id": 1, "username": ""}),
                "invalid_username",
            ),
            (
                serde_json::json!({"room_id": 1, "since": -1}),
                "invalid_paging",
            ),
            (
                serde_json::json!({"room_id": 1, "since": "x"}),
                "invalid_paging",
            ),
        ] {
            assert_eq!(parse(bad.clone()).unwrap_err().code(), code, "{bad}");
        }
    }
}
