//! The `chatroom` binary as a user runs it: it prints where it serves and
//! where the data lives, answers REST on that one port, stops cleanly on
//! Ctrl-C (SIGINT), and finds its data again after a restart; with
//! `--runtime-config-file` its data is where that file says (a relative
//! path from the current directory, as Spin resolves it), and a file
//! naming what it cannot honour stops it at start-up.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// A running `chatroom` and what it printed on start-up.
struct Running {
    child: Child,
    url: String,
    printed: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on an ephemeral port and reads its banner.
fn start(state_dir: &Path) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
    command.arg("--state-dir").arg(state_dir);
    start_command(command)
}

/// Starts `command` (the binary with some flags) on an ephemeral port and
/// reads its banner.
fn start_command(mut command: Command) -> Running {
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--log", "warn"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("chatroom starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut printed = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("readable banner");
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let url = printed
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/chatrooms"))
        .unwrap_or_else(|| panic!("no REST URL in the banner:\n{printed}"))
        .to_owned();
    Running {
        child,
        url,
        printed,
    }
}

/// Sends SIGINT, as Ctrl-C does, and returns whether it exited successfully.
fn interrupt(mut running: Running) -> bool {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
    // Well under the 25 s a held long poll would last.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status.success();
        }
        assert!(std::time::Instant::now() < deadline, "no exit after SIGINT");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prints_where_it_serves_stops_on_ctrl_c_and_keeps_data_across_restarts() {
    let state = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();

    let first = start(state.path());
    let db = state.path().join("sqlite_db.db");
    assert!(
        first.printed.contains(&db.display().to_string()),
        "the banner names the database file:\n{}",
        first.printed
    );
    assert!(first.printed.contains("/socket.io/"), "{}", first.printed);
    let res = http
        .post(format!("{}/chatrooms", first.url))
        .json(&json!({"name": "Kept"}))
        .send()
        .await
        .expect("POST /chatrooms");
    assert_eq!(res.status(), 201);
    let room = res.json::<Value>().await.expect("room")["id"].clone();
    let res = http
        .post(format!("{}/chatrooms/{room}/messages", first.url))
        .json(&json!({"sender": "alice", "message": "still here?"}))
        .send()
        .await
        .expect("POST message");
    assert_eq!(res.status(), 201);
    // Socket.IO answers on the same port; leave a client's long poll open
    // (the server would hold it for its 25 s ping interval).
    let handshake = http
        .get(format!("{}/socket.io/?EIO=4&transport=polling", first.url))
        .send()
        .await
        .expect("Engine.IO handshake");
    assert_eq!(handshake.status(), 200);
    let open: Value = handshake
        .text()
        .await
        .ok()
        .and_then(|body| serde_json::from_str(body.trim_start_matches('0')).ok())
        .expect("Engine.IO open packet");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    let poll_url = format!("{}/socket.io/?EIO=4&transport=polling&sid={sid}", first.url);
    // Connect to the default namespace, collect what is queued (the
    // connect answer); the next poll waits.
    let connect = http
        .post(&poll_url)
        .body("40")
        .send()
        .await
        .expect("connect");
    assert_eq!(connect.status(), 200);
    // The Engine.IO ping may come first, alone: poll until the connect
    // answer arrives.
    let mut queued = String::new();
    for _ in 0..5 {
        let poll = http.get(&poll_url).send().await.expect("first poll");
        queued.push_str(&poll.text().await.expect("queued packets"));
        if queued.contains("40{") {
            break;
        }
    }
    assert!(queued.contains("40{"), "namespace connected: {queued}");
    let mut held = None;
    for _ in 0..5 {
        let poll = tokio::spawn(http.get(&poll_url).send());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if !poll.is_finished() {
            held = Some(poll);
            break;
        }
    }
    let poll = held.expect("a long poll is held open");
    // Ctrl-C closes that connection too instead of waiting on it.
    assert!(interrupt(first), "Ctrl-C ends the process with success");
    let _ = poll.await;

    let second = start(state.path());
    let messages: Value = http
        .get(format!("{}/chatrooms/{room}/messages", second.url))
        .send()
        .await
        .expect("GET messages")
        .json()
        .await
        .expect("messages");
    assert_eq!(messages[0]["content"], "still here?");
    assert_eq!(messages.as_array().map(Vec::len), Some(1));
    assert!(interrupt(second));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_config_file_places_the_database_from_the_current_directory() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(cwd.path().join("config")).expect("config dir");
    std::fs::write(
        cwd.path().join("config/runtime-config.toml"),
        "[sqlite_database.default]\ntype = \"spin\"\npath = \"data/chat.db\"\n",
    )
    .expect("write the runtime config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
    command
        .current_dir(cwd.path())
        .args(["--runtime-config-file", "config/runtime-config.toml"])
        .arg("--state-dir")
        .arg(state.path());
    let running = start_command(command);
    let db = cwd.path().join("data/chat.db");
    assert!(
        running.printed.contains(&db.display().to_string()),
        "the banner names the configured file:\n{}",
        running.printed
    );
    let res = reqwest::Client::new()
        .post(format!("{}/chatrooms", running.url))
        .json(&json!({"name": "Configured"}))
        .send()
        .await
        .expect("POST /chatrooms");
    assert_eq!(res.status(), 201);
    assert!(interrupt(running));
    let conn = rusqlite::Connection::open(&db).expect("the configured file");
    let name: String = conn
        .query_row("SELECT name FROM chatrooms", [], |row| row.get(0))
        .expect("the room is in the configured file");
    assert_eq!(name, "Configured");
    assert!(!state.path().join("sqlite_db.db").exists());
    assert!(!cwd.path().join("config/data").exists());
}

#[test]
fn a_runtime_config_file_it_cannot_honour_stops_it_at_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"https://db.example\"\ntoken = \"t\"\n",
            "sqlite_database.default",
        ),
        (
            "[key_value_store.default]\ntype = \"spin\"\n",
            "key_value_store",
        ),
        ("[sqlite_database.default]\ntype = \"spin\"\n", "in memory"),
        ("not toml [", "not valid TOML"),
    ];
    for (text, named) in cases {
        let file = dir.path().join("rc.toml");
        std::fs::write(&file, text).expect("write");
        let output = Command::new(env!("CARGO_BIN_EXE_chatroom"))
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .arg("--state-dir")
            .arg(dir.path())
            .arg("--runtime-config-file")
            .arg(&file)
            .output()
            .expect("chatroom runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text}: it started");
        assert!(stderr.contains(named), "{text}: {stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(["--runtime-config-file", "/nonexistent/rc.toml"])
        .output()
        .expect("chatroom runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/rc.toml"));
}

/// `chatroom --auth-secret S token NAME` prints a token the running
/// `chatroom --auth-secret S` accepts for NAME; without a secret it refuses.
#[tokio::test(flavor = "multi_thread")]
async fn token_prints_a_token_the_server_accepts() {
    let token = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_chatroom"))
            .args(args)
            .output()
            .expect("chatroom token runs")
    };
    let out = token(&["--auth-secret", "s3cret", "token", "alice", "--ttl", "60"]);
    assert!(out.status.success(), "{out:?}");
    let alice = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(alice.split('.').count(), 3, "a JWT: {alice}");
    let refused = token(&["token", "alice"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--auth-secret"));
    assert!(
        !token(&["--auth-secret", "s3cret", "token", "bad\u{7}name"])
            .status
            .success()
    );

    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
    command.arg("--state-dir").arg(dir.path());
    command.args(["--auth-secret", "s3cret"]);
    let running = start_command(command);
    let http = reqwest::Client::new();
    let rooms = format!("{}/chatrooms", running.url);
    let anonymous = http
        .post(&rooms)
        .json(&json!({"name": "T"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let signed = http
        .post(&rooms)
        .bearer_auth(&alice)
        .json(&json!({"name": "T"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 201);
    let room: Value = signed.json().await.unwrap();
    let posted: Value = http
        .post(format!("{rooms}/{}/messages", room["id"]))
        .bearer_auth(&alice)
        .json(&json!({"message": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["sender"], "alice");
}
