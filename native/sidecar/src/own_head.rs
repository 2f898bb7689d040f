//! Socket.IO keeps each session's request head (headers, URI and
//! extensions) for as long as the session lives, and a websocket's upgrade
//! request head for as long as the websocket does; it reads almost none
//! of it. hyper parses a head as slices of its 8 KiB read buffer, and
//! axum's `OriginalUri` is one more such slice, so keeping the head kept
//! that whole buffer; and even copied, the headers and extensions of a
//! browser's request cost an idle connection over a kilobyte.
//! [`for_socket_io`], the innermost middleware, gives Socket.IO requests a
//! head of their own holding only what Engine.IO and our handlers read:
//! the method, a copy of the URI, `Content-Type` (a polling body's
//! encoding), `Sec-WebSocket-Key`, hyper's upgrade handle and the
//! connection's [`ConnectionSlot`]. Every middleware before it (CORS, the
//! origin check, the address limits) has seen the whole head.

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, SEC_WEBSOCKET_KEY};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use hyper::upgrade::OnUpgrade;

use chatroom_front::address_limits::ConnectionSlot;

/// The headers Engine.IO reads.
const READ_BY_ENGINE_IO: [HeaderName; 2] = [CONTENT_TYPE, SEC_WEBSOCKET_KEY];

/// A copy of `uri` in an allocation of its own, of its exact length.
fn own_uri(uri: &Uri) -> Option<Uri> {
    Uri::from_maybe_shared(Bytes::copy_from_slice(uri.to_string().as_bytes())).ok()
}

/// Copies of the headers of `headers` that Engine.IO reads, in a map
/// sized to hold just them.
fn read_headers(headers: &HeaderMap) -> HeaderMap {
    let kept: Vec<(HeaderName, HeaderValue)> = READ_BY_ENGINE_IO
        .iter()
        .filter_map(|name| {
            // A value that came in as a header is a valid header value.
            let value = HeaderValue::from_bytes(headers.get(name)?.as_bytes()).ok()?;
            Some((name.clone(), value))
        })
        .collect();
    let mut own = HeaderMap::with_capacity(kept.len());
    own.extend(kept);
    own
}

/// The extensions of `extensions` that Socket.IO or our handlers read.
fn read_extensions(extensions: &mut Extensions) -> Extensions {
    let mut own = Extensions::new();
    if let Some(upgrade) = extensions.remove::<OnUpgrade>() {
        own.insert(upgrade);
    }
    if let Some(slot) = extensions.remove::<ConnectionSlot>() {
        own.insert(slot);
    }
    own
}

/// Middleware, innermost: Socket.IO requests go on with only the head it
/// reads, copied.
pub async fn for_socket_io(mut req: Request, next: Next) -> Response {
    if chatroom_front::is_socket_io(req.uri().path()) {
        *req.headers_mut() = read_headers(req.headers());
        if let Some(uri) = own_uri(req.uri()) {
            *req.uri_mut() = uri;
        }
        *req.extensions_mut() = read_extensions(req.extensions_mut());
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::OriginalUri;

    /// What a handler behind [`for_socket_io`] sees of a request for
    /// `path` parsed from one buffer: its header names, whether its
    /// `Content-Type` and URI still point into that buffer, and whether
    /// `OriginalUri` is still there.
    async fn seen_behind(path: &'static str) -> (Vec<String>, bool, bool, bool) {
        let buffer = Bytes::from(format!("text/plain\r\n{path}"));
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let mut req = Request::new(Body::empty());
        let value = HeaderValue::from_maybe_shared(buffer.slice(0..10)).unwrap();
        req.headers_mut().insert(CONTENT_TYPE, value);
        req.headers_mut()
            .insert("cookie", HeaderValue::from_static("a=1"));
        let uri = Uri::from_maybe_shared(buffer.slice(12..)).unwrap();
        req.extensions_mut().insert(OriginalUri(uri.clone()));
        *req.uri_mut() = uri;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let record = seen.clone();
        let app = Router::new()
            .fallback(move |req: Request| async move {
                let names = req.headers().keys().map(|n| n.to_string()).collect();
                let content_type = req.headers()[CONTENT_TYPE].as_bytes().as_ptr() as usize;
                let uri = req.uri().path().as_ptr() as usize;
                let original = req.extensions().get::<OriginalUri>().is_some();
                *record.lock().unwrap() = Some((names, content_type, uri, original));
            })
            .layer(axum::middleware::from_fn(for_socket_io));
        let response = tower::ServiceExt::oneshot(app, req).await.unwrap();
        assert!(response.status().is_success());
        let (names, content_type, uri, original) = seen.lock().unwrap().take().unwrap();
        (
            names,
            range.contains(&content_type),
            range.contains(&uri),
            original,
        )
    }

    #[tokio::test]
    async fn socket_io_requests_get_only_what_they_read_in_a_head_of_their_own() {
        assert_eq!(
            seen_behind("/socket.io/?EIO=4&transport=polling").await,
            (vec!["content-type".to_owned()], false, false, false)
        );
        assert_eq!(
            seen_behind("/chatrooms").await,
            (
                vec!["content-type".to_owned(), "cookie".to_owned()],
                true,
                true,
                true
            ),
            "other requests are left as they are"
        );
    }

    #[test]
    fn a_websocket_keeps_its_key_and_its_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(
            SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZQ=="),
        );
        headers.insert("user-agent", HeaderValue::from_static("x"));
        let kept = read_headers(&headers);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[SEC_WEBSOCKET_KEY], "dGhlIHNhbXBsZQ==");

        let mut extensions = Extensions::new();
        extensions.insert(hyper::upgrade::on(Request::new(Body::empty())));
        extensions.insert(OriginalUri(Uri::from_static("/socket.io/")));
        let kept = read_extensions(&mut extensions);
        assert!(kept.get::<OnUpgrade>().is_some());
        assert!(kept.get::<OriginalUri>().is_none());
    }
}
