//! Erasing a user (docs/protocol.md §2.6), through the default run with
//! identity on: only the user's own token or an operator's erases them;
//! every message they sent becomes a tombstone (the room's members get
//! `message_deleted` live, and a `since` replays it), their reactions and
//! read positions go, and their texts leave the database files.

use std::sync::OnceLock;

use chatroom_core::auth::TokenKey;
use chatroom_front::access::AccessConfig;
use chatroom_host::SpinHost;
use chatroom_tests::DefaultRun;
use chatroom_tests::http::call;
use chatroom_tests::socket::SocketClient;
use reqwest::Method;
use serde_json::json;

const SECRET: &str = "forget-test-secret";

fn token(user: &str, roles: &[&str]) -> String {
    chatroom_tests::tokens::signed(SECRET, user, roles)
}

fn auth_host() -> &'static SpinHost {
    static HOST: OnceLock<SpinHost> = OnceLock::new();
    HOST.get_or_init(|| {
        chatroom_tests::host_with_variables(&[("SPIN_VARIABLE_AUTH_SECRET", SECRET)])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_erased_leaves_tombstones_everyone_sees() {
    let run = DefaultRun::start_on(
        auth_host(),
        |c| c.auth = TokenKey::new(SECRET),
        &AccessConfig::default(),
    )
    .await;
    let (alice, bob) = (token("alice", &[]), token("bob", &[]));
    let rooms = format!("{}/chatrooms", run.url);
    let mut ids = Vec::new();
    for name in ["One", "Two"] {
        let (status, room) = call(
            Method::POST,
            &rooms,
            Some(&alice),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(status, 201, "{room}");
        ids.push(room["id"].as_i64().unwrap());
    }
    let (one, two) = (ids[0], ids[1]);
    let watcher = SocketClient::connect_as(&run.url, &bob).await;
    assert_eq!(
        watcher.call("join_room", json!({"room_id": one})).await["ok"],
        true
    );
    let secret = format!("alice-secret-{}", std::process::id());
    let mut alices = Vec::new();
    for (room, text) in [
        (one, secret.clone()),
        (one, "second".into()),
        (two, "elsewhere".into()),
    ] {
        let (status, m) = call(
            Method::POST,
            &format!("{rooms}/{room}/messages"),
            Some(&alice),
            Some(json!({"message": text})),
        )
        .await;
        assert_eq!(status, 201, "{m}");
        alices.push(m["id"].as_i64().unwrap());
    }
    let (_, bobs) = call(
        Method::POST,
        &format!("{rooms}/{one}/messages"),
        Some(&bob),
        Some(json!({"message": "bob's"})),
    )
    .await;
    let emoji = format!(
        "{rooms}/{one}/messages/{}/reactions/%F0%9F%91%8D",
        bobs["id"]
    );
    assert_eq!(call(Method::PUT, &emoji, Some(&alice), None).await.0, 200);
    let read = format!("{rooms}/{one}/read");
    assert_eq!(
        call(
            Method::PUT,
            &read,
            Some(&alice),
            Some(json!({"message_id": bobs["id"]}))
        )
        .await
        .0,
        200
    );
    watcher.expect_n("new_message", 3).await;
    watcher.expect("reaction_added").await;

    // Nobody else erases alice; without a token, nobody at all.
    let forget = format!("{}/users/alice", run.url);
    let refused = call(Method::DELETE, &forget, Some(&bob), None).await;
    assert_eq!(
        (refused.0, &refused.1["code"]),
        (403, &json!("forbidden")),
        "{}",
        refused.1
    );
    assert_eq!(call(Method::DELETE, &forget, None, None).await.0, 401);

    let (status, done) = call(Method::DELETE, &forget, Some(&alice), None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done,
        json!({"username": "alice", "messages_erased": 3, "reactions_removed": 1, "read_positions_removed": 1})
    );
    // Live, in order: her two messages in room One deleted, her reaction gone.
    let live = watcher
        .expect_any_n(&["message_deleted", "reaction_removed"], 3)
        .await;
    let seen: Vec<(String, i64)> = live
        .iter()
        .map(|(event, data)| (event.clone(), data["message_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("message_deleted".to_owned(), alices[0]),
            ("message_deleted".to_owned(), alices[1]),
            ("reaction_removed".to_owned(), bobs["id"].as_i64().unwrap()),
        ]
    );
    // Stored so: tombstones in place, bob's message without her reaction,
    // no read position, and a late joiner's `since` replays the deletes.
    let (_, history) = call(Method::GET, &format!("{rooms}/{one}/messages"), None, None).await;
    let history = history.as_array().unwrap().clone();
    assert!(
        history[..2]
            .iter()
            .all(|m| m["deleted"] == true && m["content"] == ""),
        "{history:?}"
    );
    assert!(history[2].get("reactions").is_none(), "{:?}", history[2]);
    let (_, unread) = call(
        Method::GET,
        &format!("{}/users/alice/unread", run.url),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(unread["rooms"], json!([]));
    let late = SocketClient::connect_as(&run.url, &bob).await;
    let ack = late
        .call("join_room", json!({"room_id": two, "since": alices[2] }))
        .await;
    assert_eq!(ack["replayed"], 1, "{ack}");
    assert_eq!(
        late.expect("message_deleted").await["message_id"],
        alices[2]
    );
    // And the text has left the files.
    chatroom_tests::disk::erased(&run.db_path, &secret).await;

    // An operator erases anyone; a repeat erases nothing more.
    let root = token("root", &["admin"]);
    let (status, again) = call(Method::DELETE, &forget, Some(&root), None).await;
    assert_eq!((status, &again["messages_erased"]), (200, &json!(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_needs_identity_on() {
    let run = DefaultRun::start().await;
    let (status, body) = call(
        Method::DELETE,
        &format!("{}/users/alice", run.url),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("identity_required")),
        "{body}"
    );
}
