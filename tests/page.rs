//! The chat page (docs/protocol.md §8, `components/page`): served at `/` by its own Spin
//! component beside the REST one, through the host and through the default
//! run, with its files under `/page/`; and the REST API still answering
//! every other path (unknown ones with its JSON `404`). The page's
//! behaviour in a real browser is `tests/browser/chat_page.mjs`.

use chatroom_tests::{DefaultRun, TestServer};
use reqwest::{Client, StatusCode};
use serde_json::Value;

/// Status, content type and body of a `GET`.
async fn fetch(base: &str, path: &str) -> (StatusCode, String, String) {
    let res = Client::new()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, res.text().await.expect("body"))
}

/// `GET /` is the page, and each file it names is served with its type.
async fn assert_page_served(base: &str) {
    let (status, content_type, html) = fetch(base, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(html.starts_with("<!doctype html>"), "{html:.80}");
    for (path, kind, marker) in [
        (
            "/page/app.js",
            "text/javascript; charset=utf-8",
            "join_room",
        ),
        (
            "/page/socketio.js",
            "text/javascript; charset=utf-8",
            "EIO=4",
        ),
        ("/page/style.css", "text/css; charset=utf-8", "@media"),
    ] {
        if path != "/page/socketio.js" {
            assert!(html.contains(path), "the page names {path}");
        }
        let (status, content_type, body) = fetch(base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type, kind, "{path}");
        assert!(body.contains(marker), "{path} carries {marker:?}");
    }
}

fn assert_not_found_json(status: StatusCode, content_type: &str, body: &str) {
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/json; charset=utf-8");
    let body: Value = serde_json::from_str(body).expect("JSON error");
    assert_eq!(body["code"], "not_found", "{body}");
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn the_host_serves_the_page_at_the_root_and_the_api_elsewhere() {
    let s = TestServer::start().await;
    assert_page_served(&s.url).await;

    // A query string, `/page` and `/page/` lead to the page too.
    for path in ["/?room=1", "/page", "/page/"] {
        let (status, content_type, _) = fetch(&s.url, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type, "text/html; charset=utf-8", "{path}");
    }

    // The REST API keeps every other path.
    let (status, content_type, body) = fetch(&s.url, "/chatrooms").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json; charset=utf-8");
    assert_eq!(body, "[]");
    for path in ["/nope", "/pages", "/index.html", "/page.js"] {
        let (status, content_type, body) = fetch(&s.url, path).await;
        assert_not_found_json(status, &content_type, &body);
    }
    // A file the page does not have: the same JSON shape, from the page.
    let (status, content_type, body) = fetch(&s.url, "/page/nope.js").await;
    assert_not_found_json(status, &content_type, &body);
}

#[tokio::test]
async fn the_page_is_revalidated_cheaply_and_locked_down() {
    let s = TestServer::start().await;
    let client = Client::new();
    let res = client.get(format!("{}/", s.url)).send().await.unwrap();
    let headers = res.headers().clone();
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");

    let again = client
        .get(format!("{}/", s.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = client
        .get(format!("{}/page/app.js", s.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK, "another file, another tag");

    let post = client
        .post(format!("{}/", s.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_default_run_serves_the_page_beside_rest_and_socket_io() {
    let run = DefaultRun::start().await;
    assert_page_served(&run.url).await;
    let (status, content_type, body) = fetch(&run.url, "/nope").await;
    assert_not_found_json(status, &content_type, &body);
    // Socket.IO is still the sidecar's: an Engine.IO polling handshake.
    let (status, _, body) = fetch(&run.url, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("0{"), "{body:.80}");
}
