//! Erasing a user (docs/protocol.md §2.6): every message they sent becomes
//! a tombstone with its text erased, and their reactions and read
//! positions go. Each change is a row of the change log (the schema's
//! triggers write them), so the rooms' members see it live and on
//! catch-up, as they see one delete. The work is done in bounded batches,
//! each its own transaction, so a prolific user's erasure never holds the
//! write lock for long: writers and delivery go on between batches.

use serde::{Deserialize, Serialize};

use crate::db::Database;
use crate::error::ApiError;
use crate::transaction::{SECURE_DELETE, transaction};
use crate::validate::Sender;

/// Rows changed per transaction.
const BATCH: i64 = 500;

/// Tombstones the next batch of the user's live messages (the
/// `message_changed` trigger logs each `message_deleted` and takes its
/// reactions with it).
const TOMBSTONE_BATCH: &str = concat!(
    "UPDATE messages SET content = '', deleted_at = ",
    now_utc_millis!(),
    " WHERE id IN (SELECT id FROM messages WHERE sender = ?1 AND deleted_at IS NULL ",
    "ORDER BY id LIMIT ?2 + 0) RETURNING id"
);
/// Removes the next batch of the user's reactions (each logged as
/// `reaction_removed` by the `reaction_removed` trigger).
const UNREACT_BATCH: &str = "DELETE FROM reactions WHERE rowid IN \
     (SELECT rowid FROM reactions WHERE username = ?1 LIMIT ?2 + 0) RETURNING 1";
const FORGET_READ_POSITIONS: &str = "DELETE FROM read_positions WHERE username = ?1 RETURNING 1";

/// What erasing a user did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    pub username: String,
    pub messages_erased: i64,
    pub reactions_removed: i64,
    pub read_positions_removed: i64,
}

/// Erases `user`'s messages, reactions and read positions. Who may ask is
/// the caller's check (the user's own token, or an operator's).
pub fn forget_user(db: &impl Database, user: &Sender) -> Result<Forgotten, ApiError> {
    let batches = |sql: &'static str| -> Result<i64, ApiError> {
        let mut total = 0;
        loop {
            let changed = transaction(db, |db| {
                // A remote libSQL store may refuse pragmas: that stops nothing.
                let _ = db.query(SECURE_DELETE, &[]);
                Ok(db.query(sql, &[user.as_str().into(), BATCH.into()])?.len())
            })?;
            total += changed as i64;
            if (changed as i64) < BATCH {
                return Ok(total);
            }
        }
    };
    let messages_erased = batches(TOMBSTONE_BATCH)?;
    let reactions_removed = batches(UNREACT_BATCH)?;
    let read_positions_removed = db
        .query(FORGET_READ_POSITIONS, &[user.as_str().into()])?
        .len() as i64;
    Ok(Forgotten {
        username: user.as_str().to_owned(),
        messages_erased,
        reactions_removed,
        read_positions_removed,
    })
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::*;
    use crate::input::MessageDraft;
    use crate::rooms::create_room;
    use crate::store::insert_message;
    use crate::validate::RoomName;
    use crate::{ActionKind, ChangeEvent};
    use serde_json::json;

    #[test]
    fn a_forgotten_user_leaves_tombstones_logged_as_deletes() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate(&db).unwrap();
        let room = create_room(&db, &RoomName::parse("a").unwrap()).unwrap().id;
        let post = |who: &str, text: &str| {
            let draft = MessageDraft::from_fields(Some(who), Some(text)).unwrap();
            insert_message(&db, room, &draft).unwrap().id
        };
        let mine: Vec<i64> = (0..3).map(|i| post("alice", &format!("a{i}"))).collect();
        let bobs = post("bob", "b");
        let act = |kind, v| {
            crate::conversation::tests::act(&db, kind, v).unwrap();
        };
        act(
            ActionKind::AddReaction,
            json!({"room_id": room, "message_id": bobs, "emoji": "👍", "username": "alice"}),
        );
        act(
            ActionKind::AddReaction,
            json!({"room_id": room, "message_id": bobs, "emoji": "👍", "username": "bob"}),
        );
        act(
            ActionKind::MarkRead,
            json!({"room_id": room, "message_id": bobs, "username": "alice"}),
        );
        let before = crate::latest_seq(&db).unwrap();
        let alice = Sender::parse("alice").unwrap();
        let done = forget_user(&db, &alice).unwrap();
        assert_eq!(
            (
                done.messages_erased,
                done.reactions_removed,
                done.read_positions_removed
            ),
            (3, 1, 1)
        );
        let logged: Vec<(ChangeEvent, i64)> = crate::changes_after(&db, before, 100)
            .unwrap()
            .iter()
            .map(|c| {
                let data: serde_json::Value = serde_json::from_str(c.data.get()).unwrap();
                (c.event, data["message_id"].as_i64().unwrap())
            })
            .collect();
        let mut expected: Vec<(ChangeEvent, i64)> = mine
            .iter()
            .map(|id| (ChangeEvent::MessageDeleted, *id))
            .collect();
        expected.push((ChangeEvent::ReactionRemoved, bobs));
        assert_eq!(logged, expected);
        let bob = crate::message(&db, room, bobs).unwrap();
        assert_eq!(bob.reactions[0].users, ["bob"]);
        assert!(crate::unread(&db, &alice).unwrap().rooms.is_empty());
        assert_eq!(
            forget_user(&db, &alice).unwrap().messages_erased,
            0,
            "a repeat changes nothing"
        );
    }
}
