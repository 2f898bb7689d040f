//! Deleted means erased (docs/protocol.md §4.2): within a few seconds of
//! the acknowledgement, no byte of a deleted message's text, or of an
//! edited message's previous text, remains in any file of the database
//! (the main file, its write-ahead log, its shared memory, a journal), in
//! the default run and beside `spin up`. Each text is first found in the
//! files, so the scan is shown to see it.

use std::path::Path;

use chatroom_tests::DefaultRun;
use chatroom_tests::disk::{erased, files_holding};
use chatroom_tests::http::{create_room, post_message};
use chatroom_tests::socket::SocketClient;
use serde_json::json;

/// Over REST at `url` (and a socket there): a deleted message, an edited
/// one, and one deleted over Socket.IO all leave the files of `db`.
async fn texts_leave_the_disk(url: &str, db: &Path) {
    let http = reqwest::Client::new();
    let room = create_room(url, "Erasure").await;
    let marker = |what: &str| format!("{what}-{}", std::process::id());

    let deleted = marker("delete-me-over-rest");
    let m = post_message(url, room, "alice", &deleted).await;
    assert!(
        !files_holding(db, &deleted).is_empty(),
        "the scan finds a stored text"
    );
    let res = http
        .delete(format!("{url}/chatrooms/{room}/messages/{}", m["id"]))
        .json(&json!({"sender": "alice"}))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    erased(db, &deleted).await;

    let before = marker("before-the-edit");
    let m = post_message(url, room, "alice", &before).await;
    let res = http
        .patch(format!("{url}/chatrooms/{room}/messages/{}", m["id"]))
        .json(&json!({"sender": "alice", "message": "after the edit"}))
        .send()
        .await
        .expect("edit");
    assert_eq!(res.status(), 200);
    erased(db, &before).await;

    let over_socket = marker("delete-me-over-a-socket");
    let socket = SocketClient::connect(url).await;
    socket.join(room, "alice").await;
    let sent = socket
        .call(
            "send_message",
            json!({"room_id": room, "message": over_socket}),
        )
        .await;
    let gone = socket
        .call(
            "delete_message",
            json!({"room_id": room, "message_id": sent["id"]}),
        )
        .await;
    assert_eq!(gone["ok"], true, "{gone}");
    erased(db, &over_socket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_edited_texts_leave_the_disk_in_the_default_run() {
    let run = DefaultRun::start().await;
    texts_leave_the_disk(&run.url, &run.db_path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run erasure beside real Spin"
)]
async fn deleted_and_edited_texts_leave_the_disk_beside_spin_up() {
    let layout = chatroom_tests::spin::BesideSpinUp::start(
        Path::new(env!("CARGO_BIN_EXE_sidecar-process")),
        Vec::new(),
        &[],
    )
    .await;
    texts_leave_the_disk(&layout.sidecar.url, &layout.db).await;
}
