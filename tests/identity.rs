//! Identity and abuse control (docs/protocol.md §7), through the default run (the real
//! `.wasm` in the host, the sidecar, one SQLite file) with the auth secret
//! set as `chatroom --auth-secret` sets it: the component's `auth_secret`
//! variable and the sidecar's key. Forged, expired, `none` and other-
//! algorithm tokens; sender spoofing over REST and Socket.IO; handshakes
//! without a token; private reads; and the per-address limits of the front
//! (connections, REST writes, room creations), with another client served
//! normally meanwhile. With a Spin CLI, a token is also verified by the
//! component under `spin up`.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use chatroom_core::auth::TokenKey;
use chatroom_front::access::AccessConfig;
use chatroom_front::address_limits::AddressLimitsConfig;
use chatroom_host::SpinHost;
use chatroom_tests::DefaultRun;
use chatroom_tests::raw::Polling;
use chatroom_tests::socket::SocketClient;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "identity-test-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn key() -> TokenKey {
    TokenKey::new(SECRET).unwrap()
}

fn token(user: &str) -> String {
    key().sign(user, now() + 600).unwrap()
}

/// base64url without padding.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Tokens that must all be refused: another secret, expired past the
/// leeway, `alg: none`, a tampered payload, garbage.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let good = token("alice");
    let parts: Vec<&str> = good.split('.').collect();
    let claims = format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 600);
    vec![
        (
            "another secret",
            TokenKey::new("other")
                .unwrap()
                .sign("alice", now() + 600)
                .unwrap(),
        ),
        ("expired", key().sign("alice", now() - 120).unwrap()),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(claims.as_bytes())
            ),
        ),
        (
            "tampered",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(format!(r#"{{"sub":"mallory","exp":{}}}"#, now() + 600).as_bytes()),
                parts[2]
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ]
}

fn auth_host() -> &'static SpinHost {
    static HOST: OnceLock<SpinHost> = OnceLock::new();
    HOST.get_or_init(|| {
        chatroom_tests::host_with_variables(&[("SPIN_VARIABLE_AUTH_SECRET", SECRET)])
    })
}

fn private_host() -> &'static SpinHost {
    static HOST: OnceLock<SpinHost> = OnceLock::new();
    HOST.get_or_init(|| {
        chatroom_tests::host_with_variables(&[
            ("SPIN_VARIABLE_AUTH_SECRET", SECRET),
            ("SPIN_VARIABLE_AUTH_PRIVATE_READS", "true"),
        ])
    })
}

async fn with_auth() -> DefaultRun {
    DefaultRun::start_on(auth_host(), |c| c.auth = Some(key()), &no_limits()).await
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn assert_error(answer: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(answer.0.as_u16(), status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
    assert!(answer.1["detail"].is_string(), "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_writes_need_a_token_and_speak_as_its_user() {
    let run = with_auth().await;
    let http = Client::new();
    let rooms = format!("{}/chatrooms", run.url);
    // No token, and every bad one: 401, nothing stored.
    assert_error(
        &send(http.post(&rooms).json(&json!({"name": "Nope"}))).await,
        401,
        "unauthorized",
    );
    for (what, bad) in bad_tokens() {
        let answer = send(
            http.post(&rooms)
                .bearer_auth(&bad)
                .json(&json!({"name": what})),
        )
        .await;
        assert_error(&answer, 401, "unauthorized");
    }
    let (status, listed) = send(http.get(&rooms)).await;
    assert_eq!(
        (status, listed),
        (StatusCode::OK, json!([])),
        "reads stay public"
    );

    let alice = token("alice");
    let (status, room) = send(
        http.post(&rooms)
            .bearer_auth(&alice)
            .json(&json!({"name": "Auth"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let messages = format!("{rooms}/{}/messages", room["id"]);
    // The sender is the token's user: given, implied, or refused.
    let (status, m) = send(
        http.post(&messages)
            .bearer_auth(&alice)
            .json(&json!({"sender": "alice", "message": "mine"})),
    )
    .await;
    assert_eq!(
        (status, &m["sender"]),
        (StatusCode::CREATED, &json!("alice"))
    );
    let (status, m) = send(
        http.post(&messages)
            .bearer_auth(&alice)
            .json(&json!({"message": "implied"})),
    )
    .await;
    assert_eq!(
        (status, &m["sender"]),
        (StatusCode::CREATED, &json!("alice"))
    );
    let spoof = send(
        http.post(&messages)
            .bearer_auth(&alice)
            .json(&json!({"sender": "bob", "message": "spoofed"})),
    )
    .await;
    assert_error(&spoof, 403, "sender_mismatch");
    let spoof = send(
        http.post(format!("{messages}?sender=bob&content=spoofed"))
            .bearer_auth(&alice),
    )
    .await;
    assert_error(&spoof, 403, "sender_mismatch");
    let (status, m) = send(
        http.post(format!("{messages}?content=query"))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(
        (status, &m["sender"]),
        (StatusCode::CREATED, &json!("alice"))
    );
    assert_error(
        &send(
            http.post(&messages)
                .json(&json!({"sender": "alice", "message": "no token"})),
        )
        .await,
        401,
        "unauthorized",
    );
    let (_, history) = send(http.get(&messages)).await;
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["mine", "implied", "query"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_reads_need_a_token_too() {
    let run = DefaultRun::start_on(private_host(), |c| c.auth = Some(key()), &no_limits()).await;
    let http = Client::new();
    let alice = token("alice");
    let (status, room) = send(
        http.post(format!("{}/chatrooms", run.url))
            .bearer_auth(&alice)
            .json(&json!({"name": "Private"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = room["id"].as_i64().unwrap();
    for path in [
        "/chatrooms".to_owned(),
        format!("/chatrooms/{id}"),
        format!("/chatrooms/{id}/messages"),
        format!("/chatrooms/{id}/users"),
    ] {
        let url = format!("{}{path}", run.url);
        assert_error(&send(http.get(&url)).await, 401, "unauthorized");
        assert_error(
            &send(http.get(&url).bearer_auth(bad_tokens()[1].1.clone())).await,
            401,
            "unauthorized",
        );
        let (status, _) = send(http.get(&url).bearer_auth(&alice)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _) = send(http.get(format!("{}/healthz", run.url))).await;
    assert_eq!(status, StatusCode::OK, "health stays public");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_handshakes_need_a_token() {
    let run = with_auth().await;
    // Engine.IO opens; the namespace CONNECT without a valid token gets
    // connect_error `unauthorized`.
    let mut attempts = vec![("none".to_owned(), "40".to_owned())];
    attempts.push(("empty auth".into(), "40{}".into()));
    for (what, bad) in bad_tokens() {
        attempts.push((what.into(), format!("40{}", json!({"token": bad}))));
    }
    for (what, packet) in attempts {
        let polling = Polling::open(&run.url)
            .await
            .expect("the Engine.IO handshake");
        let answer = polling.connect_namespace(&packet).await;
        assert_eq!(answer, r#"44{"message":"unauthorized"}"#, "{what}");
    }
    let polling = Polling::open(&run.url).await.unwrap();
    let answer = polling
        .connect_namespace(&format!("40{}", json!({"token": token("alice")})))
        .await;
    assert!(answer.starts_with("40{"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_speaks_only_as_its_user() {
    let run = with_auth().await;
    let room = send(
        Client::new()
            .post(format!("{}/chatrooms", run.url))
            .bearer_auth(token("alice"))
            .json(&json!({"name": "Sockets"})),
    )
    .await
    .1["id"]
        .as_i64()
        .unwrap();
    let alice = SocketClient::connect_as(&run.url, &token("alice")).await;
    let bob = SocketClient::connect_as(&run.url, &token("bob")).await;

    // Joining as someone else is refused; with no name, the token's.
    let ack = alice
        .call("join_room", json!({"room_id": room, "username": "bob"}))
        .await;
    assert_eq!(
        (&ack["ok"], &ack["code"]),
        (&json!(false), &json!("sender_mismatch")),
        "{ack}"
    );
    assert_eq!(alice.expect("error").await["code"], "sender_mismatch");
    let ack = alice.call("join_room", json!({"room_id": room})).await;
    assert_eq!(
        (&ack["ok"], &ack["username"]),
        (&json!(true), &json!("alice")),
        "{ack}"
    );
    assert_eq!(alice.expect("user_joined").await["username"], "alice");
    bob.join(room, "bob").await;

    let ack = bob
        .call(
            "send_message",
            json!({"room_id": room, "sender": "alice", "message": "spoof"}),
        )
        .await;
    assert_eq!(ack["code"], "sender_mismatch", "{ack}");
    let ack = bob
        .call("send_message", json!({"room_id": room, "message": "hi"}))
        .await;
    assert_eq!(ack["message"]["sender"], "bob", "{ack}");
    let got = alice.expect("new_message").await;
    assert_eq!(
        (&got["sender"], &got["content"]),
        (&json!("bob"), &json!("hi"))
    );
    let users = send(Client::new().get(format!("{}/chatrooms/{room}/users", run.url)))
        .await
        .1;
    assert_eq!(users["users"], json!(["alice", "bob"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_off_keeps_the_original_open_contract() {
    let run = DefaultRun::start().await;
    let http = Client::new();
    let (status, room) = send(http.post(format!("{}/chatrooms?name=Open", run.url))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, m) = send(
        http.post(format!("{}/chatrooms/{}/messages", run.url, room["id"]))
            .json(&json!({"sender": "anyone", "message": "hi"})),
    )
    .await;
    assert_eq!(
        (status, &m["sender"]),
        (StatusCode::CREATED, &json!("anyone"))
    );
    // A token is ignored, not required, and not checked.
    let answer = Polling::open(&run.url)
        .await
        .unwrap()
        .connect_namespace("40")
        .await;
    assert!(answer.starts_with("40{"), "{answer}");
}

/// The default run's front with only these limits per address.
fn limited(address_limits: AddressLimitsConfig) -> AccessConfig {
    AccessConfig {
        address_limits,
        ..AccessConfig::default()
    }
}

fn no_limits() -> AccessConfig {
    AccessConfig::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped_while_others_connect() {
    let run = DefaultRun::start_on(
        chatroom_tests::shared_host(),
        |_| {},
        &limited(AddressLimitsConfig {
            connections: Some(2),
            trust_forwarded_for: true,
            ..Default::default()
        }),
    )
    .await;
    let flooder = [("x-forwarded-for", "203.0.113.7")];
    let first = Polling::open_with(&run.url, &flooder).await.expect("first");
    assert!(first.connect_namespace("40").await.starts_with("40"));
    let second = Polling::open_with(&run.url, &flooder)
        .await
        .expect("second");
    let (status, body) = match Polling::open_with(&run.url, &flooder).await {
        Ok(_) => panic!("a third connection from one address was let in"),
        Err(refused) => refused,
    };
    assert_eq!(status, 429);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Someone else is served meanwhile, over websocket too.
    let other = Polling::open_with(&run.url, &[("x-forwarded-for", "198.51.100.1")]).await;
    assert!(other.is_ok(), "another address connects");
    let _ws = SocketClient::connect(&run.url).await;
    // Closing one frees its slot. (A session that never connects a
    // namespace holds its slot until socketioxide's connect timeout.)
    assert_eq!(first.post("1").await, 200, "an Engine.IO close");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Polling::open_with(&run.url, &flooder).await {
            Ok(_) => break,
            Err((429, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(other) => panic!("the slot was not freed: {other:?}"),
        }
    }
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_writes_and_room_creations_per_address_are_rate_limited() {
    let run = DefaultRun::start_on(
        chatroom_tests::shared_host(),
        |_| {},
        &limited(AddressLimitsConfig {
            writes_per_minute: Some(5),
            rooms_per_hour: Some(2),
            trust_forwarded_for: true,
            ..Default::default()
        }),
    )
    .await;
    let http = Client::new();
    let post_room = |from: &'static str, name: String| {
        http.post(format!("{}/chatrooms", run.url))
            .header("x-forwarded-for", from)
            .json(&json!({"name": name}))
    };
    let a = "203.0.113.7";
    for i in 0..2 {
        assert_eq!(
            send(post_room(a, format!("r{i}"))).await.0,
            StatusCode::CREATED
        );
    }
    let res = post_room(a, "r2".into()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1800).contains(&retry), "Retry-After {retry}");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "rate_limited");
    // Three writes were spent (one refused); two more messages pass, the
    // next is refused, while another address writes freely.
    let messages = format!("{}/chatrooms/1/messages", run.url);
    let post_message = |from: &'static str| {
        http.post(&messages)
            .header("x-forwarded-for", from)
            .json(&json!({"sender": "s", "message": "m"}))
    };
    assert_eq!(send(post_message(a)).await.0, StatusCode::CREATED);
    assert_eq!(send(post_message(a)).await.0, StatusCode::CREATED);
    let refused = post_message(a).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    for _ in 0..5 {
        assert_eq!(
            send(post_message("198.51.100.1")).await.0,
            StatusCode::CREATED
        );
    }
    // Reads are not writes.
    for _ in 0..10 {
        let (status, _) = send(http.get(&messages).header("x-forwarded-for", a)).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_unless_trusted() {
    let run = DefaultRun::start_on(
        chatroom_tests::shared_host(),
        |_| {},
        &limited(AddressLimitsConfig {
            writes_per_minute: Some(2),
            ..Default::default()
        }),
    )
    .await;
    let http = Client::new();
    // Every request comes from 127.0.0.1, whatever the header claims.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let res = http
            .post(format!("{}/chatrooms", run.url))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"name": format!("f{i}")}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to verify tokens under real Spin"
)]
async fn spin_up_verifies_tokens_in_the_component() {
    use chatroom_tests::spin::{SpinUp, SpinUpOptions};
    let state = tempfile::tempdir().unwrap();
    let manifest = chatroom_tests::workspace_root().join("spin.toml");
    let mut options = SpinUpOptions::new(&manifest, state.path());
    options.env = vec![("SPIN_VARIABLE_AUTH_SECRET".into(), SECRET.into())];
    let spin = SpinUp::start(options, "/healthz").await;
    let http = Client::new();
    let rooms = format!("{}/chatrooms", spin.url);
    assert_error(
        &send(http.post(&rooms).json(&json!({"name": "S"}))).await,
        401,
        "unauthorized",
    );
    for (_, bad) in bad_tokens() {
        assert_error(
            &send(
                http.post(&rooms)
                    .bearer_auth(&bad)
                    .json(&json!({"name": "S"})),
            )
            .await,
            401,
            "unauthorized",
        );
    }
    let (status, room) = send(
        http.post(&rooms)
            .bearer_auth(token("alice"))
            .json(&json!({"name": "S"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let messages = format!("{rooms}/{}/messages", room["id"]);
    let spoof = send(
        http.post(&messages)
            .bearer_auth(token("alice"))
            .json(&json!({"sender": "bob", "message": "x"})),
    )
    .await;
    assert_error(&spoof, 403, "sender_mismatch");
    let (status, m) = send(
        http.post(&messages)
            .bearer_auth(token("alice"))
            .json(&json!({"message": "x"})),
    )
    .await;
    assert_eq!(
        (status, &m["sender"]),
        (StatusCode::CREATED, &json!("alice"))
    );
}

/// In edge mode with identity and private reads on, a sidecar still joins
/// members to rooms and replays to them: it reads through the component
/// with the deployment's internal token, which private reads accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_sidecars_read_private_rooms_with_the_internal_token() {
    use chatroom_tests::edge::{EdgeRest, TOKEN, variables};
    use chatroom_tests::process::SidecarProcess;
    let mut vars = variables(Some(TOKEN), None);
    vars.push(("SPIN_VARIABLE_AUTH_SECRET".into(), SECRET.into()));
    vars.push(("SPIN_VARIABLE_AUTH_PRIVATE_READS".into(), "true".into()));
    let rest = EdgeRest::host_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_host-process")),
        vars,
    )
    .await;
    let sidecar = SidecarProcess::start_edge(
        std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        &rest.url,
        TOKEN,
        &["--auth-secret", SECRET, "--node-id", "private-reads"],
    )
    .await;
    let alice = key().sign("alice", now() + 600).unwrap();
    let http = Client::new();
    let (status, room) = send(
        http.post(format!("{}/chatrooms", rest.url))
            .bearer_auth(&alice)
            .json(&json!({"name": "Private"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let room = room["id"].as_i64().unwrap();
    // Reads stay private for everyone else.
    let (status, _) = send(http.get(format!("{}/chatrooms/{room}", rest.url))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let socket = SocketClient::connect_as(&sidecar.url, &alice).await;
    let ack = socket
        .call("join_room", json!({"room_id": room, "since": 0}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = socket
        .call("send_message", json!({"room_id": room, "message": "hello"}))
        .await;
    assert_eq!(ack["sender"], "alice", "{ack}");
    assert_eq!(socket.expect("new_message").await["content"], "hello");
}
