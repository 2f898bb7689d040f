//! The default run as the benches start it: the release binary, built on
//! demand, in a process group of its own on a free port with a fresh state
//! directory, stopped (with whatever it started) when dropped. A benchmark
//! measures the program an operator runs, not a debug build inside the
//! test process.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::workspace_root;

/// A server process in its own process group (`spin up` starts children).
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub state: tempfile::TempDir,
}

impl Server {
    /// Starts `cmd`, whose listening address is `addr`, owning `state`.
    pub fn spawn(mut cmd: Command, addr: SocketAddr, state: tempfile::TempDir) -> Self {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = cmd.spawn().expect("start the server");
        Server { child, addr, state }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ip:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the default run in release mode (and with it the component); or,
/// with `BENCH_BINARY` set, that binary instead, unbuilt (to compare two
/// builds: keep a copy of one, then run the bench once with each).
pub fn default_run_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("BENCH_BINARY") {
        return PathBuf::from(binary);
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "chatroom", "--bin", "chatroom"])
        .current_dir(workspace_root())
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the default run failed");
    target_dir().join("release/chatroom")
}

/// The default run on a fresh state directory, with `cache` as its compile
/// cache and `extra` arguments after the listening address and the
/// directories.
pub fn start_default_run(binary: &Path, cache: &Path, extra: &[&str]) -> Server {
    let state = tempfile::tempdir().expect("state dir");
    start_default_run_in(binary, cache, state, extra)
}

/// [`start_default_run`] on a state directory made beforehand (its
/// `sqlite_db.db` seeded, say).
pub fn start_default_run_in(
    binary: &Path,
    cache: &Path,
    state: tempfile::TempDir,
    extra: &[&str],
) -> Server {
    let addr = free_addr();
    let mut cmd = Command::new(binary);
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(state.path())
        .arg("--compile-cache")
        .arg(cache)
        .args(extra)
        .env("RUST_LOG", "warn");
    Server::spawn(cmd, addr, state)
}

/// A process's resident memory in KiB (`VmRSS`), 0 if it cannot be read.
pub fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The machine a figure was taken on: its cores and load average (the
/// load generator shares them).
pub fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
