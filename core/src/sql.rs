//! SQL fragments more than one module's statements are built from. They
//! are macros so that every statement stays one `&'static str` (`concat!`),
//! prepared once and cached by both SQLite bindings.

/// RFC 3339, UTC, milliseconds: `2026-11-24T14:20:42.123Z`.
macro_rules! now_utc_millis {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    };
}

/// Now as Unix milliseconds, the unit of presence leases and of ban and
/// mute expiries (`julianday` rather than `unixepoch('subsec')`, which
/// older SQLite and libSQL lack).
macro_rules! now_unix_millis {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    };
}

/// Whether user `$user` may act in room `$room` now (docs/protocol.md
/// §10): the room exists, is public or has them as a member, and no
/// restriction of the kinds `$kinds` (`'ban'`, `'mute'`) is in force.
/// Part of the statement that writes, so a ban committed first always
/// wins.
macro_rules! may_act {
    ($room:literal, $user:literal, $kinds:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM chatrooms wr WHERE wr.id = ",
            $room,
            " AND (wr.visibility = 'public' OR EXISTS (SELECT 1 FROM members wm WHERE wm.room_id = ",
            $room,
            " AND wm.username = ",
            $user,
            "))) AND NOT EXISTS (SELECT 1 FROM restrictions wx WHERE wx.room_id = ",
            $room,
            " AND wx.username = ",
            $user,
            " AND wx.kind IN (",
            $kinds,
            ") AND (wx.expires_at IS NULL OR wx.expires_at > ",
            now_unix_millis!(),
            "))"
        )
    };
}

/// A `membership` row of the change log (its columns behind `$p`, `"c."`
/// or `""`) as its event payload: `seq` and `room_id`, then the `detail`
/// the change wrote (`username`, `change`, `role`, `until`, `by`; a null
/// one left out). The one definition of that shape.
macro_rules! membership_json {
    ($p:literal) => {
        concat!(
            "json_patch(json_object('seq', ",
            $p,
            "seq, 'room_id', ",
            $p,
            "room_id), ",
            $p,
            "detail)"
        )
    };
}

/// A room row `m` (`id`, `name`, `created_at`, `visibility`) as its wire
/// object: the three keys every room has, and `visibility` only for a room
/// that is not public, so public rooms look exactly as they always have.
macro_rules! room_json {
    () => {
        concat!(
            "CASE WHEN m.visibility = 'public' THEN ",
            "json_object('id', m.id, 'name', m.name, 'created_at', m.created_at) ",
            "ELSE json_object('id', m.id, 'name', m.name, 'created_at', m.created_at, ",
            "'visibility', m.visibility) END"
        )
    };
}

/// The columns a message's JSON is built from, for a subquery that
/// [`message_json`] reads as `m`.
macro_rules! message_columns {
    () => {
        "id, room_id, sender, content, timestamp, version, edited_at, deleted_at"
    };
}

/// A message row `m` (every column of [`message_columns`]) as its wire
/// object, the shape of `wire::Message` key for key: the five keys every
/// message has, then `edited_at` and `version` once edited, `deleted` and
/// `deleted_at` for a tombstone, and `reactions` (per emoji, in the order
/// they were first used: the count and who) while there are any. A message
/// never changed is built without the merge, as cheaply as before.
macro_rules! message_json {
    () => {
        concat!(
            "CASE WHEN m.version = 1 AND m.deleted_at IS NULL ",
            "AND NOT EXISTS (SELECT 1 FROM reactions r WHERE r.message_id = m.id) THEN ",
            message_base_json!(),
            " ELSE json_patch(",
            message_base_json!(),
            ", json_object(",
            "'edited_at', m.edited_at, ",
            "'version', CASE WHEN m.version > 1 THEN m.version END, ",
            "'deleted', CASE WHEN m.deleted_at IS NOT NULL THEN json('true') END, ",
            "'deleted_at', m.deleted_at, ",
            "'reactions', json((SELECT CASE WHEN count(*) > 0 THEN json_group_array(json_object(",
            "'emoji', g.emoji, 'count', g.n, 'users', json(g.users))) END FROM (",
            "SELECT r.emoji AS emoji, count(*) AS n, json_group_array(r.username) AS users, ",
            "min(r.rowid) AS first FROM reactions r WHERE r.message_id = m.id ",
            "GROUP BY r.emoji ORDER BY first) g))",
            ")) END"
        )
    };
}

/// The five keys of every message.
macro_rules! message_base_json {
    () => {
        "json_object('id', m.id, 'room_id', m.room_id, 'sender', m.sender, \
         'content', m.content, 'timestamp', m.timestamp)"
    };
}
