//! Rooms with walls (docs/protocol.md §10): who may see a room and act in
//! it, for the component and the sidecar alike.
//!
//! A room is `public` (anyone reads and joins, as rooms always were),
//! `private` (only its members see that it exists) or a `dm` (the one
//! private room of a pair of users). Members have roles: `owner` (the
//! creator), `moderator` and `member`. Moderators and owners manage
//! members, kick, ban and mute; an operator (a token with the `admin`
//! role) moderates every room. Each change is a `membership` row of the
//! change log, written with the change in one transaction here, the only
//! writer of `members` and `restrictions`, so every sidecar applies it at
//! its `seq`, in order with the messages around it.
//!
//! Writes enforce the walls inside their own statement (`may_act!`); reads
//! ask [`visible_room`] first. A room a viewer may not see is `404
//! room_not_found`, exactly as if it did not exist.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::db::{Database, StoreError, Value};
use crate::error::ApiError;
use crate::rooms::{INSERT_ROOM, room_from};
use crate::transaction::transaction;
use crate::validate::{RoomName, Sender};
use crate::wire::{Room, Visibility};

/// A member's role, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Role {
    Member,
    Moderator,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        [Role::Member, Role::Moderator, Role::Owner]
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or_else(|| {
                ApiError::InvalidPayload("role must be member, moderator or owner".to_owned())
            })
    }
}

/// Who is asking: the token's user (identity on), and whether it sees and
/// moderates every room (an operator's token; the internal token, which
/// edge sidecars read with, sees every room too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    pub user: Option<Sender>,
    pub sees_all: bool,
}

impl Viewer {
    /// A trusted reader with no name (the internal token).
    pub fn trusted() -> Self {
        Viewer {
            user: None,
            sees_all: true,
        }
    }
}

impl From<crate::auth::Principal> for Viewer {
    fn from(p: crate::auth::Principal) -> Self {
        Viewer {
            user: Some(p.user),
            sees_all: p.operator,
        }
    }
}

/// What one user may do in one room, read in one statement: the room's
/// visibility, the user's role, whether a ban or a mute is in force, and
/// the change log's newest `seq` in the same snapshot (a sidecar admits a
/// joining socket against it, see `RoomRegistry::admit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomAccess {
    pub room_id: i64,
    pub visibility: Visibility,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub banned: bool,
    /// A mute in force: until when, Unix milliseconds (`i64::MAX` for
    /// ever).
    #[serde(default)]
    pub muted_until_ms: Option<i64>,
    pub seq: i64,
    /// How far retention pruned the room (docs/protocol.md §4.6): every
    /// change after this `seq` is kept.
    #[serde(default)]
    pub kept_after: i64,
}

impl RoomAccess {
    /// Whether `viewer` may read the room: `404` for a private room or DM
    /// it is not a member of, `403 banned` for one it was banned from.
    pub fn check_read(&self, viewer: &Viewer) -> Result<(), ApiError> {
        if self.visibility.is_public() || self.role.is_some() || viewer.sees_all {
            return Ok(());
        }
        Err(if self.banned {
            ApiError::Banned
        } else {
            ApiError::RoomNotFound
        })
    }

    /// Whether `viewer` may join the room over Socket.IO (read it live):
    /// as [`RoomAccess::check_read`], and a ban keeps one out of a public
    /// room too.
    pub fn check_join(&self, viewer: &Viewer) -> Result<(), ApiError> {
        self.check_read(viewer)?;
        if self.banned && !viewer.sees_all {
            return Err(ApiError::Banned);
        }
        Ok(())
    }

    /// Whether a mute is in force at `now_ms`.
    pub fn muted_at(&self, now_ms: i64) -> bool {
        self.muted_until_ms.is_some_and(|until| until > now_ms)
    }

    /// The viewer's rank here: an operator above every owner.
    fn rank(&self, viewer: &Viewer) -> u8 {
        match (viewer.sees_all, self.role) {
            (true, _) => 4,
            (false, Some(Role::Owner)) => 3,
            (false, Some(Role::Moderator)) => 2,
            (false, Some(Role::Member)) => 1,
            (false, None) => 0,
        }
    }
}

/// An active restriction of `x` (a ban or a mute), in SQL.
macro_rules! in_force {
    () => {
        concat!(
            "(x.expires_at IS NULL OR x.expires_at > ",
            now_unix_millis!(),
            ")"
        )
    };
}

const ACCESS: &str = concat!(
    "SELECT c.visibility, (SELECT role FROM members WHERE room_id = c.id AND username = ?2), ",
    "EXISTS (SELECT 1 FROM restrictions x WHERE x.room_id = c.id AND x.username = ?2 ",
    "AND x.kind = 'ban' AND ",
    in_force!(),
    "), (SELECT COALESCE(x.expires_at, -1) FROM restrictions x WHERE x.room_id = c.id ",
    "AND x.username = ?2 AND x.kind = 'mute' AND ",
    in_force!(),
    "), (SELECT COALESCE(MAX(seq), 0) FROM changes), c.pruned_through FROM chatrooms c WHERE c.id = ?1"
);
/// Every member with their role, owners first, and a mute in force.
const MEMBERS: &str = concat!(
    "SELECT m.username, m.role, (SELECT CASE WHEN x.expires_at IS NULL THEN '' ELSE ",
    "strftime('%Y-%m-%dT%H:%M:%fZ', x.expires_at / 1000.0, 'unixepoch') END ",
    "FROM restrictions x WHERE x.room_id = m.room_id AND x.username = m.username ",
    "AND x.kind = 'mute' AND ",
    in_force!(),
    ") FROM members m WHERE m.room_id = ?1 ",
    "ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'moderator' THEN 1 ELSE 2 END, m.username"
);
const UPSERT_MEMBER: &str = "INSERT INTO members (room_id, username, role) VALUES (?1, ?2, ?3) \
     ON CONFLICT (room_id, username) DO UPDATE SET role = excluded.role";
const DELETE_MEMBER: &str = "DELETE FROM members WHERE room_id = ?1 AND username = ?2";
const COUNT_OWNERS: &str = "SELECT count(*), (SELECT count(*) FROM members WHERE room_id = ?1) FROM members \
     WHERE room_id = ?1 AND role = 'owner'";
/// A ban or mute for `?4` milliseconds from now (`NULL`: for ever); its
/// expiry as RFC 3339, or `NULL`.
const UPSERT_RESTRICTION: &str = concat!(
    "INSERT INTO restrictions (room_id, username, kind, expires_at) VALUES (?1, ?2, ?3, ",
    "CASE WHEN ?4 IS NULL THEN NULL ELSE ",
    now_unix_millis!(),
    " + ?4 END) ON CONFLICT (room_id, username, kind) DO UPDATE SET expires_at = excluded.expires_at ",
    "RETURNING CASE WHEN expires_at IS NULL THEN NULL ELSE ",
    "strftime('%Y-%m-%dT%H:%M:%fZ', expires_at / 1000.0, 'unixepoch') END"
);
const DELETE_RESTRICTION: &str =
    "DELETE FROM restrictions WHERE room_id = ?1 AND username = ?2 AND kind = ?3 RETURNING 1";
/// A membership change in the log; `detail` is its payload but `seq` and
/// `room_id` (`change_log` adds those).
const LOG_MEMBERSHIP: &str = concat!(
    "INSERT INTO changes (seq, room_id, message_id, event, at, username, detail) VALUES (",
    "(SELECT COALESCE(MAX(seq), 0) + 1 FROM changes), ?1, 0, 'membership', ",
    now_utc_millis!(),
    ", ?2, json_object('username', ?2, 'change', ?3, 'role', ?4, 'until', ?5, 'by', ?6)) ",
    "RETURNING ",
    membership_json!("")
);
const SELECT_ROOM_BY_KEY: &str =
    "SELECT id, name, created_at, visibility FROM chatrooms WHERE name_key = ?1";

/// What `user` (or nobody, for an anonymous reader) may do in room
/// `room_id`; `None` when there is no such room.
pub fn room_access(
    db: &impl Database,
    room_id: i64,
    user: Option<&str>,
) -> Result<Option<RoomAccess>, StoreError> {
    let name = user.map_or(Value::Null, Value::from);
    let rows = db.query(ACCESS, &[room_id.into(), name])?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let role = match row.0.get(1) {
        Some(Value::Text(role)) => {
            Some(Role::parse(role).map_err(|_| StoreError::Shape("an unknown member role"))?)
        }
        _ => None,
    };
    let muted_until_ms = match row.0.get(3) {
        Some(Value::Integer(-1)) => Some(i64::MAX),
        Some(Value::Integer(ms)) => Some(*ms),
        _ => None,
    };
    Ok(Some(RoomAccess {
        room_id,
        visibility: Visibility::parse(&row.text(0)?)
            .ok_or(StoreError::Shape("an unknown room visibility"))?,
        role,
        banned: row.int(2)? != 0,
        muted_until_ms,
        seq: row.int(4)?,
        kept_after: row.int(5)?,
    }))
}

/// The room `viewer` asked to read, and what it may do there; `404` if
/// it does not exist or is hidden from it.
pub fn visible_room(
    db: &impl Database,
    room_id: i64,
    viewer: &Viewer,
) -> Result<RoomAccess, ApiError> {
    let user = viewer.user.as_ref().map(Sender::as_str);
    let access = room_access(db, room_id, user)?.ok_or(ApiError::RoomNotFound)?;
    access.check_read(viewer)?;
    Ok(access)
}

/// What a write needs beyond seeing the room: which restrictions stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Post, edit, react: neither banned nor muted.
    Speak,
    /// Delete one's own message, mark read: not banned.
    Act,
}

/// Why a write by `user` in `room_id` is refused by the walls, if it is.
pub(crate) fn wall(
    db: &impl Database,
    room_id: i64,
    user: &Sender,
    need: Need,
) -> Result<Option<ApiError>, StoreError> {
    let Some(access) = room_access(db, room_id, Some(user.as_str()))? else {
        return Ok(Some(ApiError::RoomNotFound));
    };
    Ok(if access.banned {
        Some(ApiError::Banned)
    } else if !access.visibility.is_public() && access.role.is_none() {
        Some(ApiError::RoomNotFound)
    } else if need == Need::Speak && access.muted_until_ms.is_some() {
        Some(ApiError::Muted)
    } else {
        None
    })
}

/// Why a write the walls' statement refused was refused.
pub(crate) fn refusal(
    db: &impl Database,
    room_id: i64,
    user: &Sender,
    need: Need,
) -> Result<ApiError, StoreError> {
    Ok(
        wall(db, room_id, user, need)?.unwrap_or(ApiError::Storage(StoreError::Shape(
            "a write was refused for no reason the walls know",
        ))),
    )
}

/// A member as `GET /chatrooms/{id}/members` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub username: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
    /// When a mute ends; absent for one without end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<String>,
}

/// The room's members, owners first, then moderators, then by name.
pub fn members(db: &impl Database, room_id: i64) -> Result<Vec<Member>, StoreError> {
    db.query(MEMBERS, &[room_id.into()])?
        .iter()
        .map(|row| {
            let mute = match row.0.get(2) {
                Some(Value::Text(until)) => Some(until.clone()),
                _ => None,
            };
            Ok(Member {
                username: row.text(0)?,
                role: Role::parse(&row.text(1)?)
                    .map_err(|_| StoreError::Shape("an unknown member role"))?,
                muted: mute.is_some(),
                muted_until: mute.filter(|until| !until.is_empty()),
            })
        })
        .collect()
}

/// A change to who is in a room and what they may do there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add `user` with `role`, or give a member another role.
    SetRole(Sender, Role),
    /// Take `user` out of the room (themselves: they leave).
    Remove(Sender),
    /// `user`'s sockets leave the room now; in a private room they stop
    /// being a member.
    Kick(Sender),
    /// Out, and kept out, for `Some(ms)` or for ever.
    Ban(Sender, Option<i64>),
    Unban(Sender),
    /// May read but not speak, for `Some(ms)` or for ever.
    Mute(Sender, Option<i64>),
    Unmute(Sender),
}

/// What a moderation route (or event) asks for; with the user it names
/// and its body it makes a [`MemberChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    SetRole,
    Remove,
    Kick,
    Ban,
    Unban,
    Mute,
    Unmute,
}

/// The longest ban or mute with an end: ten years, in seconds.
const MAX_DURATION_SECS: i64 = 315_360_000;

impl MemberChange {
    /// From what a request named: the `kind`, the user (a path segment)
    /// and the body's fields: `role` (`member` unless given) to add or
    /// change a member, `duration_secs` (1 to ten years; absent: for ever)
    /// for a ban or a mute.
    pub fn from_request(
        kind: Moderation,
        user: &str,
        body: &serde_json::Map<String, Json>,
    ) -> Result<Self, ApiError> {
        let user = Sender::parse_username(user)?;
        let duration_ms = || -> Result<Option<i64>, ApiError> {
            match body.get("duration_secs") {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Number(n)) => match n.as_i64() {
                    Some(secs) if (1..=MAX_DURATION_SECS).contains(&secs) => Ok(Some(secs * 1000)),
                    _ => Err(ApiError::InvalidPayload(format!(
                        "duration_secs must be a whole number from 1 to {MAX_DURATION_SECS}"
                    ))),
                },
                Some(_) => Err(ApiError::InvalidPayload(
                    "duration_secs must be a number".to_owned(),
                )),
            }
        };
        Ok(match kind {
            Moderation::SetRole => {
                let role = match body.get("role") {
                    None | Some(Json::Null) => Role::Member,
                    Some(Json::String(role)) => Role::parse(role)?,
                    Some(_) => {
                        return Err(ApiError::InvalidPayload("role must be a string".to_owned()));
                    }
                };
                MemberChange::SetRole(user, role)
            }
            Moderation::Remove => MemberChange::Remove(user),
            Moderation::Kick => MemberChange::Kick(user),
            Moderation::Ban => MemberChange::Ban(user, duration_ms()?),
            Moderation::Unban => MemberChange::Unban(user),
            Moderation::Mute => MemberChange::Mute(user, duration_ms()?),
            Moderation::Unmute => MemberChange::Unmute(user),
        })
    }

    fn target(&self) -> &Sender {
        match self {
            MemberChange::SetRole(user, _)
            | MemberChange::Remove(user)
            | MemberChange::Kick(user)
            | MemberChange::Ban(user, _)
            | MemberChange::Unban(user)
            | MemberChange::Mute(user, _)
            | MemberChange::Unmute(user) => user,
        }
    }
}

/// What a membership change did, as its `membership` event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum MembershipKind {
    Added,
    Role,
    Removed,
    Left,
    Kicked,
    Banned,
    Unbanned,
    Muted,
    Unmuted,
}

impl MembershipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipKind::Added => "added",
            MembershipKind::Role => "role",
            MembershipKind::Removed => "removed",
            MembershipKind::Left => "left",
            MembershipKind::Kicked => "kicked",
            MembershipKind::Banned => "banned",
            MembershipKind::Unbanned => "unbanned",
            MembershipKind::Muted => "muted",
            MembershipKind::Unmuted => "unmuted",
        }
    }
}

/// A `membership` event (docs/protocol.md §10.3): a member added, removed
/// or given a role; a kick, ban or mute. A row of the change log, to the
/// room's members live and replayed by `since` in order with the messages
/// around it.
// SQLite builds the payload (`membership_json!`); this type reads back
// every change logged (`log`) and is held to that text byte for byte in
// a test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct MembershipEvent {
    /// The change's place in the log (`GET /chatrooms/{room_id}/changes`);
    /// a `since` to resume after it.
    pub seq: i64,
    pub room_id: i64,
    /// Who the change is about.
    pub username: String,
    pub change: MembershipKind,
    /// For `added` and `role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Role"))]
    pub role: Option<Role>,
    /// When a ban or mute ends; absent for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", extend("format" = "date-time"))
    )]
    pub until: Option<String>,
    /// Who made the change.
    pub by: String,
}

/// One logged membership change, before it is written.
struct Logged<'a> {
    change: MembershipKind,
    role: Option<Role>,
    until: Option<String>,
    by: &'a str,
}

/// Does `change` in room `room_id` as `actor` asks, and logs it; `None`
/// when there was nothing to change (removing a non-member, lifting a ban
/// that is not there). The rules (docs/protocol.md §10.2, §10.3):
/// moderators and owners manage members and moderate, an operator every
/// room; each acts only on those ranked below it (owners and operators on
/// anyone); nobody kicks, bans or mutes themselves; a room keeps an owner
/// while it has members; a DM's pair never changes.
pub fn change_membership(
    db: &impl Database,
    room_id: i64,
    actor: &Viewer,
    change: &MemberChange,
) -> Result<Option<MembershipEvent>, ApiError> {
    let by = actor.user.as_ref().ok_or_else(|| {
        ApiError::IdentityRequired("members and moderation need identity on".to_owned())
    })?;
    transaction(db, |db| {
        let mine = visible_room(db, room_id, actor)?;
        if mine.visibility == Visibility::Dm {
            return Err(ApiError::Forbidden(
                "a direct message's two members cannot change".to_owned(),
            ));
        }
        let target = change.target();
        let theirs =
            room_access(db, room_id, Some(target.as_str()))?.ok_or(ApiError::RoomNotFound)?;
        let leaving = matches!(change, MemberChange::Remove(user) if user == by);
        let rank = mine.rank(actor);
        if !leaving {
            may_change(rank, theirs.rank(&Viewer::default()), change, by)?;
        }
        let subject = Subject {
            db,
            room_id,
            target,
            theirs: &theirs,
        };
        let act = Act {
            rank,
            leaving,
            public: mine.visibility.is_public(),
            by: by.as_str(),
        };
        match subject.change(change, &act)? {
            Some(entry) => log(db, room_id, target.as_str(), &entry).map(Some),
            None => Ok(None),
        }
    })
}

/// Whether an actor of `rank` may make `change` to someone of
/// `their_rank`: moderators and above only, on those ranked below them
/// (owners and operators on anyone), and not on themselves but for a role.
fn may_change(
    rank: u8,
    their_rank: u8,
    change: &MemberChange,
    by: &Sender,
) -> Result<(), ApiError> {
    let target = change.target();
    if rank < 2 {
        return Err(ApiError::Forbidden(
            "only the room's moderators and owners may do that".to_owned(),
        ));
    }
    if rank < 3 && their_rank >= rank {
        return Err(ApiError::Forbidden(format!(
            "{} ranks as high as you here",
            target.as_str()
        )));
    }
    if target == by && !matches!(change, MemberChange::SetRole(..)) {
        return Err(ApiError::Forbidden(
            "you cannot do that to yourself".to_owned(),
        ));
    }
    Ok(())
}

/// Who is acting on a membership, as a change needs to know it.
struct Act<'a> {
    rank: u8,
    /// A member removing themselves.
    leaving: bool,
    /// The room is public (a kick there changes no membership).
    public: bool,
    by: &'a str,
}

impl<'a> Act<'a> {
    fn logged(&self, change: MembershipKind) -> Logged<'a> {
        Logged {
            change,
            role: None,
            until: None,
            by: self.by,
        }
    }
}

/// The user a membership change is about, in its room, with what they
/// may do there now.
struct Subject<'a, D: Database> {
    db: &'a D,
    room_id: i64,
    target: &'a Sender,
    theirs: &'a RoomAccess,
}

impl<D: Database> Subject<'_, D> {
    /// Makes `change`; what to log, or `None` when there was nothing to
    /// change.
    fn change<'b>(
        &self,
        change: &MemberChange,
        act: &Act<'b>,
    ) -> Result<Option<Logged<'b>>, ApiError> {
        Ok(Some(match change {
            MemberChange::SetRole(_, role) => return self.set_role(*role, act),
            MemberChange::Remove(_) => {
                if self.theirs.role.is_none() {
                    return Ok(None);
                }
                self.keeps_an_owner()?;
                self.unmember()?;
                act.logged(if act.leaving {
                    MembershipKind::Left
                } else {
                    MembershipKind::Removed
                })
            }
            MemberChange::Kick(_) => {
                if !act.public {
                    self.keeps_an_owner()?;
                    self.unmember()?;
                }
                act.logged(MembershipKind::Kicked)
            }
            MemberChange::Ban(_, ms) => {
                self.keeps_an_owner()?;
                self.unmember()?;
                Logged {
                    until: self.restrict("ban", *ms)?,
                    ..act.logged(MembershipKind::Banned)
                }
            }
            MemberChange::Unban(_) if !self.lift("ban")? => return Ok(None),
            MemberChange::Unban(_) => act.logged(MembershipKind::Unbanned),
            MemberChange::Mute(_, ms) => Logged {
                until: self.restrict("mute", *ms)?,
                ..act.logged(MembershipKind::Muted)
            },
            MemberChange::Unmute(_) if !self.lift("mute")? => return Ok(None),
            MemberChange::Unmute(_) => act.logged(MembershipKind::Unmuted),
        }))
    }

    /// Gives the user `role` (adding them as a member if they were not).
    fn set_role<'b>(&self, role: Role, act: &Act<'b>) -> Result<Option<Logged<'b>>, ApiError> {
        if role == Role::Owner && act.rank < 3 {
            return Err(ApiError::Forbidden(
                "only an owner may make an owner".to_owned(),
            ));
        }
        if self.theirs.banned {
            return Err(ApiError::Forbidden(format!(
                "{} is banned here: lift the ban first",
                self.target.as_str()
            )));
        }
        if self.theirs.role == Some(role) {
            return Ok(None);
        }
        if role != Role::Owner {
            self.keeps_an_owner()?;
        }
        self.db.query(
            UPSERT_MEMBER,
            &[
                self.room_id.into(),
                self.target.as_str().into(),
                role.as_str().into(),
            ],
        )?;
        let change = if self.theirs.role.is_some() {
            MembershipKind::Role
        } else {
            MembershipKind::Added
        };
        Ok(Some(Logged {
            role: Some(role),
            ..act.logged(change)
        }))
    }

    /// `Err` when the user is an owner the room cannot do without: the
    /// last one, while others are members.
    fn keeps_an_owner(&self) -> Result<(), ApiError> {
        if self.theirs.role != Some(Role::Owner) {
            return Ok(());
        }
        let rows = self.db.query(COUNT_OWNERS, &[self.room_id.into()])?;
        let row = rows
            .first()
            .ok_or(StoreError::Shape("count returned no row"))?;
        let (owners, members) = (row.int(0)?, row.int(1)?);
        if owners <= 1 && members > 1 {
            return Err(ApiError::Forbidden(
                "a room keeps an owner while it has members: make another owner first".to_owned(),
            ));
        }
        Ok(())
    }

    /// Takes the user out of the members.
    fn unmember(&self) -> Result<(), StoreError> {
        self.db
            .query(
                DELETE_MEMBER,
                &[self.room_id.into(), self.target.as_str().into()],
            )
            .map(drop)
    }

    /// Bans or mutes the user (`kind`) for `ms`, or for good; until when.
    fn restrict(&self, kind: &str, ms: Option<i64>) -> Result<Option<String>, StoreError> {
        let duration = ms.map_or(Value::Null, Value::Integer);
        let rows = self.db.query(
            UPSERT_RESTRICTION,
            &[
                self.room_id.into(),
                self.target.as_str().into(),
                kind.into(),
                duration,
            ],
        )?;
        Ok(rows.first().and_then(|r| r.text(0).ok()))
    }

    /// Lifts a ban or a mute (`kind`); whether there was one.
    fn lift(&self, kind: &str) -> Result<bool, StoreError> {
        let rows = self.db.query(
            DELETE_RESTRICTION,
            &[
                self.room_id.into(),
                self.target.as_str().into(),
                kind.into(),
            ],
        )?;
        Ok(!rows.is_empty())
    }
}

/// Writes `entry` to the change log; its payload as sockets get it.
fn log(
    db: &impl Database,
    room_id: i64,
    username: &str,
    entry: &Logged<'_>,
) -> Result<MembershipEvent, ApiError> {
    let params = [
        room_id.into(),
        username.into(),
        entry.change.as_str().into(),
        entry.role.map_or(Value::Null, |r| r.as_str().into()),
        entry.until.as_deref().map_or(Value::Null, Value::from),
        entry.by.into(),
    ];
    // The payload exactly as the change log delivers it.
    let rows = db.query(LOG_MEMBERSHIP, &params)?;
    let event = rows
        .first()
        .ok_or(StoreError::Shape("a membership change was not logged"))?
        .text(0)?;
    serde_json::from_str(&event).map_err(|_| {
        ApiError::Storage(StoreError::Shape(
            "a membership event is not MembershipEvent's shape",
        ))
    })
}

/// Creates a room owned by `owner` (identity on): public or private.
/// `RoomExists` if the name is taken, ignoring case.
pub fn create_owned_room(
    db: &impl Database,
    name: &RoomName,
    visibility: Visibility,
    owner: &Sender,
) -> Result<Room, ApiError> {
    // A private room's name is unique among its owner's private rooms
    // only: a name taken by someone else's private room must not answer
    // `409` and so reveal that it exists. (Control characters are refused
    // in names, so no public room's key can be a private one's.)
    let key = match visibility {
        Visibility::Private => format!("\u{1}private\u{1}{}\u{1}{}", owner.as_str(), name.key()),
        _ => name.key().to_owned(),
    };
    transaction(db, |db| {
        let params = [
            name.as_str().into(),
            key.as_str().into(),
            visibility.as_str().into(),
        ];
        let rows = db.query(INSERT_ROOM, &params)?;
        let room = room_from(
            rows.first()
                .ok_or_else(|| ApiError::RoomExists(name.as_str().to_owned()))?,
        )?;
        add_founder(db, room.id, owner, Role::Owner, owner)?;
        Ok(room)
    })
}

fn add_founder(
    db: &impl Database,
    room_id: i64,
    user: &Sender,
    role: Role,
    by: &Sender,
) -> Result<(), ApiError> {
    db.query(
        UPSERT_MEMBER,
        &[room_id.into(), user.as_str().into(), role.as_str().into()],
    )?;
    let entry = Logged {
        change: MembershipKind::Added,
        role: Some(role),
        until: None,
        by: by.as_str(),
    };
    log(db, room_id, user.as_str(), &entry).map(drop)
}

/// The one DM of `me` and `with`, and whether this call created it: the
/// same room on every call, from either side. Two calls racing are
/// settled by the room's unique key (and the write transaction).
pub fn open_dm(db: &impl Database, me: &Sender, with: &Sender) -> Result<(Room, bool), ApiError> {
    if me == with {
        return Err(ApiError::InvalidUsername(
            "a direct message needs another user in 'with'".to_owned(),
        ));
    }
    let (a, b) = if me.as_str() <= with.as_str() {
        (me, with)
    } else {
        (with, me)
    };
    // Control characters are refused in room names, so no public or
    // private room's key can be a DM's.
    let key = format!("\u{1}dm\u{1}{}\u{1}{}", a.as_str(), b.as_str());
    let name = format!("{}, {}", a.as_str(), b.as_str());
    transaction(db, |db| {
        let params = [
            name.as_str().into(),
            key.as_str().into(),
            Visibility::Dm.as_str().into(),
        ];
        if let Some(row) = db.query(INSERT_ROOM, &params)?.first() {
            let room = room_from(row)?;
            add_founder(db, room.id, a, Role::Member, me)?;
            add_founder(db, room.id, b, Role::Member, me)?;
            return Ok((room, true));
        }
        let rows = db.query(SELECT_ROOM_BY_KEY, &[key.as_str().into()])?;
        let row = rows
            .first()
            .ok_or(StoreError::Shape("a DM's room vanished"))?;
        Ok((room_from(row)?, false))
    })
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::*;
    use crate::input::MessageDraft;
    use crate::store::insert_message;

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate(&conn).unwrap();
        conn
    }

    fn user(name: &str) -> Sender {
        Sender::parse(name).unwrap()
    }

    fn viewer(name: &str) -> Viewer {
        Viewer {
            user: Some(user(name)),
            sees_all: false,
        }
    }

    fn post(db: &rusqlite::Connection, room: i64, who: &str) -> Result<i64, ApiError> {
        let draft = MessageDraft::from_fields(Some(who), Some("hi")).unwrap();
        insert_message(db, room, &draft).map(|m| m.id)
    }

    fn private_room(db: &rusqlite::Connection) -> i64 {
        let name = RoomName::parse("secret").unwrap();
        create_owned_room(db, &name, Visibility::Private, &user("alice"))
            .unwrap()
            .id
    }

    #[test]
    fn a_private_room_is_hidden_from_everyone_but_its_members() {
        let db = db();
        let room = private_room(&db);
        assert_eq!(
            visible_room(&db, room, &viewer("eve")).unwrap_err(),
            ApiError::RoomNotFound
        );
        assert_eq!(
            visible_room(&db, room, &Viewer::default()).unwrap_err(),
            ApiError::RoomNotFound
        );
        assert_eq!(
            visible_room(&db, room, &viewer("alice")).unwrap().role,
            Some(Role::Owner)
        );
        assert!(visible_room(&db, room, &Viewer::trusted()).is_ok());
        assert_eq!(post(&db, room, "eve"), Err(ApiError::RoomNotFound));
        assert!(post(&db, room, "alice").is_ok());
        let mut pages = crate::RoomPages::for_viewer(&viewer("eve"));
        assert_eq!(pages.next_page(&db).unwrap(), None);
        let mut pages = crate::RoomPages::for_viewer(&viewer("alice"));
        assert_eq!(pages.next_page(&db).unwrap().unwrap().len(), 1);
        // Its name is not taken for anyone else: no 409 tells them it exists.
        let name = RoomName::parse("Secret").unwrap();
        assert!(create_owned_room(&db, &name, Visibility::Public, &user("eve")).is_ok());
        assert!(create_owned_room(&db, &name, Visibility::Private, &user("eve")).is_ok());
        assert_eq!(
            create_owned_room(&db, &name, Visibility::Private, &user("alice"))
                .unwrap_err()
                .code(),
            "room_exists",
            "the owner's own private rooms keep distinct names"
        );
    }

    #[test]
    fn moderators_manage_those_below_them_and_every_change_is_logged() {
        let db = db();
        let room = private_room(&db);
        let alice = viewer("alice");
        let set = |who: &Viewer, name: &str, role: Role| {
            change_membership(&db, room, who, &MemberChange::SetRole(user(name), role))
        };
        let event = set(&alice, "bob", Role::Moderator).unwrap().unwrap();
        assert_eq!(event.change, MembershipKind::Added);
        assert_eq!(event.role, Some(Role::Moderator));
        set(&alice, "carol", Role::Member).unwrap();
        let bob = viewer("bob");
        assert_eq!(
            set(&bob, "dave", Role::Owner).unwrap_err().code(),
            "forbidden"
        );
        set(&bob, "dave", Role::Member).unwrap();
        assert_eq!(
            change_membership(&db, room, &bob, &MemberChange::Kick(user("alice")))
                .unwrap_err()
                .code(),
            "forbidden",
            "a moderator does not kick an owner"
        );
        assert_eq!(
            change_membership(
                &db,
                room,
                &viewer("carol"),
                &MemberChange::Kick(user("dave"))
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
        let ban = change_membership(&db, room, &bob, &MemberChange::Ban(user("dave"), None))
            .unwrap()
            .unwrap();
        assert_eq!(ban.change, MembershipKind::Banned);
        assert_eq!(
            visible_room(&db, room, &viewer("dave")).unwrap_err(),
            ApiError::Banned
        );
        assert_eq!(post(&db, room, "dave"), Err(ApiError::Banned));
        assert_eq!(
            set(&alice, "dave", Role::Member).unwrap_err().code(),
            "forbidden",
            "a banned user is not added back before the ban is lifted"
        );
        change_membership(
            &db,
            room,
            &bob,
            &MemberChange::Mute(user("carol"), Some(60_000)),
        )
        .unwrap();
        assert_eq!(post(&db, room, "carol"), Err(ApiError::Muted));
        let listed = members(&db, room).unwrap();
        let carol = listed.iter().find(|m| m.username == "carol").unwrap();
        assert!(carol.muted && carol.muted_until.is_some());
        change_membership(&db, room, &bob, &MemberChange::Unmute(user("carol"))).unwrap();
        assert!(post(&db, room, "carol").is_ok());
        assert_eq!(
            change_membership(&db, room, &alice, &MemberChange::Remove(user("alice")))
                .unwrap_err()
                .code(),
            "forbidden",
            "the last owner does not leave members behind"
        );
        let left = change_membership(&db, room, &bob, &MemberChange::Remove(user("bob")))
            .unwrap()
            .unwrap();
        assert_eq!(left.change, MembershipKind::Left);
        let changes = crate::changes_after(&db, 0, 100).unwrap();
        let logged: Vec<_> = changes
            .iter()
            .filter(|c| c.event == crate::ChangeEvent::Membership)
            .map(|c| serde_json::from_str::<Json>(c.data.get()).unwrap()["change"].clone())
            .collect();
        assert_eq!(
            logged,
            [
                "added", "added", "added", "added", "banned", "muted", "unmuted", "left"
            ]
        );
    }

    /// `MembershipEvent` is the membership payload's one Rust definition:
    /// every kind of change SQLite logs (`membership_json!`) reads as it
    /// and is written back by serde as the same text, keys in the same
    /// order, absent keys absent.
    #[test]
    fn every_membership_change_logged_is_a_membership_event_to_the_byte() {
        use MembershipKind as K;
        let db = db();
        let name = RoomName::parse("shapes").unwrap();
        let room = create_owned_room(&db, &name, Visibility::Private, &user("alice"))
            .unwrap()
            .id;
        let alice = viewer("alice");
        let change = |who: &Viewer, change: MemberChange| {
            change_membership(&db, room, who, &change)
                .unwrap()
                .expect("a change")
        };
        change(&alice, MemberChange::SetRole(user("bob"), Role::Member));
        change(&alice, MemberChange::SetRole(user("bob"), Role::Moderator));
        change(&alice, MemberChange::SetRole(user("carol"), Role::Member));
        change(&alice, MemberChange::Remove(user("carol")));
        change(&alice, MemberChange::SetRole(user("dave"), Role::Member));
        change(&alice, MemberChange::Kick(user("dave")));
        let ban = change(&alice, MemberChange::Ban(user("eve"), Some(60_000)));
        assert!(ban.until.is_some(), "a ban for a while says until when");
        change(&alice, MemberChange::Unban(user("eve")));
        let mute = change(&alice, MemberChange::Mute(user("bob"), None));
        assert_eq!(mute.until, None, "a mute for ever has no end");
        change(&alice, MemberChange::Unmute(user("bob")));
        change(&viewer("bob"), MemberChange::Remove(user("bob")));
        let mut kinds = Vec::new();
        for logged in crate::changes_after(&db, 0, 100).unwrap() {
            if logged.event != crate::ChangeEvent::Membership {
                continue;
            }
            let sqlite = logged.data.get();
            let event: MembershipEvent = serde_json::from_str(sqlite).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), sqlite);
            kinds.push(event.change);
        }
        assert_eq!(
            kinds,
            [
                K::Added,
                K::Added,
                K::Role,
                K::Added,
                K::Removed,
                K::Added,
                K::Kicked,
                K::Banned,
                K::Unbanned,
                K::Muted,
                K::Unmuted,
                K::Left
            ],
            "the owner's own membership first, then every kind"
        );
    }

    #[test]
    fn a_dm_is_one_room_per_pair_from_either_side() {
        let db = db();
        let (room, created) = open_dm(&db, &user("bob"), &user("alice")).unwrap();
        assert!(created);
        assert_eq!(room.visibility, Visibility::Dm);
        let (again, created) = open_dm(&db, &user("alice"), &user("bob")).unwrap();
        assert_eq!((again.id, created), (room.id, false));
        assert_eq!(
            change_membership(
                &db,
                room.id,
                &viewer("alice"),
                &MemberChange::SetRole(user("eve"), Role::Member)
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
        assert_eq!(post(&db, room.id, "eve"), Err(ApiError::RoomNotFound));
        assert!(post(&db, room.id, "bob").is_ok());
        assert!(open_dm(&db, &user("bob"), &user("bob")).is_err());
    }

    #[test]
    fn a_ban_keeps_a_user_out_of_a_public_room_but_not_from_reading_it() {
        let db = db();
        let name = RoomName::parse("lobby").unwrap();
        let room = create_owned_room(&db, &name, Visibility::Public, &user("alice"))
            .unwrap()
            .id;
        change_membership(
            &db,
            room,
            &viewer("alice"),
            &MemberChange::Ban(user("eve"), None),
        )
        .unwrap();
        let access = visible_room(&db, room, &viewer("eve")).unwrap();
        assert_eq!(access.check_join(&viewer("eve")), Err(ApiError::Banned));
        assert_eq!(post(&db, room, "eve"), Err(ApiError::Banned));
        let operator = Viewer {
            user: Some(user("root")),
            sees_all: true,
        };
        change_membership(&db, room, &operator, &MemberChange::Unban(user("eve"))).unwrap();
        assert!(post(&db, room, "eve").is_ok());
    }
}
