//! The sidecar as a separate process (the `sidecar-process` test binary),
//! for what only a real process shows: a restart, `kill -9`, and CPU and
//! memory figures in the benchmark.
//!
//! The process binds port 0 itself and prints `listening on http://ADDR` on
//! stdout (its documented start-up line), which is how the tests learn its
//! address; nothing picks a port and releases it for someone else to bind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http::wait_until_ready;

/// The start-up line's prefix (see `chatroom_sidecar::cli`).
const LISTENING: &str = "listening on http://";

/// A running sidecar process; killed when dropped.
pub struct SidecarProcess {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    /// The address it listens on (kept across restarts).
    pub addr: SocketAddr,
    /// Its base URL: Socket.IO, and REST forwarded upstream.
    pub url: String,
}

impl SidecarProcess {
    /// Starts `bin` (pass `env!("CARGO_BIN_EXE_sidecar-process")`) over
    /// `db`, forwarding REST to `rest`, on a port of its own choosing, and
    /// waits until it answers.
    pub async fn start(bin: &Path, db: &Path, rest: &str) -> Self {
        Self::start_with(bin, db, rest, &[]).await
    }

    /// As [`SidecarProcess::start`], with more flags (`--poll-ms 50`, say);
    /// a restart keeps them.
    pub async fn start_with(bin: &Path, db: &Path, rest: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--db", db.to_str().expect("a UTF-8 database path")];
        args.extend(extra);
        Self::start_args(bin, rest, &args).await
    }

    /// An edge-mode sidecar: `rest` is all it has (no database file),
    /// with the internal API's `token` and more flags (`--redis URL`).
    pub async fn start_edge(bin: &Path, rest: &str, token: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--internal-token", token];
        args.extend(extra);
        Self::start_args(bin, rest, &args).await
    }

    /// As [`SidecarProcess::start_edge`], without waiting until it is
    /// ready: once it listens (it may still be waiting for `rest`).
    pub async fn launch_edge(bin: &Path, rest: &str, token: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--internal-token", token];
        args.extend(extra);
        Self::launch(bin, rest, &args).await
    }

    /// Starts `bin` forwarding REST to `rest`, with `flags`, and waits
    /// until it is ready.
    async fn start_args(bin: &Path, rest: &str, flags: &[&str]) -> Self {
        let process = Self::launch(bin, rest, flags).await;
        wait_until_ready(&process.url).await;
        process
    }

    /// Starts `bin` forwarding REST to `rest`, with `flags`.
    async fn launch(bin: &Path, rest: &str, flags: &[&str]) -> Self {
        let mut args: Vec<String> = vec![
            "--rest-upstream".into(),
            rest.into(),
            "--log".into(),
            "warn".into(),
        ];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        let (child, addr) = spawn(bin, &args, "127.0.0.1:0".parse().expect("addr")).await;
        SidecarProcess {
            child: Some(child),
            bin: bin.to_owned(),
            args,
            addr,
            url: format!("http://{addr}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, as a service manager stops it, and wait until it is gone
    /// (it closes its connections first). Panics unless it exits cleanly.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the sidecar did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "the sidecar exited with {status}");
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        let _ = child.wait();
    }

    /// Starts the stopped (or killed) process again, with the same flags,
    /// on the same address (a restart keeps its address, so clients find it
    /// again), and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        let (child, addr) = spawn(&self.bin, &self.args, self.addr).await;
        assert_eq!(addr, self.addr);
        self.child = Some(child);
        wait_until_ready(&self.url).await;
    }
}

/// Spawns the sidecar on `listen` and reads the address it bound from its
/// start-up line (waiting up to 30 s); the rest of its stdout is drained on
/// a thread.
async fn spawn(bin: &Path, args: &[String], listen: SocketAddr) -> (Child, SocketAddr) {
    let mut child = Command::new(bin)
        .arg("--listen")
        .arg(listen.to_string())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the sidecar process starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, address) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        let mut printed = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = found.take() {
                match line.strip_prefix(LISTENING) {
                    Some(addr) => {
                        let _ = found.send(Ok(addr.trim_end_matches('/').to_owned()));
                    }
                    None => {
                        printed.push(line);
                        let _ = found.send(Err(printed.clone()));
                    }
                }
            }
        }
    });
    let line = match tokio::time::timeout(Duration::from_secs(30), address).await {
        Ok(Ok(Ok(addr))) => addr,
        Ok(Ok(Err(printed))) => {
            let _ = child.kill();
            panic!("the sidecar's first line on stdout is not `{LISTENING}ADDR`: {printed:?}")
        }
        Ok(Err(_)) => {
            let status = child.wait().expect("wait");
            panic!("the sidecar exited ({status}) before printing `{LISTENING}ADDR`")
        }
        Err(_) => {
            let _ = child.kill();
            panic!("the sidecar printed no `{LISTENING}ADDR` line within 30 s")
        }
    };
    let addr = line
        .parse()
        .unwrap_or_else(|e| panic!("bad address {line:?} in the start-up line: {e}"));
    (child, addr)
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
