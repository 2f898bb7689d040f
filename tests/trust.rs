//! Delivery you can trust (issue 8, docs/protocol.md §2 and §3): one socket's events
//! keep their order, a public `sid` opens nobody's transport, a member that
//! cannot keep up is disconnected rather than skipped, a slow replay holds
//! up no other room, a flooding connection is rate-limited while others are
//! served, unreadable requests are `400`s whichever process answers, and
//! the host's deadline and instance cap answer `504` and `503`.

use std::time::{Duration, Instant};

use chatroom_core::{MessageDraft, insert_message};
use chatroom_host::HostLimits;
use chatroom_sidecar::{EventLimits, SidecarConfig};
use chatroom_tests::http::{create_room, get_json, history_ids, ids, room_users};
use chatroom_tests::raw::{Polling, RawSocket};
use chatroom_tests::socket::SocketClient;
use chatroom_tests::{Stack, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SETTLE: Duration = Duration::from_millis(300);

fn no_rate_limit(config: &mut SidecarConfig) {
    config.limits.events = EventLimits {
        rate: 0.0,
        queue: 1024,
        ..EventLimits::default()
    };
}

fn contents(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Stores `n` messages of `size` characters straight into the file (as
/// another process would), in transactions of at most `BURST` rows a few
/// milliseconds apart: bursts a client reading at full speed keeps up with.
async fn bulk_insert(stack: &Stack, room: i64, n: usize, size: usize) {
    const BURST: usize = 100;
    let db = stack.rest.open_db();
    for start in (0..n).step_by(BURST) {
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        for i in start..(start + BURST).min(n) {
            let text = format!("{i:05}{}", "x".repeat(size - 5));
            let draft = MessageDraft::from_fields(Some("bulk"), Some(&text)).unwrap();
            insert_message(&db, room, &draft).unwrap();
        }
        db.execute_batch("COMMIT").unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sockets_sends_are_stored_and_delivered_in_the_order_sent() {
    const N: usize = 300;
    let stack = Stack::start_with(no_rate_limit).await;
    let room = create_room(&stack.url, "Ordered").await;
    let listener = stack.client().await;
    listener.join(room, "listener").await;
    let writer = stack.client().await;
    writer.join(room, "writer").await;
    // Back to back, no waiting for acks.
    for i in 0..N {
        writer
            .emit(
                "send_message",
                json!({"room_id": room, "message": format!("m{i:03}")}),
            )
            .await;
    }
    let sent: Vec<String> = (0..N).map(|i| format!("m{i:03}")).collect();
    let got = listener.expect_n("new_message", N).await;
    assert_eq!(contents(&got), sent, "delivered in the order sent");
    let stored = get_json(&stack.url, &format!("/chatrooms/{room}/messages")).await;
    let stored = stored.as_array().unwrap().clone();
    assert_eq!(contents(&stored), sent, "stored in the order sent");
    assert_eq!(ids(&got), ids(&stored));

    // A send right after a join sees the join (its username is the
    // default sender), on every fresh socket.
    for i in 0..20 {
        let c = stack.client().await;
        let name = format!("quick{i}");
        c.emit("join_room", json!({"room_id": room, "username": name}))
            .await;
        let ack = c
            .call("send_message", json!({"room_id": room, "message": "hi"}))
            .await;
        assert_eq!(
            (&ack["ok"], &ack["message"]["sender"]),
            (&json!(true), &json!(name)),
            "{ack}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_sid_opens_nobodys_transport() {
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "Private").await;
    let eve = stack.client().await;
    eve.join(room, "eve").await;
    eve.expect("user_joined").await;

    let alice = Polling::connect(&stack.url).await;
    let join = json!(["join_room", {"room_id": room, "username": "alice"}]);
    assert_eq!(alice.post(&format!("42{join}")).await, 200);
    alice.poll_until("user_joined").await;
    let seen = eve.expect("user_joined").await;
    assert_eq!(seen["username"], "alice");
    let public = seen["sid"].as_str().unwrap().to_owned();
    assert_ne!(public, alice.sid, "the transport session id is never sent");

    // Eve tries to write and read as Alice with what she was given.
    let forged = json!(["send_message", {"room_id": room, "message": "forged"}]);
    let status = alice.post_as(&public, &format!("42{forged}")).await;
    assert_eq!(status, 400, "a public sid is no session");
    let (status, _) = alice.poll_as(&public).await;
    assert_eq!(status, 400);
    assert!(
        history_ids(&stack.url, room).await.is_empty(),
        "nothing stored"
    );

    // Alice's own session is untouched.
    let hello = json!(["send_message", {"room_id": room, "message": "hello"}]);
    assert_eq!(alice.post(&format!("42{hello}")).await, 200);
    alice.poll_until("new_message").await;
    // The first message Eve gets is this one: nothing forged came before.
    let first = eve.expect("new_message").await;
    assert_eq!(
        (&first["sender"], &first["content"]),
        (&json!("alice"), &json!("hello"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_cannot_keep_up_is_disconnected_not_skipped() {
    const N: usize = 3000;
    let stack = Stack::start_with(|c| {
        no_rate_limit(c);
        c.limits.max_buffered_packets = 256;
    })
    .await;
    let room = create_room(&stack.url, "Firehose").await;
    let fast = stack.client().await;
    fast.join(room, "fast").await;
    let mut slow = RawSocket::connect(&stack.url, Some(4096)).await;
    slow.emit("join_room", &json!({"room_id": room, "username": "slow"}))
        .await;
    loop {
        let (name, data) = slow.next_event().await.expect("joined");
        if name == "user_joined" && data["username"] == "slow" {
            break;
        }
    }
    assert_eq!(room_users(&stack.url, room).await["user_count"], 2);

    // The slow member stops reading while ~12 MB arrive.
    bulk_insert(&stack, room, N, 3900).await;
    let all = history_ids(&stack.url, room).await;
    assert_eq!(all.len(), N);
    let got = fast.expect_n("new_message", N).await;
    assert_eq!(ids(&got), all, "the member keeping up gets everything");

    // Now it reads again: an unbroken prefix, then the disconnect.
    let mut received = Vec::new();
    while let Some((name, data)) = slow.next_event().await {
        if name == "new_message" {
            received.push(data["id"].as_i64().unwrap());
        }
    }
    assert!(slow.was_closed(), "the slow member was disconnected");
    assert!(
        received.len() < N,
        "it could not have kept up (got all {N})"
    );
    assert_eq!(received, all[..received.len()], "no gap before the end");

    let deadline = Instant::now() + Duration::from_secs(5);
    while room_users(&stack.url, room).await["users"] != json!(["fast"]) {
        assert!(Instant::now() < deadline, "the slow member is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It catches up on reconnect with `since`.
    let again = stack.client().await;
    let since = received.last().copied().unwrap_or(0);
    let ack = again
        .call(
            "join_room",
            json!({"room_id": room, "username": "slow", "since": since}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let rest = again.expect_n("new_message", N - received.len()).await;
    assert_eq!(ids(&rest), all[received.len()..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_to_a_slow_socket_delays_no_other_room() {
    let stack = Stack::start_with(|c| {
        no_rate_limit(c);
        c.limits.max_buffered_packets = 256;
    })
    .await;
    let history = create_room(&stack.url, "History").await;
    let busy = create_room(&stack.url, "Busy").await;
    bulk_insert(&stack, history, 3000, 3900).await;
    let sender = stack.client().await;
    sender.join(busy, "sender").await;
    let receiver = stack.client().await;
    receiver.join(busy, "receiver").await;

    // A socket asks for the whole history and does not read it.
    let mut stalled = RawSocket::connect(&stack.url, Some(4096)).await;
    stalled
        .emit(
            "join_room",
            &json!({"room_id": history, "username": "stalled", "since": 0}),
        )
        .await;
    // Listed as soon as its join starts, before the replay.
    let deadline = Instant::now() + Duration::from_secs(10);
    while room_users(&stack.url, history).await["users"] != json!(["stalled"]) {
        assert!(Instant::now() < deadline, "the stalled join never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The replay waits up to 10 s for that socket, then evicts it (and
    // it leaves the list); the other room must not wait with it: all of
    // its traffic goes round while the stalled socket is still listed.
    for i in 0..20 {
        let ack = sender
            .call(
                "send_message",
                json!({"room_id": busy, "message": format!("b{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        let message = receiver.expect("new_message").await;
        assert_eq!(message["content"], format!("b{i}"));
    }
    assert_eq!(
        room_users(&stack.url, history).await["users"],
        json!(["stalled"]),
        "the other room waited for the stalled replay to give up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_connection_is_rate_limited_and_others_are_served() {
    let stack = Stack::start().await; // the default limits: 50/s, bursts of 100
    let room = create_room(&stack.url, "Flood").await;
    let innocent = stack.client().await;
    innocent.join(room, "innocent").await;
    let flooder = stack.client().await;
    flooder.join(room, "flooder").await;
    for i in 0..400 {
        flooder
            .emit(
                "send_message",
                json!({"room_id": room, "message": format!("f{i}")}),
            )
            .await;
    }
    let peer = stack.client().await;
    peer.join(room, "peer").await;
    let ack = peer
        .call(
            "send_message",
            json!({"room_id": room, "message": "normal"}),
        )
        .await;
    assert_eq!(ack["ok"], true, "another connection is served: {ack}");

    // The fence: one more send from the flooder, tried until its budget
    // allows it. One socket's packets keep their order, so its ack comes
    // after the `error` of every refused event before it.
    let mut refused_fences = 0;
    loop {
        let ack = flooder
            .call("send_message", json!({"room_id": room, "message": "fence"}))
            .await;
        if ack["ok"] == true {
            break;
        }
        assert_eq!(ack["code"], "rate_limited", "{ack}");
        refused_fences += 1;
        // The token bucket refills with time, not with anything to wait on.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let errors = flooder.drain("error", Duration::ZERO).await;
    let limited = errors
        .iter()
        .filter(|e| e["code"] == "rate_limited")
        .count();
    assert_eq!(limited, errors.len(), "{errors:?}");
    let limited = limited - refused_fences;
    assert!(limited >= 250, "only {limited} of 400 refused");
    let stored = history_ids(&stack.url, room).await;
    assert_eq!(
        stored.len(),
        400 - limited + 2,
        "the flood's, the peer's and the fence"
    );
    // Every member saw every stored message, in order.
    let got = innocent.expect_n("new_message", stored.len()).await;
    assert_eq!(ids(&got), stored);

    // The flooder stays connected and is served once it slows down.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ack = flooder
        .call("send_message", json!({"room_id": room, "message": "calm"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
}

/// Sends raw bytes (half-closing after them if `eof`, for a body cut
/// short) and reads the whole answer.
async fn raw_http(base: &str, request: &[u8], eof: bool) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    if eof {
        stream.shutdown().await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_and_code(answer: &str) -> (String, Value) {
    let status = answer.get(9..12).unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    (status, json["code"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_are_400s_through_the_sidecar_and_the_host() {
    let stack = Stack::start().await;
    let chunked = b"POST /chatrooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let short = b"POST /chatrooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
        Content-Length: 100\r\nConnection: close\r\n\r\n{\"name\":";
    let query = b"POST /chatrooms?name=caf%FF HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\
        Connection: close\r\n\r\n";
    let mut json_body = b"POST /chatrooms HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\
        Connection: close\r\n\r\n{\"name\":\"caf"
        .to_vec();
    json_body.extend_from_slice(b"\xff\"}");
    let cases: [(&str, &[u8], bool, &str); 4] = [
        ("bad chunked framing", chunked, false, "bad_request"),
        (
            "body shorter than its Content-Length",
            short,
            true,
            "bad_request",
        ),
        ("invalid UTF-8 in the query", query, false, "bad_request"),
        ("invalid UTF-8 in JSON", &json_body, false, "invalid_json"),
    ];
    for base in [&stack.url, &stack.rest.url] {
        for (what, request, eof, code) in &cases {
            let answer = raw_http(base, request, *eof).await;
            let (status, got) = status_and_code(&answer);
            assert_eq!(
                (status.as_str(), &got),
                ("400", &json!(code)),
                "{what} via {base}: {answer}"
            );
        }
    }
    assert_eq!(get_json(&stack.url, "/chatrooms").await, json!([]));
}

/// The body of an HTTP answer, as JSON (`null` for none or not JSON).
fn body_json(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body.trim()).unwrap_or(Value::Null)
}

/// A sidecar forwards the request target exactly as the client sent it
/// (no dot segments resolved, nothing re-encoded): the REST component
/// answers through it what it answers directly. A target that is not a
/// path (asterisk-form, absolute-form) is the sidecar's `400`, and every
/// answer of the sidecar's own carries the JSON error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_forwards_the_target_as_sent() {
    let stack = Stack::start().await;
    create_room(&stack.url, "General").await;
    for target in [
        "/chatrooms/%2e%2e",
        "/chatrooms/.",
        "/chatrooms/1/..",
        "/%2E%2E/chatrooms",
        "/chatrooms/1/messages/%2e",
        "/chatrooms//1",
        "/users/a%2Fb/unread",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let direct = raw_http(&stack.rest.url, request.as_bytes(), false).await;
        let through = raw_http(&stack.url, request.as_bytes(), false).await;
        assert_eq!(
            (direct.get(9..12), body_json(&direct)),
            (through.get(9..12), body_json(&through)),
            "{target}: directly {direct}\nthrough the sidecar {through}"
        );
        assert!(
            !through.contains("<!doctype html>"),
            "{target} reached the page: {through}"
        );
    }
    let not_paths: [&[u8]; 2] = [
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET http://elsewhere.example/chatrooms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ];
    for request in not_paths {
        let answer = raw_http(&stack.url, request, false).await;
        let (status, code) = status_and_code(&answer);
        assert_eq!(
            (status.as_str(), &code),
            ("400", &json!("bad_request")),
            "{answer}"
        );
    }
    // The sidecar's own routes: another method is 405 with the JSON body.
    let sidecar = chatroom_tests::process::SidecarProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        &stack.rest.db_path,
        &stack.rest.url,
    )
    .await;
    for (request, base) in [
        (
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            &sidecar.url,
        ),
        (
            "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            &stack.url,
        ),
    ] {
        let answer = raw_http(base, request.as_bytes(), false).await;
        let (status, code) = status_and_code(&answer);
        assert_eq!(
            (status.as_str(), &code),
            ("405", &json!("method_not_allowed")),
            "{answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("allow: get, head"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_answers_504_past_the_deadline_and_503_when_full() {
    let server = TestServer::start_with_limits(HostLimits {
        request_timeout: Duration::from_millis(500),
        max_concurrent_requests: 1,
        queue_timeout: Duration::from_millis(100),
        ..HostLimits::default()
    })
    .await;
    let addr = server.url.trim_start_matches("http://").to_owned();
    // A client that stalls mid-body holds the only instance...
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /chatrooms HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so another request waits briefly, then gets 503.
    let res = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "overloaded");

    // The stalled request is cut at its deadline.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("}") {
            let n = stalled.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answered by the deadline");
    let (status, code) = status_and_code(&String::from_utf8_lossy(&answer));
    assert_eq!((status.as_str(), &code), ("504", &json!("timeout")));

    // Its instance is gone: the slot serves the next request.
    let res = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_in_a_room_is_not_in_it_after_leaving_mid_join() {
    // A join acknowledged only when it happened: a socket that leaves
    // right after asking to join (with a replay) is not listed and gets
    // no live messages.
    let stack = Stack::start_with(no_rate_limit).await;
    let room = create_room(&stack.url, "Brief").await;
    bulk_insert(&stack, room, 500, 100).await;
    let watcher = stack.client().await;
    watcher.join(room, "watcher").await;
    for _ in 0..5 {
        let c = SocketClient::connect(&stack.url).await;
        c.emit(
            "join_room",
            json!({"room_id": room, "username": "brief", "since": 0}),
        )
        .await;
        c.disconnect().await;
    }
    tokio::time::sleep(SETTLE).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while room_users(&stack.url, room).await["users"] != json!(["watcher"]) {
        assert!(Instant::now() < deadline, "a departed socket is listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_deleted_or_replaced_underneath_is_refused_not_recreated() {
    for replace in [false, true] {
        let stack = Stack::start().await;
        let db = stack.rest.db_path.clone();
        let room = create_room(&stack.url, "Kept").await;
        let c = stack.client().await;
        c.join(room, "c").await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        if replace {
            // Another, empty database moved into its place.
            let other = db.with_file_name("other.db");
            drop(chatroom_dbfile::open_file(&other).unwrap());
            std::fs::rename(&other, &db).unwrap();
        }
        let res = reqwest::Client::new()
            .post(format!("{}/chatrooms", stack.url))
            .json(&json!({"name": "After"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 500, "replace={replace}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "storage_error");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.contains("sqlite") && !detail.contains('/'),
            "internal text in a 5xx body: {detail}"
        );
        let ack = c
            .call("send_message", json!({"room_id": room, "message": "lost?"}))
            .await;
        assert_eq!(
            (&ack["ok"], &ack["code"]),
            (&json!(false), &json!("storage_error"))
        );
        assert_eq!(c.expect("error").await["code"], "storage_error");
        assert_eq!(db.exists(), replace, "no new empty database was created");
    }
}

/// Serves `app` behind a front listener of two connections and a 300 ms
/// idle timeout; its address.
async fn serve_small_front(app: axum::Router) -> std::net::SocketAddr {
    use chatroom_front::listener::FrontLimits;
    use chatroom_front::serve::Front;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let front = Front {
        limits: FrontLimits {
            max_connections: 2,
            idle_timeout: Duration::from_millis(300),
        },
        ..Front::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(async move { front.serve(listener, app, stop, async {}).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_closes_idle_connections_and_caps_open_ones() {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let addr = serve_small_front(app).await;

    // Two clients hold both slots with half-sent request heads.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        holders.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A third is not served while they hold them...
    let started = Instant::now();
    let third = raw_http(
        &format!("http://{addr}"),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
    )
    .await;
    assert!(third.starts_with("HTTP/1.1 200"), "{third}");
    // ...only once the idle timeout closed one of them.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "served at once: the cap did not hold"
    );
    for mut s in holders {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "an idle half-sent request was not closed");
    }
}

/// Once a connection is upgraded, the front's idle timer is dropped (a
/// websocket is watched by Engine.IO's heartbeat): an upgraded connection
/// quiet for longer than the idle timeout is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_leaves_upgraded_connections_to_the_heartbeat() {
    use axum::http::{StatusCode, header};
    // Answers 101, then waits to read for three idle timeouts (as a
    // websocket's reader does) and writes if that wait was not cut short.
    let upgrade = |mut req: axum::extract::Request| async move {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = hyper_util::rt::TokioIo::new(on.await.expect("upgraded"));
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(900), io.read(&mut byte)).await;
            if read.is_err() {
                io.write_all(b"still here").await.ok();
            }
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::UPGRADE, "websocket"),
                (header::CONNECTION, "upgrade"),
            ],
        )
    };
    let app = axum::Router::new().route("/", axum::routing::get(upgrade));
    let addr = serve_small_front(app).await;

    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut seen)).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        read.is_ok(),
        "the connection was not closed after the write"
    );
    assert!(seen.starts_with("HTTP/1.1 101"), "{seen}");
    assert!(
        seen.ends_with("still here"),
        "the idle timer closed an upgraded connection: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_event_names_get_errors_over_both_transports() {
    let stack = Stack::start().await;
    let room = create_room(&stack.url, "Names").await;
    let names = [
        r#""\u0001""#,
        r#""\ud800""#,
        r#""a\"b""#,
        r#""tab\there""#,
        "5",
        "null",
        "{}",
    ];
    let mut ws = RawSocket::connect(&stack.url, None).await;
    for name in names {
        ws.send_text(&format!(r#"421[{name},{{"room_id":{room}}}]"#))
            .await;
        let (event, data) = ws.next_event().await.expect("the connection stays");
        assert_eq!(
            (event.as_str(), &data["code"]),
            ("error", &json!("invalid_payload")),
            "{name}"
        );
    }
    ws.emit("join_room", &json!({"room_id": room, "username": "ws"}))
        .await;
    let (event, data) = ws.next_event().await.expect("still connected");
    assert_eq!(
        (event.as_str(), &data["username"]),
        ("user_joined", &json!("ws"))
    );

    let polling = Polling::connect(&stack.url).await;
    for name in names {
        let status = polling
            .post(&format!(r#"42[{name},{{"room_id":{room}}}]"#))
            .await;
        assert_eq!(status, 200, "{name}");
        polling.poll_until("invalid_payload").await;
    }
    let join = json!(["join_room", {"room_id": room, "username": "polling"}]);
    assert_eq!(polling.post(&format!("42{join}")).await, 200);
    polling.poll_until("user_joined").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_component_is_stopped_by_the_deadline() {
    // A handler that spins forever without yielding: only the epoch
    // deadline can stop it.
    let dir = tempfile::tempdir().unwrap();
    let wat = chatroom_tests::workspace_root().join("tests/fixtures/runaway.wat");
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"runaway\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"spin\"\n\
         [component.spin]\nsource = \"{}\"\n",
        wat.display()
    );
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let server = TestServer::start_with_manifest_and_limits(
        &path,
        HostLimits {
            request_timeout: Duration::from_millis(300),
            max_concurrent_requests: 1,
            queue_timeout: Duration::from_secs(5),
            ..HostLimits::default()
        },
    )
    .await;
    for _ in 0..2 {
        // Answered at all: only the deadline stops the instance.
        let res = reqwest::get(format!("{}/anything", server.url))
            .await
            .unwrap();
        assert_eq!(res.status(), 504);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "timeout");
    }
    // The one instance slot came back each time: the spinning instance
    // was stopped, not left running.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_leaves_no_state_behind() {
    let stack = Stack::start_with(no_rate_limit).await;
    let room = create_room(&stack.url, "Churn").await;
    for i in 0..20 {
        let c = stack.client().await;
        c.join(room, &format!("churn{i}")).await;
        let ack = c
            .call("send_message", json!({"room_id": room, "message": "bye"}))
            .await;
        assert_eq!(ack["ok"], true);
        // And one that gets refused on the fast path.
        c.emit("join_room", json!(5)).await;
        c.disconnect().await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.connections.get() != 0 {
        assert!(
            Instant::now() < deadline,
            "{} closed connections still hold state",
            stack.connections.get()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
