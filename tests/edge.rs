//! Edge mode (docs/protocol.md §6), end to end: the REST component served by the host
//! in a process of its own (and by the real `spin up` when there is one),
//! a real `redis-server`, and two edge-mode sidecars in separate processes
//! that share no file with the REST deployment. Real Socket.IO clients on
//! each sidecar must see every message exactly once, in id order, however
//! it was sent; a killed sidecar loses nothing acknowledged and its users
//! leave within the lease; Redis going away only slows delivery down.

use std::path::Path;
use std::time::{Duration, Instant};

use chatroom_tests::edge::{EdgeRest, TOKEN, receives_exactly, send_everywhere, variables};
use chatroom_tests::http::{create_room, history_ids, ids, post_message, room_users};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::SocketClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Where the REST component runs.
#[derive(Debug, Clone, Copy)]
enum Deploy {
    /// The host, as a process of its own.
    Host,
    /// The real `spin up` (`SPIN_BIN`).
    Spin,
}

/// The REST deployment with the internal token and, if given, Redis.
async fn deploy(on: Deploy, redis: Option<&RedisServer>) -> EdgeRest {
    match on {
        Deploy::Host => EdgeRest::host(host_bin(), redis).await,
        Deploy::Spin => EdgeRest::spin(redis).await,
    }
}

fn host_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_host-process"))
}

fn sidecar_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sidecar-process"))
}

/// An edge-mode sidecar on `rest`, named `node`, with more flags.
async fn edge_sidecar(rest: &str, node: &str, extra: &[&str]) -> SidecarProcess {
    let mut flags = vec!["--node-id", node];
    flags.extend(extra);
    SidecarProcess::start_edge(sidecar_bin(), rest, TOKEN, &flags).await
}

/// Two sidecars on one REST deployment: a member on each, messages sent
/// through both and through REST; the users of both are listed. With
/// Redis (`relayed`), presence events cross sidecars too.
async fn two_sidecars_share_the_load(
    rest: &EdgeRest,
    a: &SidecarProcess,
    b: &SidecarProcess,
    relayed: bool,
) {
    let room = create_room(&a.url, "Edge").await;
    let ann = SocketClient::connect(&a.url).await;
    let bob = SocketClient::connect(&b.url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    let users = room_users(&rest.url, room).await;
    assert_eq!(users["users"], json!(["ann", "bob"]), "{users}");
    // Each sees its own join; with Redis, ann sees bob's too. (Without
    // it, presence events stay on their sidecar; `GET /users` covers
    // every sidecar either way.)
    assert_eq!(ann.expect("user_joined").await["username"], "ann");
    assert_eq!(bob.expect("user_joined").await["username"], "bob");
    if relayed {
        let joined = ann.expect("user_joined").await;
        assert_eq!(joined["username"], "bob");
        assert_eq!(joined["room_id"], room);
    }

    let sent = send_everywhere(&rest.url, room, &ann, &bob, 15, "m").await;
    assert_eq!(history_ids(&rest.url, room).await, {
        let mut s = sent.clone();
        s.sort_unstable();
        s
    });
    let members = [(&ann, "ann on sidecar A"), (&bob, "bob on sidecar B")];
    receives_exactly(&rest.url, room, &members, &sent).await;

    bob.disconnect().await;
    if relayed {
        let left = ann.expect("user_left").await;
        assert_eq!(left["username"], "bob");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while room_users(&rest.url, room).await["users"] != json!(["ann"]) {
        assert!(Instant::now() < deadline, "bob still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !relayed {
        // A fence: a message posted once bob's presence is gone reaches
        // ann through sidecar A's own feed, after anything that feed could
        // have carried about bob's leaving; and no other path exists
        // without Redis.
        let fence = post_message(&rest.url, room, "fence", "after bob left").await;
        assert_eq!(ann.expect("new_message").await["id"], fence["id"]);
        let relayed = ann.drain("user_left", Duration::ZERO).await;
        assert!(relayed.is_empty(), "{relayed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_with_redis_deliver_every_message_once_in_order() {
    with_redis(Deploy::Host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run edge mode under real Spin"
)]
async fn under_spin_up_two_sidecars_with_redis_deliver_every_message_once_in_order() {
    with_redis(Deploy::Spin).await;
}

async fn with_redis(on: Deploy) {
    let redis = RedisServer::start();
    let rest = deploy(on, Some(&redis)).await;
    // A poll of a minute: only Redis can deliver in time.
    let flags = ["--redis", &redis.url, "--poll-ms", "60000"];
    let a = edge_sidecar(&rest.url, "a", &flags).await;
    let b = edge_sidecar(&rest.url, "b", &flags).await;
    two_sidecars_share_the_load(&rest, &a, &b, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_sidecars_poll_the_feed() {
    let rest = deploy(Deploy::Host, None).await;
    let flags = ["--poll-ms", "50"];
    let a = edge_sidecar(&rest.url, "a", &flags).await;
    let b = edge_sidecar(&rest.url, "b", &flags).await;
    two_sidecars_share_the_load(&rest, &a, &b, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_mid_stream_loses_nothing() {
    redis_outage(Deploy::Host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run edge mode under real Spin"
)]
async fn under_spin_up_redis_going_away_mid_stream_loses_nothing() {
    redis_outage(Deploy::Spin).await;
}

async fn redis_outage(on: Deploy) {
    let mut redis = RedisServer::start();
    let rest = deploy(on, Some(&redis)).await;
    let flags = ["--redis", &redis.url, "--poll-ms", "200"];
    let a = edge_sidecar(&rest.url, "a", &flags).await;
    let b = edge_sidecar(&rest.url, "b", &flags).await;
    let room = create_room(&rest.url, "Outage").await;
    let ann = SocketClient::connect(&a.url).await;
    let bob = SocketClient::connect(&b.url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;

    let mut sent = send_everywhere(&rest.url, room, &ann, &bob, 5, "before").await;
    redis.stop();
    // The component's publishes fail now; the messages are stored anyway
    // and the sidecars find them by polling.
    sent.extend(send_everywhere(&rest.url, room, &ann, &bob, 5, "during").await);
    let members = [(&ann, "ann, Redis down"), (&bob, "bob, Redis down")];
    receives_exactly(&rest.url, room, &members, &sent).await;

    redis.restart();
    let after = send_everywhere(&rest.url, room, &ann, &bob, 5, "after").await;
    let members = [(&ann, "ann, Redis back"), (&bob, "bob, Redis back")];
    receives_exactly(&rest.url, room, &members, &after).await;

    // Wake-ups that lie: repeats of delivered messages, a message that was
    // never stored, garbage, and presence events claiming to be another
    // sidecar's about a made-up user in another room. Nothing is delivered
    // twice or invented.
    let history =
        chatroom_tests::http::get_json(&rest.url, &format!("/chatrooms/{room}/messages")).await;
    let channel = "chatroom:messages";
    let mut subscribers = 0;
    for message in history.as_array().unwrap().iter().take(5) {
        subscribers = subscribers.max(redis.publish(channel, &message.to_string()));
    }
    assert_eq!(
        subscribers, 2,
        "both sidecars subscribe again after the restart"
    );
    let forged = json!({"id": 999_999, "room_id": room, "sender": "x", "content": "forged", "timestamp": ""});
    redis.publish(channel, &forged.to_string());
    redis.publish(channel, "not json");
    redis.publish(
        &format!("{channel}:presence"),
        &json!({"node": "elsewhere", "room_id": room + 1, "event": "user_joined", "data": {}})
            .to_string(),
    );
    redis.publish(
        &format!("{channel}:presence"),
        &json!({"node": "elsewhere", "room_id": room, "event": "new_message", "data": forged})
            .to_string(),
    );
    // Nothing new was stored, so nothing comes before the next messages
    // (a lie delivered would be among them) nor after them.
    let last = send_everywhere(&rest.url, room, &ann, &bob, 2, "last").await;
    let members = [(&ann, "ann, after lies"), (&bob, "bob, after lies")];
    receives_exactly(&rest.url, room, &members, &last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sidecar_loses_nothing_and_its_users_leave_within_the_lease() {
    killed_sidecar(Deploy::Host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run edge mode under real Spin"
)]
async fn under_spin_up_a_killed_sidecar_loses_nothing_and_its_users_leave_within_the_lease() {
    killed_sidecar(Deploy::Spin).await;
}

async fn killed_sidecar(on: Deploy) {
    let redis = RedisServer::start();
    let rest = deploy(on, Some(&redis)).await;
    let flags = ["--redis", &redis.url, "--presence-lease-secs", "3"];
    let mut a = edge_sidecar(&rest.url, "a", &flags).await;
    let b = edge_sidecar(&rest.url, "b", &flags).await;
    let room = create_room(&rest.url, "Crash").await;
    let ann = SocketClient::connect(&a.url).await;
    let bob = SocketClient::connect(&b.url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;

    let mut acked = Vec::new();
    for i in 0..20 {
        let ack = ann
            .call(
                "send_message",
                json!({"room_id": room, "message": format!("m{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        acked.push(ack["message"]["id"].as_i64().unwrap());
    }
    for i in 0..10 {
        ann.emit(
            "send_message",
            json!({"room_id": room, "message": format!("late{i}")}),
        )
        .await;
    }
    a.kill_9();
    let killed = Instant::now();
    let stored = history_ids(&rest.url, room).await;
    for id in &acked {
        assert!(stored.contains(id), "acknowledged message {id} lost");
    }

    // Ann's row outlives her sidecar only until its lease runs out; bob,
    // on the other sidecar, stays listed throughout.
    loop {
        let users = room_users(&rest.url, room).await;
        if users["users"] == json!(["bob"]) {
            break;
        }
        assert_eq!(users["users"], json!(["ann", "bob"]), "{users}");
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "ann still listed {:?} after the kill",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bob got everything that was stored, in order.
    let stored = history_ids(&rest.url, room).await;
    let mut seen = Vec::new();
    while seen.len() < stored.len() {
        seen.push(bob.expect("new_message").await["id"].as_i64().unwrap());
    }
    assert_eq!(seen, stored);

    // Written while A is down; A restarts (its node id drops nothing of
    // B's), and ann catches up from her last acknowledged message.
    let posted = post_message(&rest.url, room, "rest", "while down").await;
    a.restart().await;
    assert_eq!(room_users(&rest.url, room).await["users"], json!(["bob"]));
    let again = SocketClient::connect(&a.url).await;
    let since = *acked.last().unwrap();
    let ack = again
        .call(
            "join_room",
            json!({"room_id": room, "username": "ann", "since": since}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let missed: Vec<i64> = history_ids(&rest.url, room)
        .await
        .into_iter()
        .filter(|id| *id > since)
        .collect();
    assert_eq!(missed.last(), posted["id"].as_i64().as_ref());
    assert_eq!(
        ids(&again.expect_n("new_message", missed.len()).await),
        missed
    );
    assert_eq!(
        room_users(&rest.url, room).await["users"],
        json!(["bob", "ann"])
    );
    // And live delivery goes on across both.
    let next = post_message(&rest.url, room, "rest", "after").await;
    assert_eq!(again.expect("new_message").await["id"], next["id"]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_needs_the_token_and_is_off_without_one() {
    let client = reqwest::Client::new();
    let status_and_code = |res: reqwest::Response| async move {
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    };

    // The repository's spin.toml as it stands: no token, no internal API.
    let off = EdgeRest::host_with(host_bin(), variables(None, None)).await;
    let res = client
        .get(format!("{}/internal/feed", off.url))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(res).await,
        (StatusCode::FORBIDDEN, "internal_api_disabled".to_owned())
    );

    let on = deploy(Deploy::Host, None).await;
    for auth in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
        let mut req = client.get(format!("{}/internal/feed/head", on.url));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        assert_eq!(
            status_and_code(req.send().await.unwrap()).await,
            (StatusCode::UNAUTHORIZED, "unauthorized".to_owned()),
            "{auth:?}"
        );
    }
    let head: Value = client
        .get(format!("{}/internal/feed/head", on.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(head, json!({"last_id": 0}));
    // Departures: not without the token, and bad input is refused whole,
    // with the reason.
    let res = client
        .post(format!("{}/internal/nodes/n1/departures", on.url))
        .json(&json!({"sids": ["s1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".to_owned())
    );
    let too_many: Vec<String> = (0..=chatroom_core::limits::DEPARTURES_MAX)
        .map(|i| format!("s{i}"))
        .collect();
    for (body, status, code) in [
        (
            json!({"sids": too_many}),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        (
            json!({"sids": ["ok", "not/ok"]}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"sid": ["a"]}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ] {
        let res = client
            .post(format!("{}/internal/nodes/n1/departures", on.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_and_code(res).await,
            (status, code.to_owned()),
            "{body:.80}"
        );
    }
    // A sidecar with the wrong token cannot start on it.
    let mut refused = std::process::Command::new(sidecar_bin())
        .args(["--rest-upstream", &on.url, "--internal-token", "wrong"])
        .args(["--listen", "127.0.0.1:0", "--log", "off"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("a sidecar with the wrong token kept running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
}

/// What the counting proxy's handler holds: the calls seen, where it
/// forwards, and its client.
type ProxyState = (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    String,
    reqwest::Client,
);

/// A counting proxy: forwards every request to `upstream` and counts them
/// by path, so a test sees how often a sidecar calls the component (what a
/// metered host bills).
struct CountingProxy {
    url: String,
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    async fn start(upstream: &str) -> Self {
        use axum::body::Bytes;
        use axum::extract::{Request, State};
        use axum::response::IntoResponse;
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let state = (calls.clone(), upstream.to_owned(), reqwest::Client::new());
        let forward = |State((calls, upstream, client)): State<ProxyState>, req: Request| async move {
            let (parts, body) = req.into_parts();
            let target = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            calls.lock().unwrap().push(parts.uri.path().to_owned());
            let body: Bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut out = client.request(parts.method, format!("{upstream}{target}"));
            for (name, value) in &parts.headers {
                if name != "host" {
                    out = out.header(name, value);
                }
            }
            let res = out.body(body).send().await.expect("the upstream answers");
            let status = res.status();
            let headers = res.headers().clone();
            let bytes = res.bytes().await.unwrap_or_default();
            (status, headers, bytes).into_response()
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        CountingProxy { url, calls }
    }

    /// The calls since the last time, by path.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// Connections that close together are unlisted together: a hundred
/// members of one room on an edge sidecar disconnect at once, and the
/// sidecar unlists them in fewer calls to the component than departures
/// (a call each timed out when tens of thousands closed at once, leaving
/// them listed). Once the watcher has every `user_left`, only it is
/// listed: a departure is unlisted before it is announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closing_together_are_unlisted_in_batches() {
    const CROWD: usize = 100;
    let rest = deploy(Deploy::Host, None).await;
    let proxy = CountingProxy::start(&rest.url).await;
    let sidecar = edge_sidecar(&proxy.url, "crowded", &[]).await;
    let room = create_room(&rest.url, "Crowd").await;
    let watcher = SocketClient::connect(&sidecar.url).await;
    watcher.join(room, "watcher").await;
    let mut crowd = Vec::with_capacity(CROWD);
    for i in 0..CROWD {
        let member = SocketClient::connect(&sidecar.url).await;
        member.join(room, &format!("m{i}")).await;
        crowd.push(member);
    }
    assert_eq!(room_users(&rest.url, room).await["user_count"], CROWD + 1);
    proxy.take();

    futures_util::future::join_all(crowd.into_iter().map(SocketClient::disconnect)).await;
    let mut left = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        left.push(watcher.expect("user_left").await["username"].clone());
    }
    left.sort_by_key(|name| name.as_str().unwrap_or_default().to_owned());
    let mut names: Vec<Value> = (0..CROWD).map(|i| json!(format!("m{i}"))).collect();
    names.sort_by_key(|name| name.as_str().unwrap_or_default().to_owned());
    assert_eq!(left, names);
    let users = room_users(&rest.url, room).await;
    assert_eq!(users["users"], json!(["watcher"]), "{users}");

    let calls = proxy.take();
    let one_each = calls.iter().filter(|p| p.contains("/presence/")).count();
    assert_eq!(one_each, 0, "{calls:?}");
    let batches = calls.iter().filter(|p| p.ends_with("/departures")).count();
    assert!(
        (1..CROWD).contains(&batches),
        "{CROWD} departures in {batches} calls"
    );
}

/// With Redis, an idle edge sidecar's safety poll backs off (30 s): it
/// calls the component a handful of times a minute (its lease renewals and
/// one or two feed polls), not twice a second; a message is still
/// delivered at once when Redis wakes it, and one whose wake-up never
/// came within the safety interval (docs/operations.md, the quota
/// arithmetic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_an_idle_sidecar_polls_rarely_and_still_delivers() {
    let redis = RedisServer::start();
    let rest = deploy(Deploy::Host, Some(&redis)).await;
    let proxy = CountingProxy::start(&rest.url).await;
    // The default poll: no --poll-ms.
    let sidecar = edge_sidecar(&proxy.url, "idle", &["--redis", &redis.url]).await;
    let room = create_room(&rest.url, "Quiet").await;
    let client = SocketClient::connect(&sidecar.url).await;
    client.join(room, "ann").await;
    proxy.take();
    // Twenty idle seconds: at most one feed poll and three lease renewals
    // (every third of the 30 s lease); polling every 500 ms would be 40.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let idle = proxy.take();
    let feed = idle
        .iter()
        .filter(|p| p.starts_with("/internal/feed"))
        .count();
    assert!(feed <= 1, "{feed} feed calls in 20 idle seconds: {idle:?}");
    assert!(
        idle.len() <= 4,
        "{} component calls in 20 idle seconds: {idle:?}",
        idle.len()
    );

    // Woken by Redis: delivered at once (well inside the 30 s poll).
    let woken = post_message(&rest.url, room, "bob", "woken").await;
    assert_eq!(client.expect("new_message").await["id"], woken["id"]);

    // A wake-up that never comes (written behind the component's back, so
    // nothing is published): the safety poll finds it within 30 s.
    let db =
        chatroom_dbfile::open_file(&rest.state_dir().join("sqlite_db.db")).expect("the database");
    let draft = chatroom_core::MessageDraft::from_fields(Some("bob"), Some("unannounced")).unwrap();
    let quiet = chatroom_core::insert_message(&db, room, &draft).expect("stored");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(m) = client
            .drain("new_message", Duration::from_millis(250))
            .await
            .first()
        {
            assert_eq!(m["id"], quiet.id);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered within the safety interval"
        );
    }
}
