//! Which endpoint a request is for: method and path to a [`Route`], with the
//! room id already validated. Unknown paths are `404`, known paths with the
//! wrong method `405`. The path routed is the one below the component's
//! mount point ([`Mount`]), from Spin's `spin-path-info` header.

use chatroom_core::{ApiError, Moderation, parse_message_id, parse_room_id, path_segment};

use crate::internal::{self, InternalRoute, ResolveError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    ListRooms,
    CreateRoom,
    GetRoom(i64),
    ListMessages(i64),
    PostMessage(i64),
    RoomUsers(i64),
    /// `GET /chatrooms/{id}/changes`: the room's change log.
    Changes(i64),
    GetMessage(i64, i64),
    EditMessage(i64, i64),
    DeleteMessage(i64, i64),
    /// `PUT /chatrooms/{id}/messages/{mid}/reactions/{emoji}`; the emoji
    /// decoded from the path, validated with the rest of the action.
    AddReaction(i64, i64, String),
    RemoveReaction(i64, i64, String),
    /// `PUT /chatrooms/{id}/read`
    MarkRead(i64),
    /// `GET /users/{name}/unread`
    Unread(String),
    /// `DELETE /users/{name}`: erase the user's messages, reactions and
    /// read positions.
    ForgetUser(String),
    /// `GET /chatrooms/{id}/members`
    Members(i64),
    /// A membership or moderation change naming a user:
    /// `PUT`/`DELETE /chatrooms/{id}/members/{name}`, `POST .../kicks/{name}`,
    /// `PUT`/`DELETE .../bans/{name}` and `.../mutes/{name}`.
    Moderate(i64, String, Moderation),
    /// `POST /dms`: the DM of the token's user and another.
    OpenDm,
    OpenApi,
    /// Edge mode's token-protected API (`/internal/...`).
    Internal(InternalRoute),
}

/// Why a request matched no route.
#[derive(Debug)]
pub enum NoRoute {
    /// The path exists but not for this method; carries the `Allow` value.
    Method(&'static str),
    Error(ApiError),
}

impl From<ApiError> for NoRoute {
    fn from(e: ApiError) -> Self {
        NoRoute::Error(e)
    }
}

/// Where the component is mounted: the request path split into the prefix
/// the manifest's route took (`/api` for `route = "/api/..."`) and the
/// path below it, which is what the endpoints are matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount<'a> {
    prefix: &'a str,
    path_info: &'a str,
}

impl<'a> Mount<'a> {
    /// `path` is the request's path; `path_info` the last `spin-path-info`
    /// value (Spin appends its own after any the client sent), or `None`
    /// outside Spin, where the whole path is routed.
    pub fn new(path: &'a str, path_info: Option<&'a [u8]>) -> Result<Self, ApiError> {
        let Some(info) = path_info else {
            return Ok(Mount {
                prefix: "",
                path_info: path,
            });
        };
        let info = std::str::from_utf8(info).map_err(|_| {
            ApiError::BadRequest("the spin-path-info header is not valid UTF-8".into())
        })?;
        Ok(match path.strip_suffix(info) {
            Some(prefix) => Mount {
                prefix,
                path_info: info,
            },
            // A path info that is not the end of the path is not Spin's:
            // route the whole path rather than something the client made up.
            None => Mount {
                prefix: "",
                path_info: path,
            },
        })
    }

    /// The path below the mount point, starting with `/` (or empty).
    pub fn path_info(&self) -> &'a str {
        self.path_info
    }

    /// The mount point: empty at the root, else `/api` and the like.
    pub fn prefix(&self) -> &'a str {
        self.prefix
    }
}

/// Resolves `method` and `path` (without the query string).
pub fn resolve(method: &str, path: &str) -> Result<Route, NoRoute> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let (allow, route) = match segments.as_slice() {
        ["healthz"] => ("GET", (method == "GET").then_some(Route::Health)),
        ["openapi.json"] => ("GET", (method == "GET").then_some(Route::OpenApi)),
        ["chatrooms"] => (
            "GET, POST",
            match method {
                "GET" => Some(Route::ListRooms),
                "POST" => Some(Route::CreateRoom),
                _ => None,
            },
        ),
        ["chatrooms", id] => {
            let id = parse_room_id(id)?;
            ("GET", (method == "GET").then_some(Route::GetRoom(id)))
        }
        ["chatrooms", id, "messages"] => {
            let id = parse_room_id(id)?;
            (
                "GET, POST",
                match method {
                    "GET" => Some(Route::ListMessages(id)),
                    "POST" => Some(Route::PostMessage(id)),
                    _ => None,
                },
            )
        }
        ["chatrooms", id, "users"] => {
            let id = parse_room_id(id)?;
            ("GET", (method == "GET").then_some(Route::RoomUsers(id)))
        }
        ["chatrooms", id, "changes"] => {
            let id = parse_room_id(id)?;
            ("GET", (method == "GET").then_some(Route::Changes(id)))
        }
        ["chatrooms", id, "read"] => {
            let id = parse_room_id(id)?;
            ("PUT", (method == "PUT").then_some(Route::MarkRead(id)))
        }
        ["chatrooms", id, "messages", mid] => {
            let (id, mid) = (parse_room_id(id)?, parse_message_id(mid)?);
            (
                "GET, PATCH, DELETE",
                match method {
                    "GET" => Some(Route::GetMessage(id, mid)),
                    "PATCH" => Some(Route::EditMessage(id, mid)),
                    "DELETE" => Some(Route::DeleteMessage(id, mid)),
                    _ => None,
                },
            )
        }
        ["chatrooms", id, "messages", mid, "reactions", emoji] => {
            let (id, mid) = (parse_room_id(id)?, parse_message_id(mid)?);
            let emoji = path_segment(emoji)?;
            (
                "PUT, DELETE",
                match method {
                    "PUT" => Some(Route::AddReaction(id, mid, emoji)),
                    "DELETE" => Some(Route::RemoveReaction(id, mid, emoji)),
                    _ => None,
                },
            )
        }
        ["chatrooms", id, "members"] => {
            let id = parse_room_id(id)?;
            ("GET", (method == "GET").then_some(Route::Members(id)))
        }
        [
            "chatrooms",
            id,
            kind @ ("members" | "kicks" | "bans" | "mutes"),
            name,
        ] => {
            let (id, name) = (parse_room_id(id)?, path_segment(name)?);
            let (allow, moderation) = match (*kind, method) {
                ("members", "PUT") => ("PUT, DELETE", Some(Moderation::SetRole)),
                ("members", "DELETE") => ("PUT, DELETE", Some(Moderation::Remove)),
                ("members", _) => ("PUT, DELETE", None),
                ("kicks", "POST") => ("POST", Some(Moderation::Kick)),
                ("kicks", _) => ("POST", None),
                ("bans", "PUT") => ("PUT, DELETE", Some(Moderation::Ban)),
                ("bans", "DELETE") => ("PUT, DELETE", Some(Moderation::Unban)),
                ("mutes", "PUT") => ("PUT, DELETE", Some(Moderation::Mute)),
                ("mutes", "DELETE") => ("PUT, DELETE", Some(Moderation::Unmute)),
                _ => ("PUT, DELETE", None),
            };
            (allow, moderation.map(|m| Route::Moderate(id, name, m)))
        }
        ["dms"] => ("POST", (method == "POST").then_some(Route::OpenDm)),
        ["users", name] => {
            let name = path_segment(name)?;
            (
                "DELETE",
                (method == "DELETE").then_some(Route::ForgetUser(name)),
            )
        }
        ["users", name, "unread"] => {
            let name = path_segment(name)?;
            ("GET", (method == "GET").then_some(Route::Unread(name)))
        }
        ["internal", rest @ ..] => {
            return match internal::resolve(method, rest) {
                Ok(route) => Ok(Route::Internal(route)),
                Err(ResolveError::Method(allow)) => Err(NoRoute::Method(allow)),
                Err(ResolveError::Api(e)) => Err(NoRoute::Error(e)),
            };
        }
        _ => return Err(NoRoute::Error(ApiError::NotFound)),
    };
    route.ok_or(NoRoute::Method(allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_endpoint() {
        assert_eq!(resolve("GET", "/healthz").unwrap(), Route::Health);
        assert_eq!(resolve("GET", "/chatrooms").unwrap(), Route::ListRooms);
        assert_eq!(resolve("POST", "/chatrooms/").unwrap(), Route::CreateRoom);
        assert_eq!(resolve("GET", "/chatrooms/7").unwrap(), Route::GetRoom(7));
        assert_eq!(
            resolve("POST", "/chatrooms/7/messages").unwrap(),
            Route::PostMessage(7)
        );
        assert_eq!(
            resolve("GET", "/chatrooms/7/users").unwrap(),
            Route::RoomUsers(7)
        );
        assert_eq!(
            resolve("PATCH", "/chatrooms/7/messages/9").unwrap(),
            Route::EditMessage(7, 9)
        );
        assert_eq!(
            resolve("PUT", "/chatrooms/7/messages/9/reactions/%F0%9F%91%8D").unwrap(),
            Route::AddReaction(7, 9, "👍".into())
        );
        assert_eq!(
            resolve("GET", "/users/al%20ice/unread").unwrap(),
            Route::Unread("al ice".into())
        );
        assert_eq!(
            resolve("DELETE", "/chatrooms/7/bans/b%C3%B6b").unwrap(),
            Route::Moderate(7, "böb".into(), Moderation::Unban)
        );
        assert_eq!(
            resolve("POST", "/chatrooms/7/kicks/bob").unwrap(),
            Route::Moderate(7, "bob".into(), Moderation::Kick)
        );
        assert_eq!(resolve("POST", "/dms").unwrap(), Route::OpenDm);
        assert!(matches!(
            resolve("GET", "/chatrooms/7/mutes/bob"),
            Err(NoRoute::Method("PUT, DELETE"))
        ));
        assert!(matches!(
            resolve("POST", "/chatrooms/7/messages/9"),
            Err(NoRoute::Method("GET, PATCH, DELETE"))
        ));
        assert!(matches!(
            resolve("GET", "/chatrooms/7/messages/x"),
            Err(NoRoute::Error(ApiError::InvalidMessageId))
        ));
    }

    #[test]
    fn the_mount_splits_the_path_at_spin_path_info() {
        let m = Mount::new("/api/chatrooms/7", Some(b"/chatrooms/7")).unwrap();
        assert_eq!((m.prefix(), m.path_info()), ("/api", "/chatrooms/7"));
        let m = Mount::new("/chatrooms", Some(b"/chatrooms")).unwrap();
        assert_eq!((m.prefix(), m.path_info()), ("", "/chatrooms"));
        let m = Mount::new("/chatrooms", None).unwrap();
        assert_eq!((m.prefix(), m.path_info()), ("", "/chatrooms"));
        let m = Mount::new("/api/chatrooms", Some(b"/elsewhere")).unwrap();
        assert_eq!((m.prefix(), m.path_info()), ("", "/api/chatrooms"));
        assert_eq!(
            Mount::new("/x", Some(b"\xff")).unwrap_err().code(),
            "bad_request"
        );
    }

    #[test]
    fn refuses_bad_ids_unknown_paths_and_methods() {
        assert!(matches!(
            resolve("GET", "/chatrooms/x/messages"),
            Err(NoRoute::Error(ApiError::InvalidRoomId))
        ));
        assert!(matches!(
            resolve("GET", "/nope"),
            Err(NoRoute::Error(ApiError::NotFound))
        ));
        assert!(matches!(
            resolve("GET", "/"),
            Err(NoRoute::Error(ApiError::NotFound))
        ));
        assert!(matches!(
            resolve("DELETE", "/chatrooms/1"),
            Err(NoRoute::Method("GET"))
        ));
    }
}
