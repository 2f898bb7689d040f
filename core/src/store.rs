//! Every SQL statement of chatroom, and the queries built on them. Timestamps
//! come from SQLite (`strftime` in UTC, millisecond precision), so both
//! processes stamp rows the same way.

use crate::db::{Database, Row, StoreError, Value};
use crate::error::ApiError;
use crate::input::MessageDraft;
use crate::limits::{CLIENT_ID_WINDOW_MS, HISTORY_PAGE_ROWS, PAGE_LIMIT_MAX};
use crate::rooms::{find_room, room_from};
use crate::transaction::in_one_transaction;
use crate::walls::{self, Need, Viewer};
use crate::wire::internal::LeaseState;
use crate::wire::{Message, Room, RoomUsers};

// Every `LIMIT` is a bound parameter plus 0: SQLite's planner reads a bare
// bound `LIMIT ?`, which makes every new binding re-prepare the statement
// (parse and plan again on each use); an expression it does not read.

/// The rooms after `?1` that the viewer sees (docs/protocol.md §10.5):
/// public ones, those naming user `?4` a member, or all when `?3` is 1
/// (an operator, or an edge sidecar's internal token).
macro_rules! rooms_after {
    ($columns:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM chatrooms c WHERE id > ?1 \
             AND (visibility = 'public' OR ?3 = 1 \
                  OR EXISTS (SELECT 1 FROM members WHERE room_id = c.id AND username = ?4)) \
             ORDER BY id LIMIT ?2 + 0"
        )
    };
}
const SELECT_ROOMS_AFTER: &str = rooms_after!("id, name, created_at, visibility");
/// Inserts only if the room exists and the sender may post there (a
/// member of a private room, neither banned nor muted), in one statement:
/// no row back means one of those is not so.
/// The id is the change log's next `seq` (the schema's `message_created`
/// trigger logs the creation under it).
const INSERT_MESSAGE: &str = concat!(
    "INSERT INTO messages (id, room_id, sender, content, timestamp, client_id) ",
    "SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM changes), ?1, ?2, ?3, ",
    now_utc_millis!(),
    ", ?4 WHERE ",
    may_act!("?1", "?2", "'ban', 'mute'"),
    " ON CONFLICT DO NOTHING RETURNING id, room_id, sender, content, timestamp"
);
/// The message a sender's `client_id` names in a room: its id, whether a
/// repeat of `?4` would be a different message (never edited nor deleted,
/// and other text), and whether the key is older than `?5` ms.
const KEYED_MESSAGE: &str = concat!(
    "SELECT id, version = 1 AND deleted_at IS NULL AND content <> ?4, ",
    now_unix_millis!(),
    " - CAST((julianday(timestamp) - 2440587.5) * 86400000 AS INTEGER) > ?5 ",
    "FROM messages WHERE room_id = ?1 AND sender = ?2 AND client_id = ?3"
);
/// Lets an expired key name a new message.
const FORGET_CLIENT_ID: &str = "UPDATE messages SET client_id = NULL WHERE id = ?1";
macro_rules! messages_in_range {
    ($order:literal) => {
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE room_id = ?1 AND id > ?2 AND id < ?3 ORDER BY id ",
            $order,
            " LIMIT ?4 + 0"
        )
    };
}

// Pages as one JSON array each, built by SQLite: the wire shapes of `Room`
// and `Message` (same keys, same order), with the row count and the last
// id for paging. The REST component answers with these as they are, so no
// row crosses into the component one value at a time; typed pages are
// these, parsed. A subquery's ORDER BY with LIMIT is kept by the aggregate
// over it (SQLite does not flatten such a subquery into an aggregate).
const MESSAGE: &str = concat!(
    "SELECT ",
    message_json!(),
    " FROM messages m WHERE m.id = ?2 AND m.room_id = ?1"
);
macro_rules! json_page {
    ($object:expr, $rows:expr) => {
        concat!(
            "SELECT json_group_array(",
            $object,
            "), count(*), max(m.id) FROM (",
            $rows,
            ") AS m"
        )
    };
}
/// Rooms join their stored wire objects (schema version 7), which is half
/// the cost of building each with `json_object` on every listing.
const SELECT_ROOMS_AFTER_JSON: &str = concat!(
    "SELECT '[' || coalesce(group_concat(m.wire, ','), '') || ']', count(*), max(m.id) FROM (",
    rooms_after!("id, wire"),
    ") AS m"
);
const SELECT_MESSAGES_FORWARD_JSON: &str = json_page!(message_json!(), messages_in_range!("ASC"));
const SELECT_MESSAGES_BACKWARD_JSON: &str = json_page!(
    message_json!(),
    concat!(
        "SELECT * FROM (",
        messages_in_range!("DESC"),
        ") ORDER BY id"
    )
);
const UPSERT_PRESENCE: &str = "INSERT INTO presence (node_id, sid, room_id, username) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (sid, room_id) DO UPDATE SET username = excluded.username, node_id = excluded.node_id";
const DELETE_PRESENCE: &str =
    "DELETE FROM presence WHERE sid = ?1 AND room_id = ?2 RETURNING username";
const DELETE_SOCKET_PRESENCE: &str = "DELETE FROM presence WHERE sid = ?1";
const DELETE_NODE_PRESENCE: &str = "DELETE FROM presence WHERE node_id = ?1";
const DELETE_NODE: &str = "DELETE FROM presence_nodes WHERE node_id = ?1";
/// Takes or renews a lease; the expiry it had before (none for a new node).
const SELECT_NODE_EXPIRY: &str = "SELECT expires_at FROM presence_nodes WHERE node_id = ?1";
const UPSERT_NODE: &str = concat!(
    "INSERT INTO presence_nodes (node_id, expires_at) VALUES (?1, ",
    now_unix_millis!(),
    " + ?2) ON CONFLICT (node_id) DO UPDATE SET expires_at = excluded.expires_at"
);
const DELETE_EXPIRED_PRESENCE: &str = concat!(
    "DELETE FROM presence WHERE node_id IN (SELECT node_id FROM presence_nodes WHERE expires_at <= ",
    now_unix_millis!(),
    ") OR node_id NOT IN (SELECT node_id FROM presence_nodes)"
);
const DELETE_EXPIRED_NODES: &str = concat!(
    "DELETE FROM presence_nodes WHERE expires_at <= ",
    now_unix_millis!()
);
const SELECT_NOW_MILLIS: &str = concat!("SELECT ", now_unix_millis!());
const SELECT_ROOM_USERS: &str = concat!(
    "SELECT p.username FROM presence p JOIN presence_nodes n ON n.node_id = p.node_id \
     WHERE p.room_id = ?1 AND n.expires_at > ",
    now_unix_millis!(),
    " GROUP BY p.username ORDER BY MIN(p.id)"
);

fn message_from(row: &Row) -> Result<Message, StoreError> {
    Ok(Message {
        id: row.int(0)?,
        room_id: row.int(1)?,
        sender: row.text(2)?,
        content: row.text(3)?,
        timestamp: row.text(4)?,
        ..Message::default()
    })
}

/// Stores a message; `RoomNotFound` if the room does not exist (or is
/// private and the sender no member), `Banned` or `Muted`. A repeat of a
/// `client_id` answers with the message it stored.
pub fn insert_message(
    db: &impl Database,
    room_id: i64,
    draft: &MessageDraft,
) -> Result<Message, ApiError> {
    store_message(db, room_id, draft, CLIENT_ID_WINDOW_MS).map(|s| s.message)
}

/// A message stored, or the one an earlier send with its `client_id`
/// stored (`replayed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub message: Message,
    pub replayed: bool,
}

/// Stores a message, unless its `client_id` already names one from this
/// sender in this room (within `window_ms`): then nothing is stored (no
/// change is logged, so nothing is delivered) and that message is the
/// answer, or `IdempotencyConflict` if this one says something else. The
/// unique index settles two repeats racing, whichever process sends them.
pub fn store_message(
    db: &impl Database,
    room_id: i64,
    draft: &MessageDraft,
    window_ms: i64,
) -> Result<Stored, ApiError> {
    let key = draft.client_id.as_ref().map(|k| k.as_str());
    let params = [
        room_id.into(),
        draft.sender.as_str().into(),
        draft.content.as_str().into(),
        key.map_or(Value::Null, Value::from),
    ];
    // At most twice: the second time after an expired key was let go.
    for _ in 0..2 {
        if let Some(row) = db.query(INSERT_MESSAGE, &params)?.first() {
            return Ok(Stored {
                message: message_from(row)?,
                replayed: false,
            });
        }
        let Some(key) = key else { break };
        let keyed = [
            room_id.into(),
            draft.sender.as_str().into(),
            key.into(),
            draft.content.as_str().into(),
            window_ms.into(),
        ];
        let rows = db.query(KEYED_MESSAGE, &keyed)?;
        let Some(row) = rows.first() else { break };
        let id = row.int(0)?;
        if row.int(2)? != 0 {
            db.query(FORGET_CLIENT_ID, &[id.into()])?;
            continue;
        }
        if row.int(1)? != 0 {
            return Err(ApiError::IdempotencyConflict);
        }
        return Ok(Stored {
            message: message(db, room_id, id)?,
            replayed: true,
        });
    }
    Err(walls::refusal(db, room_id, &draft.sender, Need::Speak)?)
}

/// Stores several messages in one transaction (one commit, one sync), in
/// order; each gets its own answer (a missing room fails only its message).
/// `Err` if the transaction itself failed: then none was stored. A
/// `client_id` is remembered for `window_ms`.
pub fn insert_messages(
    db: &impl Database,
    drafts: &[(i64, MessageDraft)],
    window_ms: i64,
) -> Result<Vec<Result<Message, ApiError>>, StoreError> {
    in_one_transaction(db, drafts, |db, (room_id, draft)| {
        store_message(db, *room_id, draft, window_ms).map(|stored| stored.message)
    })
}

/// Distinct usernames present in a room, in order of joining.
/// Who may see them is the caller's check (`walls::visible_room`).
pub fn room_users(db: &impl Database, room_id: i64) -> Result<RoomUsers, ApiError> {
    let users = db
        .query(SELECT_ROOM_USERS, &[room_id.into()])?
        .iter()
        .map(|row| row.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RoomUsers {
        room_id,
        user_count: users.len(),
        users,
    })
}

/// Presence: who is connected to which room, as the sidecars record it and
/// `GET /chatrooms/{id}/users` reads it. One row per (connection, room),
/// each carrying the node (sidecar) holding the connection. A node's rows
/// count only while its lease in `presence_nodes` lasts, so the users of a
/// sidecar that died vanish when its lease runs out, and a sidecar never
/// touches another's rows.
pub mod presence {
    use super::*;

    /// Records that connection `sid`, held by `node`, joined `room_id` as
    /// `username` (a rejoin keeps its place in the join order and takes the
    /// new name).
    pub fn join(
        db: &impl Database,
        node: &str,
        sid: &str,
        room_id: i64,
        username: &str,
    ) -> Result<(), StoreError> {
        db.query(
            UPSERT_PRESENCE,
            &[node.into(), sid.into(), room_id.into(), username.into()],
        )
        .map(drop)
    }

    /// Forgets `sid` in `room_id`; the username it had there, if any.
    pub fn leave(
        db: &impl Database,
        sid: &str,
        room_id: i64,
    ) -> Result<Option<String>, StoreError> {
        db.query(DELETE_PRESENCE, &[sid.into(), room_id.into()])?
            .first()
            .map(|row| row.text(0))
            .transpose()
    }

    /// Forgets each of `sids` everywhere, in one transaction: a sidecar's
    /// departures, which come in bursts when many connections close at
    /// once.
    pub fn disconnect_all(db: &impl Database, sids: &[String]) -> Result<(), StoreError> {
        in_one_transaction(db, sids, |db, sid| {
            Ok(db.query(DELETE_SOCKET_PRESENCE, &[sid.as_str().into()])?)
        })
        .map(drop)
    }

    /// Takes or renews `node`'s lease for `lease_ms` from now, and sweeps
    /// the rows of nodes whose lease ran out.
    pub fn renew(db: &impl Database, node: &str, lease_ms: i64) -> Result<LeaseState, StoreError> {
        let now = db
            .query(SELECT_NOW_MILLIS, &[])?
            .first()
            .ok_or(StoreError::Shape("the clock query returned no row"))?
            .int(0)?;
        let before = db
            .query(SELECT_NODE_EXPIRY, &[node.into()])?
            .first()
            .map(|row| row.int(0))
            .transpose()?;
        db.query(UPSERT_NODE, &[node.into(), lease_ms.into()])?;
        db.query(DELETE_EXPIRED_PRESENCE, &[])?;
        db.query(DELETE_EXPIRED_NODES, &[])?;
        Ok(match before {
            Some(expiry) if expiry > now => LeaseState::Renewed,
            _ => LeaseState::Taken,
        })
    }

    /// Forgets `node` and every connection it held: a sidecar going away,
    /// or one (re)starting under a node id it had before.
    pub fn drop_node(db: &impl Database, node: &str) -> Result<(), StoreError> {
        db.query(DELETE_NODE_PRESENCE, &[node.into()])?;
        db.query(DELETE_NODE, &[node.into()]).map(drop)
    }
}

/// The rooms a viewer sees, by id, read a page at a time.
#[derive(Debug, Clone, Default)]
pub struct RoomPages {
    after: i64,
    done: bool,
    /// The viewer's name (members see their private rooms and DMs).
    user: Option<String>,
    /// Sees every room.
    sees_all: bool,
}

impl RoomPages {
    /// The rooms `viewer` sees: public ones, and the private ones and DMs
    /// it is a member of (every room for an operator or the internal
    /// token).
    pub fn for_viewer(viewer: &Viewer) -> Self {
        RoomPages {
            user: viewer.user.as_ref().map(|u| u.as_str().to_owned()),
            sees_all: viewer.sees_all,
            ..RoomPages::default()
        }
    }

    fn params(&self) -> [Value; 4] {
        [
            self.after.into(),
            HISTORY_PAGE_ROWS.into(),
            i64::from(self.sees_all).into(),
            self.user.as_deref().map_or(Value::Null, Value::from),
        ]
    }

    /// The next page of rooms, or `None` once all were returned.
    pub fn next_page(&mut self, db: &impl Database) -> Result<Option<Vec<Room>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let rows = db.query(SELECT_ROOMS_AFTER, &self.params())?;
        let rooms = rows.iter().map(room_from).collect::<Result<Vec<_>, _>>()?;
        let last = rooms.last().map(|r| r.id);
        Ok(self.advance(rooms.len(), last).then_some(rooms))
    }

    /// Like [`Self::next_page`], as the JSON array of the rooms.
    pub fn next_json_page(&mut self, db: &impl Database) -> Result<Option<String>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = JsonPage::read(db, SELECT_ROOMS_AFTER_JSON, &self.params())?;
        Ok(self.advance(page.rows, page.last_id).then_some(page.json))
    }

    /// Moves past a page of `rows` ending at `last`; whether it had any.
    fn advance(&mut self, rows: usize, last: Option<i64>) -> bool {
        self.done = (rows as i64) < HISTORY_PAGE_ROWS;
        match last {
            Some(id) => {
                self.after = id;
                true
            }
            None => false,
        }
    }
}

/// One page as SQLite wrote it: a JSON array of wire objects.
struct JsonPage {
    json: String,
    rows: usize,
    last_id: Option<i64>,
}

impl JsonPage {
    fn read(db: &impl Database, sql: &str, params: &[Value]) -> Result<Self, StoreError> {
        let rows = db.query(sql, params)?;
        let row = rows
            .first()
            .ok_or(StoreError::Shape("a JSON page query returned no row"))?;
        let count = row.int(1)?;
        Ok(JsonPage {
            json: row.text(0)?,
            rows: usize::try_from(count).unwrap_or(0),
            last_id: if count > 0 { Some(row.int(2)?) } else { None },
        })
    }
}

/// Which end of the range a limited page is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDirection {
    /// The oldest messages of the range (paging forward with `after`).
    Oldest,
    /// The newest messages of the range (paging back with `before`, or the
    /// latest N when only `limit` is given).
    Newest,
}

/// Validated paging parameters for a room's messages: ids in
/// `(after, before)`, at most `limit` of them, always returned oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagePage {
    pub after: i64,
    pub before: i64,
    pub limit: Option<i64>,
    pub direction: PageDirection,
}

impl MessagePage {
    /// Everything newer than `after`, oldest first (the whole history for 0).
    pub fn since(after: i64) -> Self {
        MessagePage {
            after,
            before: i64::MAX,
            limit: None,
            direction: PageDirection::Oldest,
        }
    }

    /// From the raw `after`, `before` and `limit` query parameters. With a
    /// limit, `after` pages forward (the oldest N newer than it); otherwise
    /// the page is the newest N (older than `before`, when given).
    pub fn parse(
        after: Option<&str>,
        before: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Self, ApiError> {
        fn id(name: &str, raw: &str, min: i64) -> Result<i64, ApiError> {
            match raw.parse::<i64>() {
                Ok(v) if v >= min && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
                _ => Err(ApiError::InvalidPaging(format!(
                    "{name} must be an integer of at least {min}"
                ))),
            }
        }
        let mut page =
            MessagePage::since(after.map(|a| id("after", a, 0)).transpose()?.unwrap_or(0));
        if let Some(before) = before {
            page.before = id("before", before, 1)?;
        }
        if let Some(limit) = limit {
            let n = id("limit", limit, 1)
                .ok()
                .filter(|n| *n <= PAGE_LIMIT_MAX)
                .ok_or_else(|| {
                    ApiError::InvalidPaging(format!(
                        "limit must be an integer from 1 to {PAGE_LIMIT_MAX}"
                    ))
                })?;
            page.limit = Some(n);
            if after.is_none() {
                page.direction = PageDirection::Newest;
            }
        }
        Ok(page)
    }
}

/// A room's messages for a [`MessagePage`], read a bounded page at a time so
/// that a history of any length streams in constant memory.
#[derive(Debug, Clone)]
pub struct HistoryPages {
    room_id: i64,
    page: MessagePage,
    done: bool,
}

impl HistoryPages {
    pub fn new(room_id: i64, page: MessagePage) -> Self {
        HistoryPages {
            room_id,
            page,
            done: false,
        }
    }

    /// The next messages in id order, or `None` once the range is exhausted.
    pub fn next_page(&mut self, db: &impl Database) -> Result<Option<Vec<Message>>, StoreError> {
        self.next_json_page(db)?
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|_| StoreError::Shape("a message page is not the wire shape"))
            })
            .transpose()
    }

    /// Like [`Self::next_page`], as the JSON array of the messages.
    pub fn next_json_page(&mut self, db: &impl Database) -> Result<Option<String>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let (sql, params, want) =
            self.query(SELECT_MESSAGES_FORWARD_JSON, SELECT_MESSAGES_BACKWARD_JSON);
        let page = JsonPage::read(db, sql, &params)?;
        Ok(self
            .advance(page.rows, want, page.last_id)
            .then_some(page.json))
    }

    /// The statement (of the two given) for the next page, its parameters
    /// and the rows asked for.
    fn query(
        &self,
        forward: &'static str,
        backward: &'static str,
    ) -> (&'static str, [Value; 4], i64) {
        let p = &self.page;
        let want = p
            .limit
            .map_or(HISTORY_PAGE_ROWS, |l| l.min(HISTORY_PAGE_ROWS));
        let sql = match p.direction {
            PageDirection::Oldest => forward,
            PageDirection::Newest => backward,
        };
        let params = [
            self.room_id.into(),
            p.after.into(),
            p.before.into(),
            want.into(),
        ];
        (sql, params, want)
    }

    /// Moves past a page of `got` rows (of `want`) whose newest is `last`;
    /// whether it had any.
    fn advance(&mut self, got: usize, want: i64, last: Option<i64>) -> bool {
        let p = &mut self.page;
        let got = got as i64;
        // A limited newest page is one query (limit <= page size).
        self.done = p.direction == PageDirection::Newest;
        if let Some(limit) = p.limit.as_mut() {
            *limit -= got;
            self.done |= *limit <= 0;
        }
        self.done |= got < want;
        match last {
            Some(id) => {
                p.after = id;
                true
            }
            None => false,
        }
    }
}

/// A message as it is now; `404` when it is not in that room.
pub fn message(db: &impl Database, room_id: i64, message_id: i64) -> Result<Message, ApiError> {
    let rows = db.query(MESSAGE, &[room_id.into(), message_id.into()])?;
    match rows.first() {
        Some(row) => serde_json::from_str(&row.text(0)?)
            .map_err(|_| ApiError::Storage(StoreError::Shape("a message is not the wire shape"))),
        None => Err(missing(db, room_id)?),
    }
}

/// Why a message was not found: its room is missing, or just it.
pub(crate) fn missing(db: &impl Database, room_id: i64) -> Result<ApiError, StoreError> {
    Ok(match find_room(db, room_id)? {
        None => ApiError::RoomNotFound,
        Some(_) => ApiError::MessageNotFound,
    })
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::*;
    use crate::input::{MessageDraft, RoomDraft};
    use crate::rooms::create_room;
    use crate::validate::RoomName;

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate(&conn).unwrap();
        conn
    }

    fn post(db: &rusqlite::Connection, room: i64, n: usize) -> Vec<i64> {
        (0..n)
            .map(|i| {
                let d = MessageDraft::from_fields(Some("a"), Some(&format!("m{i}"))).unwrap();
                insert_message(db, room, &d).unwrap().id
            })
            .collect()
    }

    /// The ids of a range, read as typed pages; the JSON pages of the same
    /// range must be those pages byte for byte, as serde_json writes them.
    fn ids(db: &rusqlite::Connection, room: i64, page: MessagePage) -> Vec<i64> {
        let (mut typed, mut json) = (HistoryPages::new(room, page), HistoryPages::new(room, page));
        let mut out = vec![];
        while let Some(batch) = typed.next_page(db).unwrap() {
            let written = json.next_json_page(db).unwrap();
            assert_eq!(written, Some(serde_json::to_string(&batch).unwrap()));
            out.extend(batch.iter().map(|m| m.id));
        }
        assert_eq!(json.next_json_page(db).unwrap(), None);
        out
    }

    #[test]
    fn migrate_is_idempotent() {
        let conn = db();
        crate::migrate(&conn).unwrap();
        crate::migrate(&conn).unwrap();
    }

    #[test]
    fn room_names_are_unique_ignoring_case() {
        let conn = db();
        let general = RoomDraft::from_name(Some("Général")).unwrap().name;
        let room = create_room(&conn, &general).unwrap();
        assert_eq!((room.id, room.name.as_str()), (1, "Général"));
        let shout = RoomDraft::from_name(Some("GÉNÉRAL")).unwrap().name;
        assert_eq!(
            create_room(&conn, &shout).unwrap_err(),
            ApiError::RoomExists("GÉNÉRAL".into())
        );
        assert_eq!(find_room(&conn, 1).unwrap(), Some(room));
        assert_eq!(find_room(&conn, 2).unwrap(), None);
    }

    #[test]
    fn a_repeated_client_id_stores_nothing_and_answers_as_the_first() {
        let conn = db();
        for name in ["a", "b"] {
            create_room(&conn, &RoomName::parse(name).unwrap()).unwrap();
        }
        let keyed = |sender: &str, text: &str, key: &str| {
            MessageDraft::from_fields(Some(sender), Some(text))
                .unwrap()
                .with_client_id(Some(key))
                .unwrap()
        };
        let first = store_message(&conn, 1, &keyed("alice", "hi", "k1"), 60_000).unwrap();
        assert!(!first.replayed);
        let again = store_message(&conn, 1, &keyed("alice", "hi", "k1"), 60_000).unwrap();
        assert_eq!((again.message.id, again.replayed), (first.message.id, true));
        assert_eq!(
            crate::latest_seq(&conn).unwrap(),
            first.message.id,
            "nothing logged"
        );
        assert_eq!(
            store_message(&conn, 1, &keyed("alice", "other", "k1"), 60_000),
            Err(ApiError::IdempotencyConflict)
        );
        // Another sender, or another room, may use the same key.
        assert!(
            !store_message(&conn, 1, &keyed("bob", "hi", "k1"), 60_000)
                .unwrap()
                .replayed
        );
        assert!(
            !store_message(&conn, 2, &keyed("alice", "hi", "k1"), 60_000)
                .unwrap()
                .replayed
        );
        // Past the window the key names a new message.
        let later = store_message(&conn, 1, &keyed("alice", "hi", "k1"), -1).unwrap();
        assert!(!later.replayed && later.message.id > first.message.id);
        assert!(
            MessageDraft::from_fields(Some("a"), Some("b"))
                .unwrap()
                .with_client_id(Some("no spaces"))
                .is_err()
        );
    }

    #[test]
    fn a_batch_is_stored_in_order_each_with_its_own_answer() {
        let conn = db();
        let general = RoomDraft::from_name(Some("General")).unwrap().name;
        let room = create_room(&conn, &general).unwrap().id;
        let draft = |t: &str| MessageDraft::from_fields(Some("a"), Some(t)).unwrap();
        let batch = vec![
            (room, draft("one")),
            (99, draft("lost")),
            (room, draft("two")),
        ];
        let results = insert_messages(&conn, &batch, CLIENT_ID_WINDOW_MS).unwrap();
        assert_eq!(results[1], Err(ApiError::RoomNotFound));
        let stored: Vec<_> = [&results[0], &results[2]]
            .iter()
            .map(|r| r.as_ref().unwrap().content.clone())
            .collect();
        assert_eq!(stored, ["one", "two"]);
        assert!(results[0].as_ref().unwrap().id < results[2].as_ref().unwrap().id);
        assert!(conn.is_autocommit(), "the transaction is closed");
    }

    #[test]
    fn messages_need_a_room_and_get_server_timestamps() {
        let conn = db();
        let d = MessageDraft::from_fields(Some("Alice"), Some("Hello")).unwrap();
        assert_eq!(
            insert_message(&conn, 1, &d).unwrap_err(),
            ApiError::RoomNotFound
        );
        create_room(&conn, &RoomName::parse("r").unwrap()).unwrap();
        let m = insert_message(&conn, 1, &d).unwrap();
        assert_eq!((m.id, m.room_id, m.sender.as_str()), (1, 1, "Alice"));
        // 2026-11-24T14:20:42.123Z
        assert_eq!(m.timestamp.len(), 24, "{}", m.timestamp);
        assert!(m.timestamp.ends_with('Z') && m.timestamp.as_bytes()[19] == b'.');
    }

    #[test]
    fn paging_after_before_and_limit() {
        let conn = db();
        create_room(&conn, &RoomName::parse("a").unwrap()).unwrap();
        create_room(&conn, &RoomName::parse("b").unwrap()).unwrap();
        let a = post(&conn, 1, 10);
        post(&conn, 2, 3);
        let page = |after, before, limit| MessagePage::parse(after, before, limit).unwrap();
        assert_eq!(ids(&conn, 1, page(None, None, None)), a);
        assert_eq!(ids(&conn, 1, page(Some("3"), None, None)), a[3..]);
        assert_eq!(ids(&conn, 1, page(Some("3"), None, Some("2"))), [4, 5]);
        assert_eq!(ids(&conn, 1, page(None, Some("6"), Some("2"))), [4, 5]);
        assert_eq!(ids(&conn, 1, page(None, None, Some("3"))), [8, 9, 10]);
        assert_eq!(ids(&conn, 1, page(Some("2"), Some("5"), None)), [3, 4]);
        assert_eq!(ids(&conn, 2, page(None, None, None)), [11, 12, 13]);
        for (after, before, limit) in [
            (Some("x"), None, None),
            (Some("-1"), None, None),
            (None, Some("0"), None),
            (None, None, Some("0")),
            (None, None, Some("1001")),
        ] {
            assert_eq!(
                MessagePage::parse(after, before, limit).unwrap_err().code(),
                "invalid_paging"
            );
        }
    }

    #[test]
    fn presence_rows_follow_joins_leaves_and_disconnects() {
        let conn = db();
        create_room(&conn, &RoomName::parse("a").unwrap()).unwrap();
        create_room(&conn, &RoomName::parse("b").unwrap()).unwrap();
        assert_eq!(
            presence::renew(&conn, "n1", 30_000).unwrap(),
            LeaseState::Taken
        );
        presence::join(&conn, "n1", "s1", 1, "alice").unwrap();
        presence::join(&conn, "n1", "s2", 1, "bob").unwrap();
        presence::join(&conn, "n1", "s1", 2, "alice").unwrap();
        presence::join(&conn, "n1", "s3", 1, "alice").unwrap();
        assert_eq!(room_users(&conn, 1).unwrap().users, ["alice", "bob"]);
        assert_eq!(presence::leave(&conn, "s2", 1).unwrap(), Some("bob".into()));
        assert_eq!(presence::leave(&conn, "s2", 1).unwrap(), None);
        presence::join(&conn, "n1", "s4", 1, "carol").unwrap();
        // Connections that went together, one of them never listed.
        let gone = ["s1", "s3", "nobody"].map(String::from);
        presence::disconnect_all(&conn, &gone).unwrap();
        assert_eq!(room_users(&conn, 1).unwrap().users, ["carol"]);
        assert_eq!(room_users(&conn, 2).unwrap().user_count, 0);
        presence::drop_node(&conn, "n1").unwrap();
        assert_eq!(room_users(&conn, 1).unwrap().user_count, 0);
    }

    #[test]
    fn presence_counts_only_while_its_node_holds_a_lease() {
        let conn = db();
        create_room(&conn, &RoomName::parse("a").unwrap()).unwrap();
        let users = |c: &rusqlite::Connection| room_users(c, 1).unwrap().users;
        presence::renew(&conn, "live", 60_000).unwrap();
        presence::renew(&conn, "dying", 60_000).unwrap();
        presence::join(&conn, "live", "s1", 1, "alice").unwrap();
        presence::join(&conn, "dying", "s2", 1, "bob").unwrap();
        assert_eq!(users(&conn), ["alice", "bob"]);
        assert_eq!(
            presence::renew(&conn, "live", 60_000).unwrap(),
            LeaseState::Renewed
        );
        // A lease that ran out: its rows stop counting at once...
        conn.execute(
            "UPDATE presence_nodes SET expires_at = expires_at - 120000 WHERE node_id = 'dying'",
            [],
        )
        .unwrap();
        assert_eq!(users(&conn), ["alice"]);
        // ... and are swept by the next renewal of any node.
        presence::renew(&conn, "live", 60_000).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM presence WHERE node_id = 'dying'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        // The late node learns its lease had lapsed, and records again.
        assert_eq!(
            presence::renew(&conn, "dying", 60_000).unwrap(),
            LeaseState::Taken
        );
        presence::join(&conn, "dying", "s2", 1, "bob").unwrap();
        assert_eq!(users(&conn), ["alice", "bob"]);
        // Dropping one node leaves the other's users alone.
        presence::drop_node(&conn, "dying").unwrap();
        assert_eq!(users(&conn), ["alice"]);
    }

    #[test]
    fn a_version_1_database_is_brought_to_the_latest() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE chatrooms (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
                 name_key TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
             CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, room_id INTEGER NOT NULL,
                 sender TEXT NOT NULL, content TEXT NOT NULL, timestamp TEXT NOT NULL);
             CREATE INDEX messages_by_room ON messages (room_id, id);
             CREATE TABLE presence (id INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL,
                 room_id INTEGER NOT NULL, username TEXT NOT NULL, UNIQUE (sid, room_id));
             CREATE INDEX presence_by_room ON presence (room_id, id);
             INSERT INTO chatrooms VALUES (1, 'a', 'a', '2026-01-01T00:00:00.000Z');
             INSERT INTO messages VALUES (1, 1, 's', 'kept', '2026-01-01T00:00:00.000Z');
             INSERT INTO presence VALUES (1, 'old', 1, 'ghost');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        crate::migrate(&conn).unwrap();
        crate::migrate(&conn).unwrap();
        assert_eq!(ids(&conn, 1, MessagePage::since(0)), [1]);
        // The old room's wire object was filled in (version 7).
        assert_eq!(
            RoomPages::default().next_json_page(&conn).unwrap().unwrap(),
            r#"[{"id":1,"name":"a","created_at":"2026-01-01T00:00:00.000Z"}]"#
        );
        let created = crate::changes_after(&conn, 0, 10).unwrap();
        assert_eq!(
            (created.len(), created[0].seq),
            (1, 1),
            "the old message is in the log"
        );
        let d = MessageDraft::from_fields(Some("a"), Some("new")).unwrap();
        assert_eq!(insert_message(&conn, 1, &d).unwrap().id, 2);
        assert_eq!(room_users(&conn, 1).unwrap().user_count, 0);
        presence::renew(&conn, "n", 1000).unwrap();
        presence::join(&conn, "n", "s", 1, "alice").unwrap();
        assert_eq!(room_users(&conn, 1).unwrap().users, ["alice"]);
    }

    #[test]
    fn long_histories_come_back_whole_across_pages() {
        let conn = db();
        create_room(&conn, &RoomName::parse("a").unwrap()).unwrap();
        let a = post(&conn, 1, 2500);
        assert_eq!(ids(&conn, 1, MessagePage::since(0)), a);
        let mut rooms = RoomPages::default();
        assert_eq!(rooms.next_page(&conn).unwrap().unwrap().len(), 1);
        assert_eq!(rooms.next_page(&conn).unwrap(), None);
    }

    #[test]
    fn sqlite_writes_the_json_serde_json_writes() {
        let conn = db();
        assert_eq!(RoomPages::default().next_json_page(&conn).unwrap(), None);
        create_room(&conn, &RoomName::parse("quote \" back \\ ünï 😀").unwrap()).unwrap();
        // Every character that JSON may escape, and some that it must not.
        let mut tricky: String = (1u8..0x80).map(char::from).collect();
        tricky.push_str("é\u{2028}\u{2029}\u{feff}😀</script>");
        // Written as they are, past validation (which refuses most control
        // characters): what is stored must come back exactly, whatever it is.
        for text in [tricky.as_str(), "plain", "\"", "\\", "tab\there\nnew\r"] {
            conn.execute(
                "INSERT INTO messages (room_id, sender, content, timestamp) VALUES (1, 's\"q', ?1, 't')",
                [text],
            )
            .unwrap();
        }
        // A private room's object names its visibility; one changed after
        // it was made is written again (the stored wire objects' triggers).
        let owner = crate::Sender::parse("owner").unwrap();
        let private = RoomName::parse("private <room>").unwrap();
        walls::create_owned_room(&conn, &private, crate::Visibility::Private, &owner).unwrap();
        create_room(&conn, &RoomName::parse("made public").unwrap()).unwrap();
        conn.execute(
            "UPDATE chatrooms SET visibility = 'private' WHERE id = 3",
            [],
        )
        .unwrap();
        let typed = RoomPages::for_viewer(&Viewer::trusted())
            .next_page(&conn)
            .unwrap()
            .unwrap();
        assert_eq!(typed.len(), 3);
        let json = RoomPages::for_viewer(&Viewer::trusted())
            .next_json_page(&conn)
            .unwrap()
            .unwrap();
        assert_eq!(json, serde_json::to_string(&typed).unwrap());
        assert_eq!(ids(&conn, 1, MessagePage::since(0)).len(), 5);
        let newest = MessagePage::parse(None, None, Some("2")).unwrap();
        assert_eq!(ids(&conn, 1, newest), [4, 5]);
    }

    #[test]
    fn paging_statements_are_prepared_once() {
        let conn = db();
        create_room(&conn, &RoomName::parse("a").unwrap()).unwrap();
        post(&conn, 1, 3);
        for _ in 0..3 {
            ids(&conn, 1, MessagePage::since(0));
            ids(&conn, 1, MessagePage::parse(None, None, Some("2")).unwrap());
            RoomPages::default().next_json_page(&conn).unwrap();
        }
        for sql in [
            SELECT_MESSAGES_FORWARD_JSON,
            SELECT_MESSAGES_BACKWARD_JSON,
            SELECT_ROOMS_AFTER_JSON,
        ] {
            let stmt = conn.prepare_cached(sql).unwrap();
            let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(again, 0, "{sql} was prepared again");
        }
    }

    /// The message's shape has one definition that the other must match to
    /// the byte: the JSON SQLite builds (`message_json!`, for pages, the
    /// change log and single reads) read as `wire::Message` and written
    /// again by serde (acks, REST answers) is the same text, keys in the
    /// same order, for a message as sent, edited, reacted to and deleted.
    #[test]
    fn sqlite_and_serde_write_a_message_the_same_way() {
        use crate::conversation::ActionKind;
        use serde_json::json;
        let db = db();
        let room = create_room(&db, &RoomName::parse("r").unwrap()).unwrap().id;
        let draft = MessageDraft::from_fields(Some("alice"), Some("hi \"there\" ✓")).unwrap();
        let id = insert_message(&db, room, &draft).unwrap().id;
        let same_text = |stage: &str| {
            let rows = db.query(MESSAGE, &[room.into(), id.into()]).unwrap();
            let sqlite = rows[0].text(0).unwrap();
            let message: Message = serde_json::from_str(&sqlite).unwrap();
            assert_eq!(serde_json::to_string(&message).unwrap(), sqlite, "{stage}");
        };
        same_text("as sent");
        let act = |kind, extra| act_on(&db, room, id, kind, extra);
        act(ActionKind::EditMessage, json!({"content": "edited"}));
        same_text("edited");
        act(ActionKind::AddReaction, json!({"emoji": "👍"}));
        act(
            ActionKind::AddReaction,
            json!({"emoji": "🎉", "username": "bob"}),
        );
        same_text("edited and reacted to");
        act(ActionKind::DeleteMessage, json!({}));
        same_text("deleted");
    }

    /// Does `kind` to message `id` of `room` as alice, with `extra` fields.
    fn act_on(
        db: &rusqlite::Connection,
        room: i64,
        id: i64,
        kind: crate::conversation::ActionKind,
        extra: serde_json::Value,
    ) {
        let mut fields =
            serde_json::json!({"room_id": room, "message_id": id, "username": "alice"});
        if let (Some(fields), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
            fields.extend(extra.clone());
        }
        crate::conversation::tests::act(db, kind, fields).unwrap();
    }

    /// The change log's payloads for changes to a message are their types
    /// to the byte, as the message is: an edit's and a delete's read as
    /// `MessageChange`, a reaction's as `ReactionChange`, each written back
    /// by serde as the same text.
    #[test]
    fn the_change_logs_message_payloads_are_their_types_to_the_byte() {
        use crate::conversation::ActionKind;
        use crate::wire::{ChangeEvent, MessageChange, ReactionChange};
        use serde_json::json;
        let db = db();
        let room = create_room(&db, &RoomName::parse("r").unwrap()).unwrap().id;
        let draft = MessageDraft::from_fields(Some("alice"), Some("hi")).unwrap();
        let id = insert_message(&db, room, &draft).unwrap().id;
        let act = |kind, extra| act_on(&db, room, id, kind, extra);
        act(ActionKind::EditMessage, json!({"content": "x"}));
        act(ActionKind::AddReaction, json!({"emoji": "👍"}));
        act(ActionKind::RemoveReaction, json!({"emoji": "👍"}));
        act(ActionKind::DeleteMessage, json!({}));
        fn same<T: serde::de::DeserializeOwned + serde::Serialize>(sqlite: &str) {
            let typed: T = serde_json::from_str(sqlite).unwrap();
            assert_eq!(serde_json::to_string(&typed).unwrap(), sqlite);
        }
        let mut events = Vec::new();
        for change in crate::changes_after(&db, 0, 100).unwrap() {
            let sqlite = change.data.get();
            match change.event {
                ChangeEvent::NewMessage => same::<Message>(sqlite),
                ChangeEvent::MessageEdited | ChangeEvent::MessageDeleted => {
                    same::<MessageChange>(sqlite)
                }
                ChangeEvent::ReactionAdded | ChangeEvent::ReactionRemoved => {
                    same::<ReactionChange>(sqlite)
                }
                ChangeEvent::Membership => unreachable!("no membership change here"),
            }
            events.push(change.event);
        }
        assert_eq!(
            events,
            [
                ChangeEvent::NewMessage,
                ChangeEvent::MessageEdited,
                ChangeEvent::ReactionAdded,
                ChangeEvent::ReactionRemoved,
                ChangeEvent::MessageDeleted
            ]
        );
    }
}
