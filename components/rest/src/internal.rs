//! The internal API of edge mode (docs/protocol.md §6): what edge-mode sidecars use
//! instead of opening the database file. A feed of every room's messages in
//! id order, a batch write for socket messages (so the component is the
//! only writer), and presence rows under a renewed lease per sidecar.
//!
//! Every endpoint needs `Authorization: Bearer <token>`, the value of the
//! `internal_token` Spin variable; while that variable is empty the whole
//! API is refused (`403`), so a deployment that never set it exposes
//! nothing. The token is compared in constant time.

use chatroom_core::auth::bearer;
use chatroom_core::internal::{
    Draft, FeedHead, LeaseAnswer, LeaseRequest, Outcome, PresenceEntry, PruneRequest,
};
use chatroom_core::{
    Action, ActionKind, Actor, ApiError, Applied, Message, MessageDraft, Query, StoreError, apply,
    changes_after_json, insert_messages, json_object, latest_seq, limits::PAGE_LIMIT_MAX,
    parse_node_token, parse_room_id, presence, prune_step, room_access, room_changes_json,
};
use spin_sdk::http::IncomingRequest;

use crate::http_io::read_body;
use crate::publish::Announcer;
use crate::spin_db::SpinDb;

/// Feed rows per page unless `limit` says otherwise.
const FEED_DEFAULT_LIMIT: i64 = 500;
/// Leases a sidecar may ask for: a second to an hour.
const LEASE_MS: std::ops::RangeInclusive<i64> = 1_000..=3_600_000;

/// An internal endpoint. Its path parameters are checked only once the
/// token is (see [`handle`]), so nobody without it learns more than the
/// published shape of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternalRoute {
    /// `GET /internal/feed?after=&limit=` (and `room=&through=`)
    Feed,
    /// `GET /internal/feed/head`
    FeedHead,
    /// `GET /internal/rooms/{id}/access?username=`: what a user may do in
    /// a room (a sidecar's check of a socket's join).
    RoomAccess(String),
    /// `POST /internal/messages`
    StoreMessages,
    /// `POST /internal/actions`: an edit, delete, reaction or read mark a
    /// socket asked for.
    Act,
    /// `PUT /internal/nodes/{node}`
    RenewLease(String),
    /// `DELETE /internal/nodes/{node}`
    DropNode(String),
    /// `PUT /internal/nodes/{node}/presence/{sid}/{room_id}`
    Join {
        node: String,
        sid: String,
        room: String,
    },
    /// `DELETE /internal/nodes/{node}/presence/{sid}/{room_id}`
    Leave {
        node: String,
        sid: String,
        room: String,
    },
    /// `DELETE /internal/nodes/{node}/presence/{sid}`
    Disconnect { node: String, sid: String },
    /// `POST /internal/prune`: one step of retention (a sidecar's pruner).
    Prune,
}

/// Resolves the segments after `internal`.
pub fn resolve(method: &str, rest: &[&str]) -> Result<InternalRoute, ResolveError> {
    let own = |s: &&str| (*s).to_owned();
    let (allow, route) = match rest {
        ["feed"] => ("GET", (method == "GET").then_some(InternalRoute::Feed)),
        ["feed", "head"] => ("GET", (method == "GET").then_some(InternalRoute::FeedHead)),
        ["messages"] => (
            "POST",
            (method == "POST").then_some(InternalRoute::StoreMessages),
        ),
        ["actions"] => ("POST", (method == "POST").then_some(InternalRoute::Act)),
        ["prune"] => ("POST", (method == "POST").then_some(InternalRoute::Prune)),
        ["rooms", room, "access"] => (
            "GET",
            (method == "GET").then(|| InternalRoute::RoomAccess(own(room))),
        ),
        ["nodes", node] => (
            "PUT, DELETE",
            match method {
                "PUT" => Some(InternalRoute::RenewLease(own(node))),
                "DELETE" => Some(InternalRoute::DropNode(own(node))),
                _ => None,
            },
        ),
        ["nodes", node, "presence", sid, room] => (
            "PUT, DELETE",
            match method {
                "PUT" => Some(InternalRoute::Join {
                    node: own(node),
                    sid: own(sid),
                    room: own(room),
                }),
                "DELETE" => Some(InternalRoute::Leave {
                    node: own(node),
                    sid: own(sid),
                    room: own(room),
                }),
                _ => None,
            },
        ),
        ["nodes", node, "presence", sid] => (
            "DELETE",
            (method == "DELETE").then(|| InternalRoute::Disconnect {
                node: own(node),
                sid: own(sid),
            }),
        ),
        _ => return Err(ResolveError::Api(ApiError::NotFound)),
    };
    route.ok_or(ResolveError::Method(allow))
}

fn node_id(raw: &str) -> Result<&str, ApiError> {
    parse_node_token("node id", raw)
}

fn connection_id(raw: &str) -> Result<&str, ApiError> {
    parse_node_token("connection id", raw)
}

/// Why an internal path resolved to no endpoint.
#[derive(Debug)]
pub enum ResolveError {
    Method(&'static str),
    Api(ApiError),
}

impl From<ApiError> for ResolveError {
    fn from(e: ApiError) -> Self {
        ResolveError::Api(e)
    }
}

/// What an internal endpoint answers.
pub enum InternalReply {
    /// A JSON array, as SQLite wrote it.
    RawJson(String),
    Json(serde_json::Value),
    NoContent,
}

/// Checks the token, then does the work.
pub async fn handle(
    route: InternalRoute,
    req: IncomingRequest,
    query: &Query,
) -> Result<InternalReply, ApiError> {
    authorize(&req)?;
    match route {
        InternalRoute::Feed => {
            let after = match query.get("after") {
                Some(raw) => parse_count("after", raw, 0, i64::MAX)?,
                None => 0,
            };
            let limit = match query.get("limit") {
                Some(raw) => parse_count("limit", raw, 1, PAGE_LIMIT_MAX)?,
                None => FEED_DEFAULT_LIMIT,
            };
            // `room` narrows the feed to one room, up to `through`: what a
            // sidecar replays for a `since`.
            let page = match query.get("room") {
                None => changes_after_json(&SpinDb::open()?, after, limit)?,
                Some(room) => {
                    let room = parse_room_id(room)?;
                    let through = match query.get("through") {
                        Some(raw) => parse_count("through", raw, 0, i64::MAX)?,
                        None => i64::MAX,
                    };
                    room_changes_json(&SpinDb::open()?, room, Some(after), through, limit)?
                }
            };
            Ok(InternalReply::RawJson(page))
        }
        InternalRoute::RoomAccess(room) => {
            let room = parse_room_id(&room)?;
            let username = query
                .get("username")
                .map(chatroom_core::Sender::parse_username)
                .transpose()?;
            let access = room_access(
                &SpinDb::open()?,
                room,
                username.as_ref().map(|u| u.as_str()),
            )?
            .ok_or(ApiError::RoomNotFound)?;
            Ok(json(&access))
        }
        InternalRoute::FeedHead => {
            let last_id = latest_seq(&SpinDb::open()?)?;
            Ok(json(&FeedHead { last_id }))
        }
        InternalRoute::StoreMessages => {
            let body = read_body(req).await?;
            let drafts: Vec<Draft> =
                serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            store_messages(&drafts)
        }
        InternalRoute::Act => {
            let obj = json_object(&read_body(req).await?)?;
            Ok(json(&act(&obj)))
        }
        InternalRoute::RenewLease(node) => {
            let node = node_id(&node)?;
            let body = read_body(req).await?;
            let LeaseRequest { lease_ms } =
                serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            if !LEASE_MS.contains(&lease_ms) {
                return Err(ApiError::InvalidPayload(format!(
                    "lease_ms must be from {} to {}",
                    LEASE_MS.start(),
                    LEASE_MS.end()
                )));
            }
            let lease = presence::renew(&SpinDb::open()?, node, lease_ms)?;
            Ok(json(&LeaseAnswer { lease }))
        }
        InternalRoute::DropNode(node) => {
            presence::drop_node(&SpinDb::open()?, node_id(&node)?)?;
            Ok(InternalReply::NoContent)
        }
        InternalRoute::Join { node, sid, room } => {
            let (node, sid) = (node_id(&node)?, connection_id(&sid)?);
            let room = parse_room_id(&room)?;
            let body = read_body(req).await?;
            let PresenceEntry { username } =
                serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            let username = chatroom_core::Sender::parse_username(&username)?;
            presence::join(&SpinDb::open()?, node, sid, room, username.as_str())?;
            Ok(InternalReply::NoContent)
        }
        InternalRoute::Leave { node, sid, room } => {
            node_id(&node)?;
            let room = parse_room_id(&room)?;
            presence::leave(&SpinDb::open()?, connection_id(&sid)?, room)?;
            Ok(InternalReply::NoContent)
        }
        InternalRoute::Disconnect { node, sid } => {
            node_id(&node)?;
            presence::disconnect(&SpinDb::open()?, connection_id(&sid)?)?;
            Ok(InternalReply::NoContent)
        }
        InternalRoute::Prune => {
            let body = read_body(req).await?;
            let PruneRequest { policy, from_room } =
                serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            policy.check()?;
            Ok(json(&prune_step(&SpinDb::open()?, &policy, from_room)?))
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> InternalReply {
    InternalReply::Json(serde_json::to_value(value).unwrap_or_default())
}

/// Stores the drafts in order, in one transaction, announces the stored
/// ones, and answers each.
fn store_messages(drafts: &[Draft]) -> Result<InternalReply, ApiError> {
    let mut valid = Vec::with_capacity(drafts.len());
    let mut outcomes: Vec<Result<usize, ApiError>> = Vec::with_capacity(drafts.len());
    for d in drafts {
        match MessageDraft::from_fields(Some(&d.sender), Some(&d.message))
            .and_then(|draft| draft.with_client_id(d.client_id.as_deref()))
        {
            Ok(draft) => {
                outcomes.push(Ok(valid.len()));
                valid.push((d.room_id, draft));
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    let stored = if valid.is_empty() {
        Vec::new()
    } else {
        insert_messages(&SpinDb::open()?, &valid, crate::client_id_window_ms())?
    };
    let announcer = Announcer::from_variables();
    let answers: Vec<Outcome> = outcomes
        .into_iter()
        .map(|outcome| match outcome.and_then(|i| nth(&stored, i)) {
            Ok(message) => {
                announcer.announce(&message);
                Outcome {
                    message: Some(message),
                    ..Outcome::done()
                }
            }
            Err(e) => Outcome::refused(&e),
        })
        .collect();
    Ok(json(&answers))
}

/// Applies one action, named by its `action` field; announces a change.
fn act(obj: &serde_json::Map<String, serde_json::Value>) -> Outcome {
    let kind = obj
        .get("action")
        .and_then(|a| a.as_str())
        .and_then(ActionKind::parse)
        .ok_or_else(|| ApiError::InvalidPayload("action must name an action".to_owned()));
    let applied = kind.and_then(|kind| {
        let action = Action::from_object(kind, obj, Actor::default())?;
        let applied = apply(&SpinDb::open()?, &action)?;
        if kind != ActionKind::MarkRead && !matches!(applied, Applied::Repeated(_)) {
            Announcer::from_variables().announce(&action.to_object());
        }
        Ok(applied)
    });
    match applied {
        Ok(Applied::Message(message) | Applied::Repeated(message)) => Outcome {
            message: Some(message),
            ..Outcome::done()
        },
        Ok(Applied::Read(read)) => Outcome {
            read: Some(read),
            ..Outcome::done()
        },
        Ok(Applied::Deleted { .. }) => Outcome::done(),
        Err(e) => Outcome::refused(&e),
    }
}

fn nth(stored: &[Result<Message, ApiError>], i: usize) -> Result<Message, ApiError> {
    stored
        .get(i)
        .cloned()
        .unwrap_or(Err(ApiError::Storage(StoreError::Shape("missing result"))))
}

fn parse_count(name: &str, raw: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(ApiError::InvalidPaging(format!(
            "{name} must be an integer from {min} to {max}"
        ))),
    }
}

/// `Ok` when the request carries the deployment's token.
pub(crate) fn authorize(req: &IncomingRequest) -> Result<(), ApiError> {
    let token = spin_sdk::variables::get("internal_token").unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::InternalApiDisabled);
    }
    let header = req.headers().get("authorization");
    let presented = header.last().and_then(|v| bearer(v)).unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Equal bytes, in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_internal_endpoints() {
        assert_eq!(resolve("GET", &["feed"]).unwrap(), InternalRoute::Feed);
        assert_eq!(
            resolve("GET", &["feed", "head"]).unwrap(),
            InternalRoute::FeedHead
        );
        assert_eq!(
            resolve("PUT", &["nodes", "n-1"]).unwrap(),
            InternalRoute::RenewLease("n-1".into())
        );
        assert_eq!(
            resolve("PUT", &["nodes", "n", "presence", "s", "3"]).unwrap(),
            InternalRoute::Join {
                node: "n".into(),
                sid: "s".into(),
                room: "3".into()
            }
        );
        assert!(matches!(
            resolve("GET", &["nodes", "n"]),
            Err(ResolveError::Method("PUT, DELETE"))
        ));
        assert!(matches!(node_id("a b"), Err(ApiError::BadRequest(_))));
        assert_eq!(connection_id("Ab-_.9").unwrap(), "Ab-_.9");
        assert!(matches!(
            resolve("GET", &["nope"]),
            Err(ResolveError::Api(ApiError::NotFound))
        ));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
