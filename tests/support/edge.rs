//! Edge mode's REST deployment for the tests (docs/protocol.md §6): the repository's
//! `spin.toml` served by the host in a process of its own, or by the real
//! `spin up`, with the variables of an edge deployment (the internal token,
//! and Redis when there is one) set the way Spin takes them,
//! `SPIN_VARIABLE_<NAME>`. Its state directory is its own: the sidecars
//! started beside it reach the data only over HTTP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::http::{ids, post_message, wait_until_up};
use crate::redis::RedisServer;
use crate::socket::{FENCE_SENDER, SocketClient, messages_before_fence};
use crate::spin::{SpinUp, SpinUpOptions};
use crate::workspace_root;

/// The internal token the tests deploy with.
pub const TOKEN: &str = "edge-test-token-0123456789";

/// A running REST deployment; stopped when dropped.
pub struct EdgeRest {
    /// Its base URL.
    pub url: String,
    server: Server,
    _state: tempfile::TempDir,
}

/// What serves it; dropping it stops it.
enum Server {
    Host(Child),
    Spin(#[allow(dead_code, reason = "kept for its Drop")] SpinUp),
}

impl Drop for EdgeRest {
    fn drop(&mut self) {
        if let Server::Host(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The variables of an edge deployment, as `spin up` reads them.
pub fn variables(token: Option<&str>, redis: Option<&RedisServer>) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    if let Some(token) = token {
        vars.push(("SPIN_VARIABLE_INTERNAL_TOKEN".to_owned(), token.to_owned()));
    }
    if let Some(redis) = redis {
        vars.push(("SPIN_VARIABLE_REDIS_URL".to_owned(), redis.url.clone()));
        vars.push((
            "SPIN_VARIABLE_REDIS_HOST".to_owned(),
            format!("127.0.0.1:{}", redis.port),
        ));
    }
    vars
}

impl EdgeRest {
    /// The host (the `host-process` test binary, pass
    /// `env!("CARGO_BIN_EXE_host-process")`) with the internal token and,
    /// if given, Redis.
    pub async fn host(bin: &Path, redis: Option<&RedisServer>) -> Self {
        Self::host_with(bin, variables(Some(TOKEN), redis)).await
    }

    /// The host with exactly these environment variables.
    pub async fn host_with(bin: &Path, vars: Vec<(String, String)>) -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let manifest = workspace_root().join("spin.toml");
        let (child, url) = spawn_host(bin, &manifest, state.path(), "127.0.0.1:0", &vars).await;
        let rest = EdgeRest {
            url,
            server: Server::Host(child),
            _state: state,
        };
        wait_until_up(&rest.url).await;
        rest
    }

    /// The state directory: its SQLite file is `sqlite_db.db` there (a
    /// test may write behind the component's back, so nothing is
    /// published).
    pub fn state_dir(&self) -> &Path {
        self._state.path()
    }

    /// The real `spin up` (`SPIN_BIN`) with the internal token and, if
    /// given, Redis. Panics if Spin does not start.
    pub async fn spin(redis: Option<&RedisServer>) -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let manifest = workspace_root().join("spin.toml");
        let mut options = SpinUpOptions::new(&manifest, state.path());
        options.env = variables(Some(TOKEN), redis);
        let spin = SpinUp::start(options, "/healthz").await;
        EdgeRest {
            url: spin.url.clone(),
            server: Server::Spin(spin),
            _state: state,
        }
    }
}

/// Starts the host process on `manifest` and `state`, bound to `addr`;
/// the process and its base URL (from its start-up line).
async fn spawn_host(
    bin: &Path,
    manifest: &Path,
    state: &Path,
    addr: &str,
    vars: &[(String, String)],
) -> (Child, String) {
    let mut child = Command::new(bin)
        .arg(manifest)
        .arg(state)
        .arg(addr)
        .envs(vars.iter().cloned())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the host process starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        std::thread::spawn(move || lines.for_each(drop));
        first
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("the host printed its address in time")
        .expect("reading the host's stdout")
        .expect("the host printed a line");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the host: {line:?}"))
        .to_owned();
    (child, url)
}

/// The host as a process on a state directory the test keeps, which the
/// test can kill and start again on the same address (an outage of the
/// REST deployment, data kept).
pub struct HostProcess {
    child: Option<Child>,
    bin: PathBuf,
    manifest: PathBuf,
    state: PathBuf,
    vars: Vec<(String, String)>,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
}

impl HostProcess {
    /// Starts the host on `manifest` with its database in `state`, on a
    /// free port, with these environment variables.
    pub async fn start(
        bin: &Path,
        manifest: &Path,
        state: &Path,
        vars: Vec<(String, String)>,
    ) -> Self {
        let (child, url) = spawn_host(bin, manifest, state, "127.0.0.1:0", &vars).await;
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .expect("the host's address");
        HostProcess {
            child: Some(child),
            bin: bin.to_owned(),
            manifest: manifest.to_owned(),
            state: state.to_owned(),
            vars,
            url,
            addr,
        }
    }

    /// Kills it (an outage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same address and state.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        let addr = self.addr.to_string();
        let (child, url) =
            spawn_host(&self.bin, &self.manifest, &self.state, &addr, &self.vars).await;
        assert_eq!(url, self.url);
        self.child = Some(child);
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `rounds` messages each through a socket on sidecar A, a socket on
/// sidecar B and REST, interleaved; the acknowledged ids, in order.
pub async fn send_everywhere(
    rest: &str,
    room: i64,
    a: &SocketClient,
    b: &SocketClient,
    rounds: usize,
    tag: &str,
) -> Vec<i64> {
    let mut sent = Vec::new();
    for i in 0..rounds {
        for (client, who) in [(a, "ann"), (b, "bob")] {
            let ack = client
                .call(
                    "send_message",
                    json!({"room_id": room, "message": format!("{tag} {who} {i}")}),
                )
                .await;
            assert_eq!(ack["ok"], true, "{ack}");
            assert_eq!(ack["message"]["sender"], who);
            sent.push(ack["message"]["id"].as_i64().expect("an id"));
        }
        let posted = post_message(rest, room, "rest", &format!("{tag} rest {i}")).await;
        sent.push(posted["id"].as_i64().expect("an id"));
    }
    sent
}

/// What each of `members` (a client of `room` and its name) receives as
/// `new_message`: exactly `sent`, once each, in id order, and nothing more
/// before a fence posted through `rest` (fences are skipped).
pub async fn receives_exactly(
    rest: &str,
    room: i64,
    members: &[(&SocketClient, &str)],
    sent: &[i64],
) {
    let mut want = sent.to_vec();
    want.sort_unstable();
    for (client, who) in members {
        let mut got = Vec::new();
        while got.len() < want.len() {
            let m = client.expect("new_message").await;
            if m["sender"] != FENCE_SENDER {
                got.push(m);
            }
        }
        assert_eq!(ids(&got), want, "{who}: every message once, in id order");
    }
    let clients: Vec<&SocketClient> = members.iter().map(|(c, _)| *c).collect();
    let extra = messages_before_fence(rest, room, &clients).await;
    for ((_, who), extra) in members.iter().zip(extra) {
        assert!(extra.is_empty(), "{who}: duplicates {extra:?}");
    }
}
