//! The chatroom REST API (docs/protocol.md §2) as a Spin HTTP component.
//!
//! Each request gets a fresh instance (Spin's model): it resolves the route,
//! opens Spin's `default` SQLite store, makes sure the schema exists, and
//! answers. Routes are resolved on Spin's `spin-path-info` (the part of the
//! path below the component's route), so the API works mounted under any
//! route prefix (`route = "/api/..."` serves `/api/chatrooms`). Every rule and statement comes from `chatroom-core`, which the
//! Socket.IO sidecar shares. Lists are streamed a page at a time.

mod http_io;
mod identity;
mod internal;
mod publish;
mod routes;
mod spin_db;

/// The OpenAPI 3.1 description of this API, served at `/openapi.json`.
const OPENAPI: &str = include_str!("../openapi.json");

use chatroom_core::auth::acting_as;
use chatroom_core::limits::{CLIENT_ID_WINDOW_MS, PAGE_LIMIT_MAX};
use chatroom_core::{
    Action, ActionKind, Actor, ApiError, Applied, HistoryPages, MemberChange, Message,
    MessageDraft, MessagePage, Query, Room, RoomDraft, RoomPages, RoomUsers, Sender, Viewer,
    Visibility, apply, change_membership, check_path, create_owned_room, create_room, find_room,
    forget_user, json_object, members, open_dm, room_changes_json, room_users, store_message,
    visible_room,
};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::http_io::{
    JsonArray, read_body, send_empty, send_error, send_json, send_method_not_allowed,
    send_static_json,
};
use crate::identity::{Access, check_sender};
use crate::internal::InternalReply;
use crate::publish::Announcer;
use crate::routes::{Mount, NoRoute, Route, resolve};
use crate::spin_db::SpinDb;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let method = req.method().to_string();
    let path_with_query = req.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((&path_with_query, ""));
    // Bytes that are not UTF-8 are refused, never read as U+FFFD.
    let query = match check_path(path).and_then(|()| Query::parse(query)) {
        Ok(query) => query,
        Err(e) => return send_error(out, &e).await,
    };
    let path_info = req.headers().get("spin-path-info");
    let mount = match Mount::new(path, path_info.last().map(Vec::as_slice)) {
        Ok(mount) => mount,
        Err(e) => return send_error(out, &e).await,
    };
    let route = match resolve(&method, mount.path_info()) {
        Ok(route) => route,
        Err(NoRoute::Method(allow)) => return send_method_not_allowed(out, allow).await,
        Err(NoRoute::Error(e)) => return send_error(out, &e).await,
    };
    let reply = match prepare(route, req, &query).await {
        Ok(reply) => reply,
        Err(e) => return send_error(out, &e).await,
    };
    if let Err(e) = reply.send(out, &mount).await {
        eprintln!("chatroom-rest: streaming a response failed: {e:#}");
    }
}

/// What a route answers, decided before the status line is written.
enum Reply {
    Health,
    OpenApi,
    Room(Room),
    CreatedRoom(Room),
    /// A DM: `201` the first time, `200` after, with `Location` both times.
    Dm(Room, bool),
    /// `201` with the message; `true` when a repeated key answered with the
    /// message it stored before (`Idempotent-Replayed: true`).
    CreatedMessage(Message, bool),
    Users(RoomUsers),
    Rooms(SpinDb, RoomPages),
    Messages(SpinDb, HistoryPages),
    /// `200` with a JSON value (a message, a read position, unread counts).
    Found(serde_json::Value),
    /// `200` with the message a repeated edit's key names
    /// (`Idempotent-Replayed: true`).
    Repeated(serde_json::Value),
    /// `200` with a JSON array as SQLite wrote it.
    Array(String),
    NoContent,
    Internal(InternalReply),
}

/// Validates input and does the work that can fail with a client error.
async fn prepare(route: Route, req: IncomingRequest, query: &Query) -> Result<Reply, ApiError> {
    let access = || Access::from_variables();
    match route {
        Route::Health => Ok(Reply::Health),
        Route::OpenApi => Ok(Reply::OpenApi),
        Route::ListRooms => {
            let viewer = access().viewer(&req)?;
            Ok(Reply::Rooms(
                SpinDb::open()?,
                RoomPages::for_viewer(&viewer),
            ))
        }
        Route::CreateRoom => {
            let user = access().writer(&req)?;
            let body = read_body(req).await?;
            let draft = if body.trim_ascii().is_empty() {
                RoomDraft::from_name(query.get("name"))?
            } else {
                RoomDraft::from_json(&body)?
            };
            let db = SpinDb::open()?;
            let room = match &user {
                Some(owner) => create_owned_room(&db, &draft.name, draft.visibility, owner)?,
                None if draft.visibility == Visibility::Public => create_room(&db, &draft.name)?,
                None => return Err(identity_required("private rooms")),
            };
            Ok(Reply::CreatedRoom(room))
        }
        Route::GetRoom(id) => {
            let viewer = access().viewer(&req)?;
            let db = SpinDb::open()?;
            visible_room(&db, id, &viewer)?;
            let room = find_room(&db, id)?.ok_or(ApiError::RoomNotFound)?;
            Ok(Reply::Room(room))
        }
        Route::ListMessages(id) => {
            let viewer = access().viewer(&req)?;
            let page =
                MessagePage::parse(query.get("after"), query.get("before"), query.get("limit"))?;
            let db = SpinDb::open()?;
            visible_room(&db, id, &viewer)?;
            Ok(Reply::Messages(db, HistoryPages::new(id, page)))
        }
        Route::PostMessage(id) => {
            let user = access().writer(&req)?;
            let default_sender = user.as_ref().map(|u| u.as_str());
            let key = idempotency_key(&req);
            let body = read_body(req).await?;
            let draft = if body.trim_ascii().is_empty() {
                let text = query.get("content").or_else(|| query.get("message"));
                MessageDraft::from_fields(query.get("sender").or(default_sender), text)?
            } else {
                MessageDraft::from_json(&body, default_sender)?
            };
            let draft = draft.with_client_id(key.as_deref())?;
            check_sender(&draft.sender, user.as_ref())?;
            let stored = store_message(&SpinDb::open()?, id, &draft, client_id_window_ms())?;
            if !stored.replayed {
                Announcer::from_variables().announce(&stored.message);
            }
            Ok(Reply::CreatedMessage(stored.message, stored.replayed))
        }
        Route::RoomUsers(id) => {
            let viewer = access().viewer(&req)?;
            let db = SpinDb::open()?;
            visible_room(&db, id, &viewer)?;
            Ok(Reply::Users(room_users(&db, id)?))
        }
        Route::Changes(id) => {
            let viewer = access().viewer(&req)?;
            let after = query
                .get("after")
                .map(|raw| count("after", raw, 0, i64::MAX))
                .transpose()?;
            let limit = query.get("limit").map_or(Ok(PAGE_LIMIT_MAX), |raw| {
                count("limit", raw, 1, PAGE_LIMIT_MAX)
            })?;
            let db = SpinDb::open()?;
            visible_room(&db, id, &viewer)?;
            Ok(Reply::Array(room_changes_json(
                &db,
                id,
                after,
                i64::MAX,
                limit,
            )?))
        }
        Route::GetMessage(id, mid) => {
            let viewer = access().viewer(&req)?;
            let db = SpinDb::open()?;
            visible_room(&db, id, &viewer)?;
            let message = chatroom_core::message(&db, id, mid)?;
            Ok(Reply::Found(to_value(&message)))
        }
        Route::EditMessage(id, mid) => {
            act(ActionKind::EditMessage, id, mid, None, req, query).await
        }
        Route::DeleteMessage(id, mid) => {
            act(ActionKind::DeleteMessage, id, mid, None, req, query).await
        }
        Route::AddReaction(id, mid, emoji) => {
            act(ActionKind::AddReaction, id, mid, Some(emoji), req, query).await
        }
        Route::RemoveReaction(id, mid, emoji) => {
            act(ActionKind::RemoveReaction, id, mid, Some(emoji), req, query).await
        }
        Route::MarkRead(id) => act(ActionKind::MarkRead, id, 0, None, req, query).await,
        Route::Unread(name) => {
            let access = access();
            let user = Sender::parse_username(&name)?;
            // Unread counts are personal: with identity on, only the
            // user's own token reads them.
            let token_user = access.writer(&req)?;
            acting_as(token_user.as_ref().map(Sender::as_str), Some(user.as_str()))?;
            let unread = chatroom_core::unread(&SpinDb::open()?, &user)?;
            Ok(Reply::Found(to_value(&unread)))
        }
        Route::ForgetUser(name) => {
            let user = Sender::parse_username(&name)?;
            let Some(principal) = access().principal(&req)? else {
                return Err(identity_required("erasing a user"));
            };
            // Erasure is the user's own, or an operator's, to ask for.
            if principal.user != user && !principal.operator {
                return Err(ApiError::Forbidden(format!(
                    "only {}'s own token, or an operator's, erases {}",
                    user.as_str(),
                    user.as_str()
                )));
            }
            let forgotten = forget_user(&SpinDb::open()?, &user)?;
            Announcer::from_variables().announce(&forgotten);
            Ok(Reply::Found(to_value(&forgotten)))
        }
        Route::Members(id) => {
            let viewer = access().viewer(&req)?;
            let db = SpinDb::open()?;
            visible_room(&db, id, &viewer)?;
            Ok(Reply::Found(to_value(&members(&db, id)?)))
        }
        Route::Moderate(id, name, kind) => {
            let actor = match access().principal(&req)? {
                Some(principal) => Viewer::from(principal),
                None => return Err(identity_required("members and moderation")),
            };
            let body = read_body(req).await?;
            let obj = if body.trim_ascii().is_empty() {
                serde_json::Map::new()
            } else {
                json_object(&body)?
            };
            let change = MemberChange::from_request(kind, &name, &obj)?;
            match change_membership(&SpinDb::open()?, id, &actor, &change)? {
                Some(event) => {
                    Announcer::from_variables().announce(&event);
                    Ok(Reply::Found(event))
                }
                None => Ok(Reply::NoContent),
            }
        }
        Route::OpenDm => {
            let Some(me) = access().writer(&req)? else {
                return Err(identity_required("direct messages"));
            };
            let obj = json_object(&read_body(req).await?)?;
            let with = match obj.get("with") {
                Some(serde_json::Value::String(name)) => Sender::parse_username(name)?,
                _ => {
                    return Err(ApiError::InvalidUsername(
                        "with must name the other user".to_owned(),
                    ));
                }
            };
            let (room, created) = open_dm(&SpinDb::open()?, &me, &with)?;
            if created {
                Announcer::from_variables().announce(&room);
            }
            Ok(Reply::Dm(room, created))
        }
        Route::Internal(route) => Ok(Reply::Internal(internal::handle(route, req, query).await?)),
    }
}

/// An edit, delete, reaction or read mark: the body's fields (or the
/// query's `username`/`sender`, for a body-less `DELETE`), with the ids
/// and emoji from the path; with identity on, the token's user acts.
async fn act(
    kind: ActionKind,
    room_id: i64,
    message_id: i64,
    emoji: Option<String>,
    req: IncomingRequest,
    query: &Query,
) -> Result<Reply, ApiError> {
    let user = Access::from_variables().writer(&req)?;
    let key = idempotency_key(&req);
    let body = read_body(req).await?;
    let mut obj = if body.trim_ascii().is_empty() {
        serde_json::Map::new()
    } else {
        json_object(&body)?
    };
    for key in ["username", "sender"] {
        if let (false, Some(value)) = (obj.contains_key(key), query.get(key)) {
            obj.insert(key.to_owned(), value.into());
        }
    }
    obj.insert("room_id".to_owned(), room_id.into());
    if kind != ActionKind::MarkRead {
        obj.insert("message_id".to_owned(), message_id.into());
    }
    if let Some(emoji) = emoji {
        obj.insert("emoji".to_owned(), emoji.into());
    }
    if let (false, Some(key)) = (obj.contains_key("client_id"), key) {
        obj.insert("client_id".to_owned(), key.into());
    }
    let actor = Actor {
        token_user: user.as_ref().map(Sender::as_str),
        fallback: None,
    };
    let action = Action::from_object(kind, &obj, actor)?;
    let applied = apply(&SpinDb::open()?, &action)?;
    if kind != ActionKind::MarkRead && !matches!(applied, Applied::Repeated(_)) {
        Announcer::from_variables().announce(&action.to_object());
    }
    Ok(match applied {
        Applied::Message(message) => Reply::Found(to_value(&message)),
        Applied::Repeated(message) => Reply::Repeated(to_value(&message)),
        Applied::Deleted { .. } => Reply::NoContent,
        Applied::Read(read) => Reply::Found(to_value(&read)),
    })
}

/// How long a message's `client_id` is remembered: the
/// `client_id_window_secs` variable (docs/protocol.md §3.5), 24 h unless
/// set.
pub(crate) fn client_id_window_ms() -> i64 {
    spin_sdk::variables::get("client_id_window_secs")
        .ok()
        .and_then(|secs| secs.trim().parse::<i64>().ok())
        .filter(|secs| *secs >= 0)
        .map_or(CLIENT_ID_WINDOW_MS, |secs| secs.saturating_mul(1000))
}

/// The `Idempotency-Key` header (the IETF httpapi draft's; a body's
/// `client_id` works as well).
fn idempotency_key(req: &IncomingRequest) -> Option<String> {
    req.headers()
        .get("idempotency-key")
        .last()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The `400` for a feature that needs identity on.
fn identity_required(what: &str) -> ApiError {
    ApiError::IdentityRequired(format!(
        "{what}: identity must be on (set the auth_secret variable; docs/protocol.md §7, §10)"
    ))
}

fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // Our wire types are plain strings, numbers and lists.
    serde_json::to_value(value).unwrap_or_default()
}

/// A whole-number query parameter within `min..=max`.
fn count(name: &str, raw: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(ApiError::InvalidPaging(format!(
            "{name} must be an integer from {min} to {max}"
        ))),
    }
}

impl Reply {
    async fn send(self, out: ResponseOutparam, mount: &Mount<'_>) -> anyhow::Result<()> {
        match self {
            Reply::Health => send_json(out, 200, &serde_json::json!({"status": "ok"}), &[]).await,
            Reply::OpenApi => send_static_json(out, OPENAPI).await,
            Reply::Room(room) => send_json(out, 200, &room, &[]).await,
            Reply::CreatedRoom(room) => {
                let location = format!("{}/chatrooms/{}", mount.prefix(), room.id);
                send_json(out, 201, &room, &[("location", location)]).await
            }
            Reply::Dm(room, created) => {
                let location = format!("{}/chatrooms/{}", mount.prefix(), room.id);
                let status = if created { 201 } else { 200 };
                send_json(out, status, &room, &[("location", location)]).await
            }
            Reply::CreatedMessage(message, replayed) => {
                let replay = [("idempotent-replayed", "true".to_owned())];
                let headers: &[(&str, String)] = if replayed { &replay } else { &[] };
                send_json(out, 201, &message, headers).await
            }
            Reply::Users(users) => send_json(out, 200, &users, &[]).await,
            Reply::Rooms(db, mut pages) => {
                let mut array = JsonArray::new(out);
                while let Some(rooms) = pages.next_json_page(&db)? {
                    array.extend(&rooms).await?;
                }
                array.finish().await?;
            }
            Reply::Messages(db, mut pages) => {
                let mut array = JsonArray::new(out);
                while let Some(messages) = pages.next_json_page(&db)? {
                    array.extend(&messages).await?;
                }
                array.finish().await?;
            }
            Reply::Found(value) => send_json(out, 200, &value, &[]).await,
            Reply::Repeated(value) => {
                let replay = [("idempotent-replayed", "true".to_owned())];
                send_json(out, 200, &value, &replay).await
            }
            Reply::Array(array) => {
                let mut out = JsonArray::new(out);
                out.extend(&array).await?;
                out.finish().await?;
            }
            Reply::NoContent => send_empty(out, 204).await,
            Reply::Internal(InternalReply::Json(value)) => send_json(out, 200, &value, &[]).await,
            Reply::Internal(InternalReply::RawJson(array)) => {
                let mut out = JsonArray::new(out);
                out.extend(&array).await?;
                out.finish().await?;
            }
            Reply::Internal(InternalReply::NoContent) => send_empty(out, 204).await,
        }
        Ok(())
    }
}
