//! The `spin-*` request headers Spin 4's HTTP trigger gives a component,
//! named and filled as Spin's `compute_default_headers` does:
//!
//! | header | value |
//! |---|---|
//! | `spin-full-url` | `http://` + the `Host` header (`localhost` without one) + path and query |
//! | `spin-path-info` | what the trailing wildcard matched (see [`crate::routes`]) |
//! | `spin-matched-route` | the route with the base (`/` in Spin 4), one trailing slash dropped |
//! | `spin-base-path` | always `/` |
//! | `spin-raw-component-route` | the route as written |
//! | `spin-component-route` | the route without a trailing `/...` |
//! | `spin-client-addr` | the peer's `ip:port` |
//! | `spin-path-match-<name>` | what `:name` matched (`_` in the name becomes `-`, lowercase) |
//!
//! Spin appends these after the client's own headers, so a client that sends
//! `spin-path-info` itself leaves two values, its own first. A component
//! should read the last one; this host does the same as Spin.
//!
//! Before any of that, [`check_head`] refuses what Spin refuses before the
//! component runs: no `Host` header (and no authority in the request
//! line), a `Host` that is not an authority or differs from the request
//! line's, a header value that is not UTF-8. Spin drops the connection for
//! the first ones and answers an empty `500` for the last; this host
//! answers `400` `bad_request` to all of them.

use std::net::SocketAddr;

use hyper::header::{HeaderName, HeaderValue};

use crate::routes::RouteMatch;

/// Why a request head is refused before any component sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.detail())]
pub enum HeadError {
    NoHost,
    BadHost,
    HostMismatch,
    NotUtf8,
}

impl HeadError {
    /// The sentence clients get (fixed text, no request data).
    pub fn detail(self) -> &'static str {
        match self {
            HeadError::NoHost => "The request has no Host header",
            HeadError::BadHost => "The Host header is not a valid authority",
            HeadError::HostMismatch => "The Host header does not match the request line",
            HeadError::NotUtf8 => "A header value is not valid UTF-8",
        }
    }
}

/// Checks the request head as Spin does before running a component (its
/// `set_req_uri` and `prepare_request_headers`).
pub fn check_head<B>(req: &hyper::Request<B>) -> Result<(), HeadError> {
    let host = match req.headers().get(hyper::header::HOST) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| HeadError::BadHost)?;
            Some(
                text.parse::<http::uri::Authority>()
                    .map_err(|_| HeadError::BadHost)?,
            )
        }
    };
    match (host, req.uri().authority()) {
        (None, None) => return Err(HeadError::NoHost),
        (Some(host), Some(uri)) if host != *uri => return Err(HeadError::HostMismatch),
        _ => {}
    }
    if req
        .headers()
        .values()
        .any(|v| std::str::from_utf8(v.as_bytes()).is_err())
    {
        return Err(HeadError::NotUtf8);
    }
    Ok(())
}

/// Spin's header name for a `:name` segment: `SPIN_PATH_MATCH_<NAME>` with
/// `_` turned into `-` and lowercased.
fn path_match_header(name: &str) -> String {
    format!("spin-path-match-{name}")
        .replace('_', "-")
        .to_ascii_lowercase()
}

/// Appends Spin's request headers for an HTTP component.
pub fn add_spin_headers<B>(req: &mut hyper::Request<B>, matched: &RouteMatch, client: SocketAddr) {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut values = vec![
        ("spin-path-info".to_owned(), matched.path_info.clone()),
        (
            "spin-full-url".to_owned(),
            format!("http://{host}{path_and_query}"),
        ),
        ("spin-matched-route".to_owned(), matched.based_route.clone()),
        ("spin-base-path".to_owned(), "/".to_owned()),
        (
            "spin-raw-component-route".to_owned(),
            matched.raw_route.clone(),
        ),
        (
            "spin-component-route".to_owned(),
            matched.component_route.clone(),
        ),
        ("spin-client-addr".to_owned(), client.to_string()),
    ];
    values.extend(
        matched
            .named
            .iter()
            .map(|(name, value)| (path_match_header(name), value.clone())),
    );
    let headers = req.headers_mut();
    for (name, value) in values {
        // A name or value that cannot be a header is left out, as Spin's
        // wasi:http executor leaves it out.
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Router;

    #[test]
    fn heads_spin_refuses_are_refused() {
        let head = |uri: &str, headers: &[(&str, &[u8])]| {
            let mut req = hyper::Request::builder().uri(uri);
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            check_head(&req.body(()).unwrap())
        };
        assert_eq!(head("/x", &[("host", b"a:1")]), Ok(()));
        assert_eq!(head("http://a:1/x", &[]), Ok(()));
        assert_eq!(head("http://a:1/x", &[("host", b"a:1")]), Ok(()));
        assert_eq!(head("/x", &[]), Err(HeadError::NoHost));
        assert_eq!(head("/x", &[("host", b"a b")]), Err(HeadError::BadHost));
        assert_eq!(
            head("http://b/x", &[("host", b"a")]),
            Err(HeadError::HostMismatch)
        );
        assert_eq!(
            head("/x", &[("host", b"a"), ("x-bin", b"caf\xc3\xa9")]),
            Ok(())
        );
        assert_eq!(
            head("/x", &[("host", b"a"), ("x-bin", b"\xff")]),
            Err(HeadError::NotUtf8)
        );
    }

    #[test]
    fn named_segments_become_spin_path_match_headers() {
        assert_eq!(path_match_header("userId"), "spin-path-match-userid");
        assert_eq!(path_match_header("user_id"), "spin-path-match-user-id");
    }

    #[test]
    fn headers_for_a_named_wildcard_route() {
        let router = Router::build([("/foo/:userid/...", 0, "c")]).unwrap();
        let matched = router.route("/foo/42/bar").unwrap();
        let mut req = hyper::Request::builder()
            .uri("/foo/42/bar?key1=value1")
            .header("host", "fermyon.dev")
            .header("spin-path-info", "/spoofed")
            .body(())
            .unwrap();
        add_spin_headers(&mut req, &matched, "127.0.0.1:8777".parse().unwrap());
        let get = |name: &str| -> Vec<&str> {
            req.headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(
            get("spin-full-url"),
            ["http://fermyon.dev/foo/42/bar?key1=value1"]
        );
        assert_eq!(get("spin-path-info"), ["/spoofed", "/bar"]);
        assert_eq!(get("spin-matched-route"), ["/foo/:userid/..."]);
        assert_eq!(get("spin-base-path"), ["/"]);
        assert_eq!(get("spin-raw-component-route"), ["/foo/:userid/..."]);
        assert_eq!(get("spin-component-route"), ["/foo/:userid"]);
        assert_eq!(get("spin-client-addr"), ["127.0.0.1:8777"]);
        assert_eq!(get("spin-path-match-userid"), ["42"]);
    }
}
