//! Refuses Socket.IO from browser origins that are not allowed (docs/protocol.md §7).
//!
//! CORS headers only tell a browser whether a page may read a response; a
//! websocket upgrade is not subject to CORS at all, and a polling handshake
//! still reaches the server. So when allowed origins are configured (not
//! `*`), every request under `/socket.io/` (the polling handshake, its GETs
//! and POSTs, and the websocket upgrade) that carries an `Origin` header not
//! in the list is answered `403` with `{"detail", "code":
//! "origin_not_allowed"}` before it reaches Socket.IO. Requests with no
//! `Origin` (non-browser clients) pass, as does all other HTTP (REST is left
//! to CORS).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

/// The origins allowed to open Socket.IO connections; `None` allows any.
#[derive(Clone, Debug)]
pub struct AllowedOrigins(Option<Arc<HashSet<String>>>);

impl AllowedOrigins {
    /// From `--cors-origin`: empty or containing `*` allows any. Origins are
    /// compared exactly, as CORS compares them (`https://chat.example`).
    pub fn new(origins: &[String]) -> Self {
        if origins.is_empty() || origins.iter().any(|o| o == "*") {
            AllowedOrigins(None)
        } else {
            AllowedOrigins(Some(Arc::new(origins.iter().cloned().collect())))
        }
    }

    fn allows(&self, origin: &[u8]) -> bool {
        match &self.0 {
            None => true,
            Some(list) => std::str::from_utf8(origin).is_ok_and(|o| list.contains(o)),
        }
    }
}

/// Middleware (`axum::middleware::from_fn_with_state`): the `403` for a
/// Socket.IO request from an origin not allowed, else the inner service.
pub async fn check(State(allowed): State<AllowedOrigins>, req: Request, next: Next) -> Response {
    if crate::is_socket_io(req.uri().path())
        && let Some(origin) = req.headers().get(header::ORIGIN)
        && !allowed.allows(origin.as_bytes())
    {
        tracing::debug!(origin = ?origin, "Socket.IO request from an origin not allowed");
        return crate::forward::error_response(&chatroom_core::ApiError::OriginNotAllowed);
    }
    next.run(req).await
}
