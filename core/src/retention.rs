//! Retention (docs/protocol.md §4.6): an operator's policy, a maximum age
//! and/or a number of messages kept per room (off unless set), applied by
//! pruning each room's oldest messages, their reactions and their
//! change-log rows in bounded batches.
//!
//! Each room records how far it was pruned (`chatrooms.pruned_through`, a
//! `seq`): every change after it is kept. A `since` replay or a
//! `GET .../changes?after=` from before it is answered with
//! `resync_required` naming it, never with a silent gap
//! ([`check_kept`]). Pruning erases: `secure_delete` zeroes the freed
//! bytes, and the sidecar's eraser truncates the write-ahead log after.
//!
//! A batch never orphans a change: the later edits and reactions of a
//! pruned message go with it. Nothing younger than
//! [`RETENTION_FLOOR_MS`] goes, and the newest change of the database
//! stays, so the next `seq` never goes back.

use serde::{Deserialize, Serialize};

use crate::db::{Database, StoreError, Value};
use crate::error::ApiError;
use crate::limits::{PRUNE_BATCH_ROWS, PRUNE_ROOMS_PER_STEP, RETENTION_FLOOR_MS};
use crate::transaction::{SECURE_DELETE, transaction};
use crate::wire::Retention;

/// What one [`prune_step`] did, and where the next one starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneStep {
    /// Change-log rows removed.
    pub pruned: i64,
    /// The room the next step starts at; `None` once every room was seen.
    pub next_room: Option<i64>,
}

const ROOMS_FROM: &str =
    "SELECT id, pruned_through FROM chatrooms WHERE id >= ?1 ORDER BY id LIMIT ?2 + 0";
/// The newest message beyond the `?2` a room keeps, if it has more.
const BEYOND_COUNT: &str =
    "SELECT id FROM messages WHERE room_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2 + 0";
/// The room's next changes after its horizon `?2` (never the newest of
/// the database): whether each is past the floor (`?3` ms old) and past
/// the maximum age (`?4` ms, or `NULL`).
const NEXT_CHANGES: &str = concat!(
    "SELECT seq, at < strftime('%Y-%m-%dT%H:%M:%fZ', julianday('now') - ?3 / 86400000.0), ",
    "?4 IS NOT NULL AND at < strftime('%Y-%m-%dT%H:%M:%fZ', julianday('now') - ?4 / 86400000.0) ",
    "FROM changes WHERE room_id = ?1 AND seq > ?2 AND seq < (SELECT MAX(seq) FROM changes) ",
    "ORDER BY seq LIMIT ?5 + 0"
);
/// The later edits, deletes and reactions of the messages in `(?2, ?3]`
/// of room `?1` (by the schema's `changes_by_message` index).
const PRUNE_LATER_CHANGES: &str = "DELETE FROM changes WHERE event IN \
     ('message_edited', 'message_deleted', 'reaction_added', 'reaction_removed') \
     AND message_id IN (SELECT id FROM messages WHERE room_id = ?1 AND id > ?2 AND id <= ?3)";
const PRUNE_CHANGES: &str =
    "DELETE FROM changes WHERE room_id = ?1 AND seq > ?2 AND seq <= ?3 RETURNING 1";
const PRUNE_MESSAGES: &str = "DELETE FROM messages WHERE room_id = ?1 AND id > ?2 AND id <= ?3";
/// Reactions whose message just went (the `reaction_removed` trigger logs
/// nothing for a message that is not there).
const PRUNE_REACTIONS: &str = "DELETE FROM reactions WHERE message_id > ?1 AND message_id <= ?2 \
     AND NOT EXISTS (SELECT 1 FROM messages WHERE id = reactions.message_id)";
const SET_HORIZON: &str =
    "UPDATE chatrooms SET pruned_through = max(pruned_through, ?2) WHERE id = ?1";
const HORIZON: &str = "SELECT pruned_through FROM chatrooms WHERE id = ?1";

/// A room's next batch to prune: changes in `(after, through]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneRange {
    pub room: i64,
    pub after: i64,
    pub through: i64,
}

/// What [`find_prunable`] found: the next batch, if any room has one, and
/// where the search goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSearch {
    pub range: Option<PruneRange>,
    /// The room the search after this one starts at, had nothing been
    /// found; `None` once every room was seen.
    next_room: Option<i64>,
}

impl PruneSearch {
    /// The step, once `pruned` rows of [`PruneSearch::range`] went: a full
    /// batch may have left more in its room, so the next step starts there.
    pub fn step(&self, pruned: i64) -> PruneStep {
        let next_room = match self.range {
            Some(range) if pruned >= PRUNE_BATCH_ROWS => Some(range.room),
            Some(range) => Some(range.room + 1),
            None => self.next_room,
        };
        PruneStep { pruned, next_room }
    }
}

/// Finds the first room from `from_room` on with anything to prune under
/// `policy`, looking at [`PRUNE_ROOMS_PER_STEP`] rooms at most, and the
/// batch it would prune. Reads only: the search holds no write lock (a
/// file-mode sidecar runs it beside its writers), and what it finds stays
/// prunable, since rows only get older and rooms only fuller.
pub fn find_prunable(
    db: &impl Database,
    policy: &Retention,
    from_room: i64,
) -> Result<PruneSearch, StoreError> {
    if !policy.is_on() {
        return Ok(PruneSearch {
            range: None,
            next_room: None,
        });
    }
    let rooms = db.query(ROOMS_FROM, &[from_room.into(), PRUNE_ROOMS_PER_STEP.into()])?;
    for row in &rooms {
        let (room, after) = (row.int(0)?, row.int(1)?);
        if let Some(through) = prune_through(db, policy, room, after)? {
            return Ok(PruneSearch {
                range: Some(PruneRange {
                    room,
                    after,
                    through,
                }),
                next_room: None,
            });
        }
    }
    let next_room = match rooms.last() {
        Some(last) if (rooms.len() as i64) >= PRUNE_ROOMS_PER_STEP => Some(last.int(0)? + 1),
        _ => None,
    };
    Ok(PruneSearch {
        range: None,
        next_room,
    })
}

/// Prunes `range` in one short write transaction: its changes, the later
/// edits, deletes and reactions of its messages, the messages and their
/// reactions, and moves the room's horizon. Another pruner that got there
/// first leaves less (or nothing) to do. How many change-log rows went.
pub fn prune_range(db: &impl Database, range: &PruneRange) -> Result<i64, ApiError> {
    transaction(db, |db| {
        let after = db
            .query(HORIZON, &[range.room.into()])?
            .first()
            .map(|row| row.int(0))
            .transpose()?
            .unwrap_or(0)
            .max(range.after);
        if range.through <= after {
            return Ok(0);
        }
        // A remote libSQL store may refuse pragmas: that stops nothing.
        let _ = db.query(SECURE_DELETE, &[]);
        let rows: [Value; 3] = [range.room.into(), after.into(), range.through.into()];
        db.query(PRUNE_LATER_CHANGES, &rows)?;
        let pruned = db.query(PRUNE_CHANGES, &rows)?.len() as i64;
        db.query(PRUNE_MESSAGES, &rows)?;
        db.query(PRUNE_REACTIONS, &rows[1..])?;
        db.query(SET_HORIZON, &[range.room.into(), range.through.into()])?;
        Ok(pruned)
    })
}

/// One step: [`find_prunable`], then [`prune_range`] on what it found. A
/// caller steps until `next_room` is `None`, giving writers their turn in
/// between.
pub fn prune_step(
    db: &impl Database,
    policy: &Retention,
    from_room: i64,
) -> Result<PruneStep, ApiError> {
    let search = find_prunable(db, policy, from_room)?;
    let pruned = match &search.range {
        Some(range) => prune_range(db, range)?,
        None => 0,
    };
    Ok(search.step(pruned))
}

/// How far room `room` (pruned through `horizon`) is pruned next: the
/// last of its next changes that the policy lets go, if any.
fn prune_through(
    db: &impl Database,
    policy: &Retention,
    room: i64,
    horizon: i64,
) -> Result<Option<i64>, StoreError> {
    let beyond_count = match policy.max_messages {
        Some(kept) => db
            .query(BEYOND_COUNT, &[room.into(), kept.max(0).into()])?
            .first()
            .map(|row| row.int(0))
            .transpose()?,
        None => None,
    };
    let age = policy.max_age_ms.map_or(Value::Null, Value::from);
    let next = db.query(
        NEXT_CHANGES,
        &[
            room.into(),
            horizon.into(),
            RETENTION_FLOOR_MS.into(),
            age,
            PRUNE_BATCH_ROWS.into(),
        ],
    )?;
    let mut through = None;
    for row in &next {
        let (seq, past_floor, past_age) = (row.int(0)?, row.int(1)? != 0, row.int(2)? != 0);
        let by_count = beyond_count.is_some_and(|last| seq <= last);
        if !(past_floor && (past_age || by_count)) {
            break;
        }
        through = Some(seq);
    }
    Ok(through)
}

/// `Ok` when every change of room `room` after `after` is still kept;
/// otherwise `resync_required`, naming the room's horizon. Called after
/// a page of changes is read: the horizon only grows, so if it is not
/// past `after` now, it was not when the page was read.
pub fn check_kept(db: &impl Database, room: i64, after: i64) -> Result<(), ApiError> {
    let horizon = db
        .query(HORIZON, &[room.into()])?
        .first()
        .map(|row| row.int(0))
        .transpose()?
        .unwrap_or(0);
    if after < horizon {
        return Err(ApiError::ResyncRequired {
            kept_after: horizon,
        });
    }
    Ok(())
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::*;
    use crate::ActionKind;
    use crate::input::MessageDraft;
    use crate::rooms::create_room;
    use crate::store::insert_message;
    use crate::validate::RoomName;
    use serde_json::json;

    fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
        db.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Prunes until a pass is done: what went.
    fn prune_all(db: &rusqlite::Connection, policy: &Retention) -> i64 {
        let (mut total, mut from) = (0, 0);
        loop {
            let step = prune_step(db, policy, from).unwrap();
            total += step.pruned;
            match step.next_room {
                Some(next) => from = next,
                None => return total,
            }
        }
    }

    #[test]
    fn pruning_keeps_the_newest_and_takes_old_messages_with_their_later_changes() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate(&db).unwrap();
        let room = create_room(&db, &RoomName::parse("a").unwrap()).unwrap().id;
        let other = create_room(&db, &RoomName::parse("b").unwrap()).unwrap().id;
        let post = |room: i64, text: &str| {
            let draft = MessageDraft::from_fields(Some("alice"), Some(text)).unwrap();
            insert_message(&db, room, &draft).unwrap().id
        };
        let ids: Vec<i64> = (0..10).map(|i| post(room, &format!("old {i}"))).collect();
        let kept_elsewhere = post(other, "elsewhere");
        // All of it an hour old.
        db.execute_batch(
            "UPDATE changes SET at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour');",
        )
        .unwrap();
        // Later (now): a reaction to and an edit of the oldest message.
        let act = |kind, v| {
            crate::conversation::tests::act(&db, kind, v).unwrap();
        };
        act(
            ActionKind::AddReaction,
            json!({"room_id": room, "message_id": ids[0], "emoji": "👍", "username": "bob"}),
        );
        act(
            ActionKind::EditMessage,
            json!({"room_id": room, "message_id": ids[0], "message": "edited", "sender": "alice"}),
        );
        let newest = post(room, "fresh");

        // Off: nothing goes.
        assert_eq!(prune_all(&db, &Retention::default()), 0);
        // Keep 3 per room: the 8 oldest of `room` go (the fresh one and
        // the two newest old ones stay), and the later reaction and edit
        // of the first go with it; the other room keeps its one.
        let policy = Retention {
            max_age_ms: None,
            max_messages: Some(3),
        };
        assert_eq!(prune_all(&db, &policy), 8);
        let left: Vec<i64> = db
            .prepare("SELECT id FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, [ids[8], ids[9], kept_elsewhere, newest]);
        assert_eq!(count(&db, "SELECT count(*) FROM reactions"), 0);
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM changes WHERE message_id = {}", ids[0])
            ),
            0
        );
        let horizon = ids[7];
        assert_eq!(
            count(
                &db,
                &format!("SELECT pruned_through FROM chatrooms WHERE id = {room}")
            ),
            horizon
        );
        // A replay from before the horizon is refused, naming it; from
        // it, everything after comes.
        assert_eq!(
            crate::room_changes(&db, room, horizon - 1, i64::MAX, 100).unwrap_err(),
            ApiError::ResyncRequired {
                kept_after: horizon
            }
        );
        let after: Vec<i64> = crate::room_changes(&db, room, horizon, i64::MAX, 100)
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(after, [ids[8], ids[9], newest]);
        // Pruning again finds nothing more.
        assert_eq!(prune_all(&db, &policy), 0);

        // By age: everything an hour old goes, the fresh one stays.
        let by_age = Retention {
            max_age_ms: Some(60_000),
            max_messages: None,
        };
        prune_all(&db, &by_age);
        assert_eq!(count(&db, "SELECT count(*) FROM messages"), 1);
        // Once it is old too, the newest change of the database still
        // stays, so the next seq never goes back.
        db.execute_batch(
            "UPDATE changes SET at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour');",
        )
        .unwrap();
        prune_all(&db, &by_age);
        assert_eq!(count(&db, "SELECT count(*) FROM messages"), 1);
        let next = post(room, "next");
        assert!(next > newest);
    }

    #[test]
    fn nothing_younger_than_the_floor_is_pruned() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate(&db).unwrap();
        let room = create_room(&db, &RoomName::parse("a").unwrap()).unwrap().id;
        for i in 0..5 {
            let draft = MessageDraft::from_fields(Some("a"), Some(&format!("m{i}"))).unwrap();
            insert_message(&db, room, &draft).unwrap();
        }
        let keep_one = Retention {
            max_age_ms: Some(0),
            max_messages: Some(1),
        };
        assert_eq!(prune_all(&db, &keep_one), 0);
        assert_eq!(count(&db, "SELECT count(*) FROM messages"), 5);
        assert!(
            Retention {
                max_age_ms: Some(-1),
                max_messages: None
            }
            .check()
            .is_err()
        );
    }
}
