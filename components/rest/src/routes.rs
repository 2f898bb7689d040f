//! Which endpoint a request is for: [`ROUTES`], the API's table of method,
//! path and handler (docs/protocol.md §2, and edge mode's internal API,
//! §6), matched by [`crate::router`]; and [`Mount`], the part of the path
//! below the component's mount point, from Spin's `spin-path-info` header,
//! which is what the table is matched on.

use chatroom_core::ApiError;
use chatroom_core::Moderation::{Ban, Kick, Mute, Remove, SetRole, Unban, Unmute};

use crate::router::{Route, route};
use crate::{internal, messages, rooms, users};

/// Every endpoint. Where a path takes several methods, their order here is
/// the order of its `Allow`.
pub static ROUTES: &[Route] = &[
    route!("GET", "/healthz", crate::health),
    route!("GET", "/openapi.json", crate::openapi),
    route!("GET", "/chatrooms", rooms::list),
    route!("POST", "/chatrooms", rooms::create),
    route!("GET", "/chatrooms/{room}", rooms::get),
    route!("GET", "/chatrooms/{room}/messages", messages::list),
    route!("POST", "/chatrooms/{room}/messages", messages::post),
    route!("GET", "/chatrooms/{room}/users", rooms::users),
    route!("GET", "/chatrooms/{room}/changes", rooms::changes),
    route!("PUT", "/chatrooms/{room}/read", messages::mark_read),
    route!("GET", "/chatrooms/{room}/messages/{message}", messages::get),
    route!(
        "PATCH",
        "/chatrooms/{room}/messages/{message}",
        messages::edit
    ),
    route!(
        "DELETE",
        "/chatrooms/{room}/messages/{message}",
        messages::delete
    ),
    route!(
        "PUT",
        "/chatrooms/{room}/messages/{message}/reactions/{emoji}",
        messages::add_reaction
    ),
    route!(
        "DELETE",
        "/chatrooms/{room}/messages/{message}/reactions/{emoji}",
        messages::remove_reaction
    ),
    route!("GET", "/chatrooms/{room}/members", rooms::members_of),
    route!(
        "PUT",
        "/chatrooms/{room}/members/{name}",
        rooms::moderate,
        SetRole
    ),
    route!(
        "DELETE",
        "/chatrooms/{room}/members/{name}",
        rooms::moderate,
        Remove
    ),
    route!(
        "POST",
        "/chatrooms/{room}/kicks/{name}",
        rooms::moderate,
        Kick
    ),
    route!("PUT", "/chatrooms/{room}/bans/{name}", rooms::moderate, Ban),
    route!(
        "DELETE",
        "/chatrooms/{room}/bans/{name}",
        rooms::moderate,
        Unban
    ),
    route!(
        "PUT",
        "/chatrooms/{room}/mutes/{name}",
        rooms::moderate,
        Mute
    ),
    route!(
        "DELETE",
        "/chatrooms/{room}/mutes/{name}",
        rooms::moderate,
        Unmute
    ),
    route!("POST", "/dms", rooms::open_dm),
    route!("DELETE", "/users/{name}", users::forget),
    route!("GET", "/users/{name}/unread", users::unread),
    route!("GET", "/internal/feed", internal::feed),
    route!("GET", "/internal/feed/head", internal::feed_head),
    route!("POST", "/internal/messages", internal::store_messages),
    route!("POST", "/internal/actions", internal::act),
    route!("POST", "/internal/prune", internal::prune),
    route!(
        "GET",
        "/internal/rooms/{room_raw}/access",
        internal::room_access
    ),
    route!("PUT", "/internal/nodes/{node}", internal::renew_lease),
    route!("DELETE", "/internal/nodes/{node}", internal::drop_node),
    route!(
        "PUT",
        "/internal/nodes/{node}/presence/{sid}/{room_raw}",
        internal::join
    ),
    route!(
        "DELETE",
        "/internal/nodes/{node}/presence/{sid}/{room_raw}",
        internal::leave
    ),
    route!(
        "DELETE",
        "/internal/nodes/{node}/presence/{sid}",
        internal::disconnect
    ),
    route!(
        "POST",
        "/internal/nodes/{node}/departures",
        internal::departures
    ),
];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{NoRoute, Params, find};

    /// The pattern `method` and `path` resolve to, and its parameters.
    fn resolve(method: &str, path: &str) -> Result<(&'static str, Params), NoRoute> {
        find(ROUTES, method, path).map(|(route, params)| (route.pattern, params))
    }

    fn room(room: i64) -> Params {
        Params {
            room,
            ..Params::default()
        }
    }

    #[test]
    fn resolves_every_endpoint() {
        assert_eq!(resolve("GET", "/healthz").unwrap().0, "/healthz");
        assert_eq!(resolve("GET", "/chatrooms").unwrap().0, "/chatrooms");
        let (pattern, _) = resolve("POST", "/chatrooms/").unwrap();
        assert_eq!(pattern, "/chatrooms");
        assert_eq!(
            resolve("GET", "/chatrooms/7").unwrap(),
            ("/chatrooms/{room}", room(7))
        );
        assert_eq!(
            resolve("POST", "/chatrooms/7/messages").unwrap(),
            ("/chatrooms/{room}/messages", room(7))
        );
        let (pattern, params) = resolve("PATCH", "/chatrooms/7/messages/9").unwrap();
        assert_eq!(pattern, "/chatrooms/{room}/messages/{message}");
        assert_eq!((params.room, params.message), (7, 9));
        let (_, params) = resolve("PUT", "/chatrooms/7/messages/9/reactions/%F0%9F%91%8D").unwrap();
        assert_eq!(params.emoji, "👍");
        let (pattern, params) = resolve("GET", "/users/al%20ice/unread").unwrap();
        assert_eq!(
            (pattern, params.name.as_str()),
            ("/users/{name}/unread", "al ice")
        );
        let (pattern, params) = resolve("DELETE", "/chatrooms/7/bans/b%C3%B6b").unwrap();
        assert_eq!(
            (pattern, params.name.as_str()),
            ("/chatrooms/{room}/bans/{name}", "böb")
        );
        assert_eq!(resolve("POST", "/dms").unwrap().0, "/dms");
        assert_eq!(
            resolve("GET", "/chatrooms/7/mutes/bob"),
            Err(NoRoute::Method("PUT, DELETE".into()))
        );
        assert_eq!(
            resolve("POST", "/chatrooms/7/messages/9"),
            Err(NoRoute::Method("GET, PATCH, DELETE".into()))
        );
        assert_eq!(
            resolve("GET", "/chatrooms/7/kicks/bob"),
            Err(NoRoute::Method("POST".into()))
        );
        assert_eq!(
            resolve("GET", "/chatrooms/7/messages/x"),
            Err(NoRoute::Error(ApiError::InvalidMessageId))
        );
    }

    #[test]
    fn resolves_the_internal_endpoints_leaving_their_parameters_raw() {
        assert_eq!(
            resolve("GET", "/internal/feed").unwrap().0,
            "/internal/feed"
        );
        assert_eq!(
            resolve("GET", "/internal/feed/head").unwrap().0,
            "/internal/feed/head"
        );
        let (_, params) = resolve("PUT", "/internal/nodes/n-1").unwrap();
        assert_eq!(params.node, "n-1");
        let (_, params) = resolve("PUT", "/internal/nodes/a%20b/presence/s/x").unwrap();
        assert_eq!(
            (
                params.node.as_str(),
                params.sid.as_str(),
                params.room_raw.as_str()
            ),
            ("a%20b", "s", "x")
        );
        assert_eq!(
            resolve("GET", "/internal/nodes/n"),
            Err(NoRoute::Method("PUT, DELETE".into()))
        );
        assert_eq!(
            resolve("GET", "/internal/nope"),
            Err(NoRoute::Error(ApiError::NotFound))
        );
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
        assert_eq!(
            resolve("GET", "/chatrooms/x/messages"),
            Err(NoRoute::Error(ApiError::InvalidRoomId))
        );
        // A bad id is refused whatever the method.
        assert_eq!(
            resolve("PUT", "/chatrooms/x"),
            Err(NoRoute::Error(ApiError::InvalidRoomId))
        );
        assert_eq!(
            resolve("GET", "/nope"),
            Err(NoRoute::Error(ApiError::NotFound))
        );
        assert_eq!(resolve("GET", "/"), Err(NoRoute::Error(ApiError::NotFound)));
        assert_eq!(
            resolve("DELETE", "/chatrooms/1"),
            Err(NoRoute::Method("GET".into()))
        );
    }
}
