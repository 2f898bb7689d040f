//! Running an edge deployment for real (issue 19): sidecars reach the REST
//! deployment over HTTPS under a path prefix, through a real TLS listener
//! with a certificate from a CA the test made, and Redis over TLS
//! (redis-server's own) with a user and password; a certificate from
//! another CA stops the start with a message saying what to do; an
//! upstream that is not there yet is waited for (`/healthz` `503` until
//! then); an outage of the REST host under running sidecars loses nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chatroom_tests::edge::{HostProcess, TOKEN, receives_exactly, send_everywhere, variables};
use chatroom_tests::http::{create_room, health, ids, post_message, wait_until_ready};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::SocketClient;
use chatroom_tests::tls::{TestCa, TlsProxy};
use chatroom_tests::workspace_root;

fn host_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_host-process"))
}

fn sidecar_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sidecar-process"))
}

/// The chat component under `/chat`, with the edge variables.
fn prefixed_manifest() -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/edge-prefix/spin.toml")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The REST deployment of these tests: the host on the prefixed manifest,
/// its database in `dir`, with the internal token (and `redis`'s URL when
/// given), behind a TLS listener with `ca`'s certificate.
async fn behind_tls(
    dir: &Path,
    ca: &TestCa,
    redis: Option<&RedisServer>,
) -> (HostProcess, TlsProxy) {
    let vars = variables(Some(TOKEN), redis);
    let host = HostProcess::start(host_bin(), &prefixed_manifest(), dir, vars).await;
    let proxy = TlsProxy::start(ca, host.addr).await;
    (host, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_under_a_prefix_and_tls_redis_with_a_password_deliver_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "good");
    let redis = RedisServer::start_secured(&ca, "chat", "s3cret");
    // The component publishes on the plain port with the password; the
    // sidecars follow over TLS.
    let (_host, proxy) = behind_tls(dir.path(), &ca, Some(&redis)).await;
    let upstream = proxy.url("/chat");
    let rediss = redis.tls_url();
    assert!(rediss.starts_with("rediss://chat:s3cret@"), "{rediss}");
    // A 60 s poll: only Redis wake-ups can deliver within the test.
    let flags = [
        "--ca-file",
        path(&ca.ca_file),
        "--redis",
        &rediss,
        "--poll-ms",
        "60000",
    ];
    let a = SidecarProcess::start_edge(sidecar_bin(), &upstream, TOKEN, &flags).await;
    let b = SidecarProcess::start_edge(sidecar_bin(), &upstream, TOKEN, &flags).await;
    assert_eq!(health(&a.url).await, Some(200));

    // REST through a sidecar reaches the component under its prefix.
    let room = create_room(&a.url, "Operations").await;
    let ann = SocketClient::connect(&a.url).await;
    let bob = SocketClient::connect(&b.url).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    let sent = send_everywhere(&a.url, room, &ann, &bob, 5, "tls").await;
    // The history the component keeps, through the other sidecar.
    let history = chatroom_tests::http::history_ids(&b.url, room).await;
    let mut want = sent.clone();
    want.sort_unstable();
    assert_eq!(history, want);
    receives_exactly(&a.url, room, &[(&ann, "ann"), (&bob, "bob")], &sent).await;
}

/// Runs the sidecar with `args` (and no CA from the environment) and
/// expects it to refuse to start: a non-zero exit within 30 s. Its stderr.
async fn refused_start(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let run = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(sidecar_bin())
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .env_remove("SSL_CERT_FILE")
            .env_remove("CHATROOM_CA_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sidecar starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait_with_output().expect("its output")
    });
    let out = run.await.expect("the run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "it must refuse to start by itself ({}): {stderr}",
        out.status
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = TestCa::new(dir.path(), "good");
    let other = TestCa::new(dir.path(), "other");
    let (_host, proxy) = behind_tls(dir.path(), &good, None).await;
    let upstream = proxy.url("/chat");
    let edge = [
        "--rest-upstream",
        upstream.as_str(),
        "--internal-token",
        TOKEN,
    ];

    // No CA given (the system's roots do not know the test's CA), or
    // another CA's.
    let stderr = refused_start(&edge).await;
    assert!(
        stderr.contains("TLS certificate was refused") && stderr.contains("--ca-file"),
        "the error says what is wrong and what to do: {stderr}"
    );
    let other_ca = path(&other.ca_file);
    let stderr = refused_start(&[&edge[..], &["--ca-file", other_ca]].concat()).await;
    assert!(stderr.contains("TLS certificate was refused"), "{stderr}");

    // Forwarding only (file mode): the same check at start-up.
    let db = dir.path().join("split.db");
    let stderr = refused_start(&["--db", path(&db), "--rest-upstream", &upstream]).await;
    assert!(stderr.contains("TLS certificate was refused"), "{stderr}");

    // Redis over TLS with a certificate from the other CA.
    let good_ca = ["--ca-file", path(&good.ca_file)];
    let redis = RedisServer::start_secured(&other, "chat", "pw");
    let rediss = redis.tls_url();
    let stderr = refused_start(&[&edge[..], &good_ca, &["--redis", &rediss]].concat()).await;
    assert!(
        stderr.contains("Redis's TLS certificate was refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pw@"),
        "the password stays out of the log: {stderr}"
    );

    // A wrong Redis password.
    let wrong = format!("redis://chat:nope@127.0.0.1:{}", redis.port);
    let stderr = refused_start(&[&edge[..], &good_ca, &["--redis", &wrong]].concat()).await;
    assert!(stderr.contains("Redis refused the credentials"), "{stderr}");

    // A wrong internal token.
    let stderr = refused_start(&[
        "--rest-upstream",
        &upstream,
        "--internal-token",
        "not-the-token",
        good_ca[0],
        good_ca[1],
    ])
    .await;
    assert!(stderr.contains("--internal-token"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_is_not_there_yet_is_waited_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "good");
    let (mut host, mut proxy) = behind_tls(dir.path(), &ca, None).await;
    proxy.stop();
    host.kill();
    let upstream = proxy.url("/chat");
    let flags = ["--ca-file", path(&ca.ca_file), "--poll-ms", "100"];
    let sidecar = SidecarProcess::launch_edge(sidecar_bin(), &upstream, TOKEN, &flags).await;

    // Listening, not ready: /healthz and Socket.IO say 503.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(health(&sidecar.url).await, Some(503));
    let handshake = reqwest::get(format!(
        "{}/socket.io/?EIO=4&transport=polling",
        sidecar.url
    ))
    .await
    .expect("an answer");
    assert_eq!(handshake.status(), 503);
    // An upstream answering 5xx is not the upstream serving either: the
    // proxy is back but the host behind it is not (the proxy closes).
    proxy.start_again().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(health(&sidecar.url).await, Some(503));

    host.restart().await;
    wait_until_ready(&sidecar.url).await;
    let room = create_room(&sidecar.url, "Late").await;
    let ann = SocketClient::connect(&sidecar.url).await;
    ann.join(room, "ann").await;
    let posted = post_message(&sidecar.url, room, "rest", "hello").await;
    let got = ids(&ann.expect_n("new_message", 1).await);
    assert_eq!(got, vec![posted["id"].as_i64().expect("an id")]);
}

/// How long the REST host is down under the running sidecar.
const OUTAGE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thirty_second_outage_of_the_rest_host_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "good");
    let (mut host, proxy) = behind_tls(dir.path(), &ca, None).await;
    let upstream = proxy.url("/chat");
    let flags = ["--ca-file", path(&ca.ca_file), "--poll-ms", "200"];
    let sidecar = SidecarProcess::start_edge(sidecar_bin(), &upstream, TOKEN, &flags).await;
    let room = create_room(&sidecar.url, "Outage").await;
    let ann = SocketClient::connect(&sidecar.url).await;
    ann.join(room, "ann").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let m = post_message(
            &format!("{}/chat", host.url),
            room,
            "before",
            &format!("before {i}"),
        )
        .await;
        sent.push(m["id"].as_i64().expect("an id"));
    }

    host.kill();
    let down = tokio::time::Instant::now();
    // The sidecar notices and says so; its socket stays up.
    let deadline = down + Duration::from_secs(10);
    while health(&sidecar.url).await != Some(503) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never said 503"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Meanwhile another writer (a restore, another region's host) adds
    // messages to the same database file.
    let db = chatroom_dbfile::open_file(&dir.path().join("sqlite_db.db")).expect("the database");
    for i in 0..3 {
        let draft =
            chatroom_core::MessageDraft::from_fields(Some("during"), Some(&format!("during {i}")))
                .expect("a draft");
        let stored = chatroom_core::insert_message(&db, room, &draft)
            .expect("written while the host is down");
        sent.push(stored.id);
    }
    drop(db);
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    host.restart().await;
    wait_until_ready(&sidecar.url).await;
    for i in 0..3 {
        let m = post_message(&sidecar.url, room, "after", &format!("after {i}")).await;
        sent.push(m["id"].as_i64().expect("an id"));
    }
    receives_exactly(&sidecar.url, room, &[(&ann, "ann")], &sent).await;
}
