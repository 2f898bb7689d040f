//! The JSON Schemas of what the server sends over Socket.IO (docs/protocol.md
//! §3), the change events' included (their payloads are built by SQLite
//! and held to these types byte for byte by core's tests), and of what
//! clients send: the payloads read into a type (`join_room`, `leave_room`,
//! `typing`) and the writes' wire forms (write_payload.rs), made from
//! those types with schemars: every message payload of
//! components/rest/asyncapi.json, and the
//! shared schemas (`#/components/schemas/`: `Message`, `Reaction`,
//! `RemovalReason`, `MembershipKind`, `Role`, and `Refusal`, every refused
//! event's ack). The document is written from these, not beside them:
//! tests/asyncapi.rs fails when the file and [`write_payload_schemas`]
//! disagree, and rewrites the file on request.
//! Field and type descriptions are the types' doc comments. Only with the
//! `schema` feature; nothing at run time uses it.

use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, EventError};
use crate::input::{JoinRequest, LeaveRequest, TypingRequest};
use crate::socket_event::{
    DeleteAck, JoinAck, LeaveAck, MessageAck, Presence, ReadReceipt, Removal, TypingAck,
    TypingNotice,
};
use crate::walls::MembershipEvent;
use crate::wire::{Message, MessageChange, ReactionChange, ReadPosition};
use crate::write_payload::{
    DeletePayload, EditPayload, MarkReadPayload, ReactionPayload, SendMessagePayload,
};

/// Each typed message's payload schema, by the document's message name,
/// and the shared schemas they refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadSchemas {
    pub messages: Vec<(&'static str, Value)>,
    pub schemas: Map<String, Value>,
}

/// The payload schemas, made afresh from the types.
pub fn payload_schemas() -> PayloadSchemas {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            // What the server writes, not what it would accept.
            s.contract = Contract::Serialize;
        })
        .into_generator();
    let g = &mut generator;
    let mut messages = vec![
        ("user_joined", inline::<Presence>(g)),
        ("user_left", inline::<Presence>(g)),
        ("typing_notice", inline::<TypingNotice>(g)),
        ("read", inline::<ReadReceipt>(g)),
        ("removed_from_room", inline::<Removal>(g)),
        ("error", inline::<EventError>(g)),
        ("new_message", g.subschema_for::<Message>().to_value()),
        ("message_edited", inline::<MessageChange>(g)),
        ("message_deleted", inline::<MessageChange>(g)),
        ("reaction_added", inline::<ReactionChange>(g)),
        ("reaction_removed", inline::<ReactionChange>(g)),
        ("membership", inline::<MembershipEvent>(g)),
        ("join_room_ack", ack::<JoinAck>(g)),
        ("leave_room_ack", ack::<LeaveAck>(g)),
        ("typing_ack", ack::<TypingAck>(g)),
        ("delete_message_ack", ack::<DeleteAck>(g)),
        ("mark_read_ack", ack::<ReadPosition>(g)),
    ];
    for (name, description, always) in MESSAGE_ACKS {
        messages.push((name, message_ack(g, description, always)));
    }
    let refused = refusal(g);
    let mut reading = SchemaSettings::draft2020_12()
        .with(|s| {
            s.meta_schema = None;
            // What the server accepts.
            s.contract = Contract::Deserialize;
        })
        .into_generator();
    messages.push(("join_room", inline::<JoinRequest>(&mut reading)));
    messages.push(("leave_room", inline::<LeaveRequest>(&mut reading)));
    messages.push(("send_message", inline::<SendMessagePayload>(&mut reading)));
    messages.push(("edit_message", inline::<EditPayload>(&mut reading)));
    messages.push(("delete_message", inline::<DeletePayload>(&mut reading)));
    messages.push(("add_reaction", inline::<ReactionPayload>(&mut reading)));
    messages.push(("remove_reaction", inline::<ReactionPayload>(&mut reading)));
    messages.push(("mark_read", inline::<MarkReadPayload>(&mut reading)));
    messages.push(("typing", inline::<TypingRequest>(&mut reading)));
    let mut schemas = generator.take_definitions(true);
    schemas.insert("Refusal".to_owned(), refused);
    // Every refused event's ack is the one shared schema.
    messages.push(("refusal", json!({"$ref": "#/components/schemas/Refusal"})));
    for (_, schema) in &mut messages {
        unwrap_descriptions(schema);
    }
    schemas.values_mut().for_each(unwrap_descriptions);
    PayloadSchemas { messages, schemas }
}

/// The acks that are a [`MessageAck`]: each write's own sentence, and the
/// keys its message always has (an edit's has been edited; a reaction
/// just added is there).
const MESSAGE_ACKS: [(&str, &str, &[&str]); 4] = [
    (
        "send_message_ack",
        "The stored message's fields, and the same object as `message`.",
        &[],
    ),
    (
        "edit_message_ack",
        "The edited message's fields, and the same object as `message`.",
        &["edited_at", "version"],
    ),
    (
        "add_reaction_ack",
        "The message's fields with its reactions, and the same object as `message`.",
        &["reactions"],
    ),
    (
        "remove_reaction_ack",
        "The message's fields with its remaining reactions (`reactions` is absent when none are left), and the same object as `message`.",
        &[],
    ),
];

/// The schema of one write's [`MessageAck`]: its sentence, and the keys its
/// message always has required before `message`.
fn message_ack(generator: &mut SchemaGenerator, description: &str, always: &[&str]) -> Value {
    let mut schema = ack::<MessageAck<'static>>(generator);
    schema["description"] = json!(description);
    // The flattened message brings its examples, which are not acks.
    if let Some(fields) = schema.as_object_mut() {
        fields.remove("examples");
    }
    if let Some(required) = schema["required"].as_array_mut() {
        let message = required.iter().position(|k| k == "message");
        let at = message.unwrap_or(required.len());
        for (i, key) in always.iter().enumerate() {
            required.insert(at + i, json!(key));
        }
    }
    schema
}

/// Puts the payload schemas into an AsyncAPI document: each message's
/// `payload` and each shared schema replaced, everything else left as it
/// was.
pub fn write_payload_schemas(document: &mut Value) {
    let made = payload_schemas();
    let components = &mut document["components"];
    for (message, schema) in made.messages {
        components["messages"][message]["payload"] = schema;
    }
    for (name, schema) in made.schemas {
        components["schemas"][name] = schema;
    }
}

/// `T`'s schema written out, the types it uses referred to.
fn inline<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    T::json_schema(generator).to_value()
}

/// The schema of an ack: `T`'s object with `"ok": true` beside its keys,
/// as the sidecar sends it.
fn ack<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    let mut schema = inline::<T>(generator);
    schema["properties"]["ok"] = json!({"const": true});
    if let Some(required) = schema["required"].as_array_mut() {
        required.insert(0, json!("ok"));
    }
    schema
}

/// A refused event's ack (`#/components/schemas/Refusal`): the `error`
/// event's payload with `"ok": false`, and a refusal as the code writes it
/// for an example.
fn refusal(generator: &mut SchemaGenerator) -> Value {
    let mut schema = inline::<EventError>(generator);
    schema["description"] = json!(
        "The ack of a refused event (the same `error` and `code` also arrive as an `error` event)."
    );
    schema["properties"]["ok"] = json!({"const": false});
    if let Some(required) = schema["required"].as_array_mut() {
        required.insert(0, json!("ok"));
    }
    let mut example = serde_json::to_value(ApiError::NotSender.event_body()).unwrap_or_default();
    example["ok"] = json!(false);
    schema["examples"] = json!([example]);
    schema
}

/// Doc comments are wrapped at rustdoc's width: a description is one line
/// per paragraph.
fn unwrap_descriptions(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            for (key, value) in fields.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_carry_ok_and_shared_types_are_referred_to() {
        let made = payload_schemas();
        let find = |name: &str| {
            made.messages
                .iter()
                .find(|(m, _)| *m == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| panic!("{name}"))
        };
        let leave = find("leave_room_ack");
        assert_eq!(leave["properties"]["ok"], json!({"const": true}));
        assert_eq!(leave["required"], json!(["ok", "room_id"]));
        assert_eq!(leave["additionalProperties"], json!(false));
        assert_eq!(
            find("new_message"),
            json!({"$ref": "#/components/schemas/Message"})
        );
        assert_eq!(
            made.schemas["Message"]["properties"]["reactions"]["items"],
            json!({"$ref": "#/components/schemas/Reaction"})
        );
        assert_eq!(
            made.schemas["RemovalReason"]["enum"],
            json!(["removed", "left", "kicked", "banned"])
        );
        let join = find("join_room");
        assert_eq!(join["required"], json!(["room_id"]));
        assert_eq!(
            join["properties"]["username"]["maxLength"],
            json!(crate::limits::SENDER_MAX_CHARS)
        );
        assert_eq!(
            find("typing")["properties"]["typing"]["default"],
            json!(true)
        );
        let refusal = &made.schemas["Refusal"];
        assert_eq!(refusal["properties"]["ok"], json!({"const": false}));
        assert_eq!(refusal["examples"][0]["code"], "not_sender");
        let edit = find("edit_message_ack");
        assert_eq!(
            edit["required"],
            json!([
                "ok",
                "id",
                "room_id",
                "sender",
                "content",
                "timestamp",
                "edited_at",
                "version",
                "message"
            ])
        );
        assert_eq!(
            edit["properties"]["message"],
            json!({"$ref": "#/components/schemas/Message"})
        );
        assert_eq!(edit.get("examples"), None);
        let described = &made.schemas["Message"]["description"];
        assert!(!described.as_str().unwrap().contains('\n'), "{described}");
    }
}
