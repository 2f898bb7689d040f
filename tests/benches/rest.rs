//! REST throughput and latency (issue 9), printed, not asserted: for each
//! endpoint, requests per second and p50/p99 latency with 32 keep-alive
//! connections driven by one client thread (like `wrk -t1 -c32`), against
//! the default run (`target/release/chatroom`) and, when a Spin CLI is found
//! (`SPIN_BIN` or `spin` on PATH), against `spin up` on the same `.wasm`.
//! Then the default run's start-up time with a warm compile cache and its
//! REST-to-socket latency. Each server gets a fresh state directory seeded
//! with 100 rooms and 100 messages in the first one. The machine's core
//! count and load average are printed beside the figures: the load
//! generator and the server share this machine.
//!
//! With the peer installed (`../shared/peers/node-chat`, or `PEER_DIR`:
//! a plain Node.js backend, express + socket.io + better-sqlite3, after
//! its `npm ci`), the same load runs against it in the same run, on a
//! fresh database seeded the same way: a figure without a peer beside it
//! cannot tell a slower program from a slower day.
//!
//! Each server runs `BENCH_ROUNDS` times (default 2), afresh each time,
//! the two alternating which goes first; besides the endpoints, each run
//! measures REST-to-socket latency, `join_room` acks with 100 sockets
//! joining at once, and fan-out of 200 messages to them (the default run
//! with `--event-rate 0 --event-queue 1024`, as the peer has no limit).
//! The means, side by side with their ratio, end the output as a table.
//! The peer commits with `synchronous=NORMAL` (no fsync per commit); each
//! round also runs it with `SQLITE_SYNCHRONOUS=FULL`, chatroom's
//! durability, for the two figures a commit's fsync is part of (`POST`
//! and REST-to-socket), printed as a column of their own.
//!
//! Run: `cargo bench -p chatroom-tests --bench rest`
//! (`BENCH_SECONDS` sets each run's length, default 8).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatroom_tests::http::{create_room, post_message, wait_until_up};
use chatroom_tests::release::{self, Server, default_run_binary, free_addr, machine};
use chatroom_tests::socket::SocketClient;
use chatroom_tests::workspace_root;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use reqwest::Client;

/// Connections, as in the issue's `wrk -t1 -c32`.
const CONNECTIONS: usize = 32;

/// The default run, as the peer has no event rate limit nor queue bound
/// (fan-out sends 200 at once).
fn start_default_run(binary: &Path, cache: &Path) -> Server {
    let extra = ["--event-rate", "0", "--event-queue", "1024"];
    release::start_default_run(binary, cache, &extra)
}

/// The peer's directory, when its packages are installed.
fn peer_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PEER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/peers/node-chat"));
    dir.join("node_modules").is_dir().then_some(dir)
}

/// The peer, committing with its default `synchronous=NORMAL` or, with
/// `full_sync`, with an fsync per commit as chatroom does.
fn start_peer(dir: &Path, full_sync: bool) -> Server {
    let addr = free_addr();
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("server.js"))
        .env("PORT", addr.port().to_string())
        .env("HOST", "127.0.0.1")
        .env("DB_PATH", state.path().join("chat.db"))
        .env("QUIET", "1");
    if full_sync {
        cmd.env("SQLITE_SYNCHRONOUS", "FULL");
    }
    Server::spawn(cmd, addr, state)
}

fn start_spin(spin: &str) -> Server {
    let addr = free_addr();
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = Command::new(spin);
    cmd.arg("up")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(state.path())
        .arg("-f")
        .arg(workspace_root().join("spin.toml"));
    Server::spawn(cmd, addr, state)
}

fn spin_cli() -> Option<String> {
    if let Some(bin) = std::env::var_os("SPIN_BIN").filter(|v| !v.is_empty()) {
        return Some(bin.to_string_lossy().into_owned());
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("spin").is_file()));
    on_path.then(|| "spin".to_owned())
}

/// What one load run measured.
struct Figures {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    /// Prints the figures; the requests per second.
    fn print(&mut self, server: &str, endpoint: &str) -> f64 {
        self.latencies.sort();
        let at = |p: f64| {
            let i = ((self.latencies.len().max(1) - 1) as f64 * p).round() as usize;
            self.latencies.get(i).copied().unwrap_or_default()
        };
        println!(
            "{server:<12} {endpoint:<34} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            self.errors,
        );
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// The requests of one endpoint: method, path and body.
#[derive(Clone, Copy)]
enum Load {
    Get(&'static str),
    Post(&'static str),
    /// A post with a fresh `Idempotency-Key` each time (docs/protocol.md
    /// §3.5): what remembering keys costs.
    PostKeyed(&'static str),
}

/// Numbers the keyed posts of the whole bench, so no two share a key.
static KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn request(load: Load, addr: SocketAddr, n: u64) -> hyper::Request<Full<Bytes>> {
    let builder = hyper::Request::builder().header(hyper::header::HOST, addr.to_string());
    match load {
        Load::Get(path) => builder.uri(path).body(Full::new(Bytes::new())),
        Load::Post(path) => builder
            .method("POST")
            .uri(path)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(format!(
                r#"{{"sender":"bench","message":"message number {n}"}}"#
            )))),
        Load::PostKeyed(path) => {
            let key = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            builder
                .method("POST")
                .uri(path)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", format!("bench-{key}"))
                .body(Full::new(Bytes::from(format!(
                    r#"{{"sender":"bench","message":"message number {n}"}}"#
                ))))
        }
    }
    .expect("a valid request")
}

/// One keep-alive connection sending `load` back to back until `until`.
async fn drive(addr: SocketAddr, load: Load, until: Instant) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return (latencies, 1);
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return (latencies, 1);
    };
    tokio::spawn(conn);
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        if sender.ready().await.is_err() {
            errors += 1;
            break;
        }
        let started = Instant::now();
        let ok = match sender.send_request(request(load, addr, n)).await {
            Ok(res) => {
                let success = res.status().is_success();
                success && res.into_body().collect().await.is_ok()
            }
            Err(_) => false,
        };
        if ok {
            latencies.push(started.elapsed());
        } else {
            errors += 1;
        }
    }
    (latencies, errors)
}

/// Runs `load` on [`CONNECTIONS`] connections from this (one) thread.
async fn measure(addr: SocketAddr, load: Load, length: Duration) -> Figures {
    // A short warm-up, not counted.
    let warm = Instant::now() + Duration::from_millis(500);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(drive(addr, load, warm)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let started = Instant::now();
    let until = started + length;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(drive(addr, load, until)))
        .collect();
    let mut figures = Figures {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (latencies, errors) = t.await.unwrap_or_default();
        figures.requests += latencies.len();
        figures.errors += errors;
        figures.latencies.extend(latencies);
    }
    figures.elapsed = started.elapsed();
    figures
}

/// 100 rooms, 100 messages in the first: the issue's data.
async fn seed(base: &str) -> i64 {
    let first = create_room(base, "bench-room-0").await;
    for i in 1..100 {
        create_room(base, &format!("bench-room-{i}")).await;
    }
    for i in 0..100 {
        post_message(base, first, "seed", &format!("seed message {i}")).await;
    }
    first
}

/// Every endpoint's load on a fresh, seeded server: the requests per
/// second of each, by name.
async fn run_endpoints(server: &str, addr: SocketAddr, length: Duration) -> Vec<(String, f64)> {
    let base = format!("http://{addr}");
    wait_until_up(&base).await;
    let room = seed(&base).await;
    assert_eq!(room, 1, "a fresh database numbers the first room 1");
    println!("# {server}: {}", machine());
    let loads = [
        // No SQL on either server: the fixed cost of a request.
        ("GET /healthz", Load::Get("/healthz")),
        (
            "GET /chatrooms/1/messages (100)",
            Load::Get("/chatrooms/1/messages"),
        ),
        ("GET /chatrooms (100 rooms)", Load::Get("/chatrooms")),
        (
            "POST /chatrooms/1/messages",
            Load::Post("/chatrooms/1/messages"),
        ),
        (
            "POST ... with an Idempotency-Key",
            Load::PostKeyed("/chatrooms/1/messages"),
        ),
    ];
    let mut figures = Vec::new();
    for (name, load) in loads {
        let per_sec = measure(addr, load, length).await.print(server, name);
        figures.push((format!("{name}, req/s"), per_sec));
    }
    figures
}

/// The figures a commit's fsync is part of, on a fresh, seeded server:
/// the plain `POST`'s requests per second and REST-to-socket p50.
async fn run_durable_writes(
    server: &str,
    addr: SocketAddr,
    length: Duration,
) -> Vec<(String, f64)> {
    let base = format!("http://{addr}");
    wait_until_up(&base).await;
    seed(&base).await;
    let name = "POST /chatrooms/1/messages";
    let per_sec = measure(addr, Load::Post("/chatrooms/1/messages"), length)
        .await
        .print(server, name);
    vec![
        (format!("{name}, req/s"), per_sec),
        (
            "REST POST -> socket, p50 ms".to_owned(),
            rest_to_socket(server, addr).await,
        ),
    ]
}

/// Start-up of the built binary with a warm cache: spawn to first answer.
async fn startup(binary: &Path, cache: &Path) -> Duration {
    let started = Instant::now();
    let server = start_default_run(binary, cache);
    let url = format!("http://{}/healthz", server.addr);
    let client = Client::new();
    loop {
        if client.get(&url).send().await.is_ok() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// REST-to-socket latency: POST, then the socket event. Prints the p50
/// and p99 of the socket event and of the POST's own answer (which part
/// of the path is the write, which the delivery); the event's p50 in ms.
async fn rest_to_socket(server: &str, addr: SocketAddr) -> f64 {
    let base = format!("http://{addr}");
    let room = create_room(&base, "latency").await;
    let client = SocketClient::connect(&base).await;
    client.join(room, "watcher").await;
    let http = Client::new();
    let mut events = Vec::new();
    let mut answers = Vec::new();
    for i in 0..300 {
        let sent = Instant::now();
        let res = http
            .post(format!("{base}/chatrooms/{room}/messages"))
            .json(&serde_json::json!({"sender": "poster", "message": format!("latency {i}")}))
            .send()
            .await
            .expect("POST");
        answers.push(sent.elapsed());
        assert_eq!(res.status(), 201);
        let (_, at) = client.expect_timed("new_message").await;
        events.push(at - sent);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let p50 = print_latency(server, "REST POST -> socket new_message", &mut events);
    print_latency(server, "REST POST -> its 201", &mut answers);
    p50
}

/// Prints the p50 and p99 of `samples`; the p50 in ms.
fn print_latency(server: &str, what: &str, samples: &mut [Duration]) -> f64 {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "{:<12} {:<34} p50 {:>7.2} ms  p99 {:>7.2} ms  (n={})",
        server,
        what,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples.len()
    );
    at(0.5).as_secs_f64() * 1e3
}

/// 100 sockets joining one room at once (join ack p50, ms), then fan-out
/// to them of 200 messages sent back to back (deliveries per second).
async fn joins_and_fan_out(server: &str, addr: SocketAddr) -> (f64, f64) {
    let base = format!("http://{addr}");
    let room = create_room(&base, "fan-out").await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(SocketClient::connect(&base).await);
    }
    let joins = clients.iter().enumerate().map(|(i, c)| async move {
        let started = Instant::now();
        let ack = c
            .call(
                "join_room",
                serde_json::json!({"room_id": room, "username": format!("m{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        started.elapsed()
    });
    let mut acks = futures_util::future::join_all(joins).await;
    acks.sort();
    let join_p50 = acks[acks.len() / 2].as_secs_f64() * 1e3;
    let sender = SocketClient::connect(&base).await;
    let fan = chatroom_tests::bench::fan_out(&sender, room, &clients, 200).await;
    println!(
        "{server:<12} {:<34} p50 {join_p50:>7.2} ms; fan-out 100 x 200 {:>9.0} deliveries/s ({} out of order)",
        "join_room ack, 100 at once",
        fan.per_sec(),
        fan.out_of_order
    );
    (join_p50, fan.per_sec())
}

/// One server's figures, fresh: the endpoints, then the sockets.
async fn run_all(server: &str, addr: SocketAddr, length: Duration) -> Vec<(String, f64)> {
    let mut figures = run_endpoints(server, addr, length).await;
    figures.push((
        "REST POST -> socket, p50 ms".to_owned(),
        rest_to_socket(server, addr).await,
    ));
    let (join, fan) = joins_and_fan_out(server, addr).await;
    figures.push(("join_room ack (100 at once), p50 ms".to_owned(), join));
    figures.push(("fan-out 100 x 200, deliveries/s".to_owned(), fan));
    figures
}

/// One server's rounds: the figures of each.
type Rounds = Vec<Vec<(String, f64)>>;

/// The mean of the figure `name` over `runs`, if they measured it.
fn mean_of(runs: &Rounds, name: &str) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// How many times better `ours` is than `theirs`: latencies (names
/// ending in "ms") are better lower, rates higher.
fn ratio(name: &str, ours: f64, theirs: f64) -> f64 {
    if name.ends_with("ms") {
        theirs / ours
    } else {
        ours / theirs
    }
}

/// The mean of each figure over the rounds of each server, side by side,
/// with their ratio; the peer with an fsync per commit as a second pair
/// of columns where it was measured.
fn print_side_by_side(ours: &Rounds, peer: &Rounds, peer_full: &Rounds) {
    println!(
        "\n| figure (mean of {} rounds each, alternating) | chatroom | node-chat | ratio | node-chat, synchronous=FULL | ratio |",
        ours.len()
    );
    println!("|---|---|---|---|---|---|");
    for (name, _) in &ours[0] {
        let (Some(a), Some(b)) = (mean_of(ours, name), mean_of(peer, name)) else {
            continue;
        };
        let full = match mean_of(peer_full, name) {
            Some(c) => format!("{c:.2} | {:.2}x", ratio(name, a, c)),
            None => "| ".to_owned(),
        };
        println!(
            "| {name} | {a:.2} | {b:.2} | {:.2}x | {full} |",
            ratio(name, a, b)
        );
    }
}

fn main() {
    let length = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    );
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .max(1);
    let binary = default_run_binary();
    let cache = tempfile::tempdir().expect("cache dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Each round starts both afresh, in alternating order.
        let peer = peer_dir();
        if peer.is_none() {
            println!("node-chat: the peer is not installed (PEER_DIR); not measured");
        }
        let (mut ours, mut theirs, mut theirs_full) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let peer_first = round % 2 == 1;
            for peer_turn in [peer_first, !peer_first] {
                match (&peer, peer_turn) {
                    (Some(dir), true) => {
                        let server = start_peer(dir, false);
                        theirs.push(run_all("node-chat", server.addr, length).await);
                        drop(server);
                        let server = start_peer(dir, true);
                        theirs_full
                            .push(run_durable_writes("node FULL", server.addr, length).await);
                    }
                    (None, true) => {}
                    (_, false) => {
                        let server = start_default_run(&binary, cache.path());
                        ours.push(run_all("default run", server.addr, length).await);
                    }
                }
            }
        }
        if !theirs.is_empty() {
            print_side_by_side(&ours, &theirs, &theirs_full);
        }
        let warm = startup(&binary, cache.path()).await;
        println!(
            "{:<12} {:<34} {:>7.1} ms (spawn to first answer, warm compile cache)",
            "default run",
            "start-up",
            warm.as_secs_f64() * 1e3
        );
        match spin_cli() {
            Some(spin) => {
                let server = start_spin(&spin);
                run_endpoints("spin up", server.addr, length).await;
            }
            None => println!("spin up: no Spin CLI found (set SPIN_BIN); not measured"),
        }
    });
}
