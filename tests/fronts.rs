//! What every front does alike, whichever binary or layout serves it:
//!
//! - a body over the REST limit is answered `413` `payload_too_large` and
//!   never with a reset connection, for a client that sends it all (1 MB,
//!   20 MB) and for one that asks `Expect: 100-continue` first: through
//!   the host alone, the default run, the sidecar forwarding to the host
//!   (split layout) and an edge-mode sidecar;
//! - SIGTERM drains: the listener closes at once, a request in flight
//!   finishes, Socket.IO transports are closed (so clients reconnect
//!   elsewhere) and presence is cleared, then the process exits cleanly,
//!   for `chatroom`, `chatroom-host` and `chatroom-sidecar`;
//! - the listener's limits come from the same flags in every binary
//!   (`--idle-timeout-secs`, `--max-connections`): a half-sent request is
//!   closed once idle, and connections beyond the cap wait.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chatroom_tests::edge::{EdgeRest, TOKEN};
use chatroom_tests::http::{create_room, room_users, wait_until_up};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::raw::{RawSocket, read_answer, refuses_oversized_bodies_cleanly};
use chatroom_tests::{DefaultRun, Stack, TestServer, workspace_root};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn bin(name: &str) -> &'static Path {
    match name {
        "host-process" => Path::new(env!("CARGO_BIN_EXE_host-process")),
        "sidecar-process" => Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        "chatroom-cli" => Path::new(env!("CARGO_BIN_EXE_chatroom-cli")),
        "host-cli" => Path::new(env!("CARGO_BIN_EXE_host-cli")),
        other => panic!("no binary {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_never_a_reset_through_every_front() {
    let host = TestServer::start().await;
    let room = create_room(&host.url, "Host").await;
    refuses_oversized_bodies_cleanly(&host.url, room, "host alone").await;

    let default_run = DefaultRun::start().await;
    let room = create_room(&default_run.url, "Default").await;
    refuses_oversized_bodies_cleanly(&default_run.url, room, "default run").await;

    let split = Stack::start().await;
    let room = create_room(&split.url, "Split").await;
    refuses_oversized_bodies_cleanly(&split.url, room, "sidecar forwarding").await;

    let rest = EdgeRest::host(bin("host-process"), None).await;
    let edge = SidecarProcess::start_edge(bin("sidecar-process"), &rest.url, TOKEN, &[]).await;
    let room = create_room(&edge.url, "Edge").await;
    refuses_oversized_bodies_cleanly(&edge.url, room, "edge sidecar").await;
}

/// A process started by a test, with the address it printed.
struct Started {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin` with `args` and finds its address in what it prints.
async fn start_printing_address(bin: &Path, args: &[&str]) -> Started {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("it starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let found = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let addr = lines.by_ref().map_while(Result::ok).find_map(|line| {
            line.split("http://")
                .nth(1)?
                .split(['/', ' '])
                .next()?
                .parse::<SocketAddr>()
                .ok()
        });
        std::thread::spawn(move || lines.for_each(drop));
        addr
    });
    let addr = tokio::time::timeout(Duration::from_secs(120), found)
        .await
        .expect("it printed its address in time")
        .expect("reading stdout")
        .expect("an address in what it printed");
    wait_until_up(&format!("http://{addr}")).await;
    Started { child, addr }
}

/// SIGTERM to `child`.
fn terminate(child: &Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
}

/// Waits for `child` to exit; its status.
async fn exits(child: &mut Child, patience: Duration) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no exit within {patience:?} of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM while a `POST /chatrooms` is half sent: the listener closes,
/// the request finishes (`201`), and the process exits cleanly.
async fn drains_a_request_in_flight(started: &mut Started, name: &str) {
    let body = json!({"name": format!("Created while {name} drains")}).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = TcpStream::connect(started.addr).await.expect("connect");
    let head = format!(
        "POST /chatrooms HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        started.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(first).await.expect("half the body");
    tokio::time::sleep(Duration::from_millis(300)).await;

    terminate(&started.child);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        TcpStream::connect(started.addr).await.is_err(),
        "{name}: still accepting connections after SIGTERM"
    );
    stream.write_all(rest).await.expect("the rest of the body");
    let answer = read_answer(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "{name}: the request in flight finishes: {answer:?}"
    );
    let status = exits(&mut started.child, Duration::from_secs(12)).await;
    assert!(status.success(), "{name} exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_drains_on_sigterm() {
    let state = tempfile::tempdir().expect("temp dir");
    let manifest = workspace_root().join("spin.toml");
    let mut host = start_printing_address(
        bin("host-cli"),
        &[
            "--manifest",
            manifest.to_str().expect("UTF-8"),
            "--state-dir",
            state.path().to_str().expect("UTF-8"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            "info",
        ],
    )
    .await;
    drains_a_request_in_flight(&mut host, "chatroom-host").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_run_drains_on_sigterm() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut chatroom = start_printing_address(
        bin("chatroom-cli"),
        &[
            "--state-dir",
            state.path().to_str().expect("UTF-8"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            "warn",
        ],
    )
    .await;
    let base = format!("http://{}", chatroom.addr);
    let room = create_room(&base, "Draining").await;
    let mut ann = RawSocket::connect(&base, None).await;
    ann.emit("join_room", &json!({"room_id": room, "username": "ann"}))
        .await;
    wait_for_users(&base, room, 1).await;
    drains_a_request_in_flight(&mut chatroom, "chatroom").await;
    socket_was_closed(&mut ann).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_sidecar_drains_on_sigterm_and_clears_its_presence() {
    let rest = EdgeRest::host(bin("host-process"), None).await;
    let mut sidecar = start_printing_address(
        bin("sidecar-process"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--rest-upstream",
            &rest.url,
            "--internal-token",
            TOKEN,
            "--log",
            "warn",
        ],
    )
    .await;
    let base = format!("http://{}", sidecar.addr);
    chatroom_tests::http::wait_until_ready(&base).await;
    let room = create_room(&base, "Draining").await;
    let mut ann = RawSocket::connect(&base, None).await;
    ann.emit("join_room", &json!({"room_id": room, "username": "ann"}))
        .await;
    wait_for_users(&rest.url, room, 1).await;
    drains_a_request_in_flight(&mut sidecar, "chatroom-sidecar").await;
    socket_was_closed(&mut ann).await;
    let users = room_users(&rest.url, room).await;
    assert_eq!(users["users"], json!([]), "presence cleared: {users}");
}

/// Waits until `room` lists `n` users.
async fn wait_for_users(base: &str, room: i64, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let users = room_users(base, room).await;
        if users["users"].as_array().is_some_and(|u| u.len() == n) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{users}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server closed the socket's transport: the websocket ends (an
/// Engine.IO close at most: a client reconnects), with no Socket.IO
/// `disconnect` packet (which tells the official clients not to).
async fn socket_was_closed(socket: &mut RawSocket) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, socket.next_text()).await {
            Ok(None) if socket.was_closed() => return,
            Ok(None) => {}
            Ok(Some(text)) => assert!(
                !text.starts_with("41"),
                "a Socket.IO disconnect packet stops clients from reconnecting: {text}"
            ),
            Err(_) => panic!("the socket stayed open after the drain"),
        }
    }
}

/// With `--idle-timeout-secs 1 --max-connections 2`: while two clients
/// hold half-sent request heads, a third connection is not served; once
/// the idle timeout closes theirs, it is.
async fn front_flags_hold(started: &Started, name: &str) {
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(started.addr).await.expect("connect");
        s.write_all(b"GET /chatrooms HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a head");
        holders.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = tokio::time::Instant::now();
    let mut third = TcpStream::connect(started.addr).await.expect("backlog");
    third
        .write_all(b"GET /chatrooms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("a whole request");
    let answer = read_answer(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{name}: {answer:?}");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "{name}: served after {waited:?}, beside two held connections: --max-connections 2 did not hold"
    );
    for mut s in holders {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "{name}: an idle half-sent head was not closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_takes_its_listener_limits_from_the_same_flags() {
    let limits = ["--idle-timeout-secs", "1", "--max-connections", "2"];
    let manifest = workspace_root().join("spin.toml");
    let manifest = manifest.to_str().expect("UTF-8");

    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path().to_str().expect("UTF-8");
    let mut args = vec!["--manifest", manifest, "--state-dir", dir];
    args.extend(["--listen", "127.0.0.1:0", "--log", "warn"]);
    args.extend(limits);
    let host = start_printing_address(bin("host-cli"), &args).await;
    front_flags_hold(&host, "chatroom-host").await;

    let state = tempfile::tempdir().expect("temp dir");
    let dir = state.path().to_str().expect("UTF-8");
    let mut args = vec![
        "--state-dir",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--log",
        "warn",
    ];
    args.extend(limits);
    let chatroom = start_printing_address(bin("chatroom-cli"), &args).await;
    front_flags_hold(&chatroom, "chatroom").await;

    let rest = format!("http://{}", host.addr);
    let db = tempfile::tempdir().expect("temp dir");
    let db = db.path().join("sqlite_db.db");
    let db = db.to_str().expect("UTF-8");
    let mut args = vec!["--db", db, "--rest-upstream", &rest];
    args.extend(["--listen", "127.0.0.1:0", "--log", "warn"]);
    args.extend(limits);
    let sidecar = start_printing_address(bin("sidecar-process"), &args).await;
    front_flags_hold(&sidecar, "chatroom-sidecar").await;
}
