//! The Socket.IO events of SPEC §3 on the default namespace: `join_room`,
//! `leave_room`, `send_message`, and what a disconnect does. Every failure
//! is an `error` event to the sender (and `{"ok": false}` on its ack); the
//! connection and other clients are never disturbed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chatroom_core::{
    ApiError, JoinRequest, MessageDraft, event_object, find_room, insert_message, presence,
    room_id_field,
};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::socket::Sid;

use crate::db::Db;
use crate::tail::{MessageTail, room_name};

/// Which rooms each connection is in, and as whom (the `username` it joined
/// with, the default `sender` of its messages there).
#[derive(Default)]
pub struct Memberships(Mutex<HashMap<Sid, HashMap<i64, Option<String>>>>);

impl Memberships {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Sid, HashMap<i64, Option<String>>>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn join(&self, sid: Sid, room: i64, username: Option<String>) {
        self.with(|m| m.entry(sid).or_default().insert(room, username));
    }

    /// `None` if the socket is not in the room; else its username there.
    fn leave(&self, sid: Sid, room: i64) -> Option<Option<String>> {
        self.with(|m| m.get_mut(&sid)?.remove(&room))
    }

    fn username(&self, sid: Sid, room: i64) -> Option<String> {
        self.with(|m| m.get(&sid)?.get(&room).cloned().flatten())
    }

    fn disconnect(&self, sid: Sid) -> HashMap<i64, Option<String>> {
        self.with(|m| m.remove(&sid).unwrap_or_default())
    }
}

/// What the handlers share.
pub struct Chat {
    pub db: Db,
    pub tail: MessageTail,
    pub members: Memberships,
}

type Shared = Arc<Chat>;
type Data = TryData<Value>;

/// Registers the namespace `/` and its events.
pub fn register(io: &SocketIo, chat: Arc<Chat>) {
    io.ns("/", move |s: SocketRef| {
        tracing::debug!(sid = %s.id, "connected");
        let c = chat.clone();
        s.on(
            "join_room",
            move |s: SocketRef, d: Data, a: AckSender, io: SocketIo| {
                join_room(s, d, a, c.clone(), io)
            },
        );
        let c = chat.clone();
        s.on(
            "leave_room",
            move |s: SocketRef, d: Data, a: AckSender, io: SocketIo| {
                leave_room(s, d, a, c.clone(), io)
            },
        );
        let c = chat.clone();
        s.on(
            "send_message",
            move |s: SocketRef, d: Data, a: AckSender| send_message(s, d, a, c.clone()),
        );
        let c = chat.clone();
        s.on_disconnect(move |s: SocketRef, io: SocketIo| disconnect(s, c.clone(), io));
        std::future::ready(())
    });
}

/// Answers an event: the ack (if the client asked for one) and, on failure,
/// an `error` event to the sender.
fn answer(s: &SocketRef, ack: AckSender, event: &str, result: Result<Value, ApiError>) {
    let reply = match result {
        Ok(mut value) => {
            value["ok"] = Value::Bool(true);
            value
        }
        Err(e) => {
            tracing::debug!(sid = %s.id, event, error = %e, "event refused");
            let body = json!({"error": e.to_string(), "code": e.code()});
            if let Err(err) = s.emit("error", &body) {
                tracing::warn!(sid = %s.id, error = %err, "could not send an error event");
            }
            json!({"ok": false, "error": e.to_string(), "code": e.code()})
        }
    };
    let _ = ack.send(&reply);
}

fn payload(data: Result<Value, impl std::fmt::Display>) -> Result<Value, ApiError> {
    data.map_err(|e| ApiError::InvalidPayload(format!("the event payload is not valid: {e}")))
}

async fn join_room(
    s: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    chat: Shared,
    io: SocketIo,
) {
    let result = async {
        let data = payload(data)?;
        let req = JoinRequest::from_object(event_object(&data)?)?;
        let room_id = req.room_id;
        chat.db
            .run(move |c| find_room(c, room_id))
            .await?
            .ok_or(ApiError::RoomNotFound)?;
        let replayed = chat.tail.join(s.clone(), room_id, req.since).await?;
        let username = req.username.map(|u| u.as_str().to_owned());
        if let Some(name) = username.clone() {
            let sid = s.id.to_string();
            chat.db
                .run(move |c| presence::join(c, &sid, room_id, &name))
                .await?;
        }
        chat.members.join(s.id, room_id, username.clone());
        if !s.connected() {
            // It left while joining: the disconnect handler may have run
            // before the presence row existed.
            forget(&chat, s.id).await;
        }
        let joined = json!({"sid": s.id.to_string(), "username": username, "room_id": room_id});
        if let Err(e) = io.to(room_name(room_id)).emit("user_joined", &joined).await {
            tracing::debug!(error = %e, room_id, "user_joined not delivered to every member");
        }
        Ok(json!({"room_id": room_id, "username": username, "replayed": replayed}))
    }
    .await;
    answer(&s, ack, "join_room", result);
}

async fn leave_room(
    s: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    chat: Shared,
    io: SocketIo,
) {
    let result = async {
        let data = payload(data)?;
        let room_id = room_id_field(event_object(&data)?)?;
        let username = chat
            .members
            .leave(s.id, room_id)
            .ok_or(ApiError::NotInRoom(room_id))?;
        let left = json!({"sid": s.id.to_string(), "username": username, "room_id": room_id});
        if let Err(e) = io.to(room_name(room_id)).emit("user_left", &left).await {
            tracing::debug!(error = %e, room_id, "user_left not delivered to every member");
        }
        s.leave(room_name(room_id));
        let sid = s.id.to_string();
        chat.db
            .run(move |c| presence::leave(c, &sid, room_id))
            .await?;
        Ok(json!({"room_id": room_id}))
    }
    .await;
    answer(&s, ack, "leave_room", result);
}

async fn send_message(s: SocketRef, TryData(data): TryData<Value>, ack: AckSender, chat: Shared) {
    let result = async {
        let data = payload(data)?;
        let obj = event_object(&data)?;
        let room_id = room_id_field(obj)?;
        let default_sender = chat.members.username(s.id, room_id);
        let draft = MessageDraft::from_object(obj, default_sender.as_deref())?;
        let message = chat
            .db
            .run(move |c| insert_message(c, room_id, &draft))
            .await?;
        // Stored: the tail broadcasts it to the room, this socket included.
        chat.tail.wake();
        let mut reply = serde_json::to_value(&message).unwrap_or_default();
        reply["message"] = serde_json::to_value(&message).unwrap_or_default();
        Ok(reply)
    }
    .await;
    answer(&s, ack, "send_message", result);
}

/// Forgets a connection's presence; the rooms it was in, with usernames.
async fn forget(chat: &Chat, sid: Sid) -> HashMap<i64, Option<String>> {
    let rooms = chat.members.disconnect(sid);
    let key = sid.to_string();
    if let Err(e) = chat.db.run(move |c| presence::disconnect(c, &key)).await {
        tracing::warn!(error = %e, %sid, "could not clear presence");
    }
    rooms
}

async fn disconnect(s: SocketRef, chat: Shared, io: SocketIo) {
    tracing::debug!(sid = %s.id, "disconnected");
    for (room_id, username) in forget(&chat, s.id).await {
        let left = json!({"sid": s.id.to_string(), "username": username, "room_id": room_id});
        if let Err(e) = io.to(room_name(room_id)).emit("user_left", &left).await {
            tracing::debug!(error = %e, room_id, "user_left not delivered to every member");
        }
    }
}
