//! Socket.IO keeps each connection's request head (headers, URI and
//! extensions) for as long as the connection lives. hyper parses a head as
//! slices of its 8 KiB read buffer, and axum's `OriginalUri` is one more
//! such slice, so keeping the head kept that whole buffer: about half of
//! what an idle connection cost. [`copy_head`] gives Socket.IO requests a
//! head of their own, sized to what it holds, so the read buffer is freed
//! once the connection is upgraded.
//!
//! A websocket that upgrades a polling session keeps the upgrade request's
//! head too, beside the session's (engineioxide holds it until the
//! websocket closes, unused): [`slim_upgrade`], just outside Socket.IO,
//! leaves that head only the header the upgrade reads.

use axum::extract::{OriginalUri, Request};
use axum::http::header::SEC_WEBSOCKET_KEY;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

/// A copy of `uri` in an allocation of its own.
fn own_uri(uri: &Uri) -> Option<Uri> {
    Uri::try_from(uri.to_string()).ok()
}

/// Middleware: Socket.IO requests go on with their head copied.
pub async fn copy_head(mut req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/socket.io") {
        let headers = req.headers();
        let mut own = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            // A value that came in as a header is a valid header value.
            if let Ok(copied) = HeaderValue::from_bytes(value.as_bytes()) {
                own.append(name.clone(), copied);
            }
        }
        *req.headers_mut() = own;
        if let Some(uri) = own_uri(req.uri()) {
            *req.uri_mut() = uri;
        }
        if let Some(OriginalUri(original)) = req.extensions_mut().get_mut::<OriginalUri>()
            && let Some(uri) = own_uri(original)
        {
            *original = uri;
        }
    }
    next.run(req).await
}

/// Whether `req` upgrades an existing polling session to a websocket.
fn upgrades_session(req: &Request) -> bool {
    req.uri().path().starts_with("/socket.io")
        && req.uri().query().is_some_and(|q| {
            q.split('&').any(|p| p == "transport=websocket")
                && q.split('&').any(|p| p.starts_with("sid="))
        })
}

/// Middleware, innermost: a session upgrade reaches Socket.IO with only
/// its `Sec-WebSocket-Key` header (all the upgrade reads); every middleware
/// before it has seen them all.
pub async fn slim_upgrade(mut req: Request, next: Next) -> Response {
    if upgrades_session(&req) {
        let key = req.headers_mut().remove(SEC_WEBSOCKET_KEY);
        let mut slim = HeaderMap::with_capacity(1);
        if let Some(key) = key {
            slim.insert(SEC_WEBSOCKET_KEY, key);
        }
        *req.headers_mut() = slim;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};

    /// Whether the `x-a` header and the `OriginalUri` a handler sees
    /// still point into the buffer the request was parsed from.
    async fn shares_buffer(path: &'static str) -> (bool, bool) {
        let buffer = Bytes::from(format!("x-a: 1\r\n{path}"));
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let mut req = Request::new(Body::empty());
        let value = HeaderValue::from_maybe_shared(buffer.slice(5..6)).unwrap();
        req.headers_mut().insert("x-a", value);
        *req.uri_mut() = Uri::from_maybe_shared(buffer.slice(8..)).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let record = seen.clone();
        let app = Router::new()
            .fallback(move |req: Request| async move {
                let header = req.headers()["x-a"].as_bytes().as_ptr() as usize;
                let original = req.extensions().get::<OriginalUri>().map(|u| u.0.clone());
                let original = original.map_or(0, |u| u.path().as_ptr() as usize);
                *record.lock().unwrap() = Some((header, original));
            })
            .layer(axum::middleware::from_fn(copy_head));
        let response = tower::ServiceExt::oneshot(app, req).await.unwrap();
        assert!(response.status().is_success());
        let (header, original) = seen.lock().unwrap().take().unwrap();
        (range.contains(&header), range.contains(&original))
    }

    #[test]
    fn only_session_upgrades_are_slimmed() {
        let req = |uri: &str| Request::builder().uri(uri).body(Body::empty()).unwrap();
        assert!(upgrades_session(&req(
            "/socket.io/?EIO=4&transport=websocket&sid=abc"
        )));
        // A websocket opened directly keeps its head: it is the session's.
        assert!(!upgrades_session(&req(
            "/socket.io/?EIO=4&transport=websocket"
        )));
        assert!(!upgrades_session(&req(
            "/socket.io/?EIO=4&transport=polling&sid=abc"
        )));
        assert!(!upgrades_session(&req(
            "/chatrooms?transport=websocket&sid=a"
        )));
    }

    #[tokio::test]
    async fn socket_io_requests_get_a_head_of_their_own() {
        assert_eq!(shares_buffer("/socket.io/?EIO=4").await, (false, false));
        assert_eq!(
            shares_buffer("/chatrooms").await,
            (true, true),
            "other requests are left as they are"
        );
    }
}
