//! The conversation around the messages (issue 20), as members see it.
//! So far: who is typing. A `typing` event reaches the room's other
//! members as `typing` `{"room_id", "username", "typing"}`, throttled to
//! one announcement per 2 s per typist, ended by `typing: false`, by
//! leaving, by disconnecting, or by 5 s without a refresh; refused outside
//! the room or with a bad payload; and never stored. In edge mode it
//! crosses sidecars through Redis.

use std::path::Path;
use std::time::{Duration, Instant};

use chatroom_tests::Stack;
use chatroom_tests::edge::{EdgeRest, TOKEN};
use chatroom_tests::http::{create_room, get_json};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::SocketClient;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(400);

/// Two members of one room, joined, with their join announcements taken.
async fn two_members(url: &str, room: i64) -> (SocketClient, SocketClient) {
    let ann = SocketClient::connect(url).await;
    let bob = SocketClient::connect(url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    ann.drain("user_joined", QUIET).await;
    bob.drain("user_joined", Duration::ZERO).await;
    (ann, bob)
}

fn typing(room: i64, on: bool) -> Value {
    json!({"room_id": room, "typing": on})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_members_see_who_is_typing_throttled_until_they_stop() {
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "Typing").await;
    let (ann, bob) = two_members(&stack.url, room).await;

    let ack = ann.call("typing", json!({"room_id": room})).await;
    assert_eq!(ack, json!({"ok": true, "room_id": room, "typing": true}));
    assert_eq!(
        bob.expect("typing").await,
        json!({"room_id": room, "username": "ann", "typing": true})
    );
    // Keystrokes within the throttle refresh it without a new broadcast.
    for _ in 0..5 {
        ann.call("typing", typing(room, true)).await;
    }
    assert!(bob.drain("typing", QUIET).await.is_empty());
    assert!(
        ann.drain("typing", Duration::ZERO).await.is_empty(),
        "the typist is not told about itself"
    );
    // After the throttle, a refresh is announced again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    ann.call("typing", typing(room, true)).await;
    assert_eq!(bob.expect("typing").await["typing"], true);

    ann.call("typing", typing(room, false)).await;
    assert_eq!(
        bob.expect("typing").await,
        json!({"room_id": room, "username": "ann", "typing": false})
    );
    // A second stop says nothing more.
    ann.call("typing", typing(room, false)).await;
    assert!(bob.drain("typing", QUIET).await.is_empty());

    // Typing is never stored: the history has no trace of it.
    let history = get_json(&stack.url, &format!("/chatrooms/{room}/messages")).await;
    assert_eq!(history, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typist_that_goes_quiet_leaves_or_disconnects_stops_typing() {
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "Quiet").await;
    let (ann, bob) = two_members(&stack.url, room).await;

    // No refresh: the server says it stopped after about 5 s.
    ann.call("typing", typing(room, true)).await;
    let (_, started) = bob.expect_timed("typing").await;
    let (stopped, at) = bob.expect_timed("typing").await;
    assert_eq!(stopped["typing"], false, "{stopped}");
    let quiet = at - started;
    assert!(
        quiet >= Duration::from_millis(4500) && quiet < Duration::from_millis(7000),
        "expired after {quiet:?}"
    );

    // Leaving the room while typing.
    ann.call("typing", typing(room, true)).await;
    assert_eq!(bob.expect("typing").await["typing"], true);
    ann.call("leave_room", json!({"room_id": room})).await;
    assert_eq!(bob.expect("typing").await["typing"], false);

    // Disconnecting while typing.
    bob.call("typing", typing(room, true)).await;
    let carol = SocketClient::connect(&stack.url).await;
    carol.join(room, "carol").await;
    let before = Instant::now();
    bob.disconnect().await;
    let stopped = carol.expect("typing").await;
    assert_eq!(
        stopped,
        json!({"room_id": room, "username": "bob", "typing": false})
    );
    assert!(before.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_outside_a_room_or_malformed_is_refused() {
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "Refused").await;
    let ann = SocketClient::connect(&stack.url).await;
    let ack = ann.call("typing", typing(room, true)).await;
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["code"], "not_in_room", "{ack}");
    assert_eq!(ann.expect("error").await["code"], "not_in_room");
    ann.join(room, "ann").await;
    for (bad, code) in [
        (json!({"room_id": room, "typing": "yes"}), "invalid_payload"),
        (json!({"typing": true}), "invalid_room_id"),
        (json!("typing"), "invalid_payload"),
    ] {
        let ack = ann.call("typing", bad.clone()).await;
        assert_eq!(ack["ok"], false, "{bad}");
        assert_eq!(ack["code"], code, "{bad}: {ack}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_crosses_edge_sidecars_through_redis() {
    let redis = RedisServer::start();
    let rest = EdgeRest::host(Path::new(env!("CARGO_BIN_EXE_host-process")), Some(&redis)).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_sidecar-process"));
    let flags = |node| ["--redis", redis.url.as_str(), "--node-id", node];
    let a = SidecarProcess::start_edge(bin, &rest.url, TOKEN, &flags("typing-a")).await;
    let b = SidecarProcess::start_edge(bin, &rest.url, TOKEN, &flags("typing-b")).await;
    let room = create_room(&a.url, "Across").await;
    let ann = SocketClient::connect(&a.url).await;
    let bob = SocketClient::connect(&b.url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    // Both subscriptions are up once a presence event has crossed.
    bob.expect("user_joined").await;
    ann.call("typing", typing(room, true)).await;
    let seen = loop {
        let event = bob.expect("typing").await;
        if event["username"] == "ann" {
            break event;
        }
    };
    assert_eq!(
        seen,
        json!({"room_id": room, "username": "ann", "typing": true})
    );
    ann.call("typing", typing(room, false)).await;
    assert_eq!(bob.expect("typing").await["typing"], false);
}
