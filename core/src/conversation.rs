//! What people do to messages after sending them: edit and delete their
//! own, react, and mark a room read. One [`Action`] type carries each,
//! parsed by the same rules from a REST body, a Socket.IO payload and the
//! internal API, and [`apply`] is the one place it reaches the database,
//! for the component and the sidecar alike.
//!
//! Each change is one statement, so it is atomic on its own; the schema's
//! triggers log it in `changes` in that same statement. When a statement
//! changes nothing, a read says why (`404`, `403` `not_sender`, `409`).
//! Repeats are harmless: deleting a tombstone, adding a reaction already
//! there or removing one that is not change nothing and succeed.

use serde_json::{Map, Value, json};

use crate::auth::acting_as;
use crate::db::{Database, StoreError};
use crate::error::ApiError;
use crate::input::{MessageDraft, first_string_field};
use crate::limits::REACTION_KINDS_MAX;
use crate::store::{message, missing, store_message};
use crate::transaction::{SECURE_DELETE, in_one_transaction};
use crate::validate::{ClientId, Content, Emoji, Sender};
use crate::walls::{Need, wall};
use crate::wire::{Message, ReadPosition, Unread};

/// An edit; with a `client_id` (`?5`), only if it is not the key of the
/// message's last edit (a repeat changes nothing).
const EDIT: &str = concat!(
    "UPDATE messages SET content = ?4, version = version + 1, edit_client_id = ?5, edited_at = ",
    now_utc_millis!(),
    " WHERE id = ?2 AND room_id = ?1 AND sender = ?3 AND deleted_at IS NULL ",
    "AND (?5 IS NULL OR edit_client_id IS NULL OR edit_client_id <> ?5) AND ",
    may_act!("?1", "?3", "'ban', 'mute'"),
    " RETURNING id"
);
/// Whether the message's last edit had key `?5`, and whether it set
/// other text than `?4`.
const REPEATED_EDIT: &str = "SELECT content <> ?4 FROM messages \
     WHERE id = ?2 AND room_id = ?1 AND sender = ?3 AND deleted_at IS NULL AND edit_client_id = ?5";
const DELETE: &str = concat!(
    "UPDATE messages SET content = '', deleted_at = ",
    now_utc_millis!(),
    " WHERE id = ?2 AND room_id = ?1 AND sender = ?3 AND deleted_at IS NULL AND ",
    may_act!("?1", "?3", "'ban'"),
    " RETURNING id"
);
const ADD_REACTION: &str = concat!(
    "INSERT INTO reactions (message_id, emoji, username) SELECT ?2, ?3, ?4 \
     WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?2 AND room_id = ?1 AND deleted_at IS NULL) \
     AND (EXISTS (SELECT 1 FROM reactions WHERE message_id = ?2 AND emoji = ?3) \
          OR (SELECT count(DISTINCT emoji) FROM reactions WHERE message_id = ?2) < ?5) AND ",
    may_act!("?1", "?4", "'ban', 'mute'"),
    " ON CONFLICT DO NOTHING RETURNING emoji"
);
const REMOVE_REACTION: &str = concat!(
    "DELETE FROM reactions WHERE message_id = ?2 AND emoji = ?3 AND username = ?4 \
     AND EXISTS (SELECT 1 FROM messages WHERE id = ?2 AND room_id = ?1 AND deleted_at IS NULL) AND ",
    may_act!("?1", "?4", "'ban', 'mute'"),
    " RETURNING emoji"
);
const HAS_REACTED: &str =
    "SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND username = ?3";
const MESSAGE_STATE: &str =
    "SELECT sender, deleted_at IS NOT NULL FROM messages WHERE id = ?2 AND room_id = ?1";
/// Moves a read position forward only (an older id is no step back).
const MARK_READ: &str = concat!(
    "INSERT INTO read_positions (room_id, username, message_id) SELECT ?1, ?2, ?3 \
     WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?3 AND room_id = ?1) AND ",
    may_act!("?1", "?2", "'ban'"),
    " ON CONFLICT (username, room_id) DO UPDATE SET message_id = max(message_id, excluded.message_id) \
     RETURNING message_id"
);
/// A user's read positions (one room's, or every room's for room 0), with
/// the messages after each that are neither theirs nor deleted; only in
/// rooms they may still see (public ones, or where they are a member).
const READ_POSITIONS: &str = "SELECT r.room_id, r.username, r.message_id, \
     (SELECT count(*) FROM messages m WHERE m.room_id = r.room_id AND m.id > r.message_id \
      AND m.deleted_at IS NULL AND m.sender <> r.username) \
     FROM read_positions r WHERE r.username = ?1 AND (?2 = 0 OR r.room_id = ?2) \
     AND (EXISTS (SELECT 1 FROM chatrooms c WHERE c.id = r.room_id AND c.visibility = 'public') \
          OR EXISTS (SELECT 1 FROM members mb WHERE mb.room_id = r.room_id AND mb.username = r.username)) \
     ORDER BY r.room_id";

/// The kinds of [`Action`], by their Socket.IO event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    EditMessage,
    DeleteMessage,
    AddReaction,
    RemoveReaction,
    MarkRead,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        ActionKind::EditMessage,
        ActionKind::DeleteMessage,
        ActionKind::AddReaction,
        ActionKind::RemoveReaction,
        ActionKind::MarkRead,
    ];

    /// The Socket.IO event name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::EditMessage => "edit_message",
            ActionKind::DeleteMessage => "delete_message",
            ActionKind::AddReaction => "add_reaction",
            ActionKind::RemoveReaction => "remove_reaction",
            ActionKind::MarkRead => "mark_read",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A validated change someone asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Edit {
        room_id: i64,
        message_id: i64,
        user: Sender,
        content: Content,
        /// The client's key for this edit: a repeat changes nothing.
        client_id: Option<ClientId>,
    },
    Delete {
        room_id: i64,
        message_id: i64,
        user: Sender,
    },
    React {
        room_id: i64,
        message_id: i64,
        user: Sender,
        emoji: Emoji,
        add: bool,
    },
    MarkRead {
        room_id: i64,
        message_id: i64,
        user: Sender,
    },
}

/// Who is acting: the token's user when identity is on (a name in the
/// payload must then be the same), else the name in the payload
/// (`username` or `sender`), else `fallback` (the name a socket joined the
/// room with).
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor<'a> {
    pub token_user: Option<&'a str>,
    pub fallback: Option<&'a str>,
}

impl Actor<'_> {
    fn resolve(&self, obj: &Map<String, Value>) -> Result<Sender, ApiError> {
        let named = first_string_field(obj, &["username", "sender"], ApiError::InvalidUsername)?;
        let name = match acting_as(self.token_user, named)? {
            Some(name) => name,
            None => self
                .fallback
                .ok_or_else(|| ApiError::InvalidUsername("username is required".to_owned()))?,
        };
        Sender::parse_username(name)
    }
}

/// The first of `fields` as a string, which must be there.
fn required_text<'a>(
    obj: &'a Map<String, Value>,
    fields: &[&str],
    err: fn(String) -> ApiError,
) -> Result<&'a str, ApiError> {
    first_string_field(obj, fields, err)?.ok_or_else(|| err(format!("{} is required", fields[0])))
}

impl Action {
    /// From a payload object: `room_id`, `message_id`, and `message` (or
    /// `content`) for an edit, `emoji` for a reaction.
    pub fn from_object(
        kind: ActionKind,
        obj: &Map<String, Value>,
        actor: Actor<'_>,
    ) -> Result<Self, ApiError> {
        let room_id = crate::input::room_id_field(obj)?;
        let message_id = crate::input::message_id_field(obj)?;
        let user = actor.resolve(obj)?;
        // Every action takes a key; only an edit needs it (the others are
        // the same when repeated), but a bad one is refused on all.
        let client_id = first_string_field(obj, &["client_id"], ApiError::InvalidPayload)?
            .map(ClientId::parse)
            .transpose()?;
        Ok(match kind {
            ActionKind::EditMessage => Action::Edit {
                room_id,
                message_id,
                user,
                content: Content::parse(required_text(
                    obj,
                    &["message", "content"],
                    ApiError::InvalidMessage,
                )?)?,
                client_id,
            },
            ActionKind::DeleteMessage => Action::Delete {
                room_id,
                message_id,
                user,
            },
            ActionKind::AddReaction | ActionKind::RemoveReaction => Action::React {
                room_id,
                message_id,
                user,
                emoji: Emoji::parse(required_text(obj, &["emoji"], ApiError::InvalidEmoji)?)?,
                add: kind == ActionKind::AddReaction,
            },
            ActionKind::MarkRead => Action::MarkRead {
                room_id,
                message_id,
                user,
            },
        })
    }

    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Edit { .. } => ActionKind::EditMessage,
            Action::Delete { .. } => ActionKind::DeleteMessage,
            Action::React { add: true, .. } => ActionKind::AddReaction,
            Action::React { add: false, .. } => ActionKind::RemoveReaction,
            Action::MarkRead { .. } => ActionKind::MarkRead,
        }
    }

    pub fn room_id(&self) -> i64 {
        match self {
            Action::Edit { room_id, .. }
            | Action::Delete { room_id, .. }
            | Action::React { room_id, .. }
            | Action::MarkRead { room_id, .. } => *room_id,
        }
    }

    /// The action as the internal API takes it (`POST /internal/actions`):
    /// the fields [`Action::from_object`] reads, with `action` naming it.
    pub fn to_object(&self) -> Value {
        let (room_id, message_id, user) = match self {
            Action::Edit {
                room_id,
                message_id,
                user,
                ..
            }
            | Action::Delete {
                room_id,
                message_id,
                user,
            }
            | Action::React {
                room_id,
                message_id,
                user,
                ..
            }
            | Action::MarkRead {
                room_id,
                message_id,
                user,
            } => (room_id, message_id, user),
        };
        let mut obj = json!({
            "action": self.kind(),
            "room_id": room_id,
            "message_id": message_id,
            "username": user.as_str(),
        });
        match self {
            Action::Edit {
                content, client_id, ..
            } => {
                obj["message"] = content.as_str().into();
                if let Some(key) = client_id {
                    obj["client_id"] = key.as_str().into();
                }
            }
            Action::React { emoji, .. } => obj["emoji"] = emoji.as_str().into(),
            _ => {}
        }
        obj
    }
}

/// What an action left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The message as it is now (an edit, a reaction).
    Message(Message),
    /// A repeat of the message's last edit (its `client_id`): nothing
    /// changed; the message as it is.
    Repeated(Message),
    /// The message is a tombstone now (or already was).
    Deleted { room_id: i64, message_id: i64 },
    /// The user's read position in the room, after the move.
    Read(ReadPosition),
}

/// Does what `action` asks, or says why not.
pub fn apply(db: &impl Database, action: &Action) -> Result<Applied, ApiError> {
    match action {
        Action::Edit {
            room_id,
            message_id,
            user,
            content,
            client_id,
        } => edit(db, *room_id, *message_id, user, content, client_id.as_ref()),
        Action::Delete {
            room_id,
            message_id,
            user,
        } => delete(db, *room_id, *message_id, user),
        Action::React {
            room_id,
            message_id,
            user,
            emoji,
            add,
        } => react(db, (*room_id, *message_id), user, emoji, *add),
        Action::MarkRead {
            room_id,
            message_id,
            user,
        } => mark_read(db, *room_id, *message_id, user),
    }
}

/// An edit by the message's sender; a repeat of its last edit's key
/// changes nothing.
fn edit(
    db: &impl Database,
    room_id: i64,
    message_id: i64,
    user: &Sender,
    content: &Content,
    client_id: Option<&ClientId>,
) -> Result<Applied, ApiError> {
    let mut params = own(room_id, message_id, user);
    params.push(content.as_str().into());
    params.push(client_id.map_or(crate::db::Value::Null, |k| k.as_str().into()));
    // A remote libSQL store may refuse pragmas: that refuses no edit.
    let _ = db.query(SECURE_DELETE, &[]);
    if db.query(EDIT, &params)?.is_empty() {
        if let Some(e) = wall(db, room_id, user, Need::Speak)? {
            return Err(e);
        }
        if client_id.is_some()
            && let Some(row) = db.query(REPEATED_EDIT, &params)?.first()
        {
            if row.int(0)? != 0 {
                return Err(ApiError::IdempotencyConflict);
            }
            return message(db, room_id, message_id).map(Applied::Repeated);
        }
        return Err(match own_message(db, room_id, message_id, user)? {
            Ownership::Deleted => ApiError::MessageDeleted,
            Ownership::Live => ApiError::Storage(StoreError::Shape("an edit changed nothing")),
        });
    }
    message(db, room_id, message_id).map(Applied::Message)
}

/// A delete by the message's sender; deleting a tombstone again is no
/// error.
fn delete(
    db: &impl Database,
    room_id: i64,
    message_id: i64,
    user: &Sender,
) -> Result<Applied, ApiError> {
    // A remote libSQL store may refuse pragmas: that refuses no edit.
    let _ = db.query(SECURE_DELETE, &[]);
    if db
        .query(DELETE, &own(room_id, message_id, user))?
        .is_empty()
    {
        if let Some(e) = wall(db, room_id, user, Need::Act)? {
            return Err(e);
        }
        own_message(db, room_id, message_id, user)?;
    }
    Ok(Applied::Deleted {
        room_id,
        message_id,
    })
}

/// Adds (`add`) or removes `user`'s `emoji` on the message; a repeat
/// changes nothing.
fn react(
    db: &impl Database,
    (room_id, message_id): (i64, i64),
    user: &Sender,
    emoji: &Emoji,
    add: bool,
) -> Result<Applied, ApiError> {
    let sql = if add { ADD_REACTION } else { REMOVE_REACTION };
    let mut params = vec![
        room_id.into(),
        message_id.into(),
        emoji.as_str().into(),
        user.as_str().into(),
    ];
    if add {
        params.push(REACTION_KINDS_MAX.into());
    }
    if db.query(sql, &params)?.is_empty() {
        if let Some(e) = wall(db, room_id, user, Need::Speak)? {
            return Err(e);
        }
        match message_state(db, room_id, message_id)? {
            None => return Err(missing(db, room_id)?),
            Some((_, true)) => return Err(ApiError::MessageDeleted),
            Some((_, false)) if add => {
                let params = [
                    message_id.into(),
                    emoji.as_str().into(),
                    user.as_str().into(),
                ];
                if db.query(HAS_REACTED, &params)?.is_empty() {
                    return Err(ApiError::TooManyReactions);
                }
            }
            Some(_) => {}
        }
    }
    message(db, room_id, message_id).map(Applied::Message)
}

/// Moves `user`'s read position in the room forward to the message.
fn mark_read(
    db: &impl Database,
    room_id: i64,
    message_id: i64,
    user: &Sender,
) -> Result<Applied, ApiError> {
    let params = [room_id.into(), user.as_str().into(), message_id.into()];
    if db.query(MARK_READ, &params)?.is_empty() {
        if let Some(e) = wall(db, room_id, user, Need::Act)? {
            return Err(e);
        }
        return Err(missing(db, room_id)?);
    }
    read_positions(db, user, room_id)?
        .pop()
        .map(Applied::Read)
        .ok_or(ApiError::Storage(StoreError::Shape(
            "a read position vanished",
        )))
}

/// One write a socket asked for: a new message or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Message(i64, MessageDraft),
    Action(Action),
}

/// What a [`Write`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Message(Message),
    Applied(Applied),
}

/// Stores a run of writes in one transaction (one commit, one sync), in
/// order, each with its own answer, as [`crate::insert_messages`] does for
/// messages alone: a socket's messages, edits, reactions and read marks
/// that arrive together cost one commit.
/// A message's `client_id` is remembered for `window_ms`.
pub fn write_batch(
    db: &impl Database,
    writes: &[Write],
    window_ms: i64,
) -> Result<Vec<Result<Written, ApiError>>, StoreError> {
    in_one_transaction(db, writes, |db, write| match write {
        Write::Message(room_id, draft) => store_message(db, *room_id, draft, window_ms)
            .map(|stored| Written::Message(stored.message)),
        Write::Action(action) => apply(db, action).map(Written::Applied),
    })
}

/// The parameters naming `user`'s message: `?1` room, `?2` message, `?3`
/// sender.
fn own(room_id: i64, message_id: i64, user: &Sender) -> Vec<crate::db::Value> {
    vec![room_id.into(), message_id.into(), user.as_str().into()]
}

/// Empties the write-ahead log into the database and truncates it to
/// nothing, so the old page images it held (an edited or deleted
/// message's text among them) leave the disk too. `Ok(false)` when a
/// reader kept it from finishing: try again later.
pub fn truncate_wal(db: &impl Database) -> Result<bool, StoreError> {
    let rows = db.query("PRAGMA wal_checkpoint(TRUNCATE)", &[])?;
    Ok(rows
        .first()
        .is_none_or(|row| row.int(0).is_ok_and(|busy| busy == 0)))
}

/// The read positions `user` has, and the unread messages after each.
pub fn unread(db: &impl Database, user: &Sender) -> Result<Unread, StoreError> {
    let rooms = read_positions(db, user, 0)?;
    Ok(Unread {
        username: user.as_str().to_owned(),
        total: rooms.iter().map(|r| r.unread).sum(),
        rooms,
    })
}

fn read_positions(
    db: &impl Database,
    user: &Sender,
    room_id: i64,
) -> Result<Vec<ReadPosition>, StoreError> {
    db.query(READ_POSITIONS, &[user.as_str().into(), room_id.into()])?
        .iter()
        .map(|row| {
            Ok(ReadPosition {
                room_id: row.int(0)?,
                username: row.text(1)?,
                last_read_id: row.int(2)?,
                unread: row.int(3)?,
            })
        })
        .collect()
}

/// `(sender, deleted)` of a message in a room.
fn message_state(
    db: &impl Database,
    room_id: i64,
    message_id: i64,
) -> Result<Option<(String, bool)>, StoreError> {
    db.query(MESSAGE_STATE, &[room_id.into(), message_id.into()])?
        .first()
        .map(|row| Ok((row.text(0)?, row.int(1)? != 0)))
        .transpose()
}

enum Ownership {
    Live,
    Deleted,
}

/// The message is `user`'s: whether it is deleted. Otherwise the error.
fn own_message(
    db: &impl Database,
    room_id: i64,
    message_id: i64,
    user: &Sender,
) -> Result<Ownership, ApiError> {
    match message_state(db, room_id, message_id)? {
        None => Err(missing(db, room_id)?),
        Some((sender, _)) if sender != user.as_str() => Err(ApiError::NotSender),
        Some((_, true)) => Ok(Ownership::Deleted),
        Some((_, false)) => Ok(Ownership::Live),
    }
}

#[cfg(all(test, feature = "rusqlite"))]
pub(crate) mod tests {
    use super::*;
    use crate::rooms::create_room;
    use crate::store::{HistoryPages, MessagePage, insert_message};
    use crate::validate::RoomName;
    use crate::wire::ChangeEvent;

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate(&conn).unwrap();
        for name in ["a", "b"] {
            create_room(&conn, &RoomName::parse(name).unwrap()).unwrap();
        }
        conn
    }

    fn post(db: &rusqlite::Connection, room: i64, sender: &str, text: &str) -> i64 {
        let d = MessageDraft::from_fields(Some(sender), Some(text)).unwrap();
        insert_message(db, room, &d).unwrap().id
    }

    /// Applies the action `kind` with payload `v`, as a socket would ask.
    pub(crate) fn act(
        db: &rusqlite::Connection,
        kind: ActionKind,
        v: Value,
    ) -> Result<Applied, ApiError> {
        let action = Action::from_object(kind, v.as_object().unwrap(), Actor::default())?;
        apply(db, &action)
    }

    fn history(db: &rusqlite::Connection, room: i64) -> Vec<Message> {
        let mut pages = HistoryPages::new(room, MessagePage::since(0));
        let mut out = vec![];
        while let Some(page) = pages.next_page(db).unwrap() {
            out.extend(page);
        }
        out
    }

    fn events(db: &rusqlite::Connection, after: i64) -> Vec<(i64, ChangeEvent)> {
        crate::changes_after(db, after, 100)
            .unwrap()
            .iter()
            .map(|c| (c.seq, c.event))
            .collect()
    }

    #[test]
    fn only_the_sender_edits_and_each_edit_counts() {
        let conn = db();
        let id = post(&conn, 1, "alice", "helo");
        let edit = |who: &str, text: &str| {
            act(
                &conn,
                ActionKind::EditMessage,
                json!({"room_id": 1, "message_id": id, "sender": who, "message": text}),
            )
        };
        assert_eq!(edit("bob", "hijack"), Err(ApiError::NotSender));
        let Applied::Message(m) = edit("alice", "hello").unwrap() else {
            panic!("an edit answers with the message")
        };
        assert_eq!((m.content.as_str(), m.version), ("hello", Some(2)));
        assert!(m.edited_at.is_some());
        let Applied::Message(m) = edit("alice", "hello!").unwrap() else {
            panic!()
        };
        assert_eq!(m.version, Some(3));
        assert_eq!(history(&conn, 1), [m]);
        assert_eq!(
            act(
                &conn,
                ActionKind::EditMessage,
                json!({"room_id": 2, "message_id": id, "sender": "alice", "message": "x"})
            ),
            Err(ApiError::MessageNotFound),
            "a message is found in its own room only"
        );
        assert_eq!(
            act(
                &conn,
                ActionKind::EditMessage,
                json!({"room_id": 9, "message_id": id, "sender": "alice", "message": "x"})
            ),
            Err(ApiError::RoomNotFound)
        );
    }

    #[test]
    fn a_delete_leaves_a_tombstone_in_place() {
        let conn = db();
        let first = post(&conn, 1, "alice", "secret");
        let second = post(&conn, 1, "bob", "after");
        let delete = |who: &str| {
            act(
                &conn,
                ActionKind::DeleteMessage,
                json!({"room_id": 1, "message_id": first, "username": who}),
            )
        };
        act(
            &conn,
            ActionKind::AddReaction,
            json!({"room_id": 1, "message_id": first, "username": "bob", "emoji": "👍"}),
        )
        .unwrap();
        assert_eq!(delete("bob"), Err(ApiError::NotSender));
        let gone = Applied::Deleted {
            room_id: 1,
            message_id: first,
        };
        assert_eq!(delete("alice"), Ok(gone.clone()));
        assert_eq!(delete("alice"), Ok(gone), "a repeat changes nothing");
        let h = history(&conn, 1);
        assert_eq!(h.iter().map(|m| m.id).collect::<Vec<_>>(), [first, second]);
        assert!(h[0].deleted && h[0].deleted_at.is_some());
        assert_eq!(h[0].content, "", "the content is gone");
        assert!(h[0].reactions.is_empty(), "and its reactions");
        let stored: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages WHERE content LIKE '%secret%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0, "nothing of it is left in storage");
        assert_eq!(
            act(
                &conn,
                ActionKind::EditMessage,
                json!({"room_id": 1, "message_id": first, "sender": "alice", "message": "back"})
            ),
            Err(ApiError::MessageDeleted)
        );
        assert_eq!(
            act(
                &conn,
                ActionKind::AddReaction,
                json!({"room_id": 1, "message_id": first, "username": "bob", "emoji": "👍"})
            ),
            Err(ApiError::MessageDeleted)
        );
        // Created, reaction, deleted (the reaction went with it, unlogged),
        // and the second message's creation in between.
        assert_eq!(
            events(&conn, 0),
            [
                (1, ChangeEvent::NewMessage),
                (2, ChangeEvent::NewMessage),
                (3, ChangeEvent::ReactionAdded),
                (4, ChangeEvent::MessageDeleted),
            ]
        );
        assert_eq!(post(&conn, 1, "a", "next"), 5, "ids go on from the log");
    }

    #[test]
    fn reactions_count_once_per_user_and_emoji_and_are_bounded() {
        let conn = db();
        let id = post(&conn, 1, "alice", "party?");
        let react = |who: &str, emoji: &str, add: bool| {
            let kind = if add {
                ActionKind::AddReaction
            } else {
                ActionKind::RemoveReaction
            };
            act(
                &conn,
                kind,
                json!({"room_id": 1, "message_id": id, "username": who, "emoji": emoji}),
            )
        };
        react("bob", "🎉", true).unwrap();
        react("bob", "🎉", true).unwrap();
        react("carol", "🎉", true).unwrap();
        let Applied::Message(m) = react("carol", ":tada:", true).unwrap() else {
            panic!()
        };
        let counts: Vec<_> = m
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count, r.users.clone()))
            .collect();
        assert_eq!(
            counts,
            [
                ("🎉", 2, vec!["bob".to_owned(), "carol".to_owned()]),
                (":tada:", 1, vec!["carol".to_owned()]),
            ]
        );
        let Applied::Message(m) = react("bob", "🎉", false).unwrap() else {
            panic!()
        };
        assert_eq!(m.reactions[0].count, 1);
        react("bob", "🎉", false).expect("removing what is not there is no error");
        for i in 0..(REACTION_KINDS_MAX - 2) {
            react("dave", &format!(":e{i}:"), true).unwrap();
        }
        assert_eq!(
            react("dave", ":one_more:", true),
            Err(ApiError::TooManyReactions)
        );
        react("erin", ":tada:", true).expect("an emoji already there is always fine");
        for bad in ["a", "", "👍👍", " 👍", ":Caps:", "::", ":a b:", "\u{7}"] {
            assert_eq!(
                react("bob", bad, true).unwrap_err().code(),
                "invalid_emoji",
                "{bad:?}"
            );
        }
        for good in ["👍🏽", "👨‍👩‍👧", "#️⃣", "🇫🇷", ":+1:"] {
            react("bob", good, true).ok();
            assert!(Emoji::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn history_and_the_log_write_what_serde_writes() {
        let conn = db();
        let id = post(&conn, 1, "alice", "one");
        post(&conn, 1, "bob", "two");
        act(
            &conn,
            ActionKind::EditMessage,
            json!({"room_id": 1, "message_id": id, "sender": "alice", "message": "uno \"quoted\""}),
        )
        .unwrap();
        act(
            &conn,
            ActionKind::AddReaction,
            json!({"room_id": 1, "message_id": id, "username": "b\"ob", "emoji": "👍"}),
        )
        .unwrap();
        let h = history(&conn, 1);
        let json = HistoryPages::new(1, MessagePage::since(0))
            .next_json_page(&conn)
            .unwrap()
            .unwrap();
        assert_eq!(json, serde_json::to_string(&h).unwrap());
        assert!(json.starts_with(
            r#"[{"id":1,"room_id":1,"sender":"alice","content":"uno \"quoted\"","timestamp":"#
        ));
        assert!(!json.contains("deleted"));
        let log = crate::changes_after(&conn, 0, 100).unwrap();
        let feed: Vec<crate::Change> =
            serde_json::from_str(&crate::changes_after_json(&conn, 0, 100).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_string(&log).unwrap(),
            serde_json::to_string(&feed).unwrap()
        );
        let edited: Value = serde_json::from_str(log[2].data.get()).unwrap();
        assert_eq!(edited["message"], serde_json::to_value(&h[0]).unwrap());
        assert_eq!(
            (edited["seq"].as_i64(), edited["message_id"].as_i64()),
            (Some(3), Some(1))
        );
        let reacted: Value = serde_json::from_str(log[3].data.get()).unwrap();
        assert_eq!(
            (reacted["emoji"].as_str(), reacted["username"].as_str()),
            (Some("👍"), Some("b\"ob"))
        );
        let created: Message = serde_json::from_str(log[1].data.get()).unwrap();
        assert_eq!(created, h[1]);
        let room = crate::room_changes(&conn, 1, 1, 3, 100).unwrap();
        assert_eq!(room.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 3]);
        let room_json = crate::room_changes_json(&conn, 1, Some(1), 3, 100).unwrap();
        assert_eq!(room_json, serde_json::to_string(&room).unwrap());
        assert_eq!(crate::latest_seq(&conn).unwrap(), 4);
    }

    #[test]
    fn read_positions_move_forward_and_count_what_others_wrote() {
        let conn = db();
        let first = post(&conn, 1, "alice", "1");
        post(&conn, 1, "bob", "2");
        let third = post(&conn, 1, "bob", "3");
        post(&conn, 1, "alice", "mine");
        post(&conn, 2, "bob", "elsewhere");
        let mark = |room: i64, id: i64| {
            act(
                &conn,
                ActionKind::MarkRead,
                json!({"room_id": room, "message_id": id, "username": "alice"}),
            )
        };
        let Applied::Read(r) = mark(1, first).unwrap() else {
            panic!()
        };
        assert_eq!((r.last_read_id, r.unread), (first, 2));
        act(
            &conn,
            ActionKind::DeleteMessage,
            json!({"room_id": 1, "message_id": third, "username": "bob"}),
        )
        .unwrap();
        let Applied::Read(r) = mark(1, first).unwrap() else {
            panic!()
        };
        assert_eq!(r.unread, 1, "deleted messages are not unread");
        let Applied::Read(r) = mark(1, third).unwrap() else {
            panic!()
        };
        assert_eq!((r.last_read_id, r.unread), (third, 0));
        let Applied::Read(r) = mark(1, first).unwrap() else {
            panic!()
        };
        assert_eq!(r.last_read_id, third, "a read position never moves back");
        assert_eq!(mark(1, 999), Err(ApiError::MessageNotFound));
        assert_eq!(mark(9, first), Err(ApiError::RoomNotFound));
        let alice = Sender::parse("alice").unwrap();
        assert_eq!(unread(&conn, &alice).unwrap().rooms.len(), 1);
        mark(2, 5).unwrap();
        let all = unread(&conn, &alice).unwrap();
        assert_eq!((all.total, all.rooms.len()), (0, 2));
        post(&conn, 2, "bob", "new");
        assert_eq!(unread(&conn, &alice).unwrap().total, 1);
    }

    #[test]
    fn a_batch_of_writes_is_one_transaction_in_order() {
        let conn = db();
        let id = post(&conn, 1, "alice", "one");
        let draft = |t: &str| MessageDraft::from_fields(Some("alice"), Some(t)).unwrap();
        let action = |kind, v: Value| {
            Write::Action(
                Action::from_object(kind, v.as_object().unwrap(), Actor::default()).unwrap(),
            )
        };
        let writes = [
            Write::Message(1, draft("two")),
            action(
                ActionKind::EditMessage,
                json!({"room_id": 1, "message_id": id, "sender": "alice", "message": "uno"}),
            ),
            action(
                ActionKind::EditMessage,
                json!({"room_id": 1, "message_id": id, "sender": "bob", "message": "no"}),
            ),
            Write::Message(9, draft("nowhere")),
            action(
                ActionKind::AddReaction,
                json!({"room_id": 1, "message_id": id, "username": "bob", "emoji": "👍"}),
            ),
        ];
        let results = write_batch(&conn, &writes, crate::limits::CLIENT_ID_WINDOW_MS).unwrap();
        assert!(matches!(&results[0], Ok(Written::Message(m)) if m.content == "two"));
        assert!(
            matches!(&results[1], Ok(Written::Applied(Applied::Message(m))) if m.version == Some(2))
        );
        assert_eq!(results[2], Err(ApiError::NotSender));
        assert_eq!(results[3], Err(ApiError::RoomNotFound));
        assert!(
            matches!(&results[4], Ok(Written::Applied(Applied::Message(m))) if m.reactions.len() == 1)
        );
        assert!(conn.is_autocommit(), "the transaction is closed");
        assert_eq!(
            events(&conn, id),
            [
                (2, ChangeEvent::NewMessage),
                (3, ChangeEvent::MessageEdited),
                (4, ChangeEvent::ReactionAdded),
            ]
        );
    }

    #[test]
    fn actors_follow_the_token_then_the_payload_then_the_room() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let edit = |v: Value, actor: Actor| {
            Action::from_object(ActionKind::DeleteMessage, &obj(v), actor).map(|a| match a {
                Action::Delete { user, .. } => user.as_str().to_owned(),
                _ => unreachable!(),
            })
        };
        let base = json!({"room_id": 1, "message_id": 2});
        assert_eq!(
            edit(base.clone(), Actor::default()).unwrap_err().code(),
            "invalid_username"
        );
        let joined = Actor {
            token_user: None,
            fallback: Some("room-name"),
        };
        assert_eq!(edit(base.clone(), joined).unwrap(), "room-name");
        let token = Actor {
            token_user: Some("tok"),
            fallback: Some("room-name"),
        };
        assert_eq!(edit(base.clone(), token).unwrap(), "tok");
        assert_eq!(
            edit(
                json!({"room_id": 1, "message_id": 2, "sender": "other"}),
                token
            ),
            Err(ApiError::SenderMismatch("tok".into()))
        );
        assert_eq!(
            edit(
                json!({"room_id": 1, "message_id": "x", "sender": "a"}),
                joined
            )
            .unwrap_err()
            .code(),
            "invalid_message_id"
        );
        let action = Action::from_object(
            ActionKind::EditMessage,
            &obj(json!({"room_id": "3", "message_id": "4", "username": "u", "content": "t"})),
            Actor::default(),
        )
        .unwrap();
        let wire = action.to_object();
        assert_eq!(wire["action"], "edit_message");
        let again = Action::from_object(
            ActionKind::EditMessage,
            wire.as_object().unwrap(),
            Actor::default(),
        )
        .unwrap();
        assert_eq!(again, action);
    }
}
