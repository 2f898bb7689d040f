//! docs/protocol.md §2 end to end: the real `chatroom_rest.wasm` in the Spin-compatible
//! host, over real HTTP, on a real SQLite file per test.

use chatroom_core::{Message, MessageDraft, Room, insert_message};
use chatroom_tests::TestServer;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body read");
    if status == StatusCode::NO_CONTENT {
        assert_eq!(text, "", "a 204 has no body");
        return Reply {
            status,
            headers,
            body: Value::Null,
        };
    }
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    assert_eq!(
        headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json; charset=utf-8"),
        "every answer is JSON"
    );
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(s: &TestServer, path: &str) -> Reply {
    send(Client::new().get(format!("{}{path}", s.url))).await
}

async fn post(s: &TestServer, path: &str, body: impl Into<reqwest::Body>) -> Reply {
    send(Client::new().post(format!("{}{path}", s.url)).body(body)).await
}

async fn post_json(s: &TestServer, path: &str, body: Value) -> Reply {
    post(s, path, body.to_string()).await
}

fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert_eq!(r.body["code"], code, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "a human sentence: {:?}",
        r.body
    );
}

fn is_rfc3339_millis_utc(ts: &str) -> bool {
    // 2026-11-24T14:20:42.123Z
    let b = ts.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && ts[..4].parse::<u32>().is_ok_and(|y| y >= 2024)
}

async fn create_room(s: &TestServer, name: &str) -> Room {
    let r = post_json(s, "/chatrooms", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    serde_json::from_value(r.body).unwrap()
}

#[tokio::test]
async fn health() {
    let s = TestServer::start().await;
    let r = get(&s, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn create_room_with_json_and_with_the_query_form() {
    let s = TestServer::start().await;
    let r = post_json(&s, "/chatrooms", json!({"name": "General"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["id"], 1);
    assert_eq!(r.body["name"], "General");
    assert!(is_rfc3339_millis_utc(
        r.body["created_at"].as_str().unwrap()
    ));
    assert_eq!(r.headers["location"], "/chatrooms/1");
    assert_eq!(r.body.as_object().unwrap().len(), 3, "{:?}", r.body);

    let r = send(Client::new().post(format!("{}/chatrooms?name=Random%20Talk", s.url))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["name"], "Random Talk");
    assert_eq!(r.headers["location"], "/chatrooms/2");
}

#[tokio::test]
async fn list_and_get_rooms() {
    let s = TestServer::start().await;
    let r = get(&s, "/chatrooms").await;
    assert_eq!((r.status, r.body), (StatusCode::OK, json!([])));
    let a = create_room(&s, "Alpha").await;
    let b = create_room(&s, "Beta").await;
    let r = get(&s, "/chatrooms").await;
    assert_eq!(r.status, StatusCode::OK);
    let rooms: Vec<Room> = serde_json::from_value(r.body).unwrap();
    assert_eq!(rooms, [a.clone(), b]);
    let r = get(&s, "/chatrooms/1").await;
    assert_eq!(serde_json::from_value::<Room>(r.body).unwrap(), a);
    assert_error(&get(&s, "/chatrooms/3").await, 404, "room_not_found");
    assert_eq!(
        get(&s, "/chatrooms/3").await.body["detail"],
        "Chatroom not found"
    );
    assert_error(&get(&s, "/chatrooms/abc").await, 400, "invalid_room_id");
    assert_error(&get(&s, "/chatrooms/-1").await, 400, "invalid_room_id");
}

#[tokio::test]
async fn room_names_are_validated() {
    let s = TestServer::start().await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": 5}),
        json!({"name": null}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "bell\u{7}"}),
    ] {
        assert_error(
            &post_json(&s, "/chatrooms", body).await,
            400,
            "invalid_name",
        );
    }
    // no body and no ?name=
    assert_error(&post(&s, "/chatrooms", "").await, 400, "invalid_name");
    for malformed in ["{", "{\"name\": }", "[\"General\"]", "\"General\"", "nul"] {
        assert_error(
            &post(&s, "/chatrooms", malformed).await,
            400,
            "invalid_json",
        );
    }
    let r = post_json(&s, "/chatrooms", json!({"name": "x".repeat(100)})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = post_json(&s, "/chatrooms", json!({"name": "  Trimmed\t"})).await;
    assert_eq!(r.body["name"], "Trimmed");
    // Nothing invalid was stored.
    assert_eq!(
        get(&s, "/chatrooms").await.body.as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn duplicate_names_conflict_ignoring_case_in_any_script() {
    let s = TestServer::start().await;
    create_room(&s, "General").await;
    let r = post_json(&s, "/chatrooms", json!({"name": "General"})).await;
    assert_error(&r, 409, "room_exists");
    assert_eq!(r.body["detail"], "Chatroom 'General' already exists");
    assert_error(
        &post_json(&s, "/chatrooms", json!({"name": "GENERAL"})).await,
        409,
        "room_exists",
    );
    assert_error(
        &send(Client::new().post(format!("{}/chatrooms?name=general", s.url))).await,
        409,
        "room_exists",
    );
    let cafe = create_room(&s, "Café Ünïcödé 猫 🐱").await;
    assert_eq!(cafe.name, "Café Ünïcödé 猫 🐱");
    assert_error(
        &post_json(&s, "/chatrooms", json!({"name": "CAFÉ ÜNÏCÖDÉ 猫 🐱"})).await,
        409,
        "room_exists",
    );
    let r = get(&s, &format!("/chatrooms/{}", cafe.id)).await;
    assert_eq!(r.body["name"], "Café Ünïcödé 猫 🐱");
}

#[tokio::test]
async fn post_messages_in_every_accepted_form() {
    let s = TestServer::start().await;
    create_room(&s, "General").await;
    let r = post_json(
        &s,
        "/chatrooms/1/messages",
        json!({"sender": "Alice", "message": "Hello"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let m: Message = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(
        (m.id, m.room_id, m.sender.as_str(), m.content.as_str()),
        (1, 1, "Alice", "Hello")
    );
    assert!(is_rfc3339_millis_utc(&m.timestamp), "{}", m.timestamp);
    assert_eq!(r.body.as_object().unwrap().len(), 5);

    let r = post_json(
        &s,
        "/chatrooms/1/messages",
        json!({"sender": "Bob", "content": "original field"}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["content"]),
        (StatusCode::CREATED, &json!("original field"))
    );

    let r = send(Client::new().post(format!(
        "{}/chatrooms/1/messages?sender=Carol&content=from%20Bruno",
        s.url
    )))
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        (&r.body["sender"], &r.body["content"]),
        (&json!("Carol"), &json!("from Bruno"))
    );

    let text = "multi\nline\twith tabs, ünïcödé 猫 and emoji 🐱";
    let r = post_json(
        &s,
        "/chatrooms/1/messages",
        json!({"sender": "Dé", "message": text}),
    )
    .await;
    assert_eq!(r.body["content"], text);

    let r = get(&s, "/chatrooms/1/messages").await;
    let all: Vec<Message> = serde_json::from_value(r.body).unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(all[3].content, text);
}

#[tokio::test]
async fn message_errors() {
    let s = TestServer::start().await;
    create_room(&s, "General").await;
    let p = "/chatrooms/1/messages";
    let cases = [
        (json!({"message": "no sender"}), "invalid_sender"),
        (json!({"sender": "", "message": "x"}), "invalid_sender"),
        (
            json!({"sender": "a".repeat(65), "message": "x"}),
            "invalid_sender",
        ),
        (json!({"sender": 7, "message": "x"}), "invalid_sender"),
        (json!({"sender": "a"}), "invalid_message"),
        (json!({"sender": "a", "message": ""}), "invalid_message"),
        (json!({"sender": "a", "message": " \n "}), "invalid_message"),
        (
            json!({"sender": "a", "message": "x".repeat(4001)}),
            "invalid_message",
        ),
        (
            json!({"sender": "a", "message": {"text": "x"}}),
            "invalid_message",
        ),
        (
            json!({"sender": "a", "message": "nul\u{0}byte"}),
            "invalid_message",
        ),
        (
            json!({"sender": "esc\u{1b}", "message": "x"}),
            "invalid_sender",
        ),
    ];
    for (body, code) in cases {
        assert_error(&post_json(&s, p, body).await, 400, code);
    }
    for malformed in ["{", "[]", "{\"sender\":\"a\",\"message\":\"x\"", "\u{0}"] {
        assert_error(&post(&s, p, malformed).await, 400, "invalid_json");
    }
    let ok = json!({"sender": "a".repeat(64), "message": "é".repeat(4000)});
    assert_eq!(post_json(&s, p, ok).await.status, StatusCode::CREATED);

    let hello = json!({"sender": "a", "message": "hi"});
    assert_error(
        &post_json(&s, "/chatrooms/2/messages", hello.clone()).await,
        404,
        "room_not_found",
    );
    assert_error(
        &post_json(&s, "/chatrooms/x/messages", hello.clone()).await,
        400,
        "invalid_room_id",
    );
    assert_error(
        &get(&s, "/chatrooms/2/messages").await,
        404,
        "room_not_found",
    );
    assert_error(
        &get(&s, "/chatrooms/0/messages").await,
        400,
        "invalid_room_id",
    );
    // Only the one valid message was stored.
    assert_eq!(get(&s, p).await.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let s = TestServer::start().await;
    create_room(&s, "General").await;
    let p = "/chatrooms/1/messages";
    // Exactly 64 KiB of valid JSON (padded with whitespace) is accepted.
    let mut body = json!({"sender": "a", "message": "fits"}).to_string();
    body.push_str(&" ".repeat(64 * 1024 - body.len()));
    assert_eq!(post(&s, p, body.clone()).await.status, StatusCode::CREATED);
    body.push(' ');
    assert_error(&post(&s, p, body).await, 413, "payload_too_large");
    let two_mb = format!(
        "{{\"sender\":\"a\",\"message\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    assert_error(&post(&s, p, two_mb.clone()).await, 413, "payload_too_large");
    assert_error(
        &post(&s, "/chatrooms", two_mb).await,
        413,
        "payload_too_large",
    );
    // The connection is still good and nothing else was stored.
    assert_eq!(get(&s, p).await.body.as_array().unwrap().len(), 1);
}

/// The component runs on a 256 KiB stack (components/rest/build.rs): a
/// body nested as deep as the JSON parser goes is answered, and one nested
/// deeper is refused as JSON, neither trapping the instance.
#[tokio::test]
async fn bodies_nested_to_the_json_parsers_limit_are_answered() {
    let s = TestServer::start().await;
    create_room(&s, "General").await;
    let p = "/chatrooms/1/messages";
    let nested = |depth: usize| {
        format!(
            "{{\"sender\":\"a\",\"message\":\"deep\",\"extra\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // serde_json stops at 128 levels; the outer object is one of them.
    assert_eq!(post(&s, p, nested(126)).await.status, StatusCode::CREATED);
    assert_error(&post(&s, p, nested(127)).await, 400, "invalid_json");
    assert_error(&post(&s, p, nested(30_000)).await, 400, "invalid_json");
    let history = get(&s, p).await.body;
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
}

/// The host keeps the first `INSTANCE_KEEP_RESIDENT_BYTES` of each
/// instance's memory mapped between requests (native/host/src/server.rs):
/// the component's stack, its data image and a first stretch of heap must
/// lie inside, or every request faults its pages in again.
#[test]
fn the_component_fits_the_hosts_resident_window() {
    let wasm = chatroom_tests::workspace_root()
        .join("target/wasm/wasm32-wasip2/release/chatroom_rest.wasm");
    let bytes = std::fs::read(&wasm).expect("the component is built");
    let (mut stack_top, mut data_end) = (None, 0u64);
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.expect("a valid component") {
            // The first global of Rust's core module is `__stack_pointer`,
            // which starts at the top of the stack (laid out first).
            wasmparser::Payload::GlobalSection(globals) if stack_top.is_none() => {
                let first = globals.into_iter().next().expect("a global").unwrap();
                let mut ops = first.init_expr.get_operators_reader();
                if let Ok(wasmparser::Operator::I32Const { value }) = ops.read() {
                    stack_top = u64::try_from(value).ok();
                }
            }
            wasmparser::Payload::DataSection(data) => {
                for segment in data {
                    let segment = segment.unwrap();
                    if let wasmparser::DataKind::Active { offset_expr, .. } = segment.kind {
                        let mut ops = offset_expr.get_operators_reader();
                        if let Ok(wasmparser::Operator::I32Const { value }) = ops.read() {
                            let end = u64::try_from(value).unwrap() + segment.data.len() as u64;
                            data_end = data_end.max(end);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let stack_top = stack_top.expect("the core module's stack pointer");
    assert_eq!(stack_top, 256 << 10, "the stack is 256 KiB and comes first");
    assert!(data_end > stack_top, "the data image follows the stack");
    // Room for `.bss` and the heap a page of history uses.
    let heap = 96u64 << 10;
    let window = chatroom_host::INSTANCE_KEEP_RESIDENT_BYTES as u64;
    assert!(
        data_end + heap <= window,
        "the data image ends at {data_end} bytes: with {heap} of heap it no longer fits the \
         host's {window}-byte resident window (raise INSTANCE_KEEP_RESIDENT_BYTES)"
    );
}

#[tokio::test]
async fn paging_with_after_before_and_limit() {
    let s = TestServer::start().await;
    create_room(&s, "A").await;
    create_room(&s, "B").await;
    for i in 1..=10 {
        let room = if i % 2 == 0 { 1 } else { 2 };
        let r = post_json(
            &s,
            &format!("/chatrooms/{room}/messages"),
            json!({"sender": "s", "message": format!("m{i}")}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // Room 1 holds ids 2, 4, 6, 8, 10.
    async fn ids(s: &TestServer, query: &str) -> Vec<i64> {
        let r = get(s, &format!("/chatrooms/1/messages{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    }
    assert_eq!(ids(&s, "").await, [2, 4, 6, 8, 10]);
    assert_eq!(ids(&s, "?after=4").await, [6, 8, 10]);
    assert_eq!(ids(&s, "?after=4&limit=2").await, [6, 8]);
    assert_eq!(ids(&s, "?before=8").await, [2, 4, 6]);
    assert_eq!(ids(&s, "?before=8&limit=2").await, [4, 6]);
    assert_eq!(ids(&s, "?limit=2").await, [8, 10]);
    assert_eq!(ids(&s, "?after=2&before=10").await, [4, 6, 8]);
    assert_eq!(ids(&s, "?after=10").await, Vec::<i64>::new());
    assert_eq!(ids(&s, "?limit=1000").await.len(), 5);
    for bad in [
        "?after=x",
        "?after=-1",
        "?before=0",
        "?limit=0",
        "?limit=1001",
        "?limit=",
        "?limit=1.5",
    ] {
        assert_error(
            &get(&s, &format!("/chatrooms/1/messages{bad}")).await,
            400,
            "invalid_paging",
        );
    }
}

#[tokio::test]
async fn users_come_from_the_presence_table() {
    let s = TestServer::start().await;
    create_room(&s, "General").await;
    create_room(&s, "Other").await;
    let r = get(&s, "/chatrooms/1/users").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"room_id": 1, "user_count": 0, "users": []}));
    // Rows as the sidecar writes them: one per (connection, room), under
    // the lease of the node (sidecar) holding the connection.
    let db = s.open_db();
    db.execute(
        "INSERT INTO presence_nodes (node_id, expires_at) VALUES ('n', 1e15), ('gone', 0)",
        [],
    )
    .unwrap();
    for (sid, room, user) in [
        ("s1", 1, "alice"),
        ("s2", 1, "bob"),
        ("s3", 1, "alice"),
        ("s4", 2, "carol"),
    ] {
        db.execute(
            "INSERT INTO presence (node_id, sid, room_id, username) VALUES ('n', ?1, ?2, ?3)",
            (sid, room, user),
        )
        .unwrap();
    }
    // A node whose lease ran out is not counted.
    db.execute(
        "INSERT INTO presence (node_id, sid, room_id, username) VALUES ('gone', 's9', 1, 'zed')",
        [],
    )
    .unwrap();
    let r = get(&s, "/chatrooms/1/users").await;
    assert_eq!(
        r.body,
        json!({"room_id": 1, "user_count": 2, "users": ["alice", "bob"]})
    );
    db.execute("DELETE FROM presence WHERE sid = 's1'", [])
        .unwrap();
    let r = get(&s, "/chatrooms/1/users").await;
    assert_eq!(r.body["users"], json!(["bob", "alice"]));
    assert_error(&get(&s, "/chatrooms/3/users").await, 404, "room_not_found");
    assert_error(&get(&s, "/chatrooms/x/users").await, 400, "invalid_room_id");
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = TestServer::start().await;
    assert_error(&get(&s, "/nope").await, 404, "not_found");
    // `/` itself is the chat page's (tests/page.rs).
    assert_error(&get(&s, "/index.html").await, 404, "not_found");
    let r = send(Client::new().delete(format!("{}/chatrooms", s.url))).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET, POST");
    let r = send(Client::new().put(format!("{}/chatrooms/1/users", s.url))).await;
    assert_error(&r, 405, "method_not_allowed");
}

/// The whole history of a 100k-message room comes back in one response,
/// although it is larger than Spin's 128 MiB cap on one query result: the
/// component reads and streams it a page at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_message_history_comes_back_whole() {
    const N: i64 = 100_000;
    let s = TestServer::start().await;
    create_room(&s, "Big").await;
    let filler = "x".repeat(1400);
    {
        let mut db = s.open_db();
        let tx = db.transaction().unwrap();
        for i in 0..N {
            let draft =
                MessageDraft::from_fields(Some("bulk"), Some(&format!("{i} {filler}"))).unwrap();
            insert_message(&*tx, 1, &draft).unwrap();
        }
        tx.commit().unwrap();
    }
    let res = Client::new()
        .get(format!("{}/chatrooms/1/messages", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.unwrap();
    assert!(
        bytes.len() > 128 << 20,
        "larger than one query may return: {}",
        bytes.len()
    );
    let messages: Vec<Message> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(messages.len() as i64, N);
    assert!(
        messages
            .iter()
            .enumerate()
            .all(|(i, m)| m.id == i as i64 + 1)
    );
    assert!(messages[N as usize - 1].content.starts_with("99999 "));
}

/// Another process writes the same file (holding the write lock in short
/// transactions) while requests run: no request fails, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_writing_the_file_never_fails_a_request() {
    const WRITER: usize = 150;
    const REST: usize = 120;
    let s = TestServer::start().await;
    create_room(&s, "Busy").await;
    let writer = tokio::process::Command::new(env!("CARGO_BIN_EXE_db-writer"))
        .arg(&s.db_path)
        .arg("1")
        .arg(WRITER.to_string())
        .output();
    let rest = async {
        let client = Client::new();
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..4 {
            let client = client.clone();
            let url = s.url.clone();
            tasks.spawn(async move {
                for i in 0..REST / 4 {
                    let res = client
                        .post(format!("{url}/chatrooms/1/messages"))
                        .json(&json!({"sender": "rest", "message": format!("r{worker}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    let body = res.text().await.unwrap();
                    assert_eq!(status, StatusCode::CREATED, "{body}");
                    let res = client
                        .get(format!("{url}/chatrooms/1/messages?limit=5"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), StatusCode::OK);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    };
    let (writer, ()) = tokio::join!(writer, rest);
    let writer = writer.unwrap();
    assert!(
        writer.status.success(),
        "{}",
        String::from_utf8_lossy(&writer.stderr)
    );
    let r = get(&s, "/chatrooms/1/messages").await;
    let all: Vec<Message> = serde_json::from_value(r.body).unwrap();
    assert_eq!(all.len(), WRITER + REST);
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "ids strictly increase"
    );
    assert_eq!(all.iter().filter(|m| m.sender == "writer").count(), WRITER);
}

/// A component that does not list `default` in `sqlite_databases` is refused
/// by the host (`access-denied`), as Spin refuses it; it answers 500 with a
/// JSON error rather than trapping, and the body names no internals (the
/// `access-denied` goes to the log).
#[tokio::test]
async fn a_database_not_granted_by_the_manifest_is_refused() {
    let root = chatroom_tests::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(root.join("spin.toml"))
        .unwrap()
        .replace(r#"sqlite_databases = ["default"]"#, "sqlite_databases = []")
        .replace("target/wasm/", &format!("{}/target/wasm/", root.display()));
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let s = TestServer::start_with_manifest(&path).await;
    let r = get(&s, "/chatrooms").await;
    assert_error(&r, 500, "storage_error");
    assert_eq!(
        r.body["detail"], "The server could not complete the request",
        "{:?}",
        r.body
    );
    assert!(!s.db_path.exists(), "no database file was created");
}

/// The schema is created by whichever side opens the file first, once.
#[tokio::test]
async fn the_schema_is_shared_with_native_code_both_ways() {
    let s = TestServer::start().await;
    // Native code first: the component finds the schema in place.
    let db = s.open_db();
    let room = chatroom_core::create_room(&db, &chatroom_core::RoomName::parse("Native").unwrap())
        .unwrap();
    let r = get(&s, &format!("/chatrooms/{}", room.id)).await;
    assert_eq!(r.body["name"], "Native");
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // And what the component writes, native code reads.
    create_room(&s, "Wasm").await;
    let rooms: i64 = db
        .query_row("SELECT COUNT(*) FROM chatrooms", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rooms, 2);
}

/// `/openapi.json` describes exactly the routes the component serves: every
/// documented path and method is routed (no `404 not_found`, no `405`) and
/// answers with a documented status; every undocumented method is `405`.
/// The path parameters are real: a room, messages by `doc` (the sender of
/// every request), an emoji and a username.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let s = TestServer::start().await;
    let doc = get(&s, "/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let room = post_json(&s, "/chatrooms", json!({"name": "Documented"})).await;
    let id = room.body["id"].as_i64().expect("room id");
    // One message for the message routes (which delete it) and one for the
    // reactions (so they answer for a live message whatever the order).
    let mut message_ids = Vec::new();
    for text in ["edit me", "react to me"] {
        let path = format!("/chatrooms/{id}/messages");
        let m = post_json(&s, &path, json!({"sender": "doc", "message": text})).await;
        assert_eq!(m.status, 201, "{:?}", m.body);
        message_ids.push(m.body["id"].as_i64().expect("message id"));
    }
    let paths = doc.body["paths"].as_object().expect("paths");
    for expected in [
        "/healthz",
        "/chatrooms",
        "/chatrooms/{room_id}",
        "/chatrooms/{room_id}/messages",
        "/chatrooms/{room_id}/users",
        "/chatrooms/{room_id}/changes",
        "/chatrooms/{room_id}/messages/{message_id}",
        "/chatrooms/{room_id}/messages/{message_id}/reactions/{emoji}",
        "/chatrooms/{room_id}/read",
        "/users/{name}/unread",
        "/users/{name}",
        "/chatrooms/{room_id}/members",
        "/chatrooms/{room_id}/members/{name}",
        "/chatrooms/{room_id}/kicks/{name}",
        "/chatrooms/{room_id}/bans/{name}",
        "/chatrooms/{room_id}/mutes/{name}",
        "/dms",
        "/internal/rooms/{room_id}/access",
        "/openapi.json",
        "/internal/feed",
        "/internal/feed/head",
        "/internal/messages",
        "/internal/actions",
        "/internal/nodes/{node}",
        "/internal/nodes/{node}/presence/{sid}/{room_id}",
        "/internal/nodes/{node}/presence/{sid}",
        "/internal/nodes/{node}/departures",
        "/internal/prune",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }
    let http = Client::new();
    for (path, item) in paths {
        let message_id = if path.contains("/reactions/") {
            message_ids[1]
        } else {
            message_ids[0]
        };
        let path_params = path
            .replace("{room_id}", &id.to_string())
            .replace("{message_id}", &message_id.to_string())
            .replace("{emoji}", "%F0%9F%91%8D")
            .replace("{name}", "doc")
            .replace("{node}", "node-1")
            .replace("{sid}", "sid-1");
        assert!(
            !path_params.contains('{'),
            "{path} has a parameter this test does not fill in"
        );
        let url = format!("{}{}", s.url, path_params);
        for method in ["get", "post", "put", "patch", "delete"] {
            let documented = item.get(method).is_some();
            let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res =
                send(http.request(verb, &url).json(
                    &json!({"name": format!("Doc {method}"), "sender": "doc", "message": "hi"}),
                ))
                .await;
            if documented {
                assert!(
                    res.status != 405 && res.body["code"] != "not_found",
                    "{method} {path} is documented but not routed: {:?}",
                    res.body
                );
                let statuses: Vec<&String> = item[method]["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                    .collect();
                assert!(
                    statuses.contains(&&res.status.as_u16().to_string()),
                    "{method} {path} answered {} which is not documented ({statuses:?})",
                    res.status
                );
            } else {
                assert_eq!(
                    res.status, 405,
                    "{method} {path} is routed but not documented"
                );
            }
        }
    }
}
