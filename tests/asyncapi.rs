//! The AsyncAPI document of the Socket.IO API
//! (`components/rest/asyncapi.json`) against the real handlers, through the
//! real `.wasm`, a real SQLite file and real Socket.IO clients. Each test
//! fails when the document and the code disagree:
//!
//! - The document names exactly the events the code knows: its `receive`
//!   operations (client to server) are `ClientEvent::NAMES`; its `send`
//!   operations (server to client) are `ServerEvent::NAMES` and every
//!   `ChangeEvent`; no other event, each once. Every example in it fits its
//!   own schema, every `$ref` resolves, and every error code it lists is one
//!   the code has.
//! - Every payload the code has a type for (`Presence`, `TypingNotice`,
//!   `ReadReceipt`, `Removal`, `EventError`, `Message`, every ack, the four
//!   that answer with the message as `MessageAck`, and the client payloads
//!   `JoinRequest` and `TypingRequest`) has the
//!   document's payload schema made from it (`chatroom_core::payload_schemas`,
//!   schemars with core's `schema` feature, descriptions from the doc
//!   comments), and the file holds exactly what is made: the document
//!   cannot drift from the types. `CHATROOM_WRITE_ASYNCAPI=1` rewrites it.
//! - Every client event, sent with each of the document's examples (with
//!   the ids of a real room and message), is acknowledged `ok: true`, and
//!   the ack fits the operation's documented reply: every key the schema
//!   requires is there, no key it does not declare, each of the declared
//!   type.
//! - Every server event is received by a member during a scripted session
//!   (join, send, edit, react, unreact, `mark_read` with a receipt, typing,
//!   a refused edit, delete, leave), and each payload fits its schema the
//!   same way; the refused edit's ack is the documented refusal, with a
//!   code the operation lists.
//! - A join with `since` replays the room's changes as documented: once
//!   each, in seq order, the same events and payloads as REST's change log,
//!   and `replayed` counts them.
//!
//! The schemas are checked by a small JSON Schema validator below, which
//! knows the keywords the document uses; a keyword it does not know fails
//! the test rather than being skipped.

use std::collections::BTreeSet;
use std::time::Duration;

use chatroom_core::{ActionKind, ApiError, ChangeEvent, ClientEvent, ServerEvent, StoreError};
use chatroom_tests::http::{create_room, get_json, post_message};
use chatroom_tests::socket::{SocketClient, messages_before_fence};
use chatroom_tests::{Stack, workspace_root};
use serde_json::{Map, Value, json};

/// The client events in the order the acknowledgement test sends them:
/// each needs the ones before it (a join before typing, a message before
/// editing or reacting to it, the delete near the end and the leave last).
const CLIENT_SCRIPT: [&str; 9] = [
    "join_room",
    "send_message",
    "typing",
    "edit_message",
    "add_reaction",
    "remove_reaction",
    "mark_read",
    "delete_message",
    "leave_room",
];

/// The events the code knows, by direction: the protocol's types
/// (`ClientEvent`, `ServerEvent`, and the change events).
fn client_events_in_code() -> BTreeSet<&'static str> {
    let names: BTreeSet<&'static str> = ClientEvent::NAMES.into_iter().collect();
    // Every action is an event a client sends.
    for kind in ActionKind::ALL {
        assert!(names.contains(kind.as_str()), "{}", kind.as_str());
    }
    names
}

fn server_events_in_code() -> BTreeSet<&'static str> {
    ChangeEvent::ALL
        .into_iter()
        .map(ChangeEvent::as_str)
        .chain(ServerEvent::NAMES)
        .collect()
}

/// Every error code there is (the document may list only these).
fn error_codes_in_code() -> BTreeSet<&'static str> {
    let s = String::new;
    [
        ApiError::InvalidJson(s()),
        ApiError::BadRequest(s()),
        ApiError::InvalidName(s()),
        ApiError::InvalidSender(s()),
        ApiError::InvalidMessage(s()),
        ApiError::InvalidUsername(s()),
        ApiError::InvalidRoomId,
        ApiError::InvalidPayload(s()),
        ApiError::NotInRoom(1),
        ApiError::InvalidPaging(s()),
        ApiError::RoomNotFound,
        ApiError::InvalidMessageId,
        ApiError::InvalidEmoji(s()),
        ApiError::MessageNotFound,
        ApiError::NotSender,
        ApiError::MessageDeleted,
        ApiError::TooManyReactions,
        ApiError::RoomExists(s()),
        ApiError::PayloadTooLarge,
        ApiError::RateLimited,
        ApiError::NotFound,
        ApiError::Unauthorized,
        ApiError::SenderMismatch(s()),
        ApiError::InternalApiDisabled,
        ApiError::MethodNotAllowed,
        ApiError::Forbidden(s()),
        ApiError::Banned,
        ApiError::Muted,
        ApiError::IdentityRequired(s()),
        ApiError::IdempotencyConflict,
        ApiError::ResyncRequired { kept_after: 1 },
        ApiError::Storage(StoreError::Database(s())),
    ]
    .iter()
    .map(ApiError::code)
    .collect()
}

fn document() -> Value {
    let path = workspace_root().join("components/rest/asyncapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
    serde_json::from_str(&text).expect("asyncapi.json is JSON")
}

/// Follows `$ref`s (local JSON pointers) to what they point at.
fn deref<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(target) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} is not a reference into the document"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{target} points at nothing"));
    }
    panic!("a loop of $refs")
}

/// One operation of the document: one event in one direction.
struct Op<'a> {
    key: &'a str,
    /// `receive`: a client event; `send`: a server event.
    action: &'a str,
    /// The Socket.IO event name.
    name: &'a str,
    message: &'a Value,
    /// For a client event: the payload schemas of its ack when it
    /// succeeded and when it was refused.
    success: Option<&'a Value>,
    refusal: Option<&'a Value>,
    /// For a client event: the error codes it may be refused with.
    codes: Vec<&'a str>,
}

impl Op<'_> {
    fn payload(&self) -> &Value {
        &self.message["payload"]
    }

    fn examples(&self) -> &Vec<Value> {
        self.message["examples"]
            .as_array()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| panic!("{} has examples", self.key))
    }
}

fn operations(doc: &Value) -> Vec<Op<'_>> {
    let ops = doc["operations"].as_object().expect("operations");
    ops.iter()
        .map(|(key, op)| {
            let action = op["action"].as_str().expect("an action");
            assert!(
                action == "send" || action == "receive",
                "{key}: action {action}"
            );
            let channel = deref(doc, &op["channel"]);
            assert_eq!(channel["address"], "/", "{key} is on the namespace /");
            let messages = op["messages"].as_array().expect("messages");
            assert_eq!(messages.len(), 1, "{key} has one message: its event");
            let message = deref(doc, &messages[0]);
            let name = message["name"]
                .as_str()
                .expect("the message names its event");
            let (mut success, mut refusal, mut codes) = (None, None, Vec::new());
            if action == "receive" {
                let replies = op["reply"]["messages"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{key} documents its ack"));
                for reply in replies {
                    let payload = deref(doc, &deref(doc, reply)["payload"]);
                    let slot = match &payload["properties"]["ok"]["const"] {
                        Value::Bool(true) => &mut success,
                        Value::Bool(false) => &mut refusal,
                        other => panic!("{key}: a reply with ok {other}"),
                    };
                    assert!(slot.is_none(), "{key}: one reply per outcome");
                    *slot = Some(payload);
                }
                assert!(success.is_some() && refusal.is_some(), "{key}: both acks");
                codes = op["x-error-codes"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{key} lists its error codes"))
                    .iter()
                    .map(|c| c.as_str().expect("a code"))
                    .collect();
            }
            Op {
                key,
                action,
                name,
                message,
                success,
                refusal,
                codes,
            }
        })
        .collect()
}

fn find<'a, 'b>(ops: &'b [Op<'a>], action: &str, name: &str) -> &'b Op<'a> {
    ops.iter()
        .find(|o| o.action == action && o.name == name)
        .unwrap_or_else(|| panic!("no {action} operation for {name}"))
}

fn is_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Where `value` breaks `schema`, one line per problem, into `out`.
fn violations(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = deref(doc, schema);
    let rules = schema.as_object().expect("a schema is an object");
    let fails = |schema: &Value| {
        let mut inner = Vec::new();
        violations(doc, schema, value, at, &mut inner);
        !inner.is_empty()
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().expect("a type")).collect(),
                    other => panic!("type {other}"),
                };
                if !types.iter().any(|t| is_type(value, t)) {
                    out.push(format!("{at}: {value} is not of type {types:?}"));
                }
            }
            "const" if value != rule => out.push(format!("{at}: {value} is not {rule}")),
            "enum" => {
                if !rule.as_array().expect("enum").contains(value) {
                    out.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "required" => {
                if let Some(obj) = value.as_object() {
                    for key in rule.as_array().expect("required") {
                        let key = key.as_str().expect("a key");
                        if !obj.contains_key(key) {
                            out.push(format!("{at}: {key} is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = value.as_object() {
                    for (key, v) in obj {
                        if let Some(s) = rule.get(key) {
                            violations(doc, s, v, &format!("{at}.{key}"), out);
                        }
                    }
                }
            }
            "additionalProperties" => {
                assert_eq!(rule, &Value::Bool(false), "{at}: additionalProperties");
                if let Some(obj) = value.as_object() {
                    for key in obj.keys() {
                        if schema["properties"].get(key).is_none() {
                            out.push(format!("{at}: {key} is not documented"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        violations(doc, rule, v, &format!("{at}[{i}]"), out);
                    }
                }
            }
            "minItems" => {
                let min = rule.as_u64().expect("minItems") as usize;
                if value.as_array().is_some_and(|a| a.len() < min) {
                    out.push(format!("{at}: fewer than {min} items"));
                }
            }
            "minimum" => {
                let min = rule.as_f64().expect("minimum");
                if value.as_f64().is_some_and(|v| v < min) {
                    out.push(format!("{at}: {value} is below {min}"));
                }
            }
            "minLength" | "maxLength" => {
                let bound = rule.as_u64().expect("a length") as usize;
                if let Some(s) = value.as_str() {
                    let n = s.chars().count();
                    if (keyword == "minLength" && n < bound)
                        || (keyword == "maxLength" && n > bound)
                    {
                        out.push(format!("{at}: {n} characters ({keyword} {bound})"));
                    }
                }
            }
            "anyOf" => {
                let options = rule.as_array().expect("anyOf");
                if options.iter().all(&fails) {
                    out.push(format!("{at}: {value} fits none of {rule}"));
                }
            }
            "oneOf" => {
                let options = rule.as_array().expect("oneOf");
                let fitting = options.iter().filter(|s| !fails(s)).count();
                if fitting != 1 {
                    out.push(format!("{at}: {value} fits {fitting} of oneOf"));
                }
            }
            "allOf" => {
                for s in rule.as_array().expect("allOf") {
                    violations(doc, s, value, at, out);
                }
            }
            // Annotations: nothing to check.
            "const" | "description" | "title" | "examples" | "format" | "default" => {}
            other => panic!("{at}: the validator does not know `{other}`: teach it first"),
        }
    }
}

/// `value` fits `schema`: every required key, no undeclared one (at the
/// top, whatever `additionalProperties` says), each as declared.
fn assert_fits(doc: &Value, schema: &Value, value: &Value, what: &str) {
    let schema = deref(doc, schema);
    if let (Some(obj), Some(declared)) = (value.as_object(), schema["properties"].as_object()) {
        let undeclared: Vec<&String> = obj.keys().filter(|k| !declared.contains_key(*k)).collect();
        assert!(
            undeclared.is_empty(),
            "{what}: {undeclared:?} are not in the document's schema: {value}"
        );
    }
    let mut out = Vec::new();
    violations(doc, schema, value, what, &mut out);
    assert!(
        out.is_empty(),
        "{what} does not fit the document:\n{}\nvalue: {value}",
        out.join("\n")
    );
}

/// An example payload with the ids of a real room and message.
fn with_ids(example: &Value, room: i64, message: i64) -> Value {
    let mut payload: Map<String, Value> = example.as_object().expect("an object").clone();
    if payload.contains_key("room_id") {
        payload.insert("room_id".into(), room.into());
    }
    if payload.contains_key("message_id") {
        payload.insert("message_id".into(), message.into());
    }
    Value::Object(payload)
}

/// Emits `name` and checks its ack succeeded as documented; the ack.
async fn act(doc: &Value, ops: &[Op<'_>], client: &SocketClient, name: &str, data: Value) -> Value {
    let op = find(ops, "receive", name);
    assert_fits(doc, op.payload(), &data, &format!("the {name} sent"));
    let ack = client.call(name, data.clone()).await;
    assert_eq!(ack["ok"], true, "{name} {data}: {ack}");
    assert_fits(
        doc,
        op.success.expect("a success ack"),
        &ack,
        &format!("the {name} ack"),
    );
    ack
}

#[test]
fn the_document_names_exactly_the_events_the_code_knows() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert!(doc["servers"]["socketio"].is_object(), "a socketio server");
    let ops = operations(&doc);
    let documented = |action: &str| -> BTreeSet<&str> {
        ops.iter()
            .filter(|o| o.action == action)
            .map(|o| o.name)
            .collect()
    };
    assert_eq!(
        documented("receive"),
        client_events_in_code(),
        "client to server events (`receive` operations)"
    );
    assert_eq!(
        documented("send"),
        server_events_in_code(),
        "server to client events (`send` operations)"
    );
    let all: BTreeSet<&str> = client_events_in_code()
        .union(&server_events_in_code())
        .copied()
        .collect();
    let named: BTreeSet<&str> = ops.iter().map(|o| o.name).collect();
    assert_eq!(named, all, "no event outside the code's");
    assert_eq!(
        ops.len(),
        client_events_in_code().len() + server_events_in_code().len(),
        "one operation per event and direction"
    );
    // Every message of the namespace is some operation's.
    for (key, message) in doc["channels"]["root"]["messages"]
        .as_object()
        .expect("the namespace's messages")
    {
        let message = deref(&doc, message);
        assert!(
            ops.iter().any(|o| std::ptr::eq(o.message, message)),
            "{key} is sent or received by an operation"
        );
    }
}

#[test]
fn the_documents_examples_and_error_codes_are_its_own() {
    let doc = document();
    // Every example fits the schema of its message.
    for (key, message) in doc["components"]["messages"].as_object().expect("messages") {
        let examples = message["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("{key} has examples"));
        assert!(!examples.is_empty(), "{key} has examples");
        for example in examples {
            assert_fits(
                &doc,
                &message["payload"],
                &example["payload"],
                &format!("the example of {key}"),
            );
        }
    }
    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(obj) => {
                if obj.contains_key("$ref") {
                    out.push(v);
                }
                obj.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        deref(&doc, r);
    }
    // Error codes: the code's, and every operation's are in the enum.
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the error codes")
        .iter()
        .map(|c| c.as_str().expect("a code"))
        .collect();
    let real = error_codes_in_code();
    let unknown: Vec<&&str> = codes.iter().filter(|c| !real.contains(*c)).collect();
    assert!(
        unknown.is_empty(),
        "codes the code does not have: {unknown:?}"
    );
    for op in operations(&doc) {
        for code in &op.codes {
            assert!(codes.contains(code), "{}: {code} is in ErrorCode", op.key);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_event_is_acknowledged_as_documented() {
    let doc = document();
    let ops = operations(&doc);
    let documented: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.action == "receive")
        .map(|o| o.name)
        .collect();
    assert_eq!(
        documented,
        CLIENT_SCRIPT.into_iter().collect(),
        "the script sends every documented client event (a new one goes into CLIENT_SCRIPT)"
    );
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "AsyncAPI acks").await;
    // The examples act as alice (by name or as the name she joined with).
    let message = post_message(&stack.url, room, "alice", "Hello").await["id"]
        .as_i64()
        .expect("a message id");
    let alice = stack.client().await;
    for name in CLIENT_SCRIPT {
        let op = find(&ops, "receive", name);
        for example in op.examples() {
            let payload = with_ids(&example["payload"], room, message);
            act(&doc, &ops, &alice, name, payload).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_event_reaches_a_member_as_documented() {
    let doc = document();
    let ops = operations(&doc);
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "AsyncAPI events").await;
    let alice = stack.client().await;
    let bob = stack.client().await;
    act(
        &doc,
        &ops,
        &alice,
        "join_room",
        json!({"room_id": room, "username": "alice"}),
    )
    .await;
    act(
        &doc,
        &ops,
        &bob,
        "join_room",
        json!({"room_id": room, "username": "bob"}),
    )
    .await;
    let sent = act(
        &doc,
        &ops,
        &alice,
        "send_message",
        json!({"room_id": room, "message": "Hello"}),
    )
    .await;
    let id = sent["id"].as_i64().expect("the message id");
    let on = |more: Value| {
        let mut payload = json!({"room_id": room, "message_id": id});
        payload
            .as_object_mut()
            .expect("an object")
            .extend(more.as_object().expect("an object").clone());
        payload
    };
    act(
        &doc,
        &ops,
        &alice,
        "edit_message",
        on(json!({"message": "Hello, everyone"})),
    )
    .await;
    act(&doc, &ops, &bob, "add_reaction", on(json!({"emoji": "👍"}))).await;
    act(
        &doc,
        &ops,
        &bob,
        "remove_reaction",
        on(json!({"emoji": "👍"})),
    )
    .await;
    act(&doc, &ops, &bob, "mark_read", on(json!({"receipt": true}))).await;
    act(
        &doc,
        &ops,
        &alice,
        "typing",
        json!({"room_id": room, "typing": true}),
    )
    .await;

    // A refused event: bob may not edit alice's message.
    let edit = find(&ops, "receive", "edit_message");
    let refused = bob
        .call("edit_message", on(json!({"message": "Mine now"})))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_fits(
        &doc,
        edit.refusal.expect("a refusal"),
        &refused,
        "the refused edit's ack",
    );
    let code = refused["code"].as_str().expect("a code");
    assert!(
        edit.codes.contains(&code),
        "edit_message lists {code} among its errors ({:?})",
        edit.codes
    );

    act(&doc, &ops, &alice, "delete_message", on(json!({}))).await;
    act(&doc, &ops, &bob, "leave_room", json!({"room_id": room})).await;

    // Who receives each server event. Changes are broadcast after their
    // ack, so they are awaited from alice, who stays in the room (bob may
    // have left before the delete is broadcast); the others are sent
    // before the ack of the event that causes them.
    let receivers: [(&str, &SocketClient); 10] = [
        ("user_joined", &alice),
        ("user_left", &alice),
        ("new_message", &alice),
        ("message_edited", &alice),
        ("message_deleted", &alice),
        ("reaction_added", &alice),
        ("reaction_removed", &alice),
        ("typing", &bob),
        ("read", &alice),
        ("error", &bob),
    ];
    // The walls' events need identity on: the next test provokes them.
    let walls = ["membership", "removed_from_room"];
    for op in ops
        .iter()
        .filter(|o| o.action == "send" && !walls.contains(&o.name))
    {
        let (_, client) = receivers
            .iter()
            .find(|(name, _)| *name == op.name)
            .unwrap_or_else(|| panic!("the session does not produce {}: script it", op.name));
        let first = client.expect(op.name).await;
        let more = client.drain(op.name, Duration::ZERO).await;
        for payload in std::iter::once(first).chain(more) {
            assert_fits(
                &doc,
                op.payload(),
                &payload,
                &format!("a {} event", op.name),
            );
        }
    }

    // A join with `since` replays the room's change log, once, in order.
    let changes = get_json(&stack.url, &format!("/chatrooms/{room}/changes")).await;
    let changes = changes.as_array().expect("an array of changes");
    assert_eq!(
        changes.len(),
        5,
        "sent, edited, reacted, unreacted, deleted"
    );
    let carol = stack.client().await;
    let joined = act(
        &doc,
        &ops,
        &carol,
        "join_room",
        json!({"room_id": room, "username": "carol", "since": 0}),
    )
    .await;
    assert_eq!(joined["replayed"], changes.len(), "{joined}");
    let change_events: Vec<&str> = ChangeEvent::ALL
        .into_iter()
        .map(ChangeEvent::as_str)
        .collect();
    let replayed = carol.expect_any_n(&change_events, changes.len()).await;
    let mut last_seq = 0;
    for ((event, payload), change) in replayed.iter().zip(changes) {
        assert_eq!(change["event"], event.as_str(), "in seq order: {change}");
        assert_eq!(
            &change["data"], payload,
            "the same payload as REST's change log"
        );
        let seq = change["seq"].as_i64().expect("a seq");
        assert!(seq > last_seq, "seq increases");
        last_seq = seq;
        let op = find(&ops, "send", event);
        assert_fits(&doc, op.payload(), payload, &format!("a replayed {event}"));
    }
    // Each change once: a message posted now reaches carol after anything
    // else the room sent her, so nothing may come before it, and nothing
    // of any other kind may be waiting once it has come.
    let before_fence = messages_before_fence(&stack.url, room, &[&carol]).await;
    assert_eq!(
        before_fence,
        [Vec::<Value>::new()],
        "new_message: each change once"
    );
    for event in change_events {
        assert!(
            carol.drain(event, Duration::ZERO).await.is_empty(),
            "{event}: each change once"
        );
    }
}

/// The walls' events (docs/protocol.md §10.3), with identity on: a mute
/// reaches the room as `membership`, a kick reaches the kicked socket as
/// `removed_from_room`, and the refusals are documented codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walls_events_reach_sockets_as_documented() {
    const SECRET: &str = "asyncapi-walls";
    let key = chatroom_core::auth::TokenKey::new(SECRET).expect("a key");
    let exp = u64::MAX / 4;
    let (alice, eve) = (
        key.sign("alice", exp).expect("a token"),
        key.sign("eve", exp).expect("a token"),
    );
    let host = chatroom_tests::host_with_variables(&[("SPIN_VARIABLE_AUTH_SECRET", SECRET)]);
    let run = chatroom_tests::DefaultRun::start_on(
        &host,
        |c| c.auth = Some(key.clone()),
        &chatroom_front::access::AccessConfig::default(),
    )
    .await;
    let doc = document();
    let ops = operations(&doc);
    let http = reqwest::Client::new();
    let room: Value = http
        .post(format!("{}/chatrooms", run.url))
        .bearer_auth(&alice)
        .json(&json!({"name": "Walls"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("a room");
    let room = room["id"].as_i64().expect("an id");
    let alice_socket = SocketClient::connect_as(&run.url, &alice).await;
    let eve_socket = SocketClient::connect_as(&run.url, &eve).await;
    act(
        &doc,
        &ops,
        &alice_socket,
        "join_room",
        json!({"room_id": room}),
    )
    .await;
    act(
        &doc,
        &ops,
        &eve_socket,
        "join_room",
        json!({"room_id": room}),
    )
    .await;
    let moderate = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}/chatrooms/{room}/{path}", run.url))
            .bearer_auth(&alice)
            .send()
    };
    moderate(reqwest::Method::PUT, "mutes/eve")
        .await
        .expect("mute");
    let membership = alice_socket.expect("membership").await;
    assert_fits(
        &doc,
        find(&ops, "send", "membership").payload(),
        &membership,
        "a membership event",
    );
    // The sidecar has the mute: eve's socket may not type or post.
    for (event, data) in [
        ("typing", json!({"room_id": room})),
        ("send_message", json!({"room_id": room, "message": "hi"})),
    ] {
        let refused = eve_socket.call(event, data).await;
        assert_eq!(refused["code"], "muted", "{refused}");
        let op = find(&ops, "receive", event);
        assert!(op.codes.contains(&"muted"), "{event} lists muted");
        assert_fits(&doc, op.refusal.expect("a refusal"), &refused, event);
    }
    moderate(reqwest::Method::POST, "kicks/eve")
        .await
        .expect("kick");
    let removed = eve_socket.expect("removed_from_room").await;
    assert_fits(
        &doc,
        find(&ops, "send", "removed_from_room").payload(),
        &removed,
        "a removed_from_room event",
    );
}

/// The document's payload schemas are the ones made from the code's types
/// (`chatroom_core::payload_schemas`: the event and ack payload types, their
/// doc comments as descriptions). `CHATROOM_WRITE_ASYNCAPI=1` writes them
/// into the file instead of failing; the rest of the document is kept.
#[test]
fn the_documents_payloads_are_made_from_the_types() {
    let doc = document();
    let mut made = doc.clone();
    chatroom_core::write_payload_schemas(&mut made);
    if std::env::var_os("CHATROOM_WRITE_ASYNCAPI").is_some() {
        let path = workspace_root().join("components/rest/asyncapi.json");
        let text = serde_json::to_string_pretty(&made).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("asyncapi.json written");
        return;
    }
    let rerun = "the file and the types disagree: rerun this test with CHATROOM_WRITE_ASYNCAPI=1 \
                 (cargo test -p chatroom-tests --test asyncapi) and commit the file";
    let messages = chatroom_core::payload_schemas().messages;
    for (message, schema) in &messages {
        assert_eq!(
            &doc["components"]["messages"][message]["payload"], schema,
            "{message}'s payload: {rerun}"
        );
    }
    assert_eq!(doc, made, "{rerun}");
    // Every payload is a type's: none is written by hand.
    let typed: BTreeSet<&str> = messages.iter().map(|(name, _)| *name).collect();
    let documented = doc["components"]["messages"]
        .as_object()
        .expect("the document's messages");
    let by_hand: Vec<&String> = documented
        .keys()
        .filter(|name| !typed.contains(name.as_str()))
        .collect();
    assert!(
        by_hand.is_empty(),
        "payloads not made from a type: {by_hand:?}"
    );
}
