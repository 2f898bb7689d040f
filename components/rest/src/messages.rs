//! The message routes (docs/protocol.md §2.2–§2.4): a room's history, a
//! post, one message, and what people do to messages after sending them
//! (edit, delete, react, mark read), each one [`Action`] applied by core.

use chatroom_core::{
    Action, ActionKind, Actor, ApiError, Applied, HistoryPages, MessageDraft, MessagePage, Sender,
    apply, json_object, store_message, visible_room,
};

use crate::http_io::read_body;
use crate::identity::{Access, check_sender};
use crate::publish::Announcer;
use crate::router::Request;
use crate::spin_db::SpinDb;
use crate::{Reply, client_id_window_ms, idempotency_key, to_value};

/// `GET /chatrooms/{room}/messages?after=&before=&limit=`, streamed.
pub async fn list(req: Request) -> Result<Reply, ApiError> {
    let id = req.params.room;
    let viewer = Access::from_variables().viewer(&req.http)?;
    let query = &req.query;
    let page = MessagePage::parse(query.get("after"), query.get("before"), query.get("limit"))?;
    let db = SpinDb::open()?;
    visible_room(&db, id, &viewer)?;
    Ok(Reply::Messages(db, HistoryPages::new(id, page)))
}

/// `POST /chatrooms/{room}/messages`: a JSON body, or `?sender=&content=`
/// with none; a repeated `client_id` (or `Idempotency-Key`) answers with
/// the message it stored.
pub async fn post(req: Request) -> Result<Reply, ApiError> {
    let user = Access::from_variables().writer(&req.http)?;
    let default_sender = user.as_ref().map(|u| u.as_str());
    let key = idempotency_key(&req.http);
    let body = read_body(req.http).await?;
    let query = &req.query;
    let draft = if body.trim_ascii().is_empty() {
        let text = query.get("content").or_else(|| query.get("message"));
        MessageDraft::from_fields(query.get("sender").or(default_sender), text)?
    } else {
        MessageDraft::from_json(&body, default_sender)?
    };
    let draft = draft.with_client_id(key.as_deref())?;
    check_sender(&draft.sender, user.as_ref())?;
    let db = SpinDb::open()?;
    let stored = store_message(&db, req.params.room, &draft, client_id_window_ms())?;
    if !stored.replayed {
        Announcer::from_variables().announce(&stored.message);
    }
    Ok(Reply::CreatedMessage(stored.message, stored.replayed))
}

/// `GET /chatrooms/{room}/messages/{message}`.
pub async fn get(req: Request) -> Result<Reply, ApiError> {
    let (id, mid) = (req.params.room, req.params.message);
    let viewer = Access::from_variables().viewer(&req.http)?;
    let db = SpinDb::open()?;
    visible_room(&db, id, &viewer)?;
    let message = chatroom_core::message(&db, id, mid)?;
    Ok(Reply::Found(to_value(&message)))
}

/// `PATCH /chatrooms/{room}/messages/{message}`.
pub async fn edit(req: Request) -> Result<Reply, ApiError> {
    act(ActionKind::EditMessage, req).await
}

/// `DELETE /chatrooms/{room}/messages/{message}`.
pub async fn delete(req: Request) -> Result<Reply, ApiError> {
    act(ActionKind::DeleteMessage, req).await
}

/// `PUT /chatrooms/{room}/messages/{message}/reactions/{emoji}`.
pub async fn add_reaction(req: Request) -> Result<Reply, ApiError> {
    act(ActionKind::AddReaction, req).await
}

/// `DELETE /chatrooms/{room}/messages/{message}/reactions/{emoji}`.
pub async fn remove_reaction(req: Request) -> Result<Reply, ApiError> {
    act(ActionKind::RemoveReaction, req).await
}

/// `PUT /chatrooms/{room}/read`.
pub async fn mark_read(req: Request) -> Result<Reply, ApiError> {
    act(ActionKind::MarkRead, req).await
}

/// An edit, delete, reaction or read mark: the body's fields (or the
/// query's `username`/`sender`, for a body-less `DELETE`), with the ids
/// and emoji from the path; with identity on, the token's user acts.
async fn act(kind: ActionKind, req: Request) -> Result<Reply, ApiError> {
    let user = Access::from_variables().writer(&req.http)?;
    let key = idempotency_key(&req.http);
    let body = read_body(req.http).await?;
    let mut obj = if body.trim_ascii().is_empty() {
        serde_json::Map::new()
    } else {
        json_object(&body)?
    };
    for key in ["username", "sender"] {
        if let (false, Some(value)) = (obj.contains_key(key), req.query.get(key)) {
            obj.insert(key.to_owned(), value.into());
        }
    }
    let params = req.params;
    obj.insert("room_id".to_owned(), params.room.into());
    if kind != ActionKind::MarkRead {
        obj.insert("message_id".to_owned(), params.message.into());
    }
    if matches!(kind, ActionKind::AddReaction | ActionKind::RemoveReaction) {
        obj.insert("emoji".to_owned(), params.emoji.into());
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
