//! `/metrics` (docs/protocol.md §8), scraped after a known sequence of events through
//! the sidecar in front of the real component: connections, joined sockets
//! and rooms, messages delivered (live and replayed), the broadcast lag's
//! count, replays, refused events by code, rate-limited events, and a slow
//! member's disconnect; each series is checked against what happened.

use std::collections::HashMap;
use std::time::Duration;

use chatroom_core::{MessageDraft, insert_message};
use chatroom_sidecar::EventLimits;
use chatroom_tests::Stack;
use chatroom_tests::http::{create_room, post_message};
use chatroom_tests::raw::RawSocket;
use chatroom_tests::socket::SocketClient;
use serde_json::json;

/// Every sample of the exposition, by its name and labels as written.
async fn scrape(base: &str) -> HashMap<String, f64> {
    let res = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = res.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn get(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

/// Waits until `name` reads `want` (the gauges follow disconnects a moment
/// later).
async fn settles(base: &str, name: &str, want: f64) -> HashMap<String, f64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(base).await;
        if get(&samples, name) == want {
            return samples;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed {} (want {want})",
            get(&samples, name)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let stack = Stack::start_with(|c| {
        c.limits.events = EventLimits {
            rate: 0.5,
            burst: 20,
            queue: 128,
        };
        c.limits.max_buffered_packets = 64;
    })
    .await;
    let base = stack.url.as_str();
    let start = scrape(base).await;
    for name in [
        "chatroom_socketio_connections",
        "chatroom_joined_sockets",
        "chatroom_rooms_with_members",
        "chatroom_messages_delivered_total",
        "chatroom_replays_total",
        "chatroom_replayed_messages_total",
        "chatroom_rate_limited_events_total",
        "chatroom_slow_member_disconnects_total",
        "chatroom_broadcast_lag_seconds_count",
    ] {
        assert_eq!(start.get(name), Some(&0.0), "{name} starts at 0: {start:?}");
    }

    // Two members in a room, three socket messages and one REST message:
    // each reaches both, eight deliveries, four broadcasts.
    let room = create_room(base, "Watched").await;
    let ann = SocketClient::connect(base).await;
    let bob = SocketClient::connect(base).await;
    ann.join(room, "ann").await;
    bob.join(room, "bob").await;
    let mut first = 0;
    for i in 0..3 {
        let ack = ann
            .call(
                "send_message",
                json!({"room_id": room, "message": format!("m{i}")}),
            )
            .await;
        if i == 0 {
            first = ack["message"]["id"].as_i64().unwrap();
        }
    }
    post_message(base, room, "rest", "via REST").await;
    ann.expect_n("new_message", 4).await;
    bob.expect_n("new_message", 4).await;
    let m = scrape(base).await;
    assert_eq!(get(&m, "chatroom_socketio_connections"), 2.0);
    assert_eq!(get(&m, "chatroom_joined_sockets"), 2.0);
    assert_eq!(get(&m, "chatroom_rooms_with_members"), 1.0);
    assert_eq!(get(&m, "chatroom_messages_delivered_total"), 8.0);
    assert_eq!(get(&m, "chatroom_broadcast_lag_seconds_count"), 4.0);
    assert!(get(&m, "chatroom_broadcast_lag_seconds_sum") < 4.0, "{m:?}");

    // A join with `since` replays the three messages after the first.
    let cat = SocketClient::connect(base).await;
    let ack = cat
        .call(
            "join_room",
            json!({"room_id": room, "username": "cat", "since": first}),
        )
        .await;
    assert_eq!(ack["replayed"], 3, "{ack}");
    // A refused event, by its code.
    let ack = ann.call("join_room", json!({"room_id": 999_999})).await;
    assert_eq!(ack["code"], "room_not_found");
    let m = scrape(base).await;
    assert_eq!(get(&m, "chatroom_replays_total"), 1.0);
    assert_eq!(get(&m, "chatroom_replayed_messages_total"), 3.0);
    assert_eq!(get(&m, "chatroom_messages_delivered_total"), 11.0);
    assert_eq!(get(&m, "chatroom_joined_sockets"), 3.0);
    assert_eq!(
        get(
            &m,
            r#"chatroom_events_refused_total{code="room_not_found"}"#
        ),
        1.0
    );

    // A flood past the burst: the excess is rate limited.
    let flooder = SocketClient::connect(base).await;
    for _ in 0..40 {
        flooder.emit("leave_room", json!({"room_id": room})).await;
    }
    let refused = flooder.expect_n("error", 40).await;
    let limited = refused
        .iter()
        .filter(|e| e["code"] == "rate_limited")
        .count();
    assert!(limited >= 15, "{refused:?}");
    let m = scrape(base).await;
    let rate_limited = get(&m, "chatroom_rate_limited_events_total");
    assert_eq!(rate_limited, limited as f64);
    assert_eq!(
        get(&m, r#"chatroom_events_refused_total{code="rate_limited"}"#),
        rate_limited
    );
    assert_eq!(
        get(&m, r#"chatroom_events_refused_total{code="not_in_room"}"#) + rate_limited,
        40.0,
        "every event of the flood was refused one way or the other"
    );

    // Disconnects bring the gauges down.
    for client in [ann, bob, cat, flooder] {
        client.disconnect().await;
    }
    let m = settles(base, "chatroom_socketio_connections", 0.0).await;
    assert_eq!(get(&m, "chatroom_joined_sockets"), 0.0);
    assert_eq!(get(&m, "chatroom_rooms_with_members"), 0.0);
    assert_eq!(get(&m, "chatroom_slow_member_disconnects_total"), 0.0);

    // A member that stops reading is disconnected once its buffer is full.
    let mut slow = RawSocket::connect(base, Some(4096)).await;
    slow.emit("join_room", &json!({"room_id": room, "username": "slow"}))
        .await;
    settles(base, "chatroom_joined_sockets", 1.0).await;
    let db = stack.rest.open_db();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..2000 {
        let text = format!("{i:05}{}", "x".repeat(3900));
        let draft = MessageDraft::from_fields(Some("bulk"), Some(&text)).unwrap();
        insert_message(&db, room, &draft).unwrap();
    }
    db.execute_batch("COMMIT").unwrap();
    let m = settles(base, "chatroom_slow_member_disconnects_total", 1.0).await;
    assert_eq!(get(&m, "chatroom_joined_sockets"), 0.0);
    drop(slow);
    settles(base, "chatroom_socketio_connections", 0.0).await;
}
