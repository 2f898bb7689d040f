//! The errors a client can see, with their HTTP status and stable `code`.
//! Both the REST component and the Socket.IO sidecar report these.

use crate::db::StoreError;
use crate::wire::ErrorBody;

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
            | ApiError::InvalidPayload(_)
            | ApiError::NotInRoom(_)
            | ApiError::InvalidPaging(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::InternalApiDisabled | ApiError::SenderMismatch(_) => 403,
            ApiError::RoomNotFound | ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::RoomExists(_) => 409,
            ApiError::PayloadTooLarge => 413,
            ApiError::RateLimited => 429,
            ApiError::Storage(_) => 500,
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
            ApiError::RoomExists(_) => "room_exists",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::NotFound => "not_found",
            ApiError::Unauthorized => "unauthorized",
            ApiError::SenderMismatch(_) => "sender_mismatch",
            ApiError::InternalApiDisabled => "internal_api_disabled",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Storage(_) => "storage_error",
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

    /// The REST error body `{"detail", "code"}`.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            detail: self.public_detail(),
            code: self.code(),
        }
    }
}
