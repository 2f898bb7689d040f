//! `Router`: the API's routes as one table of method, path pattern and
//! handler, and the matching of a request against it. Unknown paths are
//! `404`; a known path with a method it does not take is `405` with the
//! `Allow` of every method the table lists for it. Path parameters are
//! checked as the path is matched, before the method: a bad room id is
//! `400 invalid_room_id` whatever the method.
//!
//! Patterns are written `/chatrooms/{room}/messages/{message}`: `{room}`
//! and `{message}` are ids (checked), `{name}` and `{emoji}` decoded
//! segments, and `{node}`, `{sid}` and `{room_raw}` raw segments the
//! internal API checks only once the token is (so nobody without it learns
//! more than the published shape of the API).

use std::future::Future;
use std::pin::Pin;

use chatroom_core::{ApiError, Query, parse_message_id, parse_room_id, path_segment};
use spin_sdk::http::IncomingRequest;

use crate::Reply;

/// What a handler answers: its reply, or the error rendered for it.
pub type Handled = Pin<Box<dyn Future<Output = Result<Reply, ApiError>>>>;

/// A route's handler.
pub type Handler = fn(Request) -> Handled;

/// One route: a method, a path pattern, its handler.
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub handler: Handler,
}

/// A route of the table: `route!("GET", "/chatrooms/{room}", rooms::get)`,
/// or with what its handler is given besides the request:
/// `route!("POST", "/chatrooms/{room}/kicks/{name}", rooms::moderate, Moderation::Kick)`.
macro_rules! route {
    ($method:literal, $pattern:literal, $handler:path $(, $arg:expr)?) => {
        $crate::router::Route {
            method: $method,
            pattern: $pattern,
            handler: |req| Box::pin($handler(req $(, $arg)?)),
        }
    };
}
pub(crate) use route;

/// A request as a handler gets it: the HTTP request (headers, body), the
/// decoded query, and the path's parameters.
pub struct Request {
    pub http: IncomingRequest,
    pub query: Query,
    pub params: Params,
}

/// The path's parameters, by name; those the route's pattern does not
/// have are left at their defaults.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    pub room: i64,
    pub message: i64,
    pub name: String,
    pub emoji: String,
    pub node: String,
    pub sid: String,
    pub room_raw: String,
}

impl Params {
    fn set(&mut self, name: &str, segment: &str) -> Result<(), ApiError> {
        match name {
            "room" => self.room = parse_room_id(segment)?,
            "message" => self.message = parse_message_id(segment)?,
            "name" => self.name = path_segment(segment)?,
            "emoji" => self.emoji = path_segment(segment)?,
            "node" => self.node = segment.to_owned(),
            "sid" => self.sid = segment.to_owned(),
            "room_raw" => self.room_raw = segment.to_owned(),
            // The table's own patterns name only the parameters above.
            _ => return Err(ApiError::Internal),
        }
        Ok(())
    }
}

/// Why a request matched no route.
#[derive(Debug, PartialEq)]
pub enum NoRoute {
    /// The path exists but not for this method: the `Allow` value.
    Method(String),
    Error(ApiError),
}

impl From<ApiError> for NoRoute {
    fn from(e: ApiError) -> Self {
        NoRoute::Error(e)
    }
}

/// Whether `pattern` has the shape of `segments` (literals equal, as many
/// segments).
fn shape_matches(pattern: &str, segments: &[&str]) -> bool {
    let mut parts = pattern.split('/').skip(1);
    let same = segments.iter().all(|segment| match parts.next() {
        Some(part) if part.starts_with('{') => true,
        Some(part) => part == *segment,
        None => false,
    });
    same && parts.next().is_none()
}

/// The route for `method` and `path` (without the query string), with
/// the path's parameters.
pub fn find(
    routes: &'static [Route],
    method: &str,
    path: &str,
) -> Result<(&'static Route, Params), NoRoute> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut candidates = routes
        .iter()
        .filter(|r| shape_matches(r.pattern, &segments))
        .peekable();
    let Some(first) = candidates.peek() else {
        return Err(NoRoute::Error(ApiError::NotFound));
    };
    let mut params = Params::default();
    for (part, segment) in first.pattern.split('/').skip(1).zip(&segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            params.set(name, segment)?;
        }
    }
    let mut allow = Vec::new();
    for route in candidates {
        if route.method == method {
            return Ok((route, params));
        }
        allow.push(route.method);
    }
    Err(NoRoute::Method(allow.join(", ")))
}
