//! What the walls (docs/protocol.md §10) cost where every message goes:
//! fan-out in a public room (100 members, messages back to back) and the
//! `join_room` ack with 100 sockets joining at once, each repeated so the
//! spread shows. Printed, not asserted. Run it on the tree before the walls
//! and after, in the same session, to compare (docs/benchmarks.md).
//!
//! Run: `cargo bench -p chatroom-tests --bench walls`.

use std::time::{Duration, Instant};

use chatroom_tests::TestServer;
use chatroom_tests::bench::{self, joined_clients};
use chatroom_tests::http::create_room;
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::socket::SocketClient;
use serde_json::json;

fn at(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// 100 connected sockets ask to join one room at once: each ack's latency.
async fn joins(url: &str, round: usize) -> Vec<Duration> {
    let room = create_room(url, &format!("joins {round}")).await;
    let mut clients = Vec::with_capacity(100);
    for _ in 0..100 {
        clients.push(SocketClient::connect(url).await);
    }
    let asks = clients.iter().enumerate().map(|(i, c)| async move {
        let sent = Instant::now();
        let ack = c
            .call(
                "join_room",
                json!({"room_id": room, "username": format!("j{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        sent.elapsed()
    });
    futures_util::future::join_all(asks).await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rest = TestServer::start().await;
    let sidecar = SidecarProcess::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        &rest.db_path,
        &rest.url,
        &["--event-rate", "0", "--event-queue", "100000"],
    )
    .await;
    let url = sidecar.url.clone();
    println!("chatroom walls benchmark (sidecar pid {})", sidecar.pid());

    let mut all = Vec::new();
    for round in 0..5 {
        all.extend(joins(&url, round).await);
    }
    println!(
        "join_room ack, 100 joining at once x 5           p50 {:>7.2} ms  p99 {:>7.2} ms",
        at(&mut all, 0.5),
        at(&mut all, 0.99)
    );

    let room = create_room(&url, "public fan-out").await;
    let clients = joined_clients(&url, room, 100, "u").await;
    let sender = SocketClient::connect(&url).await;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let f = bench::fan_out(&sender, room, &clients, 200).await;
        assert_eq!(f.out_of_order, 0);
        rates.push(f.per_sec());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "fan-out, 100 clients x 200 messages x 5 (public)  median {:>9.0} deliveries/s (min {:.0}, max {:.0})",
        rates[2], rates[0], rates[4]
    );
}
