//! Edge mode's figures (issue 10), printed, not asserted: REST-to-socket
//! latency to a member on each of two edge-mode sidecars, and fan-out
//! throughput across both, with Redis wake-ups, with Redis wake-ups and
//! everything the sidecars reach behind TLS (the REST host behind a TLS
//! listener, Redis's own TLS port with a password: what the TLS costs),
//! and with feed polling. The REST component runs in the host as a process
//! of its own, with a real `redis-server`; the sidecars are separate
//! processes that reach the data only through the component. The load
//! generator (and, in the TLS run, the TLS listener) shares the machine.
//!
//! Run: `cargo bench -p chatroom-tests --bench edge`.

use std::path::Path;
use std::time::{Duration, Instant};

use chatroom_tests::bench::{self, joined_clients};
use chatroom_tests::edge::{EdgeRest, TOKEN};
use chatroom_tests::http::create_room;
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::SocketClient;
use chatroom_tests::tls::{TestCa, TlsProxy};
use reqwest::Client;
use serde_json::json;

/// The poll interval of the polling runs.
const POLL_MS: u64 = 100;

fn at(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

async fn sidecar(rest: &str, node: &str, extra: &[&str]) -> SidecarProcess {
    let mut flags = vec![
        "--node-id",
        node,
        "--event-rate",
        "0",
        "--event-queue",
        "100000",
    ];
    flags.extend(extra);
    SidecarProcess::start_edge(
        Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        rest,
        TOKEN,
        &flags,
    )
    .await
}

/// REST POST until the member on each sidecar has it.
async fn rest_to_sockets(label: &str, rest: &str, a: &str, b: &str, samples: usize) {
    let room = create_room(rest, &format!("latency {label}")).await;
    let on_a = &joined_clients(a, room, 1, "a").await[0];
    let on_b = &joined_clients(b, room, 1, "b").await[0];
    let http = Client::new();
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let sent = Instant::now();
        let res = http
            .post(format!("{rest}/chatrooms/{room}/messages"))
            .json(&json!({"sender": "bench", "message": format!("r{i}")}))
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), 201);
        let (_, at_a) = on_a.expect_timed("new_message").await;
        let (_, at_b) = on_b.expect_timed("new_message").await;
        to_a.push(at_a - sent);
        to_b.push(at_b - sent);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (name, s) in [("sidecar A", &mut to_a), ("sidecar B", &mut to_b)] {
        println!(
            "{label:<22} REST POST -> socket on {name}   p50 {:>7.2} ms  p99 {:>7.2} ms  (n={})",
            at(s, 0.5),
            at(s, 0.99),
            s.len()
        );
    }
}

/// One socket on sidecar A sends `messages` back to back to a room with
/// `per_sidecar` members on each sidecar.
async fn fan_out(label: &str, rest: &str, a: &str, b: &str, per_sidecar: usize, messages: usize) {
    let room = create_room(rest, &format!("fan-out {label}")).await;
    let mut members = joined_clients(a, room, per_sidecar, "a").await;
    members.extend(joined_clients(b, room, per_sidecar, "b").await);
    let sender = SocketClient::connect(a).await;
    let f = bench::fan_out(&sender, room, &members, messages).await;
    println!(
        "{label:<22} fan-out {} + {} members x {messages} messages  {:>8.0} deliveries/s ({} in {:.3} s, {} out of order)",
        per_sidecar,
        per_sidecar,
        f.per_sec(),
        f.deliveries,
        f.secs,
        f.out_of_order
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let host = Path::new(env!("CARGO_BIN_EXE_host-process"));
    println!(
        "chatroom edge-mode benchmark: host process + 2 edge sidecars, {} cores, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );

    let redis = RedisServer::start();
    let rest = EdgeRest::host(host, Some(&redis)).await;
    let flags = ["--redis", redis.url.as_str(), "--poll-ms", "60000"];
    let a = sidecar(&rest.url, "a", &flags).await;
    let b = sidecar(&rest.url, "b", &flags).await;
    rest_to_sockets("redis", &rest.url, &a.url, &b.url, 300).await;
    fan_out("redis", &rest.url, &a.url, &b.url, 50, 200).await;
    drop((a, b, rest, redis));

    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "bench");
    let redis = RedisServer::start_secured(&ca, "chat", "bench");
    let rest = EdgeRest::host(host, Some(&redis)).await;
    let rest_addr = rest
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let proxy = TlsProxy::start(&ca, rest_addr).await;
    let (upstream, rediss) = (proxy.url(""), redis.tls_url());
    let ca_file = ca.ca_file.to_str().expect("UTF-8").to_owned();
    let flags = [
        "--redis",
        &rediss,
        "--ca-file",
        &ca_file,
        "--poll-ms",
        "60000",
    ];
    let a = sidecar(&upstream, "a", &flags).await;
    let b = sidecar(&upstream, "b", &flags).await;
    rest_to_sockets("redis, all TLS", &rest.url, &a.url, &b.url, 300).await;
    fan_out("redis, all TLS", &rest.url, &a.url, &b.url, 50, 200).await;
    drop((a, b, proxy, rest, redis));

    let rest = EdgeRest::host(host, None).await;
    let poll = POLL_MS.to_string();
    let flags = ["--poll-ms", poll.as_str()];
    let a = sidecar(&rest.url, "a", &flags).await;
    let b = sidecar(&rest.url, "b", &flags).await;
    let label = format!("polling {POLL_MS} ms");
    rest_to_sockets(&label, &rest.url, &a.url, &b.url, 100).await;
    fan_out(&label, &rest.url, &a.url, &b.url, 50, 200).await;
}
