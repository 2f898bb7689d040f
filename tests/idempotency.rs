//! Idempotent sends (docs/protocol.md §3.5, "Idempotent sends"): a
//! `send_message` with a `client_id`, or a REST post with an
//! `Idempotency-Key` header (or a `client_id` field), repeated by the same
//! sender in the same room stores nothing, delivers nothing and answers
//! with the first message; the same key with other text is `422`
//! `idempotency_conflict`. Two repeats racing on two edge sidecars are
//! settled by the database. Absence is proven with a fence: a later
//! message on the same connection.

use std::path::Path;
use std::time::Duration;

use chatroom_tests::DefaultRun;
use chatroom_tests::edge::{EdgeRest, TOKEN};
use chatroom_tests::http::{create_room, history_ids};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::SocketClient;
use serde_json::{Value, json};

/// A REST post with `key` as its `Idempotency-Key`: status, replay
/// header, body.
async fn post_keyed(url: &str, room: i64, key: &str, text: &str) -> (u16, Option<String>, Value) {
    let res = reqwest::Client::new()
        .post(format!("{url}/chatrooms/{room}/messages"))
        .header("Idempotency-Key", key)
        .json(&json!({"sender": "alice", "message": text}))
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (status, replayed, res.json().await.unwrap_or(Value::Null))
}

/// Over REST and over a socket at `url`: repeats store one message each,
/// the room gets each once, a reused key with other text is refused.
async fn repeats_are_stored_once(url: &str) {
    let room = create_room(url, "Once").await;
    let watcher = SocketClient::connect(url).await;
    watcher.join(room, "watcher").await;

    let (status, replayed, first) = post_keyed(url, room, "rest-1", "over REST").await;
    assert_eq!((status, replayed), (201, None), "{first}");
    let (status, replayed, again) = post_keyed(url, room, "rest-1", "over REST").await;
    assert_eq!(
        (status, replayed.as_deref()),
        (201, Some("true")),
        "{again}"
    );
    assert_eq!(again["id"], first["id"]);
    let (status, _, clash) = post_keyed(url, room, "rest-1", "something else").await;
    assert_eq!(
        (status, &clash["code"]),
        (422, &json!("idempotency_conflict")),
        "{clash}"
    );

    let sender = SocketClient::connect(url).await;
    sender.join(room, "alice").await;
    let send = |text: &str| json!({"room_id": room, "message": text, "client_id": "sock-1"});
    let one = sender.call("send_message", send("over a socket")).await;
    let two = sender.call("send_message", send("over a socket")).await;
    assert_eq!(
        (one["ok"].clone(), two["ok"].clone()),
        (json!(true), json!(true)),
        "{one} {two}"
    );
    assert_eq!(one["id"], two["id"]);
    let clash = sender.call("send_message", send("changed my mind")).await;
    assert_eq!(clash["code"], "idempotency_conflict", "{clash}");
    let bad = sender
        .call(
            "send_message",
            json!({"room_id": room, "message": "x", "client_id": "no spaces"}),
        )
        .await;
    assert_eq!(bad["code"], "invalid_payload", "{bad}");

    // Edits: a repeated key changes nothing, over REST and over a socket.
    let edit = |key: &str, text: &str| {
        reqwest::Client::new()
            .patch(format!("{url}/chatrooms/{room}/messages/{}", first["id"]))
            .header("Idempotency-Key", key.to_owned())
            .json(&json!({"sender": "alice", "message": text}))
            .send()
    };
    let res = edit("edit-1", "edited over REST").await.expect("edit");
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(res.json::<Value>().await.unwrap()["version"], 2);
    let res = edit("edit-1", "edited over REST").await.expect("edit");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.json::<Value>().await.unwrap()["version"], 2);
    let res = edit("edit-1", "another text").await.expect("edit");
    assert_eq!(res.status(), 422);
    let socket_edit = json!({"room_id": room, "message_id": one["id"],
        "message": "edited over a socket", "client_id": "sock-edit"});
    for _ in 0..2 {
        let ack = sender.call("edit_message", socket_edit.clone()).await;
        assert_eq!(
            (&ack["ok"], &ack["version"]),
            (&json!(true), &json!(2)),
            "{ack}"
        );
    }
    // Every action takes a key, and refuses a bad one.
    let bad = sender
        .call(
            "add_reaction",
            json!({"room_id": room, "message_id": one["id"], "emoji": "👍", "client_id": "no spaces"}),
        )
        .await;
    assert_eq!(bad["code"], "invalid_payload", "{bad}");

    // The fence: a message without a key, stored after all of them.
    let fence = sender
        .call("send_message", json!({"room_id": room, "message": "fence"}))
        .await;
    let got: Vec<(String, Value)> = watcher
        .expect_any_n(&["new_message", "message_edited"], 5)
        .await
        .into_iter()
        .map(|(event, data)| {
            let id = data.get("message").map_or(&data, |m| m)["id"].clone();
            (event, id)
        })
        .collect();
    let (new, edited) = ("new_message".to_owned(), "message_edited".to_owned());
    assert_eq!(
        got,
        [
            (new.clone(), first["id"].clone()),
            (new.clone(), one["id"].clone()),
            (edited.clone(), first["id"].clone()),
            (edited, one["id"].clone()),
            (new, fence["id"].clone()),
        ]
    );
    for event in ["new_message", "message_edited"] {
        let more = watcher.drain(event, Duration::ZERO).await;
        assert!(more.is_empty(), "a repeat was delivered: {more:?}");
    }
    let ids = history_ids(url, room).await;
    assert_eq!(ids.len(), 3, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_stored_once_in_the_default_run() {
    let run = DefaultRun::start().await;
    repeats_are_stored_once(&run.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run idempotent sends beside real Spin"
)]
async fn repeats_are_stored_once_beside_spin_up() {
    let layout = chatroom_tests::spin::BesideSpinUp::start(
        Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        Vec::new(),
        &[],
    )
    .await;
    repeats_are_stored_once(&layout.sidecar.url).await;
}

/// The same key sent at once through two edge sidecars (a client that
/// reconnected elsewhere and retried): one message, both acks name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_racing_on_two_edge_sidecars_are_one_message() {
    let redis = RedisServer::start();
    let rest = EdgeRest::host(Path::new(env!("CARGO_BIN_EXE_host-process")), Some(&redis)).await;
    let sidecar = |node: &'static str| {
        let (rest, redis) = (rest.url.clone(), redis.url.clone());
        async move {
            SidecarProcess::start_edge(
                Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
                &rest,
                TOKEN,
                &["--node-id", node, "--redis", &redis],
            )
            .await
        }
    };
    let (a, b) = (sidecar("race-a").await, sidecar("race-b").await);
    repeats_are_stored_once(&a.url).await;
    let room = create_room(&a.url, "Race").await;
    let on_a = SocketClient::connect(&a.url).await;
    let on_b = SocketClient::connect(&b.url).await;
    for round in 0..20 {
        let payload = json!({"room_id": room, "sender": "alice", "message": format!("m{round}"), "client_id": format!("race-{round}")});
        let (x, y) = tokio::join!(
            on_a.call("send_message", payload.clone()),
            on_b.call("send_message", payload)
        );
        assert_eq!(
            (x["ok"].clone(), y["ok"].clone()),
            (json!(true), json!(true)),
            "{x} {y}"
        );
        assert_eq!(x["id"], y["id"], "round {round}");
    }
    assert_eq!(history_ids(&rest.url, room).await.len(), 20);
}

/// The window is a setting (`--client-id-window-secs`, and the
/// component's `client_id_window_secs`, which the default run sets from
/// the same flag): with one second, a key used again within it is still
/// the first message's, and once it has passed the key names a new
/// message, over REST and over a socket alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_names_a_new_message_once_the_window_has_passed() {
    let host = chatroom_tests::host_with_variables(&[("SPIN_VARIABLE_CLIENT_ID_WINDOW_SECS", "1")]);
    let run = DefaultRun::start_on(
        &host,
        |c| c.client_id_window = Duration::from_secs(1),
        &chatroom_front::access::AccessConfig::default(),
    )
    .await;
    let url = run.url.as_str();
    let room = create_room(url, "Window").await;
    let socket = SocketClient::connect(url).await;
    socket.join(room, "alice").await;
    let send = |text: &str| json!({"room_id": room, "message": text, "client_id": "sock-w"});

    let (status, _, first) = post_keyed(url, room, "rest-w", "one").await;
    assert_eq!(status, 201, "{first}");
    let sent = socket.call("send_message", send("one")).await;
    assert_eq!(sent["ok"], true, "{sent}");
    let (status, _, clash) = post_keyed(url, room, "rest-w", "two").await;
    assert_eq!(status, 422, "{clash}");
    let clash = socket.call("send_message", send("two")).await;
    assert_eq!(clash["code"], "idempotency_conflict", "{clash}");

    // Time passing, not a wait for something to happen.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, replayed, later) = post_keyed(url, room, "rest-w", "two").await;
    assert_eq!((status, replayed), (201, None), "{later}");
    assert_ne!(later["id"], first["id"]);
    let again = socket.call("send_message", send("two")).await;
    assert_eq!(again["ok"], true, "{again}");
    assert_ne!(again["id"], sent["id"]);
    assert_eq!(history_ids(url, room).await.len(), 4);
}

/// A sidecar killed with `kill -9` between storing messages and the
/// client seeing their acks: the client reconnects to the restarted
/// sidecar and sends every message it has no ack for again, with the same
/// `client_id`s. Those stored before the kill keep their ids, the rest
/// are stored now, and the room holds each once (the keys live in the
/// database, not in the process that died).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_sidecar_died_unacknowledged_is_one_message() {
    let rest = chatroom_tests::TestServer::start().await;
    let bin = Path::new(env!("CARGO_BIN_EXE_sidecar-process"));
    let mut sidecar = SidecarProcess::start(bin, &rest.db_path, &rest.url).await;
    let url = sidecar.url.clone();
    let room = create_room(&url, "Killed").await;
    let send = |i: usize| json!({"room_id": room, "message": format!("m{i}"), "client_id": format!("k{i}")});

    let first = SocketClient::connect(&url).await;
    first.join(room, "alice").await;
    // Sent without waiting for acks: this client never sees them.
    for i in 0..40 {
        first.emit("send_message", send(i)).await;
    }
    // Killed once some are stored (read from the REST host, not the
    // sidecar), whatever its acks were doing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let before = loop {
        let stored = history_ids(&rest.url, room).await;
        if stored.len() >= 5 {
            break stored;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    sidecar.kill_9();
    let at_kill = history_ids(&rest.url, room).await;
    assert!(at_kill.len() >= before.len());
    sidecar.restart().await;

    let again = SocketClient::connect(&url).await;
    again.join(room, "alice").await;
    let mut acked = Vec::new();
    for i in 0..40 {
        let ack = again.call("send_message", send(i)).await;
        assert_eq!(ack["ok"], true, "{ack}");
        acked.push(ack["id"].as_i64().unwrap());
    }
    assert_eq!(
        &acked[..at_kill.len()],
        &at_kill[..],
        "stored before the kill"
    );
    assert_eq!(
        history_ids(&rest.url, room).await,
        acked,
        "each once, in order"
    );
}
