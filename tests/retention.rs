//! Retention (docs/protocol.md §4.6) from the outside, in every layout:
//! the default run, `spin up` beside a file-mode sidecar (with a Spin
//! CLI), and edge mode with two sidecars and Redis (each pruning through
//! the component's internal API). A room holds an hour-old history of
//! 1,200 messages, more than one pruning batch, while a member keeps
//! sending: the history is pruned down to what the policy keeps, the
//! flow reaches every member once and in order, a member catching up
//! from before the horizon is told `resync_required` (never a silent
//! gap), and catches up from the horizon with everything; in the file
//! layouts the pruned text leaves the disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatroom_core::limits::CLIENT_ID_WINDOW_MS;
use chatroom_core::{MessageDraft, Retention, insert_messages};
use chatroom_front::access::AccessConfig;
use chatroom_tests::DefaultRun;
use chatroom_tests::disk::{erased, files_holding};
use chatroom_tests::edge::{EdgeRest, TOKEN, variables};
use chatroom_tests::http::{call, create_room, history_ids};
use chatroom_tests::process::SidecarProcess;
use chatroom_tests::redis::RedisServer;
use chatroom_tests::socket::SocketClient;
use reqwest::Method;
use serde_json::json;

/// Messages each room keeps.
const KEEP: i64 = 50;
/// The hour-old history: more than one batch (500 change-log rows).
const OLD: usize = 1200;
/// Messages sent while pruning goes on.
const NEW: usize = 100;

/// The sidecar's retention flags: keep [`KEEP`], look every second.
const FLAGS: [&str; 4] = [
    "--retention-max-messages",
    "50",
    "--retention-interval-secs",
    "1",
];

/// Writes `n` messages (`old-{i}-{tag}`) to room `room` straight into the
/// database at `db`, dated an hour ago; their ids.
fn old_history(db: &Path, room: i64, n: usize, tag: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    let drafts: Vec<(i64, MessageDraft)> = (0..n)
        .map(|i| {
            let text = format!("old-{i}-{tag}");
            (
                room,
                MessageDraft::from_fields(Some("old"), Some(&text)).unwrap(),
            )
        })
        .collect();
    let ids = insert_messages(&conn, &drafts, CLIENT_ID_WINDOW_MS)
        .expect("insert")
        .into_iter()
        .map(|m| m.expect("stored").id)
        .collect();
    conn.execute(
        "UPDATE changes SET at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour') WHERE room_id = ?1",
        [room],
    )
    .expect("date it an hour ago");
    ids
}

/// `url` and `other` serve REST and Socket.IO (two sidecars in edge mode,
/// the same one otherwise) on the database at `db`; `on_disk` when its
/// files are this layout's to erase.
async fn retention_keeps_its_promises(url: &str, other: &str, db: &Path, on_disk: bool) {
    let tag = std::process::id().to_string();
    let room = create_room(url, "Pruned").await;
    let quiet = create_room(url, "Quiet").await;
    let old = old_history(db, room, OLD, &tag);
    let quiet_ids = old_history(db, quiet, 10, &format!("quiet-{tag}"));
    let last_old = *old.last().unwrap();
    assert!(!files_holding(db, &format!("old-0-{tag}")).is_empty());

    // Live from the end of the old history: carol on the other sidecar.
    let carol = SocketClient::connect(other).await;
    let ack = carol
        .call(
            "join_room",
            json!({"room_id": room, "username": "carol", "since": last_old}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let alice = SocketClient::connect(url).await;
    alice.join(room, "alice").await;
    let mut sent = Vec::new();
    for i in 0..=NEW {
        let text = if i == NEW {
            "fence".to_owned()
        } else {
            format!("new-{i}")
        };
        let ack = alice
            .call("send_message", json!({"room_id": room, "message": text}))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        sent.push(ack["message"]["id"].as_i64().unwrap());
    }
    // The flow reached carol whole, in order, once (the fence last).
    let got: Vec<i64> = carol
        .expect_n("new_message", NEW + 1)
        .await
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, sent);

    // Pruned down to the newest KEEP, but for what is younger than the
    // floor (the whole flow): everything old goes, in batches.
    let changes = format!("{url}/chatrooms/{room}/changes");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let horizon = loop {
        let (status, body) = call(Method::GET, &format!("{changes}?after=0"), None, None).await;
        if status == 410 {
            assert_eq!(body["code"], "resync_required", "{body}");
            let kept_after = body["kept_after"].as_i64().unwrap();
            if kept_after == last_old {
                break kept_after;
            }
        } else {
            assert_eq!(status, 200, "{body}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not pruned through {last_old} within 30 s: {status}, {}",
            body.get("kept_after").unwrap_or(&json!("no horizon"))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(sent.len() as i64 > KEEP);
    assert_eq!(history_ids(url, room).await, sent);
    assert_eq!(
        history_ids(url, quiet).await,
        quiet_ids,
        "a room under the limit"
    );

    // bob was away since the 100th old message: no silent gap.
    let bob = SocketClient::connect(other).await;
    let refused = bob
        .call(
            "join_room",
            json!({"room_id": room, "username": "bob", "since": old[100]}),
        )
        .await;
    assert_eq!(
        (&refused["ok"], &refused["code"], &refused["kept_after"]),
        (&json!(false), &json!("resync_required"), &json!(horizon)),
        "{refused}"
    );
    // From the horizon, everything after it is there.
    let ack = bob
        .call(
            "join_room",
            json!({"room_id": room, "username": "bob", "since": horizon}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["replayed"], json!(NEW + 1));
    let replayed: Vec<i64> = bob
        .expect_n("new_message", NEW + 1)
        .await
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(replayed, sent);
    // The change log over REST: from the horizon, or without `after`.
    let (status, body) = call(
        Method::GET,
        &format!("{changes}?after={horizon}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seqs: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, sent);
    let (status, all) = call(Method::GET, &changes, None, None).await;
    assert_eq!((status, &all), (200, &body));

    if on_disk {
        erased(db, &format!("old-0-{tag}")).await;
        erased(db, &format!("old-{}-{tag}", OLD - 1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_in_the_default_run() {
    let run = DefaultRun::start_on(
        chatroom_tests::shared_host(),
        |c| {
            c.retention = Retention {
                max_age_ms: None,
                max_messages: Some(KEEP),
            };
            c.retention_interval = Duration::from_secs(1);
        },
        &AccessConfig::default(),
    )
    .await;
    retention_keeps_its_promises(&run.url, &run.url, &run.db_path, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run retention beside real Spin"
)]
async fn retention_prunes_beside_spin_up() {
    let layout = chatroom_tests::spin::BesideSpinUp::start(
        Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        Vec::new(),
        &FLAGS,
    )
    .await;
    let url = &layout.sidecar.url;
    retention_keeps_its_promises(url, url, &layout.db, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_through_two_edge_sidecars() {
    let redis = RedisServer::start();
    let rest = EdgeRest::host_with(
        Path::new(env!("CARGO_BIN_EXE_host-process")),
        variables(Some(TOKEN), Some(&redis)),
    )
    .await;
    let db: PathBuf = rest.state_dir().join("sqlite_db.db");
    let sidecar = || async {
        let mut flags = vec!["--redis", redis.url.as_str()];
        flags.extend(FLAGS);
        SidecarProcess::start_edge(
            Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
            &rest.url,
            TOKEN,
            &flags,
        )
        .await
    };
    let (a, b) = (sidecar().await, sidecar().await);
    // The component's store is its host's to erase (docs/operations.md).
    retention_keeps_its_promises(&a.url, &b.url, &db, false).await;
}
