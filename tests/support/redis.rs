//! A real Redis server (Debian's `redis-server`, or `REDIS_SERVER`) for the
//! edge-mode and fidelity tests, on a free loopback port, with no
//! persistence; killed when dropped. [`RedisSubscriber`] is a raw
//! `SUBSCRIBE` connection, to see what was published byte for byte. `.ci/run` installs it; a test that needs it fails, never
//! skips, when it is missing.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::TestCa;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// The TLS port, when started with [`RedisServer::start_secured`].
    pub tls_port: Option<u16>,
    /// More flags, kept across restarts.
    extra: Vec<String>,
}

/// A port the kernel just said was free.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

impl RedisServer {
    /// Starts a server on a port the kernel just said was free.
    pub fn start() -> Self {
        Self::start_with(Vec::new(), None)
    }

    fn start_with(extra: Vec<String>, tls_port: Option<u16>) -> Self {
        let port = free_port();
        let mut server = RedisServer {
            child: None,
            port,
            url: format!("redis://127.0.0.1:{port}"),
            tls_port,
            extra,
        };
        server.restart();
        server
    }

    /// A server that needs `user`'s `password` (the default user is off),
    /// on a plain port and on a TLS port (redis-server's own TLS) with
    /// `ca`'s server certificate. `url` then carries the credentials.
    pub fn start_secured(ca: &TestCa, user: &str, password: &str) -> Self {
        let tls_port = free_port();
        let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 path").to_owned();
        let extra = vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path(&ca.cert_file),
            "--tls-key-file".into(),
            path(&ca.key_file),
            "--tls-ca-cert-file".into(),
            path(&ca.ca_file),
            "--tls-auth-clients".into(),
            "no".into(),
            "--user".into(),
            "default".into(),
            "off".into(),
            "--user".into(),
            user.into(),
            "on".into(),
            format!(">{password}"),
            "~*".into(),
            "&*".into(),
            "+@all".into(),
        ];
        let mut server = Self::start_with(extra, Some(tls_port));
        server.url = format!("redis://{user}:{password}@127.0.0.1:{}", server.port);
        server
    }

    /// `rediss://USER:PASSWORD@127.0.0.1:TLS_PORT`, for a secured server.
    pub fn tls_url(&self) -> String {
        let tls_port = self.tls_port.expect("started with TLS");
        self.url
            .replacen("redis://", "rediss://", 1)
            .replace(&format!(":{}", self.port), &format!(":{tls_port}"))
    }

    /// Starts it (again) on its port and waits until it accepts.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (install Debian's redis-server): {e}",
                    binary()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Publishes `payload` on `channel` (as a stray, late or repeated
    /// wake-up would arrive); how many subscribers got it.
    pub fn publish(&self, channel: &str, payload: &str) -> i64 {
        use std::io::Write as _;
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        write!(
            stream,
            "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
            channel.len(),
            payload.len()
        )
        .expect("send PUBLISH");
        let mut reply = [0u8; 64];
        let n = stream.read(&mut reply).expect("PUBLISH reply");
        let reply = std::str::from_utf8(&reply[..n]).expect("RESP is ASCII here");
        reply
            .trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected PUBLISH reply {reply:?}"))
    }

    /// Subscribes to `channel`; the subscription is in place on return.
    pub fn subscribe(&self, channel: &str) -> RedisSubscriber {
        use std::io::Write as _;
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        write!(
            stream,
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        )
        .expect("send SUBSCRIBE");
        let mut subscriber = RedisSubscriber {
            stream,
            seen: Vec::new(),
        };
        // The confirmation ends with the subscription count, `:1`.
        assert!(
            subscriber.wait_for(b":1\r\n", Duration::from_secs(5)),
            "no SUBSCRIBE confirmation"
        );
        subscriber.seen.clear();
        subscriber
    }

    /// Kills it (as a crash or an outage would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A raw `SUBSCRIBE` connection: what the server pushed, as bytes.
pub struct RedisSubscriber {
    stream: std::net::TcpStream,
    seen: Vec<u8>,
}

impl RedisSubscriber {
    /// Whether `needle` arrives within `timeout` (looking at everything
    /// received so far).
    pub fn wait_for(&mut self, needle: &[u8], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if self.seen.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    /// Whether a message with exactly `payload` arrived within `timeout`.
    pub fn received(&mut self, payload: &str, timeout: Duration) -> bool {
        let frame = format!("${}\r\n{payload}\r\n", payload.len());
        self.wait_for(frame.as_bytes(), timeout)
    }
}
