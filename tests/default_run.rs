//! The default run (`chatroom`): REST and Socket.IO on one port, in one
//! process, and a client written for the original Python server (one base
//! URL, `?name=`, `content`, user counts around a disconnect) works
//! unchanged.

use chatroom_tests::DefaultRun;
use chatroom_tests::http::{get_json, room_users};
use chatroom_tests::socket::SocketClient;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn user_count(url: &str, room: i64) -> i64 {
    room_users(url, room).await["user_count"]
        .as_i64()
        .expect("user_count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_clients_work_against_one_base_url() {
    let run = DefaultRun::start().await;
    let url = run.url.as_str();
    let http = Client::new();
    assert_eq!(get_json(url, "/healthz").await, json!({"status": "ok"}));

    // The original's Bruno form of room creation.
    let res = http
        .post(format!("{url}/chatrooms?name=General"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let room = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(user_count(url, room).await, 0);

    // Its test: two clients join and send with `content`.
    let one = SocketClient::connect(url).await;
    let two = SocketClient::connect(url).await;
    // Joined one after the other (as its test did, with pauses), so each
    // sees the joins in the same order.
    one.emit("join_room", json!({"room_id": room, "username": "user1"}))
        .await;
    assert_eq!(one.expect("user_joined").await["username"], "user1");
    two.emit("join_room", json!({"room_id": room, "username": "user2"}))
        .await;
    assert_eq!(one.expect("user_joined").await["username"], "user2");
    assert_eq!(two.expect("user_joined").await["username"], "user2");
    assert_eq!(user_count(url, room).await, 2);
    one.emit(
        "send_message",
        json!({"room_id": room, "sender": "user1", "content": "Hello"}),
    )
    .await;
    for c in [&one, &two] {
        let m = c.expect("new_message").await;
        assert_eq!(
            (&m["sender"], &m["content"]),
            (&json!("user1"), &json!("Hello"))
        );
    }
    two.disconnect().await;
    assert_eq!(one.expect("user_left").await["username"], "user2");
    assert_eq!(user_count(url, room).await, 1);

    // Its REST forms, on the same port, reach the socket too.
    let res = http
        .post(format!(
            "{url}/chatrooms/{room}/messages?sender=bruno&content=hey"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(one.expect("new_message").await["sender"], "bruno");
    let history = get_json(url, &format!("/chatrooms/{room}/messages")).await;
    assert_eq!(history.as_array().map(Vec::len), Some(2));
    assert!(run.db_path.exists(), "data lives in the state directory");
}
