//! The `chatroom-host` binary's `--runtime-config-file`: the `default`
//! database goes where the file says, a relative path taken from the
//! current directory (as `spin up` takes it), and a file naming something
//! the host cannot honour stops it at start-up with that name in the error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the chat component with `spin.toml`'s own build command and
/// returns the repository's manifest.
fn chat_manifest() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "chatroom-rest", "--target", "wasm32-wasip2"])
        .args(["--release", "--target-dir", "target/wasm"])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the chat component failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    workspace_root().join("spin.toml")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; returns the status code.
fn post(addr: &str, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

#[test]
fn the_default_database_is_where_the_runtime_config_file_says() {
    let manifest = chat_manifest();
    let cwd = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(cwd.path().join("config")).expect("mkdir");
    std::fs::write(
        cwd.path().join("config/rc.toml"),
        "[sqlite_database.default]\ntype = \"spin\"\npath = \"data/chat.db\"\n",
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatroom-host"))
        .current_dir(cwd.path())
        .arg("-f")
        .arg(&manifest)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--runtime-config-file",
            "config/rc.toml",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("chatroom-host starts");
    // The log goes to stderr (stdout has only the `listening on` line).
    let stderr = child.stderr.take().expect("stderr");
    let running = Running(child);
    let mut line = String::new();
    let mut lines = BufReader::new(stderr);
    while !line.contains("url=http://") {
        line.clear();
        let read = lines.read_line(&mut line).expect("read the log");
        assert!(read > 0, "chatroom-host exited without serving");
    }
    let db = cwd.path().join("data/chat.db");
    assert!(line.contains(&db.display().to_string()), "{line}");
    let addr = line
        .split("url=http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the address")
        .to_owned();
    assert_eq!(post(&addr, "/chatrooms", r#"{"name":"Configured"}"#), 201);
    drop(running);
    assert!(db.is_file(), "the configured file was written");
    assert!(!state.path().join("sqlite_db.db").exists());
    assert!(!cwd.path().join("config/data").exists());
}

#[test]
fn what_the_host_cannot_honour_stops_it_at_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rc.toml");
    std::fs::write(&file, "[variables_vault]\nurl = \"https://vault\"\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_chatroom-host"))
        .arg("-f")
        .arg(workspace_root().join("spin.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .arg("--runtime-config-file")
        .arg(&file)
        .output()
        .expect("chatroom-host runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("variables_vault"), "{stderr}");
}
