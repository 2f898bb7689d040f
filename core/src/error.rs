//! The errors a client can see, with their HTTP status and stable `code`:
//! every error any chatroom process answers with is an [`ApiError`], and
//! [`ApiError::to_json`] is the one way its body `{"detail", "code"}` is
//! written (with [`CONTENT_TYPE`], the REST content type, everywhere). The
//! REST component, the page, the host, the sidecar's front and its
//! Socket.IO events all report these.

use serde::Serialize;

use crate::db::StoreError;

/// The content type of every JSON answer, errors included.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("Request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("The request could not be read: {0}")]
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
    #[error("Not a member of chatroom {0}")]
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
    #[error("Chatroom '{0}' already exists")]
    RoomExists(String),
    #[error("Request body is larger than {} bytes", crate::limits::MAX_BODY_BYTES)]
    PayloadTooLarge,
    #[error("Too many requests: slow down and retry")]
    RateLimited,
    #[error("No such endpoint")]
    NotFound,
    #[error("A valid token is required")]
    Unauthorized,
    #[error("The sender must be the token's user, '{0}'")]
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
    UpstreamUnavailable(&'static str),
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

    /// The error a peer reported as `code` and `detail` (the internal API's
    /// answers): the same variant for every client error; anything else
    /// is a storage failure, whose text goes to the log only.
    pub fn from_wire(code: &str, detail: &str) -> ApiError {
        let text = || detail.to_owned();
        match code {
            "invalid_json" => ApiError::InvalidJson(text()),
            "invalid_sender" => ApiError::InvalidSender(text()),
            "invalid_message" => ApiError::InvalidMessage(text()),
            "invalid_username" => ApiError::InvalidUsername(text()),
            "invalid_room_id" => ApiError::InvalidRoomId,
            "invalid_message_id" => ApiError::InvalidMessageId,
            "invalid_emoji" => ApiError::InvalidEmoji(text()),
            "invalid_payload" => ApiError::InvalidPayload(text()),
            "room_not_found" => ApiError::RoomNotFound,
            "message_not_found" => ApiError::MessageNotFound,
            "not_sender" => ApiError::NotSender,
            "message_deleted" => ApiError::MessageDeleted,
            "too_many_reactions" => ApiError::TooManyReactions,
            "sender_mismatch" => ApiError::SenderMismatch(text()),
            "forbidden" => ApiError::Forbidden(text()),
            "banned" => ApiError::Banned,
            "muted" => ApiError::Muted,
            "idempotency_conflict" => ApiError::IdempotencyConflict,
            _ => ApiError::Storage(StoreError::Database(format!(
                "the REST upstream refused: {detail} ({code})"
            ))),
        }
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
