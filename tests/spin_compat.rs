//! Fidelity with real Spin: the same requests, sent to `spin up` and to the
//! project's host on the same `.wasm` (each on a fresh state directory),
//! must get the same status, headers that matter, and body (timestamps
//! aside). Runs where a Spin CLI was found when this package was built
//! (`SPIN_BIN`, or `spin` on PATH; see `build.rs`) and then fails if that
//! Spin does not start; elsewhere `cargo test` lists it as ignored.

use chatroom_tests::http::create_room;
use chatroom_tests::raw::refuses_oversized_bodies_cleanly;
use chatroom_tests::spin::{SpinUp, SpinUpOptions, ask};
use chatroom_tests::{TestServer, workspace_root};
use reqwest::{Client, Method};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn the_host_answers_like_spin_up() {
    let state = tempfile::tempdir().unwrap();
    let manifest = workspace_root().join("spin.toml");
    let spin_up = SpinUp::start(SpinUpOptions::new(&manifest, state.path()), "/healthz").await;
    let spin_url = spin_up.url.clone();
    let client = Client::new();
    let ours = TestServer::start().await;

    let big = format!(
        "{{\"sender\":\"a\",\"message\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let script: Vec<(Method, &str, String)> = vec![
        (Method::GET, "/healthz", String::new()),
        (Method::GET, "/chatrooms", String::new()),
        (Method::POST, "/chatrooms", r#"{"name":"General"}"#.into()),
        (Method::POST, "/chatrooms", r#"{"name":"GENERAL"}"#.into()),
        (
            Method::POST,
            "/chatrooms?name=Caf%C3%A9%20%F0%9F%90%B1",
            String::new(),
        ),
        (Method::POST, "/chatrooms", r#"{"name":"   "}"#.into()),
        (Method::POST, "/chatrooms", "{".into()),
        (Method::GET, "/chatrooms", String::new()),
        (Method::GET, "/chatrooms/2", String::new()),
        (Method::GET, "/chatrooms/99", String::new()),
        (Method::GET, "/chatrooms/abc", String::new()),
        (
            Method::POST,
            "/chatrooms/1/messages",
            r#"{"sender":"Alice","message":"Hello"}"#.into(),
        ),
        (
            Method::POST,
            "/chatrooms/1/messages",
            r#"{"sender":"Bob","content":"Hi"}"#.into(),
        ),
        (
            Method::POST,
            "/chatrooms/1/messages?sender=Carol&content=q",
            String::new(),
        ),
        (
            Method::POST,
            "/chatrooms/1/messages",
            r#"{"sender":"x"}"#.into(),
        ),
        (
            Method::POST,
            "/chatrooms/9/messages",
            r#"{"sender":"x","message":"y"}"#.into(),
        ),
        (Method::POST, "/chatrooms/1/messages", big),
        (Method::GET, "/chatrooms/1/messages", String::new()),
        (
            Method::GET,
            "/chatrooms/1/messages?after=1&limit=1",
            String::new(),
        ),
        (Method::GET, "/chatrooms/1/messages?before=3", String::new()),
        (Method::GET, "/chatrooms/1/messages?limit=0", String::new()),
        (Method::GET, "/chatrooms/1/users", String::new()),
        (Method::GET, "/chatrooms/9/users", String::new()),
        // Conversations: edits, deletes, reactions, the change log, reads.
        (Method::GET, "/chatrooms/1/messages/1", String::new()),
        (
            Method::PATCH,
            "/chatrooms/1/messages/1",
            r#"{"sender":"Alice","message":"Hello, edited"}"#.into(),
        ),
        (
            Method::PATCH,
            "/chatrooms/1/messages/1",
            r#"{"sender":"Bob","message":"not mine"}"#.into(),
        ),
        (
            Method::PUT,
            "/chatrooms/1/messages/1/reactions/%F0%9F%91%8D",
            r#"{"username":"Bob"}"#.into(),
        ),
        (
            Method::PUT,
            "/chatrooms/1/messages/1/reactions/:tada:",
            r#"{"username":"Carol"}"#.into(),
        ),
        (
            Method::PUT,
            "/chatrooms/1/messages/1/reactions/x",
            r#"{"username":"Carol"}"#.into(),
        ),
        (
            Method::DELETE,
            "/chatrooms/1/messages/1/reactions/:tada:?username=Carol",
            String::new(),
        ),
        (
            Method::DELETE,
            "/chatrooms/1/messages/2?sender=Bob",
            String::new(),
        ),
        (
            Method::PATCH,
            "/chatrooms/1/messages/2",
            r#"{"sender":"Bob","message":"again"}"#.into(),
        ),
        (Method::GET, "/chatrooms/1/messages/99", String::new()),
        (Method::POST, "/chatrooms/1/messages/1", String::new()),
        (Method::GET, "/chatrooms/1/messages", String::new()),
        (Method::GET, "/chatrooms/1/changes", String::new()),
        (
            Method::GET,
            "/chatrooms/1/changes?after=3&limit=2",
            String::new(),
        ),
        (Method::GET, "/chatrooms/9/changes", String::new()),
        (
            Method::PUT,
            "/chatrooms/1/read",
            r#"{"username":"Carol","message_id":1}"#.into(),
        ),
        (
            Method::PUT,
            "/chatrooms/1/read",
            r#"{"username":"Carol","message_id":99}"#.into(),
        ),
        (Method::GET, "/users/Carol/unread", String::new()),
        (Method::GET, "/users/Nobody/unread", String::new()),
        (Method::DELETE, "/chatrooms", String::new()),
        (Method::GET, "/nope", String::new()),
        // The chat page's component beside the API.
        (Method::GET, "/", String::new()),
        (Method::GET, "/?room=1", String::new()),
        (Method::GET, "/page", String::new()),
        (Method::GET, "/page/", String::new()),
        (Method::GET, "/page/app.js", String::new()),
        (Method::GET, "/page/socketio.js", String::new()),
        (Method::GET, "/page/style.css", String::new()),
        (Method::GET, "/page/nope.js", String::new()),
        (Method::GET, "/pages", String::new()),
        (Method::POST, "/", "x".into()),
    ];
    for (method, path, body) in &script {
        let theirs = ask(&client, &spin_url, method, path, body).await;
        let mine = ask(&client, &ours.url, method, path, body).await;
        assert_eq!(mine, theirs, "{method} {path}");
    }
    eprintln!(
        "compared {} requests with real Spin: identical",
        script.len()
    );
}

/// Under `spin up` too (which discards nothing itself), the component
/// answers 1 MB and 20 MB bodies, and ones announced with `Expect:
/// 100-continue`, with `413` and never a reset connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn oversized_bodies_get_413_under_spin_up_too() {
    let state = tempfile::tempdir().unwrap();
    let manifest = workspace_root().join("spin.toml");
    let spin_up = SpinUp::start(SpinUpOptions::new(&manifest, state.path()), "/healthz").await;
    let room = create_room(&spin_up.url, "Big").await;
    refuses_oversized_bodies_cleanly(&spin_up.url, room, "spin up").await;
}
