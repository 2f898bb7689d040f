//! The sidecar as a separate process (the `sidecar-process` test binary),
//! for what only a real process shows: `kill -9`, and CPU and memory figures
//! in the benchmark.

use std::path::Path;
use std::process::{Child, Command};

use crate::http::wait_until_up;

/// A running sidecar process; killed when dropped.
pub struct SidecarProcess {
    child: Child,
    /// Its base URL: Socket.IO, and REST forwarded upstream.
    pub url: String,
}

impl SidecarProcess {
    /// Starts `bin` (pass `env!("CARGO_BIN_EXE_sidecar-process")`) on
    /// `port` over `db`, forwarding REST to `rest`, and waits until it
    /// answers.
    pub async fn start(bin: &Path, db: &Path, rest: &str, port: u16) -> Self {
        Self::start_with(bin, db, rest, port, &[]).await
    }

    /// As [`SidecarProcess::start`], with more flags (limits, say).
    pub async fn start_with(bin: &Path, db: &Path, rest: &str, port: u16, extra: &[&str]) -> Self {
        let child = Command::new(bin)
            .args(extra)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--db")
            .arg(db)
            .arg("--rest-upstream")
            .arg(rest)
            .arg("--log")
            .arg("warn")
            .spawn()
            .expect("the sidecar process starts");
        let process = SidecarProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_until_up(&process.url).await;
        process
    }

    /// A port free right now, to start (and restart) a sidecar on.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("an ephemeral port")
            .port()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
