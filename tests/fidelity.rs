//! Fidelity with real Spin 4 beyond the chat API itself: how requests are
//! routed and what Spin tells a component about them. The test-only echo
//! component (`tests/components/echo`) answers with the method, the path
//! and every `spin-*` header it was given; the same requests go to
//! `spin up` and to the project's host on the same manifest
//! (`tests/fixtures/echo/spin.toml`: routes under `/base` with `:name`
//! segments, exact routes and trailing wildcards) and the answers are
//! compared field by field. Also compared: the chat component mounted under
//! `/api`, a manifest with a non-root `base` (refused by both), and the
//! `default` database placed by a runtime config file.
//!
//! The comparisons run where a Spin CLI was found when this package was
//! built (`SPIN_BIN`, or `spin` on PATH; see `build.rs`) and fail if that
//! Spin does not start; elsewhere `cargo test` lists them as ignored. The
//! host-only tests below them run everywhere and pin what Spin 4.0.2 was
//! seen to send.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chatroom_host::{HostOptions, RuntimeConfig, SpinHost};
use chatroom_tests::spin::{SpinUp, SpinUpOptions, build_test_component};
use chatroom_tests::{TestServer, workspace_root};
use reqwest::{Client, Method};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

/// The echo manifest, with its component built.
fn echo_manifest() -> PathBuf {
    build_test_component("chatroom-echo");
    fixture("echo/spin.toml")
}

/// One answer of the echo app, with what differs between two servers on
/// two ports made comparable: the port in `host` and `spin-full-url` is
/// `PORT`, `spin-client-addr` is checked to be `127.0.0.1:<port>` and
/// blanked.
#[derive(Debug, PartialEq)]
struct Echoed {
    status: u16,
    content_type: Option<String>,
    /// The echo's JSON without `headers`, or the body as text.
    body: Value,
    /// Each `spin-*` header and `host`, as the component saw it.
    headers: BTreeMap<String, String>,
}

async fn echo(
    client: &Client,
    base: &str,
    method: &Method,
    path: &str,
    extra: &[(&str, &str)],
) -> Echoed {
    let mut req = client.request(method.clone(), format!("{base}{path}"));
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let text = res.text().await.expect("body");
    let port = base.rsplit(':').next().expect("a port in the base URL");
    let mut headers = BTreeMap::new();
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut map)) if map.contains_key("headers") => {
            if let Some(Value::Object(seen)) = map.remove("headers") {
                for (name, value) in seen {
                    let value = value.as_str().unwrap_or_default().to_owned();
                    let value = if name == "spin-client-addr" {
                        assert!(
                            value.starts_with("127.0.0.1:"),
                            "{path}: spin-client-addr {value:?}"
                        );
                        "127.0.0.1:<client>".to_owned()
                    } else {
                        value.replace(&format!(":{port}"), ":PORT")
                    };
                    headers.insert(name, value);
                }
            }
            if let Some(Value::String(uri)) = map.get_mut("uri") {
                *uri = uri.replace(&format!(":{port}"), ":PORT");
            }
            Value::Object(map)
        }
        Ok(other) => other,
        Err(_) => Value::String(text),
    };
    Echoed {
        status,
        content_type,
        body,
        headers,
    }
}

/// Extra request headers, name and value.
type Headers = Vec<(&'static str, &'static str)>;

/// The requests both servers get: paths under the base (trailing slashes,
/// queries, percent-escapes, `:name` segments), paths outside it, Spin's
/// own endpoints, other methods, and `spin-*` headers a client made up.
fn echo_script() -> Vec<(Method, &'static str, Headers)> {
    let get = |path| (Method::GET, path, Vec::new());
    vec![
        get("/base/echo/alice/x/y"),
        get("/base/echo/alice/x/y/"),
        get("/base/echo/alice"),
        get("/base/echo/alice/"),
        get("/base/echo/a%20b/%C3%A9/z?q=%26x&r=1&q=2"),
        get("/base/echo/a%2Fb/c"),
        get("/base/echo/caf%C3%A9?"),
        get("/base/echo"),
        get("/base/echo/"),
        get("/base/pair/one/two"),
        get("/base/pair/one/two/"),
        get("/base/pair/one"),
        get("/base/pair/one/two/three"),
        get("/base/files/report.json"),
        get("/base/files/report.json/"),
        get("/base/files/report.txt"),
        get("/base/files/a.b.json"),
        get("/base/exact"),
        get("/base/exact/"),
        get("/base/exact?x=1"),
        get("/base/exact/more"),
        get("/base/slash"),
        get("/base/slash/"),
        get("/base"),
        get("/base/"),
        get("/base?only=query"),
        get("/base/anything/deep/"),
        get("/base//double//slashes"),
        get("/base/%7Euser/%41"),
        get("/BASE/exact"),
        get("/basement"),
        get("/"),
        get("/outside/base"),
        get("/.well-known/spin/health"),
        get("/.well-known/spin/info"),
        get("/.well-known/spin/other"),
        get("/.well-known/spin"),
        (Method::POST, "/base/echo/bob/posted", Vec::new()),
        (Method::PUT, "/base/exact", Vec::new()),
        (Method::DELETE, "/base/pair/a/b", Vec::new()),
        (Method::PATCH, "/base/files/x.json", Vec::new()),
        (Method::OPTIONS, "/base", Vec::new()),
        (
            Method::GET,
            "/base/echo/carol/z",
            vec![
                ("spin-path-info", "/spoofed"),
                ("spin-path-match-name", "mallory"),
                ("spin-full-url", "http://evil.example/"),
                ("spin-custom", "kept"),
            ],
        ),
        (
            Method::GET,
            "/base/exact",
            vec![("host", "example.com:8080")],
        ),
        (
            Method::GET,
            "/base/echo/n/x",
            vec![("host", "other.example")],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn the_host_routes_and_labels_requests_like_spin_up() {
    let manifest = echo_manifest();
    let state = tempfile::tempdir().unwrap();
    let spin_up = SpinUp::start(
        SpinUpOptions::new(&manifest, state.path()),
        "/.well-known/spin/health",
    )
    .await;
    let ours = TestServer::start_with_manifest(&manifest).await;
    let client = Client::new();
    let script = echo_script();
    let mut differences = Vec::new();
    for (method, path, extra) in &script {
        let theirs = echo(&client, &spin_up.url, method, path, extra).await;
        let mine = echo(&client, &ours.url, method, path, extra).await;
        let what = format!("{method} {path} {extra:?}");
        if mine.status != theirs.status {
            differences.push(format!(
                "{what}: status {} (spin {})",
                mine.status, theirs.status
            ));
        }
        if mine.content_type != theirs.content_type {
            differences.push(format!(
                "{what}: content-type {:?} (spin {:?})",
                mine.content_type, theirs.content_type
            ));
        }
        if mine.body != theirs.body {
            differences.push(format!("{what}: body {} (spin {})", mine.body, theirs.body));
        }
        let names: std::collections::BTreeSet<&String> =
            mine.headers.keys().chain(theirs.headers.keys()).collect();
        for name in names {
            let (m, t) = (mine.headers.get(name), theirs.headers.get(name));
            if m != t {
                differences.push(format!("{what}: {name} {m:?} (spin {t:?})"));
            }
        }
        eprintln!(
            "{what}: {} {} {:?}",
            theirs.status, theirs.body, theirs.headers
        );
    }
    assert!(
        differences.is_empty(),
        "the host differs from spin up:\n{}",
        differences.join("\n")
    );
    eprintln!(
        "compared {} requests with real Spin: identical",
        script.len()
    );
}

/// Requests to the chat component mounted under `/api`: every endpoint
/// through the prefix, paths beside it, and the exact route next to it.
fn chat_under_api_script() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::GET, "/api/healthz", ""),
        (Method::GET, "/api/chatrooms", ""),
        (Method::POST, "/api/chatrooms", r#"{"name":"General"}"#),
        (Method::POST, "/api/chatrooms/", r#"{"name":"Second"}"#),
        (Method::POST, "/api/chatrooms?name=Caf%C3%A9", ""),
        (Method::POST, "/api/chatrooms?name=caf%FF", ""),
        (Method::GET, "/api/chatrooms/1", ""),
        (Method::GET, "/api/chatrooms/1/", ""),
        (Method::GET, "/api/chatrooms/abc", ""),
        (Method::GET, "/api/chatrooms/%FF", ""),
        (
            Method::POST,
            "/api/chatrooms/1/messages",
            r#"{"sender":"Alice","message":"Hello"}"#,
        ),
        (Method::GET, "/api/chatrooms/1/messages?limit=1", ""),
        (Method::GET, "/api/chatrooms/1/users", ""),
        (Method::DELETE, "/api/chatrooms/1", ""),
        (Method::GET, "/api/openapi.json", ""),
        (Method::GET, "/api", ""),
        (Method::GET, "/api/", ""),
        (Method::GET, "/api/nope", ""),
        (Method::GET, "/api/api/chatrooms", ""),
        (Method::GET, "/chatrooms", ""),
        (Method::GET, "/healthz", ""),
        (Method::GET, "/health-exact", ""),
        (Method::GET, "/apichatrooms", ""),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn the_chat_component_under_a_route_prefix_answers_like_spin_up() {
    let manifest = fixture("chat-prefix/spin.toml");
    let ours = TestServer::start_with_manifest(&manifest).await;
    let state = tempfile::tempdir().unwrap();
    let spin_up = SpinUp::start(SpinUpOptions::new(&manifest, state.path()), "/api/healthz").await;
    let client = Client::new();
    let script = chat_under_api_script();
    for (method, path, body) in &script {
        let theirs = chatroom_tests::spin::ask(&client, &spin_up.url, method, path, body).await;
        let mine = chatroom_tests::spin::ask(&client, &ours.url, method, path, body).await;
        assert_eq!(mine, theirs, "{method} {path}");
    }
    eprintln!(
        "compared {} requests under /api with real Spin: identical",
        script.len()
    );
}

#[tokio::test]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn a_non_root_base_is_refused_by_spin_up_and_by_the_host_alike() {
    build_test_component("chatroom-echo");
    let manifest = fixture("base/spin.toml");
    let state = tempfile::tempdir().unwrap();
    let theirs = SpinUp::refuses(SpinUpOptions::new(&manifest, state.path()));
    let sentence = "This application is using the deprecated trigger 'base' field. \
                    The base must be prepended to each [[trigger.http]]'s 'route'.";
    assert!(theirs.contains(sentence), "spin up said: {theirs}");
    let mine = SpinHost::load(&manifest, HostOptions::default())
        .err()
        .expect("the host refuses a non-root base");
    assert!(
        format!("{mine:#}").contains(sentence),
        "the host said: {mine:#}"
    );
}

/// A runtime config with a relative database path, in a directory of its
/// own below `cwd`: Spin resolves the path against the current directory.
fn relative_runtime_config(cwd: &Path) -> PathBuf {
    let dir = cwd.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("runtime-config.toml");
    std::fs::write(
        &file,
        "[sqlite_database.default]\ntype = \"spin\"\npath = \"data/chat.db\"\n",
    )
    .unwrap();
    file
}

fn room_names(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    let mut statement = conn
        .prepare("SELECT name FROM chatrooms ORDER BY id")
        .expect("the chatrooms table");
    statement
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn a_runtime_config_file_puts_the_database_where_spin_up_puts_it() {
    let manifest = workspace_root().join("spin.toml");
    let client = Client::new();

    let spin_cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = relative_runtime_config(spin_cwd.path());
    let mut options = SpinUpOptions::new(&manifest, state.path());
    options.current_dir = Some(spin_cwd.path());
    options.extra = vec![
        "--runtime-config-file".into(),
        "config/runtime-config.toml".into(),
    ];
    let spin_up = SpinUp::start(options, "/healthz").await;
    let res = client
        .post(format!("{}/chatrooms", spin_up.url))
        .body(r#"{"name":"Configured"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    drop(spin_up);
    let spin_db = spin_cwd.path().join("data/chat.db");
    assert_eq!(room_names(&spin_db), ["Configured"], "spin up's file");
    assert!(!spin_cwd.path().join("config/data").exists());
    assert!(!state.path().join("sqlite_db.db").exists());

    // The host, given the same file from the same kind of directory.
    let host_cwd = tempfile::tempdir().unwrap();
    let file_here = relative_runtime_config(host_cwd.path());
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&file_here).unwrap()
    );
    let table = std::fs::read_to_string(&file_here)
        .unwrap()
        .parse()
        .unwrap();
    let config = RuntimeConfig::resolve(&table, host_cwd.path()).unwrap();
    let host = TestServer::start_with_options(&manifest, |o| o.runtime_config = config).await;
    let res = client
        .post(format!("{}/chatrooms", host.url))
        .body(r#"{"name":"Configured"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        room_names(&host_cwd.path().join("data/chat.db")),
        ["Configured"]
    );
    assert!(!host.db_path.exists(), "nothing in the state directory");
}

/// The `spin-*` headers Spin 4.0.2 gave the echo component (seen by
/// running it), as `echo` normalises them.
fn spin_saw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut headers: BTreeMap<String, String> = [
        ("spin-base-path", "/"),
        ("spin-client-addr", "127.0.0.1:<client>"),
    ]
    .into_iter()
    .chain(pairs.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    headers.retain(|_, v| v != "<none>");
    headers
}

#[tokio::test]
async fn the_host_labels_requests_as_spin_4_was_seen_to() {
    let ours = TestServer::start_with_manifest(&echo_manifest()).await;
    let client = Client::new();
    let cases: Vec<(&str, Headers, BTreeMap<String, String>)> = vec![
        (
            "/base/echo/alice/x/y/",
            vec![],
            spin_saw(&[
                (
                    "spin-full-url",
                    "http://127.0.0.1:PORT/base/echo/alice/x/y/",
                ),
                ("spin-path-info", "/x/y/"),
                ("spin-matched-route", "/base/echo/:name/..."),
                ("spin-raw-component-route", "/base/echo/:name/..."),
                ("spin-component-route", "/base/echo/:name"),
                ("spin-path-match-name", "alice"),
            ]),
        ),
        (
            "/base/echo/a%20b/%C3%A9/z?q=%26x",
            vec![],
            spin_saw(&[
                (
                    "spin-full-url",
                    "http://127.0.0.1:PORT/base/echo/a%20b/%C3%A9/z?q=%26x",
                ),
                ("spin-path-info", "/%C3%A9/z"),
                ("spin-matched-route", "/base/echo/:name/..."),
                ("spin-raw-component-route", "/base/echo/:name/..."),
                ("spin-component-route", "/base/echo/:name"),
                ("spin-path-match-name", "a%20b"),
            ]),
        ),
        (
            "/base/pair/one/two",
            vec![],
            spin_saw(&[
                ("spin-full-url", "http://127.0.0.1:PORT/base/pair/one/two"),
                ("spin-path-info", ""),
                ("spin-matched-route", "/base/pair/:first_name/:second"),
                ("spin-raw-component-route", "/base/pair/:first_name/:second"),
                ("spin-component-route", "/base/pair/:first_name/:second"),
                ("spin-path-match-first-name", "one"),
                ("spin-path-match-second", "two"),
            ]),
        ),
        (
            "/base/files/report.json",
            vec![],
            spin_saw(&[
                (
                    "spin-full-url",
                    "http://127.0.0.1:PORT/base/files/report.json",
                ),
                ("spin-path-info", ""),
                ("spin-matched-route", "/base/files/:stem.json"),
                ("spin-raw-component-route", "/base/files/:stem.json"),
                ("spin-component-route", "/base/files/:stem.json"),
                ("spin-path-match-stem", "report"),
            ]),
        ),
        (
            "/base/slash/",
            vec![],
            spin_saw(&[
                ("spin-full-url", "http://127.0.0.1:PORT/base/slash/"),
                ("spin-path-info", ""),
                ("spin-matched-route", "/base/slash"),
                ("spin-raw-component-route", "/base/slash/"),
                ("spin-component-route", "/base/slash/"),
            ]),
        ),
        (
            "/base//double//slashes",
            vec![],
            spin_saw(&[
                (
                    "spin-full-url",
                    "http://127.0.0.1:PORT/base//double//slashes",
                ),
                ("spin-path-info", "//double//slashes"),
                ("spin-matched-route", "/base/..."),
                ("spin-raw-component-route", "/base/..."),
                ("spin-component-route", "/base"),
            ]),
        ),
        (
            "/base/echo/carol/z",
            vec![
                ("spin-path-info", "/spoofed"),
                ("spin-path-match-name", "mallory"),
            ],
            spin_saw(&[
                ("spin-full-url", "http://127.0.0.1:PORT/base/echo/carol/z"),
                ("spin-path-info", "/spoofed, /z"),
                ("spin-matched-route", "/base/echo/:name/..."),
                ("spin-raw-component-route", "/base/echo/:name/..."),
                ("spin-component-route", "/base/echo/:name"),
                ("spin-path-match-name", "mallory, carol"),
            ]),
        ),
        (
            "/base/exact",
            vec![("host", "example.com:8080")],
            spin_saw(&[
                ("spin-full-url", "http://example.com:8080/base/exact"),
                ("spin-path-info", ""),
                ("spin-matched-route", "/base/exact"),
                ("spin-raw-component-route", "/base/exact"),
                ("spin-component-route", "/base/exact"),
            ]),
        ),
    ];
    for (path, extra, want) in cases {
        let got = echo(&client, &ours.url, &Method::GET, path, &extra).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.headers, want, "{path} {extra:?}");
        assert_eq!(got.body["path_with_query"], path, "{path}");
    }
    for path in ["/basement", "/", "/BASE/exact", "/.well-known/spin/other"] {
        let got = echo(&client, &ours.url, &Method::GET, path, &[]).await;
        assert_eq!(
            (got.status, got.body),
            (404, Value::String(String::new())),
            "{path}"
        );
    }
    let health = echo(
        &client,
        &ours.url,
        &Method::GET,
        "/.well-known/spin/health",
        &[],
    )
    .await;
    assert_eq!(
        (health.status, health.body),
        (200, Value::String("OK".into()))
    );
    let info = client
        .get(format!("{}/.well-known/spin/info", ours.url))
        .send()
        .await
        .unwrap();
    assert_eq!(info.headers()["content-type"], "application/json");
    assert_eq!(
        info.text().await.unwrap(),
        "{\n  \"name\": \"echo\",\n  \"version\": \"0.2.0\"\n}"
    );
}

/// Sends raw bytes and returns the status line's code (or `None` when the
/// connection is closed without an answer).
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
}

/// The request heads Spin refuses before running the component (it drops
/// the connection, or answers an empty `500` for a header value that is
/// not UTF-8); the host refuses them too, with a `400`, and serves the
/// same requests made well.
#[tokio::test]
async fn heads_spin_refuses_never_reach_the_component() {
    let ours = TestServer::start_with_manifest(&echo_manifest()).await;
    let refused: [&[u8]; 4] = [
        b"GET /base/exact HTTP/1.0\r\n\r\n",
        b"GET /base/exact HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        b"GET http://other:1/base/exact HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /base/exact HTTP/1.1\r\nHost: x\r\nX-Bin: \xff\r\nConnection: close\r\n\r\n",
    ];
    for request in refused {
        assert_eq!(
            raw_status(ours.addr, request).await,
            Some(400),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    let served: [&[u8]; 3] = [
        b"GET /base/exact HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET http://x/base/exact HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /base/exact HTTP/1.1\r\nHost: x\r\nX-Utf8: caf\xc3\xa9\r\nConnection: close\r\n\r\n",
    ];
    for request in served {
        assert_eq!(
            raw_status(ours.addr, request).await,
            Some(200),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[tokio::test]
async fn the_chat_component_works_under_a_route_prefix_in_the_host() {
    let ours = TestServer::start_with_manifest(&fixture("chat-prefix/spin.toml")).await;
    let client = Client::new();
    let res = client
        .post(format!("{}/api/chatrooms", ours.url))
        .body(r#"{"name":"Mounted"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], "/api/chatrooms/1");
    let room: Value = client
        .get(format!("{}/api/chatrooms/1", ours.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(room["name"], "Mounted");
    // A spin-path-info the client made up comes before the host's: the
    // component routes on the host's (the last value).
    let rooms: Value = client
        .get(format!("{}/api/chatrooms", ours.url))
        .header("spin-path-info", "/healthz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rooms[0]["name"], "Mounted", "{rooms}");
    let res = client
        .post(format!(
            "{}/api/chatrooms/1/messages?sender=a&content=hi",
            ours.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = client
        .delete(format!("{}/api/chatrooms/1", ours.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    let res = client
        .get(format!("{}/api/chatrooms/%FF", ours.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Below the prefix the component's own 404; beside it nothing at all.
    for (path, status, code) in [
        ("/api/nope", 404, Some("not_found")),
        ("/api/api/chatrooms", 404, Some("not_found")),
        ("/health-exact", 404, Some("not_found")),
        ("/chatrooms", 404, None),
        ("/apichatrooms", 404, None),
    ] {
        let res = client
            .get(format!("{}{path}", ours.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{path}");
        let text = res.text().await.unwrap();
        match code {
            Some(code) => {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["code"], code, "{path}");
            }
            None => assert_eq!(text, "", "{path}"),
        }
    }
}

#[test]
fn the_host_refuses_a_non_root_base_with_spins_words() {
    build_test_component("chatroom-echo");
    let err = SpinHost::load(&fixture("base/spin.toml"), HostOptions::default())
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}")
            .contains("The base must be prepended to each [[trigger.http]]'s 'route'"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_runtime_config_puts_the_hosts_database_where_it_says() {
    let cwd = tempfile::tempdir().unwrap();
    let file = relative_runtime_config(cwd.path());
    let table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
    let config = RuntimeConfig::resolve(&table, cwd.path()).unwrap();
    let manifest = workspace_root().join("spin.toml");
    let host = TestServer::start_with_options(&manifest, |o| o.runtime_config = config).await;
    let res = Client::new()
        .post(format!("{}/chatrooms?name=There", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(room_names(&cwd.path().join("data/chat.db")), ["There"]);
    assert!(!host.db_path.exists());
}

/// Spin variables and outbound Redis (`tests/fixtures/echo-vars`): the echo
/// component's `/variable/<name>` answers what `variables.get` gave it, and
/// `/redis/publish` what `open` and `publish` did, on a `redis-server` of
/// the test's own. Compared with `spin up` given the same `SPIN_VARIABLE_*`
/// environment, and pinned to what Spin 4.0.2 answered for the host-only
/// tests.
mod variables_and_redis {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chatroom_host::{HostOptions, SpinHost, VariableSource};
    use chatroom_tests::TestServer;
    use chatroom_tests::redis::RedisServer;
    use chatroom_tests::spin::{SpinUp, SpinUpOptions, build_test_component};
    use reqwest::Client;
    use serde_json::{Value, json};

    use super::fixture;

    const CHANNEL: &str = "chatroom:test";

    fn manifest(name: &str) -> std::path::PathBuf {
        build_test_component("chatroom-echo");
        fixture(&format!("{name}/spin.toml"))
    }

    /// The environment both servers get: `greeting` overridden, the
    /// required `audience` and `redis_address` set, `token` (secret) and
    /// `empty` left to their defaults.
    fn environment(redis: &RedisServer) -> Vec<(String, String)> {
        vec![
            ("SPIN_VARIABLE_GREETING".into(), "hi".into()),
            ("SPIN_VARIABLE_AUDIENCE".into(), "world".into()),
            ("SPIN_VARIABLE_REDIS_ADDRESS".into(), redis.address()),
        ]
    }

    async fn host_with(env: &[(String, String)]) -> TestServer {
        let given: BTreeMap<String, String> = env.iter().cloned().collect();
        TestServer::start_with_options(&manifest("echo-vars"), |o| {
            o.variables = VariableSource::Given(given)
        })
        .await
    }

    async fn get_json(client: &Client, base: &str, path: &str) -> Value {
        let res = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.expect("a JSON answer")
    }

    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn publish_path(address: &str, payload: &str) -> String {
        format!(
            "/redis/publish?address={}&channel={}&payload={}",
            encode(address),
            encode(CHANNEL),
            encode(payload)
        )
    }

    /// Variable names asked for: each component variable, an application
    /// variable the component does not declare, an undeclared name, and
    /// invalid names.
    const NAMES: &[&str] = &[
        "greeting",
        "message",
        "literal",
        "token",
        "redis_url",
        "empty",
        "braces",
        "audience",
        "nope",
        "Bad-Name",
        "a__b",
        "9x",
        "x_",
        "",
    ];

    /// What Spin 4.0.2 answered for [`NAMES`] with [`environment`].
    fn spin_answers(redis: &RedisServer) -> Vec<Value> {
        let undefined = |name: &str| {
            json!({"error": {"kind": "undefined",
                "message": format!("no variable for \"echo\".\"{name}\"")}})
        };
        let invalid =
            |message: &str| json!({"error": {"kind": "invalid-name", "message": message}});
        vec![
            json!({"ok": "hi"}),
            json!({"ok": "hi, world!"}),
            json!({"ok": "just text"}),
            json!({"ok": "s3cret"}),
            json!({"ok": format!("redis://{}", redis.address())}),
            json!({"ok": ""}),
            json!({"ok": "a } b { c"}),
            undefined("audience"),
            undefined("nope"),
            invalid(
                "\"Bad-Name\": invalid character 'B'. Variable names may contain only \
                 lower-case letters, numbers, and underscores.",
            ),
            invalid("\"a__b\": must not contain multiple consecutive underscores"),
            invalid("\"9x\": must start with a lowercase ASCII letter"),
            invalid("\"x_\": must end with a lowercase ASCII letter or digit"),
            invalid("\"\": must not be empty"),
        ]
    }

    /// Addresses the component is not allowed (or that are no Redis
    /// address), each refused with `invalid-address`.
    fn refused_addresses(redis: &RedisServer) -> Vec<String> {
        vec![
            format!("redis://localhost:{}", redis.port),
            format!("redis://127.0.0.1:{}", redis.port + 1),
            "redis://127.0.0.1".into(),
            format!("rediss://127.0.0.1:{}", redis.port),
            format!("http://127.0.0.1:{}", redis.port),
            // Allowed (Spin reads it as redis://...), but no Redis URL.
            redis.address(),
            "garbage".into(),
            String::new(),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(spin_cli),
        ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
    )]
    async fn variables_and_redis_answer_like_spin_up() {
        let redis = RedisServer::start();
        let env = environment(&redis);
        let state = tempfile::tempdir().unwrap();
        let manifest = manifest("echo-vars");
        let mut options = SpinUpOptions::new(&manifest, state.path());
        options.env = env.clone();
        let spin_up = SpinUp::start(options, "/variable/greeting").await;
        let ours = host_with(&env).await;
        let client = Client::new();
        let mut differences = Vec::new();
        let mut compare = async |path: String| {
            let theirs = get_json(&client, &spin_up.url, &path).await;
            let mine = get_json(&client, &ours.url, &path).await;
            eprintln!("{path}: {theirs}");
            if mine != theirs {
                differences.push(format!("{path}: {mine} (spin {theirs})"));
            }
            theirs
        };
        for name in NAMES {
            compare(format!("/variable/{}", encode(name))).await;
        }
        for address in refused_addresses(&redis) {
            let answer = compare(publish_path(&address, "never")).await;
            assert_eq!(answer["error"]["kind"], "invalid-address", "{address}");
        }
        let with_password = format!("redis://user:pw@{}", redis.address());
        compare(publish_path(&with_password, "never")).await;
        let mut subscriber = redis.subscribe(CHANNEL);
        let allowed = format!("redis://{}", redis.address());
        for (server, payload) in [(&spin_up.url, "from spin"), (&ours.url, "from the host")] {
            let answer = get_json(&client, server, &publish_path(&allowed, payload)).await;
            assert_eq!(answer, json!({"ok": null}), "{server}");
            assert!(
                subscriber.received(payload, Duration::from_secs(5)),
                "{payload:?} did not reach the subscriber"
            );
        }
        for (server, key) in [(&spin_up.url, "k-spin"), (&ours.url, "k-host")] {
            let path = format!("/redis/ops?address={}&key={key}", encode(&allowed));
            let answer = get_json(&client, server, &path).await;
            assert_eq!(answer, json!({"ok": [2, "2", 1, null]}), "{server}");
        }
        assert!(
            differences.is_empty(),
            "the host differs from spin up:\n{}",
            differences.join("\n")
        );
    }

    #[tokio::test]
    #[cfg_attr(
        not(spin_cli),
        ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
    )]
    async fn spin_up_and_the_host_refuse_the_same_variable_mistakes() {
        let state = tempfile::tempdir().unwrap();
        // A required variable without a value.
        let manifest_vars = manifest("echo-vars");
        let mut options = SpinUpOptions::new(&manifest_vars, state.path());
        options.env = vec![("SPIN_VARIABLE_AUDIENCE".into(), "world".into())];
        let printed = SpinUp::refuses(options);
        let words = "no provider resolved required variable(s): [Key(\"redis_address\")]";
        assert!(printed.contains(words), "{printed}");
        let ours = host_refusal("echo-vars", &[("SPIN_VARIABLE_AUDIENCE", "world")]);
        assert!(ours.contains(words), "{ours}");
        // An allowed host template whose default is empty: refused even
        // with the variable set.
        let manifest_empty = manifest("echo-vars-empty");
        let mut options = SpinUpOptions::new(&manifest_empty, state.path());
        options.env = vec![(
            "SPIN_VARIABLE_REDIS_ADDRESS".into(),
            "127.0.0.1:6390".into(),
        )];
        let printed = SpinUp::refuses(options);
        let words = "using default variable value(s) with template \
                     \"redis://{{ redis_address }}\" results in invalid config \"redis://\"";
        assert!(printed.contains(words), "{printed}");
        let ours = host_refusal(
            "echo-vars-empty",
            &[("SPIN_VARIABLE_REDIS_ADDRESS", "127.0.0.1:6390")],
        );
        assert!(ours.contains(words), "{ours}");
    }

    /// Why the host refuses to start on fixture `name` with `env`.
    fn host_refusal(name: &str, env: &[(&str, &str)]) -> String {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = SpinHost::load(
            &manifest(name),
            HostOptions {
                variables: VariableSource::Given(env),
                compile_cache: None,
                ..HostOptions::default()
            },
        )
        .err()
        .expect("the host refuses to start");
        format!("{err:#}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_host_gives_variables_as_spin_4_was_seen_to() {
        let redis = RedisServer::start();
        let ours = host_with(&environment(&redis)).await;
        let client = Client::new();
        for (name, expected) in NAMES.iter().zip(spin_answers(&redis)) {
            let answer = get_json(&client, &ours.url, &format!("/variable/{}", encode(name))).await;
            assert_eq!(answer, expected, "{name:?}");
        }
        // Without SPIN_VARIABLE_GREETING, the default.
        let env: Vec<_> = environment(&redis)
            .into_iter()
            .filter(|(k, _)| k != "SPIN_VARIABLE_GREETING")
            .collect();
        let ours = host_with(&env).await;
        let answer = get_json(&client, &ours.url, "/variable/message").await;
        assert_eq!(answer, json!({"ok": "hello, world!"}));
    }

    #[tokio::test]
    async fn the_host_refuses_variable_mistakes_with_spins_words() {
        let ours = host_refusal("echo-vars", &[("SPIN_VARIABLE_AUDIENCE", "world")]);
        assert!(
            ours.contains("no provider resolved required variable(s): [Key(\"redis_address\")]"),
            "{ours}"
        );
        let ours = host_refusal(
            "echo-vars-empty",
            &[("SPIN_VARIABLE_REDIS_ADDRESS", "127.0.0.1:6390")],
        );
        assert!(
            ours.contains(
                "`allowed_outbound_hosts` is malformed: using default variable value(s) with \
                 template \"redis://{{ redis_address }}\" results in invalid config \
                 \"redis://\": Invalid allowed host \"\": empty host"
            ),
            "{ours}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_host_publishes_only_where_it_is_allowed() {
        let redis = RedisServer::start();
        let ours = host_with(&environment(&redis)).await;
        let client = Client::new();
        for address in refused_addresses(&redis) {
            let answer = get_json(&client, &ours.url, &publish_path(&address, "x")).await;
            assert_eq!(
                answer,
                json!({"error": {"kind": "invalid-address", "message": null}}),
                "{address}"
            );
        }
        let with_password = format!("redis://user:pw@{}", redis.address());
        let answer = get_json(&client, &ours.url, &publish_path(&with_password, "x")).await;
        // What Spin 4.0.2 answered (the same redis crate's words).
        assert_eq!(
            answer,
            json!({"error": {"kind": "other",
                "message": "Password authentication failed- AuthenticationFailed"}})
        );
        let mut subscriber = redis.subscribe(CHANNEL);
        let allowed = format!("redis://{}", redis.address());
        for n in 0..3 {
            let payload = format!("message {n}");
            let answer = get_json(&client, &ours.url, &publish_path(&allowed, &payload)).await;
            assert_eq!(answer, json!({"ok": null}));
            assert!(
                subscriber.received(&payload, Duration::from_secs(5)),
                "{payload}"
            );
        }
        let path = format!("/redis/ops?address={}&key=counter", encode(&allowed));
        let answer = get_json(&client, &ours.url, &path).await;
        assert_eq!(answer, json!({"ok": [2, "2", 1, null]}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_host_reconnects_to_a_restarted_redis() {
        let redis = RedisServer::start();
        let port = redis.port;
        let ours = host_with(&environment(&redis)).await;
        let client = Client::new();
        let allowed = format!("redis://{}", redis.address());
        let answer = get_json(&client, &ours.url, &publish_path(&allowed, "before")).await;
        assert_eq!(answer, json!({"ok": null}));
        let mut redis = redis;
        redis.stop();
        // Down: what Spin answers when it cannot connect.
        let answer = get_json(&client, &ours.url, &publish_path(&allowed, "down")).await;
        assert_eq!(
            answer,
            json!({"error": {"kind": "other", "message": "Connection refused (os error 111)"}})
        );
        redis.restart();
        assert_eq!(redis.port, port);
        let mut subscriber = redis.subscribe(CHANNEL);
        let answer = get_json(&client, &ours.url, &publish_path(&allowed, "after")).await;
        assert_eq!(answer, json!({"ok": null}));
        assert!(subscriber.received("after", Duration::from_secs(5)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_allowed_host_that_resolves_empty_refuses_every_open_as_spin_does() {
        // Spin 4.0.2 starts when SPIN_VARIABLE_REDIS_ADDRESS is set but
        // empty (the variable is required, so it has no default to check),
        // and then answers every `open` with the parse error's first line.
        let redis = RedisServer::start();
        let mut env = environment(&redis);
        env.retain(|(k, _)| k != "SPIN_VARIABLE_REDIS_ADDRESS");
        env.push(("SPIN_VARIABLE_REDIS_ADDRESS".into(), String::new()));
        let ours = host_with(&env).await;
        let client = Client::new();
        let allowed = format!("redis://{}", redis.address());
        let answer = get_json(&client, &ours.url, &publish_path(&allowed, "x")).await;
        assert_eq!(
            answer,
            json!({"error": {"kind": "other", "message": "Invalid allowed host \"\""}})
        );
        let answer = get_json(&client, &ours.url, "/variable/redis_url").await;
        assert_eq!(answer, json!({"ok": "redis://"}));
    }
}
