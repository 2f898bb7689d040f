//! The wire forms of the write events' payloads (`send_message` and the
//! actions), for asyncapi.json's schemas. A write's fields are read as far
//! as they can be before the sender is known (the room; for `mark_read`,
//! `receipt`), the rest by the same parsers as REST bodies
//! ([`crate::MessageDraft::from_object`], [`crate::Action::from_object`])
//! once it is, so no refusal changes order. These types say what those
//! parsers accept, from the same rules: the ids' and names' wire forms are
//! input.rs's, the lengths `limits`', the key's alphabet `ClientId`'s.
//! Only with the `schema` feature.

// Nothing reads these fields but the schema derive. An optional field's
// `serde(default, skip_serializing_if)` makes it optional there without a
// `"default": null` in the document.
#![allow(dead_code)]

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::input::{id_schema, username_schema};
use crate::limits::{CLIENT_ID_MAX_CHARS, CONTENT_MAX_CHARS};

/// A `send_message` payload: `{"room_id", "message" (or "content"),
/// "sender"?, "client_id"?}`.
#[derive(JsonSchema)]
#[schemars(extend("anyOf" = [{"required": ["message"]}, {"required": ["content"]}]))]
pub struct SendMessagePayload {
    /// The room: a positive integer (or its decimal string).
    #[schemars(schema_with = "id_schema")]
    pub room_id: i64,
    /// 1..4000 characters, not only whitespace, stored as sent.
    #[schemars(schema_with = "text_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Accepted in place of `message`.
    #[schemars(schema_with = "text_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Who sends it (1..64 characters after trimming): with identity on,
    /// the token's user, which it may name; without, the name the socket
    /// joined the room with unless given.
    #[schemars(schema_with = "username_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The client's key for this message: a repeat from the same sender in
    /// the same room within 24 h stores nothing, delivers nothing and is
    /// acknowledged with the first message (the official client's
    /// retries); the same key with other text is `idempotency_conflict`.
    #[schemars(schema_with = "client_id_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// What every action names: the message, who acts, and a key.
#[derive(JsonSchema)]
pub struct ActionTarget {
    /// The room: a positive integer (or its decimal string).
    #[schemars(schema_with = "id_schema")]
    pub room_id: i64,
    /// The message: a positive integer (or its decimal string).
    #[schemars(schema_with = "id_schema")]
    pub message_id: i64,
    /// Who acts (1..64 characters after trimming): with identity on, the
    /// token's user, which it may name; without, the name the socket
    /// joined the room with unless given.
    #[schemars(schema_with = "username_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Accepted in place of `username`.
    #[schemars(schema_with = "username_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The client's key for this action. A repeat of a message's last edit
    /// changes nothing and is answered with the message; the other actions
    /// are the same when repeated, so the key is only checked.
    #[schemars(schema_with = "client_id_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// An `edit_message` payload: the message's new text.
#[derive(JsonSchema)]
#[schemars(extend("anyOf" = [{"required": ["message"]}, {"required": ["content"]}]))]
pub struct EditPayload {
    #[serde(flatten)]
    pub target: ActionTarget,
    /// The new text: 1..4000 characters, not only whitespace.
    #[schemars(schema_with = "text_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Accepted in place of `message`.
    #[schemars(schema_with = "text_schema")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// A `delete_message` payload: the message to delete.
#[derive(JsonSchema)]
pub struct DeletePayload {
    #[serde(flatten)]
    pub target: ActionTarget,
}

/// An `add_reaction` or `remove_reaction` payload.
#[derive(JsonSchema)]
pub struct ReactionPayload {
    #[serde(flatten)]
    pub target: ActionTarget,
    /// One emoji (a single grapheme) or a :short_name: of 1 to 32
    /// lowercase letters, digits, _, + or -.
    #[schemars(length(min = 1))]
    pub emoji: String,
}

/// A `mark_read` payload: the last message read.
#[derive(JsonSchema)]
pub struct MarkReadPayload {
    #[serde(flatten)]
    pub target: ActionTarget,
    /// Tell the room's other members (`read`).
    #[serde(default)]
    pub receipt: bool,
}

/// Message text as [`crate::Content::parse`] takes it.
fn text_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "minLength": 1, "maxLength": CONTENT_MAX_CHARS})
}

/// A key as [`crate::ClientId::parse`] takes it.
fn client_id_schema(_: &mut SchemaGenerator) -> Schema {
    let pattern = format!("^[A-Za-z0-9._:-]{{1,{CLIENT_ID_MAX_CHARS}}}$");
    json_schema!({"type": "string", "pattern": pattern})
}
