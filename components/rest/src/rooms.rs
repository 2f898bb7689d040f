//! The room routes (docs/protocol.md §2.1, §10): listing, creating and
//! reading rooms, who is in one, its change log, its members and their
//! moderation, and DMs.

use chatroom_core::limits::PAGE_LIMIT_MAX;
use chatroom_core::{
    ApiError, MemberChange, Moderation, RoomDraft, RoomPages, Sender, Viewer, Visibility,
    change_membership, create_owned_room, create_room, find_room, json_object, members,
    room_changes_json, room_users, visible_room,
};

use crate::http_io::read_body;
use crate::identity::Access;
use crate::publish::Announcer;
use crate::router::Request;
use crate::spin_db::SpinDb;
use crate::{Reply, identity_required, to_value};

/// `GET /chatrooms`: the rooms the viewer sees, streamed a page at a time.
pub async fn list(req: Request) -> Result<Reply, ApiError> {
    let viewer = Access::from_variables().viewer(&req.http)?;
    Ok(Reply::Rooms(
        SpinDb::open()?,
        RoomPages::for_viewer(&viewer),
    ))
}

/// `POST /chatrooms`: a JSON body, or `?name=` with none.
pub async fn create(req: Request) -> Result<Reply, ApiError> {
    let user = Access::from_variables().writer(&req.http)?;
    let body = read_body(req.http).await?;
    let draft = if body.trim_ascii().is_empty() {
        RoomDraft::from_name(req.query.get("name"))?
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

/// `GET /chatrooms/{room}`.
pub async fn get(req: Request) -> Result<Reply, ApiError> {
    let id = req.params.room;
    let viewer = Access::from_variables().viewer(&req.http)?;
    let db = SpinDb::open()?;
    visible_room(&db, id, &viewer)?;
    let room = find_room(&db, id)?.ok_or(ApiError::RoomNotFound)?;
    Ok(Reply::Room(room))
}

/// `GET /chatrooms/{room}/users`: who is connected.
pub async fn users(req: Request) -> Result<Reply, ApiError> {
    let id = req.params.room;
    let viewer = Access::from_variables().viewer(&req.http)?;
    let db = SpinDb::open()?;
    visible_room(&db, id, &viewer)?;
    Ok(Reply::Users(room_users(&db, id)?))
}

/// `GET /chatrooms/{room}/changes?after=&limit=`: the room's change log.
pub async fn changes(req: Request) -> Result<Reply, ApiError> {
    let id = req.params.room;
    let viewer = Access::from_variables().viewer(&req.http)?;
    let after = req.query.count("after", 0, i64::MAX)?;
    let limit = req
        .query
        .count("limit", 1, PAGE_LIMIT_MAX)?
        .unwrap_or(PAGE_LIMIT_MAX);
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

/// `GET /chatrooms/{room}/members`.
pub async fn members_of(req: Request) -> Result<Reply, ApiError> {
    let id = req.params.room;
    let viewer = Access::from_variables().viewer(&req.http)?;
    let db = SpinDb::open()?;
    visible_room(&db, id, &viewer)?;
    Ok(Reply::Found(to_value(&members(&db, id)?)))
}

/// A membership or moderation change naming a user (`PUT`/`DELETE
/// .../members/{name}`, `POST .../kicks/{name}`, `PUT`/`DELETE
/// .../bans/{name}` and `.../mutes/{name}`), by the token's user (identity
/// on only); `204` when it changed nothing.
pub async fn moderate(req: Request, kind: Moderation) -> Result<Reply, ApiError> {
    let actor = match Access::from_variables().principal(&req.http)? {
        Some(principal) => Viewer::from(principal),
        None => return Err(identity_required("members and moderation")),
    };
    let body = read_body(req.http).await?;
    let obj = if body.trim_ascii().is_empty() {
        serde_json::Map::new()
    } else {
        json_object(&body)?
    };
    let change = MemberChange::from_request(kind, &req.params.name, &obj)?;
    match change_membership(&SpinDb::open()?, req.params.room, &actor, &change)? {
        Some(event) => {
            Announcer::from_variables().announce(&event);
            Ok(Reply::Found(to_value(&event)))
        }
        None => Ok(Reply::NoContent),
    }
}

/// `POST /dms`: the DM of the token's user and `with`; `201` the first
/// time, `200` after.
pub async fn open_dm(req: Request) -> Result<Reply, ApiError> {
    let Some(me) = Access::from_variables().writer(&req.http)? else {
        return Err(identity_required("direct messages"));
    };
    let obj = json_object(&read_body(req.http).await?)?;
    let with = match obj.get("with") {
        Some(serde_json::Value::String(name)) => Sender::parse_username(name)?,
        _ => {
            return Err(ApiError::InvalidUsername(
                "with must name the other user".to_owned(),
            ));
        }
    };
    let (room, created) = chatroom_core::open_dm(&SpinDb::open()?, &me, &with)?;
    if created {
        Announcer::from_variables().announce(&room);
    }
    Ok(Reply::Dm(room, created))
}
