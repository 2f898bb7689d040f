//! The internal API of edge mode (docs/protocol.md §6): what edge-mode sidecars use
//! instead of opening the database file. A feed of every room's messages in
//! id order, a batch write for socket messages (so the component is the
//! only writer), and presence rows under a renewed lease per sidecar. One
//! handler per route of [`crate::routes::ROUTES`].
//!
//! Every endpoint needs `Authorization: Bearer <token>`, the value of the
//! `internal_token` Spin variable; while that variable is empty the whole
//! API is refused (`403`), so a deployment that never set it exposes
//! nothing. The token is compared in constant time, and checked before
//! anything else of the request is: nobody without it learns more than
//! the published shape of the API.

use chatroom_core::auth::bearer;
use chatroom_core::internal::{
    Departures, Draft, FeedHead, LeaseAnswer, LeaseRequest, Outcome, PresenceEntry, PruneRequest,
};
use chatroom_core::{
    Action, ActionKind, Actor, ApiError, Applied, Message, MessageDraft, Sender, StoreError, apply,
    changes_after_json, insert_messages, json_object, latest_seq,
    limits::{DEPARTURES_MAX, PAGE_LIMIT_MAX},
    parse_node_token, parse_room_id, presence, prune_step, room_changes_json,
};
use spin_sdk::http::IncomingRequest;

use crate::Reply;
use crate::http_io::read_body;
use crate::publish::Announcer;
use crate::router::Request;
use crate::spin_db::SpinDb;

/// Feed rows per page unless `limit` says otherwise.
const FEED_DEFAULT_LIMIT: i64 = 500;
/// Leases a sidecar may ask for: a second to an hour.
const LEASE_MS: std::ops::RangeInclusive<i64> = 1_000..=3_600_000;

/// `GET /internal/feed?after=&limit=` (and `room=&through=`: one room's
/// changes up to `through`, what a sidecar replays for a `since`).
pub async fn feed(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let query = &req.query;
    let after = query.count("after", 0, i64::MAX)?.unwrap_or(0);
    let limit = query
        .count("limit", 1, PAGE_LIMIT_MAX)?
        .unwrap_or(FEED_DEFAULT_LIMIT);
    let page = match query.get("room") {
        None => changes_after_json(&SpinDb::open()?, after, limit)?,
        Some(room) => {
            let room = parse_room_id(room)?;
            let through = query.count("through", 0, i64::MAX)?.unwrap_or(i64::MAX);
            room_changes_json(&SpinDb::open()?, room, Some(after), through, limit)?
        }
    };
    Ok(Reply::Array(page))
}

/// `GET /internal/feed/head`: the newest change's `seq`.
pub async fn feed_head(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let last_id = latest_seq(&SpinDb::open()?)?;
    Ok(json(&FeedHead { last_id }))
}

/// `GET /internal/rooms/{room}/access?username=`: what a user may do in a
/// room (a sidecar's check of a socket's join).
pub async fn room_access(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let room = parse_room_id(&req.params.room_raw)?;
    let username = req
        .query
        .get("username")
        .map(Sender::parse_username)
        .transpose()?;
    let db = SpinDb::open()?;
    let access = chatroom_core::room_access(&db, room, username.as_ref().map(|u| u.as_str()))?
        .ok_or(ApiError::RoomNotFound)?;
    Ok(json(&access))
}

/// `POST /internal/messages`: a socket's drafts, stored in order.
pub async fn store_messages(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let body = read_body(req.http).await?;
    let drafts: Vec<Draft> =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    store_drafts(&drafts)
}

/// `POST /internal/actions`: an edit, delete, reaction or read mark a
/// socket asked for.
pub async fn act(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let obj = json_object(&read_body(req.http).await?)?;
    Ok(json(&apply_action(&obj)))
}

/// `PUT /internal/nodes/{node}`: takes or renews the node's lease.
pub async fn renew_lease(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let node = node_id(&req.params.node)?.to_owned();
    let body = read_body(req.http).await?;
    let LeaseRequest { lease_ms } =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    if !LEASE_MS.contains(&lease_ms) {
        return Err(ApiError::InvalidPayload(format!(
            "lease_ms must be from {} to {}",
            LEASE_MS.start(),
            LEASE_MS.end()
        )));
    }
    let lease = presence::renew(&SpinDb::open()?, &node, lease_ms)?;
    Ok(json(&LeaseAnswer { lease }))
}

/// `DELETE /internal/nodes/{node}`: forgets the node and its presence.
pub async fn drop_node(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    presence::drop_node(&SpinDb::open()?, node_id(&req.params.node)?)?;
    Ok(Reply::NoContent)
}

/// `PUT /internal/nodes/{node}/presence/{sid}/{room}`.
pub async fn join(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let params = req.params;
    let (node, sid) = (node_id(&params.node)?, connection_id(&params.sid)?);
    let room = parse_room_id(&params.room_raw)?;
    let body = read_body(req.http).await?;
    let PresenceEntry { username } =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let username = Sender::parse_username(&username)?;
    presence::join(&SpinDb::open()?, node, sid, room, username.as_str())?;
    Ok(Reply::NoContent)
}

/// `DELETE /internal/nodes/{node}/presence/{sid}/{room}`.
pub async fn leave(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let params = &req.params;
    node_id(&params.node)?;
    let room = parse_room_id(&params.room_raw)?;
    presence::leave(&SpinDb::open()?, connection_id(&params.sid)?, room)?;
    Ok(Reply::NoContent)
}

/// `DELETE /internal/nodes/{node}/presence/{sid}`: one departure, as
/// sidecars before `departures` sent them.
pub async fn disconnect(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let params = &req.params;
    node_id(&params.node)?;
    let sid = connection_id(&params.sid)?.to_owned();
    presence::disconnect_all(&SpinDb::open()?, &[sid])?;
    Ok(Reply::NoContent)
}

/// `POST /internal/nodes/{node}/departures`: connections that went,
/// unlisted together.
pub async fn departures(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    node_id(&req.params.node)?;
    let body = read_body(req.http).await?;
    let Departures { sids } =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    if sids.len() > DEPARTURES_MAX {
        return Err(ApiError::InvalidPayload(format!(
            "at most {DEPARTURES_MAX} connections a call"
        )));
    }
    for sid in &sids {
        connection_id(sid)?;
    }
    presence::disconnect_all(&SpinDb::open()?, &sids)?;
    Ok(Reply::NoContent)
}

/// `POST /internal/prune`: one step of retention (a sidecar's pruner).
pub async fn prune(req: Request) -> Result<Reply, ApiError> {
    authorize(&req.http)?;
    let body = read_body(req.http).await?;
    let PruneRequest { policy, from_room } =
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    policy.check()?;
    Ok(json(&prune_step(&SpinDb::open()?, &policy, from_room)?))
}

fn node_id(raw: &str) -> Result<&str, ApiError> {
    parse_node_token("node id", raw)
}

fn connection_id(raw: &str) -> Result<&str, ApiError> {
    parse_node_token("connection id", raw)
}

fn json<T: serde::Serialize>(value: &T) -> Reply {
    Reply::Found(crate::to_value(value))
}

/// Stores the drafts in order, in one transaction, announces the stored
/// ones, and answers each.
fn store_drafts(drafts: &[Draft]) -> Result<Reply, ApiError> {
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
fn apply_action(obj: &serde_json::Map<String, serde_json::Value>) -> Outcome {
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
    fn node_and_connection_ids_are_plain_tokens() {
        assert!(matches!(node_id("a b"), Err(ApiError::BadRequest(_))));
        assert_eq!(connection_id("Ab-_.9").unwrap(), "Ab-_.9");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
