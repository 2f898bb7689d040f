//! The chat page (docs/protocol.md §8) as a Spin HTTP component of its own, beside the
//! REST component on the same origin: `spin.toml` routes `/` (exact) and
//! `/page/...` here and everything else to the REST API. The files live in
//! `assets/` and are compiled in with `include_str!`, so the page needs no
//! file system, no outbound network and no CDN: the server alone serves it.
//!
//! Assets are found by Spin's `spin-path-info` header (what the route's
//! trailing wildcard matched: `""` for the exact `/` route, `/app.js` for
//! `/page/app.js`), the same way the REST component routes, so the answers
//! are the same under `spin up` and the project's host. Only `GET` and
//! `HEAD` are answered; the request body is never read.

use chatroom_core::{ApiError, CONTENT_TYPE};
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;

/// One file of the page.
struct Asset {
    /// The path below `/page` (`""` is the page itself, at `/`).
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../assets/index.html"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/style.css"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        path: "/socketio.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/socketio.js"),
    },
];

/// Scripts and styles only from this origin, Socket.IO's websocket to it,
/// and nothing framing the page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

#[http_component]
fn handle(req: IncomingRequest) -> Response {
    let method = req.method();
    if !matches!(method, Method::Get | Method::Head) {
        return error(&ApiError::MethodNotAllowed)
            .into_builder()
            .header("allow", "GET, HEAD")
            .build();
    }
    let headers = req.headers();
    let path_info = headers.get("spin-path-info");
    let path_info = path_info
        .last()
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or_default();
    // `/page` and `/page/` lead to the page as well as `/`.
    let wanted = if path_info == "/" { "" } else { path_info };
    let Some(asset) = ASSETS.iter().find(|a| a.path == wanted) else {
        return error(&ApiError::NotFound);
    };
    let etag = etag(asset.body);
    let fresh = headers
        .get("if-none-match")
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = Response::builder();
    response
        .status(if fresh { 304 } else { 200 })
        .header("etag", etag)
        // Revalidated on every load: a new build is picked up at once, an
        // unchanged one costs a 304.
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer");
    if asset.path.is_empty() {
        response.header("content-security-policy", CSP);
    }
    if !fresh {
        response
            .header("content-type", asset.content_type)
            .body(asset.body.as_bytes().to_vec());
    }
    response.build()
}

/// An error as the API answers it (`ApiError::to_json`, the REST content
/// type), so a client sees the same kind of answer whichever component it
/// reached.
fn error(err: &ApiError) -> Response {
    Response::builder()
        .status(err.status())
        .header("content-type", CONTENT_TYPE)
        .body(err.to_json())
        .build()
}

/// A strong validator of a file's bytes (64-bit FNV-1a): the files are
/// built in, so it changes exactly when a build changes them.
fn etag(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}
