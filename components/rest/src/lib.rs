//! The chatroom REST API (docs/protocol.md §2) as a Spin HTTP component.
//!
//! Each request gets a fresh instance (Spin's model): its route is found
//! in [`routes::ROUTES`], the table of every endpoint and its handler (one
//! handler per route, in `rooms`, `messages`, `users` and, for edge mode,
//! `internal`), and the handler's [`Reply`] or error is written here, the
//! one place either is rendered. Routes are matched on Spin's
//! `spin-path-info` (the part of the path below the component's route), so
//! the API works mounted under any route prefix (`route = "/api/..."`
//! serves `/api/chatrooms`). Every rule and statement comes from
//! `chatroom-core`, which the Socket.IO sidecar shares. Lists are streamed
//! a page at a time.

mod http_io;
mod identity;
mod internal;
mod messages;
mod publish;
mod rooms;
mod router;
mod routes;
mod spin_db;
mod users;

/// The OpenAPI 3.1 description of this API, served at `/openapi.json`.
const OPENAPI: &str = include_str!("../openapi.json");

use chatroom_core::limits::CLIENT_ID_WINDOW_MS;
use chatroom_core::{
    ApiError, HistoryPages, Message, Query, Room, RoomPages, RoomUsers, check_path,
};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::http_io::{JsonArray, send_empty, send_error, send_json, send_static_json};
use crate::router::{NoRoute, Request, find};
use crate::routes::{Mount, ROUTES};
use crate::spin_db::SpinDb;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let method = req.method().to_string();
    let target = req.path_with_query().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path_info = req.headers().get("spin-path-info");
    let mount = Mount::new(path, path_info.last().map(Vec::as_slice));
    match answer(&method, path, query, mount, req).await {
        Ok((reply, prefix)) => {
            if let Err(e) = reply.send(out, prefix).await {
                eprintln!("chatroom-rest: streaming a response failed: {e:#}");
            }
        }
        Err(NoRoute::Method(allow)) => {
            send_error(out, &ApiError::MethodNotAllowed, Some(allow)).await
        }
        Err(NoRoute::Error(e)) => send_error(out, &e, None).await,
    }
}

/// The reply to a request, with the mount point its `Location`s start
/// with.
async fn answer<'a>(
    method: &str,
    path: &str,
    query: &str,
    mount: Result<Mount<'a>, ApiError>,
    req: IncomingRequest,
) -> Result<(Reply, &'a str), NoRoute> {
    // Bytes that are not UTF-8 are refused, never read as U+FFFD.
    check_path(path)?;
    let query = Query::parse(query)?;
    let mount = mount?;
    let (route, params) = find(ROUTES, method, mount.path_info())?;
    let request = Request {
        http: req,
        query,
        params,
    };
    Ok(((route.handler)(request).await?, mount.prefix()))
}

/// What a route answers, decided before the status line is written.
pub(crate) enum Reply {
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
    /// `200` with a JSON value (a message, a read position, unread counts,
    /// an internal answer).
    Found(serde_json::Value),
    /// `200` with the message a repeated edit's key names
    /// (`Idempotent-Replayed: true`).
    Repeated(serde_json::Value),
    /// `200` with a JSON array as SQLite wrote it.
    Array(String),
    NoContent,
}

/// `GET /healthz`.
async fn health(_: Request) -> Result<Reply, ApiError> {
    Ok(Reply::Health)
}

/// `GET /openapi.json`.
async fn openapi(_: Request) -> Result<Reply, ApiError> {
    Ok(Reply::OpenApi)
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

impl Reply {
    async fn send(self, out: ResponseOutparam, prefix: &str) -> anyhow::Result<()> {
        match self {
            Reply::Health => send_json(out, 200, &serde_json::json!({"status": "ok"}), &[]).await,
            Reply::OpenApi => send_static_json(out, OPENAPI).await,
            Reply::Room(room) => send_json(out, 200, &room, &[]).await,
            Reply::CreatedRoom(room) => {
                let location = format!("{prefix}/chatrooms/{}", room.id);
                send_json(out, 201, &room, &[("location", location)]).await
            }
            Reply::Dm(room, created) => {
                let location = format!("{prefix}/chatrooms/{}", room.id);
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
        }
        Ok(())
    }
}
