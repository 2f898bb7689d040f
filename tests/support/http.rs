//! The REST calls tests and benchmarks make, by base URL (the host, the
//! sidecar forwarding to it, or the default run). Each asserts the success
//! status, so a helper never hides a failed request.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// Creates a room; its id.
pub async fn create_room(base: &str, name: &str) -> i64 {
    let res = Client::new()
        .post(format!("{base}/chatrooms"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("POST /chatrooms");
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.expect("room JSON")["id"]
        .as_i64()
        .expect("room id")
}

/// Posts a message; the stored message object.
pub async fn post_message(base: &str, room: i64, sender: &str, text: &str) -> Value {
    let res = Client::new()
        .post(format!("{base}/chatrooms/{room}/messages"))
        .json(&json!({ "sender": sender, "message": text }))
        .send()
        .await
        .expect("POST message");
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("message JSON")
}

/// `GET` of a JSON document that must answer `200`.
pub async fn get_json(base: &str, path: &str) -> Value {
    let res = Client::new()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    res.json().await.expect("JSON body")
}

/// `GET /chatrooms/{room}/users`.
pub async fn room_users(base: &str, room: i64) -> Value {
    get_json(base, &format!("/chatrooms/{room}/users")).await
}

/// The ids of a room's whole history, oldest first.
pub async fn history_ids(base: &str, room: i64) -> Vec<i64> {
    ids(get_json(base, &format!("/chatrooms/{room}/messages"))
        .await
        .as_array()
        .expect("an array of messages"))
}

/// The `id` of each message object.
pub fn ids(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["id"].as_i64().expect("message id"))
        .collect()
}

/// Waits (up to 30 s) until `base` answers `/healthz`.
pub async fn wait_until_up(base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 30 s) until `base` answers `/healthz` with `200`: a
/// sidecar says `503` until it serves Socket.IO.
pub async fn wait_until_ready(base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = Client::new().get(format!("{base}/healthz")).send().await;
        if answer.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of `GET {base}/healthz` (`None`: no answer).
pub async fn health(base: &str) -> Option<u16> {
    Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// One REST call as it is, with an optional bearer token and JSON body:
/// the status and the JSON body (`null` for none). For tests that check
/// refusals as well as successes.
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Client::new().request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
