//! The sidecar's real-time figures (issues 3 and 8), printed, not asserted:
//! REST-to-socket and socket-to-socket latency, an innocent pair's latency
//! while another connection floods (default limits), fan-out throughput for
//! 100 and 1000 clients in one room with a count of deliveries out of the
//! sender's order, the sidecar's CPU and memory with 1000 idle
//! connections, and the resident memory one idle connection costs a fresh
//! sidecar. The sidecar runs as its own process (the one `kill -9`
//! tests use), REST through the wasmtime host, on one SQLite file; the
//! fan-out runs on a second sidecar with the event rate limit off.
//!
//! Run: `cargo bench -p chatroom-tests --bench realtime`.

use std::time::{Duration, Instant};

use chatroom_tests::TestServer;
use chatroom_tests::bench::{self, joined_clients};
use chatroom_tests::http::create_room;
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::socket::SocketClient;
use reqwest::Client;
use serde_json::json;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Like [`report`], for signed samples in milliseconds.
fn report_signed(name: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    let negative = samples.iter().filter(|s| **s < 0.0).count();
    println!(
        "{name:<48} p1 {:>+9.3} ms  p50 {:>+9.3} ms  p99 {:>+9.3} ms  (n={}, {negative} negative: \
         the socket had the message before the HTTP response)",
        at(0.01),
        at(0.50),
        at(0.99),
        samples.len()
    );
}

fn report(name: &str, samples: &mut [Duration]) {
    println!(
        "{name:<48} p50 {:>11}  p99 {:>11}  (n={})",
        ms(percentile(samples, 0.50)),
        ms(percentile(samples, 0.99)),
        samples.len()
    );
}

/// (user+system CPU seconds, resident MiB) of a process, from /proc.
fn cpu_and_rss(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    (ticks / 100.0, rss_kib / 1024.0)
}

/// One sender, `clients.len()` receivers, `messages` sent back to back
/// (each with a `client_id` `{prefix}-{i}` when `keys` names a prefix).
async fn fan_out(
    url: &str,
    room: i64,
    clients: &[SocketClient],
    messages: usize,
    keys: Option<&str>,
) {
    let sender = SocketClient::connect(url).await;
    let f = bench::fan_out_keyed(&sender, room, clients, messages, keys).await;
    println!(
        "fan-out, {:>4} clients x {:>3} messages{} {:>9.0} deliveries/s ({} in {:.3} s, {} out of the sender's order)",
        clients.len(),
        messages,
        if keys.is_some() {
            ", client_ids"
        } else {
            "            "
        },
        f.per_sec(),
        f.deliveries,
        f.secs,
        f.out_of_order
    );
}

/// An innocent pair's delivery latency while another connection keeps
/// `in_flight` acknowledged sends outstanding for the whole measurement.
async fn under_flood(url: &str, in_flight: usize) {
    let room = create_room(url, "flood").await;
    let pair = joined_clients(url, room, 2, "u").await;
    let flooder = std::sync::Arc::new(SocketClient::connect(url).await);
    flooder.join(room, "flooder").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let unanswered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..in_flight {
        let (flooder, stop) = (flooder.clone(), stop.clone());
        let (refused, unanswered) = (refused.clone(), unanswered.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let data = json!({"room_id": room, "message": format!("flood{t}")});
                match flooder
                    .call_within("send_message", data, Duration::from_secs(2))
                    .await
                {
                    Some(ack) if ack["code"] == "rate_limited" => {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => {
                        // Disconnected as too slow to read its own answers.
                        unanswered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut samples = Vec::new();
    for i in 0..200 {
        let sent = Instant::now();
        let ack = pair[0]
            .call(
                "send_message",
                json!({"room_id": room, "message": format!("innocent{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        loop {
            let (message, at) = pair[1].expect_timed("new_message").await;
            if message["content"] == format!("innocent{i}") {
                samples.push(at - sent);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    report(
        &format!("innocent pair while {in_flight} sends are in flight"),
        &mut samples,
    );
    println!(
        "  (the flooder: {} events refused as rate_limited, {} never answered)",
        refused.load(std::sync::atomic::Ordering::Relaxed),
        unanswered.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rest = TestServer::start().await;
    let sidecar = SidecarProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        &rest.db_path,
        &rest.url,
    )
    .await;
    let url = sidecar.url.clone();
    println!(
        "chatroom real-time benchmark (sidecar pid {})",
        sidecar.pid()
    );

    // REST -> socket.
    let room = create_room(&url, "latency").await;
    let listener = &joined_clients(&url, room, 1, "u").await[0];
    let http = Client::new();
    let (mut end_to_end, mut after_201) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let sent = Instant::now();
        let res = http
            .post(format!("{}/chatrooms/{room}/messages", rest.url))
            .json(&json!({"sender": "bench", "message": format!("r{i}")}))
            .send()
            .await
            .unwrap();
        let created = Instant::now();
        assert_eq!(res.status(), 201);
        let (_, at) = listener.expect_timed("new_message").await;
        end_to_end.push(at - sent);
        // Signed: negative when the socket got it before the 201 arrived.
        after_201.push(if at >= created {
            (at - created).as_secs_f64() * 1e3
        } else {
            -((created - at).as_secs_f64() * 1e3)
        });
    }
    report("REST POST sent -> socket new_message", &mut end_to_end);
    report_signed("REST 201 received -> socket new_message", &mut after_201);

    // One connection floods, with the default limits.
    under_flood(&url, 400).await;

    // Throughput: a sidecar with the event rate limit off.
    let sidecar_unlimited = SidecarProcess::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        &rest.db_path,
        &rest.url,
        &["--event-rate", "0", "--event-queue", "100000"],
    )
    .await;
    let url = sidecar_unlimited.url.clone();

    // Socket -> 100 sockets.
    let room = create_room(&url, "hundred").await;
    let clients = joined_clients(&url, room, 100, "u").await;
    let sender = SocketClient::connect(&url).await;
    let mut samples = Vec::new();
    for i in 0..100 {
        let sent = Instant::now();
        let ack = sender
            .call(
                "send_message",
                json!({"room_id": room, "sender": "s", "message": format!("s{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true);
        for c in &clients {
            let (_, at) = c.expect_timed("new_message").await;
            samples.push(at - sent);
        }
    }
    report("socket send -> each of 100 sockets", &mut samples);
    // Without and with client_ids, alternating: what remembering keys costs.
    fan_out(&url, room, &clients, 200, None).await;
    for round in 0..2 {
        fan_out(&url, room, &clients, 200, Some(&format!("fan{round}"))).await;
        fan_out(&url, room, &clients, 200, None).await;
    }
    // The same room with edits, reactions and typing mixed in.
    let sender = SocketClient::connect(&url).await;
    let f = bench::fan_out_mixed(&sender, room, &clients, 200).await;
    println!(
        "fan-out, {:>4} clients x {:>3} rounds, mixed stream  {:>9.0} deliveries/s ({} in {:.3} s, {} out of seq order; a round: message, edit, reaction, typing)",
        clients.len(),
        200,
        f.per_sec(),
        f.deliveries,
        f.secs,
        f.out_of_order
    );
    drop(clients);

    // 1000 clients: fan-out, then idle.
    let room = create_room(&url, "thousand").await;
    let clients = joined_clients(&url, room, 1000, "u").await;
    fan_out(&url, room, &clients, 20, None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = sidecar_unlimited.pid();
    let (cpu0, _) = cpu_and_rss(pid);
    let idle = Duration::from_secs(10);
    tokio::time::sleep(idle).await;
    let (cpu1, rss) = cpu_and_rss(pid);
    println!(
        "sidecar idle with 1000 connections                {:.2} % of one core over {:?}; RSS {rss:.1} MiB",
        (cpu1 - cpu0) / idle.as_secs_f64() * 100.0,
        idle
    );
    drop(clients);

    // What an idle connection costs: a fresh sidecar, 1000 websocket
    // clients connected and in no room, nothing sent. As in
    // tests/interop/idle_rss.py, "before" is taken after one connection
    // came and went: the code its first use pages in is paid once, not by
    // every connection.
    let fresh = SidecarProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        &rest.db_path,
        &rest.url,
    )
    .await;
    SocketClient::connect(&fresh.url).await.disconnect().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, before) = cpu_and_rss(fresh.pid());
    let mut idle_clients = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle_clients.push(SocketClient::connect(&fresh.url).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, after) = cpu_and_rss(fresh.pid());
    println!(
        "RSS per idle connection (1000 connected, no room)  {:.1} KiB (target 16 KiB)",
        (after - before) * 1024.0 / 1000.0
    );
}
