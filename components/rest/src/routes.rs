//! Which endpoint a request is for: method and path to a [`Route`], with the
//! room id already validated. Unknown paths are `404`, known paths with the
//! wrong method `405`.

use chatroom_core::{ApiError, parse_room_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    ListRooms,
    CreateRoom,
    GetRoom(i64),
    ListMessages(i64),
    PostMessage(i64),
    RoomUsers(i64),
    OpenApi,
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
