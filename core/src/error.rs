//! The errors a client can see, with their HTTP status and stable `code`:
//! every error any chatroom process answers with is an [`ApiError`], and
//! [`ApiError::to_json`] is the one way its body `{"detail", "code"}` is
//! written (with [`CONTENT_TYPE`], the REST content type, everywhere). The
//! REST component, the page, the host, the sidecar's front and its
//! Socket.IO events all report these.

use std::borrow::Cow;

use serde::Serialize;

use crate::db::StoreError;

/// The content type of every JSON answer, errors included.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

// The fixed parts of the details that carry a value, written once for
// the message and for reading it back ([`ApiError::from_wire`]).
const INVALID_JSON: &str = "Request body is not valid JSON: ";
const BAD_REQUEST: &str = "The request could not be read: ";
const NOT_IN_ROOM: &str = "Not a member of chatroom ";
const ROOM_EXISTS: (&str, &str) = ("Chatroom '", "' already exists");
const SENDER_MISMATCH: (&str, &str) = ("The sender must be the token's user, '", "'");

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{INVALID_JSON}{0}")]
    InvalidJson(String),
    #[error("{BAD_REQUEST}{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidSender(String),
    #[error("{0}")]
    InvalidMessage(String),
    #[error("{0}")]
    InvalidUsername(String),
    #[error("room_id must be a positive integer")]
    InvalidRoomId,
    #[error("{0}")]
    InvalidPayload(String),
    #[error("{NOT_IN_ROOM}{0}")]
    NotInRoom(i64),
    #[error("{0}")]
    InvalidPaging(String),
    #[error("Chatroom not found")]
    RoomNotFound,
    #[error("message_id must be a positive integer")]
    InvalidMessageId,
    #[error("{0}")]
    InvalidEmoji(String),
    #[error("Message not found")]
    MessageNotFound,
    #[error("Only the sender of a message may change it")]
    NotSender,
    #[error("The message was deleted")]
    MessageDeleted,
    #[error(
        "A message takes at most {} different reactions",
        crate::limits::REACTION_KINDS_MAX
    )]
    TooManyReactions,
    #[error("{before}{0}{after}", before = ROOM_EXISTS.0, after = ROOM_EXISTS.1)]
    RoomExists(String),
    #[error("Request body is larger than {} bytes", crate::limits::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("Too many requests: slow down and retry")]
    RateLimited,
    #[error("No such endpoint")]
    NotFound,
    #[error("A valid token is required")]
    Unauthorized,
    #[error("{before}{0}{after}", before = SENDER_MISMATCH.0, after = SENDER_MISMATCH.1)]
    SenderMismatch(String),
    #[error("The internal API is off: the internal_token variable is not set")]
    InternalApiDisabled,
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Socket.IO connections from this origin are not allowed")]
    OriginNotAllowed,
    #[error("The server is busy; retry shortly")]
    Overloaded,
    #[error("The request took too long")]
    Timeout,
    #[error("Internal server error")]
    Internal,
    /// The REST side behind a sidecar did not answer (`502`).
    #[error("The REST server is unavailable")]
    BadGateway,
    /// The sidecar cannot serve yet or now (`503`): why, in a sentence.
    #[error("{0}")]
    UpstreamUnavailable(Cow<'static, str>),
    /// A room's wall (docs/protocol.md §10): the user may see the room
    /// but not do this (a role they lack, a direct message's fixed pair).
    #[error("{0}")]
    Forbidden(String),
    #[error("You are banned from this chatroom")]
    Banned,
    #[error("You are muted in this chatroom")]
    Muted,
    /// Private rooms, DMs, members and moderation need identity on.
    #[error("{0}")]
    IdentityRequired(String),
    /// A `client_id` (or `Idempotency-Key`) already used by this sender in
    /// this room for another message.
    #[error("This client_id was already used for a different message")]
    IdempotencyConflict,
    /// A `since` or `after` older than what retention keeps
    /// (docs/protocol.md §4.6): every change after `kept_after` is kept.
    #[error(
        "Changes up to seq {kept_after} are no longer kept: reload the history, then ask for changes after it"
    )]
    ResyncRequired { kept_after: i64 },
    #[error("Storage failed: {0}")]
    Storage(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::BadRequest(_)
            | ApiError::InvalidName(_)
            | ApiError::InvalidSender(_)
            | ApiError::InvalidMessage(_)
            | ApiError::InvalidUsername(_)
            | ApiError::InvalidRoomId
            | ApiError::InvalidMessageId
            | ApiError::InvalidEmoji(_)
            | ApiError::InvalidPayload(_)
            | ApiError::NotInRoom(_)
            | ApiError::InvalidPaging(_)
            | ApiError::IdentityRequired(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::InternalApiDisabled
            | ApiError::SenderMismatch(_)
            | ApiError::NotSender
            | ApiError::OriginNotAllowed
            | ApiError::Forbidden(_)
            | ApiError::Banned
            | ApiError::Muted => 403,
            ApiError::RoomNotFound | ApiError::MessageNotFound | ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::ResyncRequired { .. } => 410,
            ApiError::RoomExists(_) | ApiError::MessageDeleted | ApiError::TooManyReactions => 409,
            ApiError::PayloadTooLarge => 413,
            ApiError::IdempotencyConflict => 422,
            ApiError::RateLimited => 429,
            ApiError::Storage(_) | ApiError::Internal => 500,
            ApiError::BadGateway => 502,
            ApiError::Overloaded | ApiError::UpstreamUnavailable(_) => 503,
            ApiError::Timeout => 504,
        }
    }

    /// The stable, machine-readable name of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidName(_) => "invalid_name",
            ApiError::InvalidSender(_) => "invalid_sender",
            ApiError::InvalidMessage(_) => "invalid_message",
            ApiError::InvalidUsername(_) => "invalid_username",
            ApiError::InvalidRoomId => "invalid_room_id",
            ApiError::InvalidPayload(_) => "invalid_payload",
            ApiError::NotInRoom(_) => "not_in_room",
            ApiError::InvalidPaging(_) => "invalid_paging",
            ApiError::RoomNotFound => "room_not_found",
            ApiError::InvalidMessageId => "invalid_message_id",
            ApiError::InvalidEmoji(_) => "invalid_emoji",
            ApiError::MessageNotFound => "message_not_found",
            ApiError::NotSender => "not_sender",
            ApiError::MessageDeleted => "message_deleted",
            ApiError::TooManyReactions => "too_many_reactions",
            ApiError::RoomExists(_) => "room_exists",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::NotFound => "not_found",
            ApiError::Unauthorized => "unauthorized",
            ApiError::SenderMismatch(_) => "sender_mismatch",
            ApiError::InternalApiDisabled => "internal_api_disabled",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Storage(_) => "storage_error",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Banned => "banned",
            ApiError::Muted => "muted",
            ApiError::IdentityRequired(_) => "identity_required",
            ApiError::IdempotencyConflict => "idempotency_conflict",
            ApiError::ResyncRequired { .. } => "resync_required",
            ApiError::OriginNotAllowed => "origin_not_allowed",
            ApiError::Overloaded => "overloaded",
            ApiError::Timeout => "timeout",
            ApiError::Internal => "internal_error",
            ApiError::BadGateway | ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
        }
    }

    /// The sentence a client is shown: the error itself for client errors;
    /// for server errors a fixed sentence, never internal text (SQL, file
    /// paths), which belongs in the log.
    pub fn public_detail(&self) -> String {
        match self {
            ApiError::Storage(_) => "The server could not complete the request".to_owned(),
            other => other.to_string(),
        }
    }

    /// The error a peer reported as `code`, `detail` and `kept_after`
    /// (the internal API's answers): the error it rendered, for every
    /// code (`from_wire(e.code(), &e.public_detail(), e.kept_after())`
    /// answers as `e` does). A code this version does not know, or a
    /// detail it cannot read back, is a storage failure whose text goes to
    /// the log only.
    pub fn from_wire(code: &str, detail: &str, kept_after: Option<i64>) -> ApiError {
        let text = || detail.to_owned();
        let within = |(before, after): (&str, &str)| {
            detail
                .strip_prefix(before)
                .and_then(|rest| rest.strip_suffix(after))
                .map(str::to_owned)
        };
        let known = match code {
            "invalid_json" => within((INVALID_JSON, "")).map(ApiError::InvalidJson),
            "bad_request" => within((BAD_REQUEST, "")).map(ApiError::BadRequest),
            "invalid_name" => Some(ApiError::InvalidName(text())),
            "invalid_sender" => Some(ApiError::InvalidSender(text())),
            "invalid_message" => Some(ApiError::InvalidMessage(text())),
            "invalid_username" => Some(ApiError::InvalidUsername(text())),
            "invalid_room_id" => Some(ApiError::InvalidRoomId),
            "invalid_payload" => Some(ApiError::InvalidPayload(text())),
            "not_in_room" => within((NOT_IN_ROOM, ""))
                .and_then(|id| id.parse().ok())
                .map(ApiError::NotInRoom),
            "invalid_paging" => Some(ApiError::InvalidPaging(text())),
            "room_not_found" => Some(ApiError::RoomNotFound),
            "invalid_message_id" => Some(ApiError::InvalidMessageId),
            "invalid_emoji" => Some(ApiError::InvalidEmoji(text())),
            "message_not_found" => Some(ApiError::MessageNotFound),
            "not_sender" => Some(ApiError::NotSender),
            "message_deleted" => Some(ApiError::MessageDeleted),
            "too_many_reactions" => Some(ApiError::TooManyReactions),
            "room_exists" => within(ROOM_EXISTS).map(ApiError::RoomExists),
            "payload_too_large" => Some(ApiError::PayloadTooLarge),
            "rate_limited" => Some(ApiError::RateLimited),
            "not_found" => Some(ApiError::NotFound),
            "unauthorized" => Some(ApiError::Unauthorized),
            "sender_mismatch" => within(SENDER_MISMATCH).map(ApiError::SenderMismatch),
            "internal_api_disabled" => Some(ApiError::InternalApiDisabled),
            "method_not_allowed" => Some(ApiError::MethodNotAllowed),
            "forbidden" => Some(ApiError::Forbidden(text())),
            "banned" => Some(ApiError::Banned),
            "muted" => Some(ApiError::Muted),
            "identity_required" => Some(ApiError::IdentityRequired(text())),
            "idempotency_conflict" => Some(ApiError::IdempotencyConflict),
            "resync_required" => {
                kept_after.map(|kept_after| ApiError::ResyncRequired { kept_after })
            }
            "origin_not_allowed" => Some(ApiError::OriginNotAllowed),
            "overloaded" => Some(ApiError::Overloaded),
            "timeout" => Some(ApiError::Timeout),
            "internal_error" => Some(ApiError::Internal),
            "upstream_unavailable" if detail == ApiError::BadGateway.to_string() => {
                Some(ApiError::BadGateway)
            }
            "upstream_unavailable" => Some(ApiError::UpstreamUnavailable(text().into())),
            _ => None,
        };
        known.unwrap_or_else(|| {
            ApiError::Storage(StoreError::Database(format!(
                "the REST upstream refused: {detail} ({code})"
            )))
        })
    }

    /// The `seq` after which everything is kept, for `resync_required`.
    pub fn kept_after(&self) -> Option<i64> {
        match self {
            ApiError::ResyncRequired { kept_after } => Some(*kept_after),
            _ => None,
        }
    }

    /// The REST error body `{"detail", "code"}` (and `kept_after` for
    /// `resync_required`).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            detail: self.public_detail(),
            code: self.code(),
            kept_after: self.kept_after(),
        }
    }

    /// The fields of the Socket.IO `error` event and of a failed ack
    /// (docs/protocol.md §3.2): the body's, with the detail as `error`.
    pub fn event_body(&self) -> EventError {
        EventError {
            error: self.public_detail(),
            code: self.code(),
            kept_after: self.kept_after(),
        }
    }

    /// The body, written: what every error response carries, with
    /// [`CONTENT_TYPE`].
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and a number: serialising cannot fail.
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }

    /// Seconds a client should wait before retrying, for the errors that
    /// pass (a rate limit says its own).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Overloaded | ApiError::UpstreamUnavailable(_) => Some(1),
            _ => None,
        }
    }
}

/// The REST error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub detail: String,
    pub code: &'static str,
    /// `resync_required` only: every change after this `seq` is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_after: Option<i64>,
}

/// The Socket.IO `error` event's payload, and a failed ack's (with
/// `"ok": false` beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct EventError {
    /// A sentence for people.
    pub error: String,
    #[cfg_attr(feature = "schema", schemars(schema_with = "error_code"))]
    pub code: &'static str,
    /// `resync_required` only: every change after this seq is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "i64"))]
    pub kept_after: Option<i64>,
}

/// The document's list of the codes an event may be refused with (kept
/// beside their explanations in components/rest/asyncapi.json, and held to
/// [`ApiError::code`] by tests/asyncapi.rs).
#[cfg(feature = "schema")]
fn error_code(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"$ref": "#/components/schemas/ErrorCode"})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant. The match below does not compile when a
    /// variant is added, so this list is kept whole.
    fn every_error() -> Vec<ApiError> {
        let all = vec![
            ApiError::InvalidJson("expected value at line 1 column 1".into()),
            ApiError::BadRequest("the request body ended early".into()),
            ApiError::InvalidName("name must not be empty".into()),
            ApiError::InvalidSender("sender must not be empty".into()),
            ApiError::InvalidMessage("content must not be empty".into()),
            ApiError::InvalidUsername("username must be a string".into()),
            ApiError::InvalidRoomId,
            ApiError::InvalidPayload("the payload must be a JSON object".into()),
            ApiError::NotInRoom(42),
            ApiError::InvalidPaging("limit must be 1..=1000".into()),
            ApiError::RoomNotFound,
            ApiError::InvalidMessageId,
            ApiError::InvalidEmoji("not an emoji".into()),
            ApiError::MessageNotFound,
            ApiError::NotSender,
            ApiError::MessageDeleted,
            ApiError::TooManyReactions,
            ApiError::RoomExists("it's 'general'".into()),
            ApiError::PayloadTooLarge,
            ApiError::RateLimited,
            ApiError::NotFound,
            ApiError::Unauthorized,
            ApiError::SenderMismatch("o'brien".into()),
            ApiError::InternalApiDisabled,
            ApiError::MethodNotAllowed,
            ApiError::OriginNotAllowed,
            ApiError::Overloaded,
            ApiError::Timeout,
            ApiError::Internal,
            ApiError::BadGateway,
            ApiError::UpstreamUnavailable("the sidecar is starting".into()),
            ApiError::Forbidden("only moderators may kick".into()),
            ApiError::Banned,
            ApiError::Muted,
            ApiError::IdentityRequired("private rooms need identity".into()),
            ApiError::IdempotencyConflict,
            ApiError::ResyncRequired { kept_after: 7 },
            ApiError::Storage(StoreError::Database("disk I/O error".into())),
        ];
        for e in &all {
            match e {
                ApiError::InvalidJson(_)
                | ApiError::BadRequest(_)
                | ApiError::InvalidName(_)
                | ApiError::InvalidSender(_)
                | ApiError::InvalidMessage(_)
                | ApiError::InvalidUsername(_)
                | ApiError::InvalidRoomId
                | ApiError::InvalidPayload(_)
                | ApiError::NotInRoom(_)
                | ApiError::InvalidPaging(_)
                | ApiError::RoomNotFound
                | ApiError::InvalidMessageId
                | ApiError::InvalidEmoji(_)
                | ApiError::MessageNotFound
                | ApiError::NotSender
                | ApiError::MessageDeleted
                | ApiError::TooManyReactions
                | ApiError::RoomExists(_)
                | ApiError::PayloadTooLarge
                | ApiError::RateLimited
                | ApiError::NotFound
                | ApiError::Unauthorized
                | ApiError::SenderMismatch(_)
                | ApiError::InternalApiDisabled
                | ApiError::MethodNotAllowed
                | ApiError::OriginNotAllowed
                | ApiError::Overloaded
                | ApiError::Timeout
                | ApiError::Internal
                | ApiError::BadGateway
                | ApiError::UpstreamUnavailable(_)
                | ApiError::Forbidden(_)
                | ApiError::Banned
                | ApiError::Muted
                | ApiError::IdentityRequired(_)
                | ApiError::IdempotencyConflict
                | ApiError::ResyncRequired { .. }
                | ApiError::Storage(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_error_reads_back_as_it_was_rendered() {
        for e in every_error() {
            let back = ApiError::from_wire(e.code(), &e.public_detail(), e.kept_after());
            assert_eq!(back.body(), e.body(), "{e:?}");
            assert_eq!(back.status(), e.status(), "{e:?}");
            assert_eq!(back.retry_after(), e.retry_after(), "{e:?}");
            // Client errors come back as the very error; a storage
            // failure's text was never shown, so only its rendering is.
            if !matches!(e, ApiError::Storage(_)) {
                assert_eq!(back, e);
            }
        }
    }

    #[test]
    fn an_unknown_code_or_an_unreadable_detail_is_a_server_error() {
        for (code, detail) in [
            ("no_such_code", "whatever"),
            ("not_in_room", "Not a member of chatroom seven"),
            ("room_exists", "someone else's wording"),
            ("resync_required", "no kept_after given"),
        ] {
            let e = ApiError::from_wire(code, detail, None);
            assert_eq!((e.status(), e.code()), (500, "storage_error"), "{code}");
            assert!(!e.public_detail().contains(detail));
        }
    }

    /// Every code of docs/protocol.md §2.5 is an error here, and every
    /// error's status and code stand in that table.
    #[test]
    fn the_protocol_table_lists_every_status_and_code() {
        let protocol = include_str!("../../docs/protocol.md");
        let start = protocol.find("### 2.5 Error codes").unwrap();
        let end = start + protocol[start..].find("\n### ").unwrap();
        let table: Vec<(u16, String)> = protocol[start..end]
            .lines()
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).skip(1);
                let status = cells.next()?.parse().ok()?;
                let code = cells.next()?.trim_matches('`').to_owned();
                Some((status, code))
            })
            .collect();
        let ours: Vec<(u16, String)> = every_error()
            .iter()
            .map(|e| (e.status(), e.code().to_owned()))
            .collect();
        for row in &table {
            assert!(
                ours.contains(row),
                "{row:?} is in the protocol, not in ApiError"
            );
        }
        for row in &ours {
            assert!(
                table.contains(row),
                "{row:?} is in ApiError, not in the protocol"
            );
        }
    }

    #[test]
    fn an_event_error_carries_the_bodys_fields_under_the_events_names() {
        let e = ApiError::ResyncRequired { kept_after: 9 };
        let event = serde_json::to_value(e.event_body()).unwrap();
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(event["error"], body["detail"]);
        assert_eq!(event["code"], "resync_required");
        assert_eq!(event["kept_after"], 9);
        let plain = serde_json::to_value(ApiError::Banned.event_body()).unwrap();
        assert_eq!(plain.as_object().unwrap().len(), 2, "{plain}");
    }
}
