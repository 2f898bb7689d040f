//! The conversation around the messages, as members see it, through the
//! real `.wasm`, a real SQLite file and real Socket.IO clients.
//!
//! - Edits, deletes and reactions, by REST and by socket, reach every
//!   member as `message_edited`, `message_deleted`, `reaction_added` and
//!   `reaction_removed`, in order with new messages, each carrying the
//!   message as it is now; only the sender edits or deletes; a tombstone
//!   keeps its place with its content gone.
//! - A member who was away and rejoins with `since` gets every change
//!   after it once, in order: edits and deletes too.
//! - Read state: positions per user and room, unread counts, and `read`
//!   receipts to the room only when the reader asks.
//! - Who is typing: a `typing` event reaches the room's other members as
//!   `typing` `{"room_id", "username", "typing"}`, throttled to one
//!   announcement per 2 s per typist, ended by `typing: false`, by
//!   leaving, by disconnecting, or by 5 s without a refresh; refused
//!   outside the room or with a bad payload; and never stored.
//! - In edge mode all of it crosses sidecars (the change log through the
//!   component's feed, typing and receipts through Redis).

use std::path::Path;
use std::time::Duration;

use chatroom_tests::Stack;
use chatroom_tests::edge::{EdgeRest, TOKEN};
use chatroom_tests::http::{create_room, get_json, post_message};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::{FENCE_SENDER, SocketClient, events_before_join_fence};
use serde_json::{Value, json};

/// Two members of one room, joined, with their join announcements taken.
async fn two_members(url: &str, room: i64) -> (SocketClient, SocketClient) {
    let ann = SocketClient::connect(url).await;
    let bob = SocketClient::connect(url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    let joined = ann.expect_n("user_joined", 2).await;
    assert_eq!(
        (&joined[0]["username"], &joined[1]["username"]),
        (&json!("ann"), &json!("bob"))
    );
    assert_eq!(bob.expect("user_joined").await["username"], "bob");
    (ann, bob)
}

/// Asserts that no `event` reached `clients` (members of `room`) before a
/// join fence; the fence socket, to keep.
async fn none_before_fence(
    url: &str,
    room: i64,
    event: &str,
    clients: &[(&SocketClient, &str)],
) -> SocketClient {
    let sockets: Vec<&SocketClient> = clients.iter().map(|(c, _)| *c).collect();
    let (fence, seen) = events_before_join_fence(url, room, event, &sockets).await;
    for ((_, why), seen) in clients.iter().zip(seen) {
        assert!(seen.is_empty(), "{why}: {seen:?}");
    }
    fence
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
    let _fence = none_before_fence(
        &stack.url,
        room,
        "typing",
        &[
            (&bob, "no new broadcast within the throttle"),
            (&ann, "the typist is not told about itself"),
        ],
    )
    .await;
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
    let _fence = none_before_fence(&stack.url, room, "typing", &[(&bob, "a second stop")]).await;

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
    bob.disconnect().await;
    // Stopped by the disconnect itself, before the room hears that bob
    // left (the 5 s expiry would come after that).
    let seen = carol.expect_any_n(&["typing", "user_left"], 2).await;
    assert_eq!(
        seen[0],
        (
            "typing".to_owned(),
            json!({"room_id": room, "username": "bob", "typing": false})
        )
    );
    assert_eq!(
        (seen[1].0.as_str(), &seen[1].1["username"]),
        ("user_left", &json!("bob"))
    );
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

/// A REST call with a JSON body (or none): the status and the JSON answer
/// (`null` for none).
async fn rest(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn refused(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}

/// Events of `names` a client receives within `settle`, as `(name,
/// payload)` in arrival order.
async fn changes_seen(client: &SocketClient, n: usize) -> Vec<(String, Value)> {
    client
        .expect_any_n(
            &[
                "new_message",
                "message_edited",
                "message_deleted",
                "reaction_added",
                "reaction_removed",
            ],
            n,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_reactions_reach_every_member_in_order() {
    let stack = Stack::start().await;
    let url = &stack.url;
    let room = create_room(url, "Changes").await;
    let (ann, bob) = two_members(url, room).await;
    let first = post_message(url, room, "ann", "helo").await["id"]
        .as_i64()
        .unwrap();
    let msg = |id: i64| format!("{url}/chatrooms/{room}/messages/{id}");

    // A socket edit, acknowledged with the message as it is now.
    let ack = ann
        .call(
            "edit_message",
            json!({"room_id": room, "message_id": first, "message": "hello"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        (ack["content"].as_str(), ack["version"].as_i64()),
        (Some("hello"), Some(2))
    );
    // A REST edit by the sender; by anyone else it is refused.
    refused(
        &rest(
            reqwest::Method::PATCH,
            msg(first),
            Some(json!({"sender": "bob", "message": "mine"})),
        )
        .await,
        403,
        "not_sender",
    );
    let (status, edited) = rest(
        reqwest::Method::PATCH,
        msg(first),
        Some(json!({"sender": "ann", "message": "hello all"})),
    )
    .await;
    assert_eq!(
        (status, edited["version"].as_i64()),
        (200, Some(3)),
        "{edited}"
    );
    // Reactions: by REST (the emoji in the path) and by socket.
    let (status, reacted) = rest(
        reqwest::Method::PUT,
        format!("{}/reactions/%F0%9F%91%8D", msg(first)),
        Some(json!({"username": "bob"})),
    )
    .await;
    assert_eq!(status, 200, "{reacted}");
    assert_eq!(
        reacted["reactions"],
        json!([{"emoji": "👍", "count": 1, "users": ["bob"]}])
    );
    let ack = ann
        .call(
            "add_reaction",
            json!({"room_id": room, "message_id": first, "emoji": "👍"}),
        )
        .await;
    assert_eq!(ack["reactions"][0]["count"], 2, "{ack}");
    bob.call(
        "remove_reaction",
        json!({"room_id": room, "message_id": first, "emoji": "👍"}),
    )
    .await;
    let second = post_message(url, room, "bob", "then this").await["id"]
        .as_i64()
        .unwrap();
    // Deleting: refused to others, a tombstone for the sender.
    let ack = bob
        .call(
            "delete_message",
            json!({"room_id": room, "message_id": first}),
        )
        .await;
    assert_eq!(ack["code"], "not_sender", "{ack}");
    assert_eq!(bob.expect("error").await["code"], "not_sender");
    let (status, _) = rest(
        reqwest::Method::DELETE,
        format!("{}?sender=ann", msg(first)),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Every member saw the same changes, in the order they were made.
    let expected = [
        ("new_message", first),
        ("message_edited", first),
        ("message_edited", first),
        ("reaction_added", first),
        ("reaction_added", first),
        ("reaction_removed", first),
        ("new_message", second),
        ("message_deleted", first),
    ];
    for member in [&ann, &bob] {
        let seen = changes_seen(member, expected.len()).await;
        let names: Vec<(&str, i64)> = seen
            .iter()
            .map(|(name, data)| {
                let id = data["message_id"].as_i64().or(data["id"].as_i64()).unwrap();
                (name.as_str(), id)
            })
            .collect();
        assert_eq!(names, expected);
        let seqs: Vec<i64> = seen
            .iter()
            .map(|(_, d)| d["seq"].as_i64().or(d["id"].as_i64()).unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let (_, reaction) = &seen[3];
        assert_eq!(
            (reaction["emoji"].as_str(), reaction["username"].as_str()),
            (Some("👍"), Some("bob"))
        );
        let (_, deleted) = &seen[7];
        assert_eq!(deleted["message"]["deleted"], true, "{deleted}");
        assert_eq!(deleted["message"]["content"], "");
    }
    for seen in changes_before_fence(url, room, &[&ann, &bob]).await {
        assert!(seen.is_empty(), "nothing more: {seen:?}");
    }

    // History keeps the tombstone in its place; edits after it are refused.
    let history = get_json(url, &format!("/chatrooms/{room}/messages")).await;
    assert_eq!(history[0]["id"], first);
    assert_eq!(
        (
            history[0]["deleted"].as_bool(),
            history[0]["content"].as_str()
        ),
        (Some(true), Some(""))
    );
    assert_eq!(history[1], post_message_view(url, room, second).await);
    refused(
        &rest(
            reqwest::Method::PATCH,
            msg(first),
            Some(json!({"sender": "ann", "message": "back"})),
        )
        .await,
        409,
        "message_deleted",
    );
    refused(
        &rest(reqwest::Method::GET, msg(999), None).await,
        404,
        "message_not_found",
    );
    refused(
        &rest(
            reqwest::Method::PUT,
            format!("{}/reactions/nope", msg(second)),
            Some(json!({"username": "x"})),
        )
        .await,
        400,
        "invalid_emoji",
    );
    refused(
        &rest(
            reqwest::Method::PATCH,
            msg(second),
            Some(json!({"message": "who?"})),
        )
        .await,
        400,
        "invalid_username",
    );
    // Nothing else changed: the second message is as it was sent.
    let untouched = get_json(url, &format!("/chatrooms/{room}/messages/{second}")).await;
    assert_eq!(untouched.as_object().unwrap().len(), 5, "{untouched}");
    assert_eq!(untouched["content"], "then this");
}

/// The message `id` as `GET /chatrooms/{room}/messages/{id}` shows it.
async fn post_message_view(url: &str, room: i64, id: i64) -> Value {
    get_json(url, &format!("/chatrooms/{room}/messages/{id}")).await
}

/// The change events each of `clients` got before a fence: a message
/// posted to `room` now, which reaches every member after every change
/// made before it (changes arrive in `seq` order). Empty proves that
/// nothing came twice or late, without a wait.
async fn changes_before_fence(
    url: &str,
    room: i64,
    clients: &[&SocketClient],
) -> Vec<Vec<(String, Value)>> {
    let fence = post_message(url, room, FENCE_SENDER, "fence").await;
    let mut all = Vec::new();
    for c in clients {
        let mut before = Vec::new();
        loop {
            let (name, data) = changes_seen(c, 1).await.remove(0);
            if name == "new_message" && data["id"] == fence["id"] {
                break;
            }
            before.push((name, data));
        }
        all.push(before);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_back_from_away_gets_every_change_once_in_order() {
    let stack = Stack::start().await;
    let url = &stack.url;
    let room = create_room(url, "Away").await;
    let ann = SocketClient::connect(url).await;
    ann.join(room, "ann").await;
    let kept = post_message(url, room, "bob", "keep me").await["id"]
        .as_i64()
        .unwrap();
    let doomed = post_message(url, room, "bob", "oops").await["id"]
        .as_i64()
        .unwrap();
    let seen = changes_seen(&ann, 2).await;
    let last_seen = seen[1].1["id"].as_i64().unwrap();
    ann.disconnect().await;

    // While ann is away: an edit, a reaction, a new message, a delete.
    let bob = SocketClient::connect(url).await;
    bob.join(room, "bob").await;
    bob.call(
        "edit_message",
        json!({"room_id": room, "message_id": kept, "message": "kept, edited"}),
    )
    .await;
    bob.call(
        "add_reaction",
        json!({"room_id": room, "message_id": kept, "emoji": ":tada:"}),
    )
    .await;
    let later = post_message(url, room, "bob", "later").await["id"]
        .as_i64()
        .unwrap();
    bob.call(
        "delete_message",
        json!({"room_id": room, "message_id": doomed}),
    )
    .await;

    // Back, with the last position seen: each change once, in order, then live.
    let ann = SocketClient::connect(url).await;
    let ack = ann
        .call(
            "join_room",
            json!({"room_id": room, "username": "ann", "since": last_seen}),
        )
        .await;
    assert_eq!(ack["replayed"], 4, "{ack}");
    let replayed = changes_seen(&ann, 4).await;
    let names: Vec<&str> = replayed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_edited",
            "reaction_added",
            "new_message",
            "message_deleted"
        ]
    );
    assert_eq!(replayed[0].1["message"]["content"], "kept, edited");
    assert_eq!(replayed[2].1["id"], later);
    assert_eq!(replayed[3].1["message_id"], doomed);
    // Nothing twice: the next change ann gets is the live one.
    post_message(url, room, "bob", "live").await;
    let live = changes_seen(&ann, 1).await;
    assert_eq!(live[0].1["content"], "live", "{live:?}");

    // A client that knows only new_message, rejoining from the start, gets
    // every message in id order (the deleted one as a tombstone), as before.
    let old = SocketClient::connect(url).await;
    old.call("join_room", json!({"room_id": room, "since": 0}))
        .await;
    let messages: Vec<i64> = old
        .expect_n("new_message", 4)
        .await
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    let mut sorted = messages.clone();
    sorted.sort();
    assert_eq!(messages, sorted);
    assert_eq!(messages.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_positions_count_unread_and_receipts_are_opt_in() {
    let stack = Stack::start().await;
    let url = &stack.url;
    let room = create_room(url, "Reading").await;
    let other = create_room(url, "Other").await;
    let (ann, bob) = two_members(url, room).await;
    let one = post_message(url, room, "bob", "1").await["id"]
        .as_i64()
        .unwrap();
    post_message(url, room, "bob", "2").await;
    post_message(url, room, "ann", "mine").await;
    let last = post_message(url, room, "bob", "3").await["id"]
        .as_i64()
        .unwrap();

    // REST: the position moves, unread counts what others wrote after it.
    let (status, read) = rest(
        reqwest::Method::PUT,
        format!("{url}/chatrooms/{room}/read"),
        Some(json!({"username": "ann", "message_id": one})),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        read,
        json!({"room_id": room, "username": "ann", "last_read_id": one, "unread": 2})
    );
    let unread = get_json(url, "/users/ann/unread").await;
    assert_eq!(unread["total"], 2, "{unread}");

    // A socket read mark without a receipt tells nobody.
    let ack = ann
        .call("mark_read", json!({"room_id": room, "message_id": last}))
        .await;
    assert_eq!(
        (ack["ok"].as_bool(), ack["unread"].as_i64()),
        (Some(true), Some(0)),
        "{ack}"
    );
    let _fence = none_before_fence(url, room, "read", &[(&bob, "no receipt asked")]).await;
    // With one, the room's other members see where ann is.
    bob.call(
        "mark_read",
        json!({"room_id": room, "message_id": one, "receipt": true}),
    )
    .await;
    assert_eq!(
        ann.expect("read").await,
        json!({"room_id": room, "username": "bob", "message_id": one})
    );
    let _fence = none_before_fence(url, room, "read", &[(&bob, "not to the reader")]).await;

    let m = post_message(url, other, "bob", "elsewhere").await["id"]
        .as_i64()
        .unwrap();
    rest(
        reqwest::Method::PUT,
        format!("{url}/chatrooms/{other}/read"),
        Some(json!({"username": "ann", "message_id": m})),
    )
    .await;
    post_message(url, other, "bob", "new there").await;
    let unread = get_json(url, "/users/ann/unread").await;
    assert_eq!(unread["total"], 1, "{unread}");
    assert_eq!(unread["rooms"].as_array().unwrap().len(), 2);

    refused(
        &rest(
            reqwest::Method::PUT,
            format!("{url}/chatrooms/{room}/read"),
            Some(json!({"username": "ann", "message_id": 9999})),
        )
        .await,
        404,
        "message_not_found",
    );
    let ack = ann
        .call(
            "mark_read",
            json!({"room_id": room, "message_id": one, "receipt": "yes"}),
        )
        .await;
    assert_eq!(ack["code"], "invalid_payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_cross_edge_sidecars_and_replay_through_the_component() {
    let redis = RedisServer::start();
    let rest_api =
        EdgeRest::host(Path::new(env!("CARGO_BIN_EXE_host-process")), Some(&redis)).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_sidecar-process"));
    let flags = |node| ["--redis", redis.url.as_str(), "--node-id", node];
    let a = SidecarProcess::start_edge(bin, &rest_api.url, TOKEN, &flags("changes-a")).await;
    let b = SidecarProcess::start_edge(bin, &rest_api.url, TOKEN, &flags("changes-b")).await;
    let room = create_room(&a.url, "Edge changes").await;
    let ann = SocketClient::connect(&a.url).await;
    let bob = SocketClient::connect(&b.url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    let sent = ann
        .call(
            "send_message",
            json!({"room_id": room, "message": "from a"}),
        )
        .await;
    let id = sent["id"].as_i64().unwrap();
    assert_eq!(changes_seen(&bob, 1).await[0].1["id"], id);

    // Socket changes on sidecar a are written through the component and
    // reach bob on sidecar b.
    let ack = ann
        .call(
            "edit_message",
            json!({"room_id": room, "message_id": id, "message": "edited on a"}),
        )
        .await;
    assert_eq!(ack["version"], 2, "{ack}");
    let ack = bob
        .call(
            "add_reaction",
            json!({"room_id": room, "message_id": id, "emoji": "🚀"}),
        )
        .await;
    assert_eq!(ack["reactions"][0]["users"], json!(["bob"]), "{ack}");
    let ack = bob
        .call(
            "edit_message",
            json!({"room_id": room, "message_id": id, "message": "hijack"}),
        )
        .await;
    assert_eq!(ack["code"], "not_sender", "{ack}");
    let seen = changes_seen(&bob, 2).await;
    assert_eq!(seen[0].0, "message_edited");
    assert_eq!(seen[0].1["message"]["content"], "edited on a");
    assert_eq!(seen[1].0, "reaction_added");
    let seen = changes_seen(&ann, 3).await;
    assert_eq!(
        seen.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["new_message", "message_edited", "reaction_added"]
    );

    // A read mark goes through the component; its receipt crosses by Redis.
    let ack = bob
        .call(
            "mark_read",
            json!({"room_id": room, "message_id": id, "receipt": true}),
        )
        .await;
    assert_eq!(ack["last_read_id"], id, "{ack}");
    assert_eq!(ann.expect("read").await["username"], "bob");

    // A member rejoining on b replays the change log through the component.
    let carol = SocketClient::connect(&b.url).await;
    let ack = carol
        .call(
            "join_room",
            json!({"room_id": room, "username": "carol", "since": id}),
        )
        .await;
    assert_eq!(ack["replayed"], 2, "{ack}");
    let replayed = changes_seen(&carol, 2).await;
    assert_eq!(replayed[0].0, "message_edited");
    assert_eq!(replayed[1].0, "reaction_added");
    ann.call("delete_message", json!({"room_id": room, "message_id": id}))
        .await;
    assert_eq!(changes_seen(&carol, 1).await[0].0, "message_deleted");
}

/// SQLite's file change counter (bytes 24..28 of the header), which every
/// committed write in rollback mode bumps, and the WAL's length, which
/// every commit in WAL mode grows: together, whether anything was written.
fn file_writes(db: &Path) -> (Vec<u8>, u64) {
    let header = std::fs::read(db).expect("the database file")[24..28].to_vec();
    let wal = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    (header, wal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_never_touches_the_database() {
    // A lease renewal (a write) must not land in the window watched.
    let stack = Stack::start_with(|c| c.presence_lease = Duration::from_secs(3600)).await;
    let room = create_room(&stack.url, "Untouched").await;
    // Joins write presence before they are announced: once both
    // announcements are in, those writes are done.
    let (ann, bob) = two_members(&stack.url, room).await;
    let db = stack.rest.db_path.clone();
    let before = file_writes(&db);
    for i in 0..50 {
        ann.call("typing", typing(room, i % 7 != 6)).await;
    }
    bob.call("typing", typing(room, true)).await;
    // Both sides were told: typing went round without a write.
    assert_eq!(ann.expect("typing").await["username"], "bob");
    assert_eq!(bob.expect("typing").await["username"], "ann");
    assert_eq!(file_writes(&db), before, "typing wrote to the database");
    // The check can see a write: a message moves it.
    post_message(&stack.url, room, "ann", "now a write").await;
    assert_ne!(file_writes(&db), before);
}
