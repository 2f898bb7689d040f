//! Edge mode's REST deployment for the tests (SPEC §6): the repository's
//! `spin.toml` served by the host in a process of its own, or by the real
//! `spin up`, with the variables of an edge deployment (the internal token,
//! and Redis when there is one) set the way Spin takes them,
//! `SPIN_VARIABLE_<NAME>`. Its state directory is its own: the sidecars
//! started beside it reach the data only over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http::wait_until_up;
use crate::redis::RedisServer;
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
        let mut child = Command::new(bin)
            .arg(workspace_root().join("spin.toml"))
            .arg(state.path())
            .envs(vars)
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
        let rest = EdgeRest {
            url,
            server: Server::Host(child),
            _state: state,
        };
        wait_until_up(&rest.url).await;
        rest
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
