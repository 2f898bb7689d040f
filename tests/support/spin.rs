//! Real Spin for the fidelity tests: `spin up` on a manifest, in a process
//! group of its own, on a port it picks itself; the test-only components
//! those tests serve, built for `wasm32-wasip2` on first use; and the
//! observable [`Answer`] of the chat API that `spin up` and the host must
//! give alike.
//!
//! `spin up` runs the HTTP trigger as a child process (`spin trigger http`)
//! that outlives a killed `spin up`, so the whole group is killed on drop.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::Value;

use crate::{spin_cli, workspace_root};

/// A running `spin up`; its process group is killed when dropped.
pub struct SpinUp {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to run `spin up`.
pub struct SpinUpOptions<'a> {
    pub manifest: &'a Path,
    pub state_dir: &'a Path,
    /// The directory it runs in (what relative runtime-config paths are
    /// resolved against); the workspace root by default.
    pub current_dir: Option<&'a Path>,
    /// More arguments (`--runtime-config-file FILE`, say).
    pub extra: Vec<OsString>,
    /// More environment variables (`SPIN_VARIABLE_<NAME>`, say).
    pub env: Vec<(String, String)>,
}

impl<'a> SpinUpOptions<'a> {
    pub fn new(manifest: &'a Path, state_dir: &'a Path) -> Self {
        SpinUpOptions {
            manifest,
            state_dir,
            current_dir: None,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }
}

fn command(options: &SpinUpOptions<'_>) -> Command {
    let mut command = Command::new(spin_cli());
    command
        .current_dir(
            options
                .current_dir
                .map_or_else(workspace_root, Path::to_owned),
        )
        .arg("up")
        .arg("-f")
        .arg(options.manifest)
        .args(["--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(options.state_dir)
        .args(&options.extra)
        .envs(options.env.iter().map(|(k, v)| (k, v)));
    command
}

impl SpinUp {
    /// Starts `spin up --listen 127.0.0.1:0` (Spin binds the port and prints
    /// the address) and waits until `probe` answers anything at all. Panics
    /// if Spin does not start: with `cfg(spin_cli)` a Spin that cannot
    /// serve is a failure, never a skip.
    pub async fn start(options: SpinUpOptions<'_>, probe: &str) -> SpinUp {
        let spin = spin_cli();
        let mut child = command(&options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {spin:?} (SPIN_BIN): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut printed = Vec::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                let url = line.split_whitespace().find_map(|w| {
                    let rest = w.strip_prefix("http://")?;
                    let host = rest.split('/').next()?;
                    Some(format!("http://{host}"))
                });
                if let Some(url) = url {
                    // Keep draining so spin never blocks on a full pipe.
                    std::thread::spawn(move || lines.for_each(drop));
                    return Ok(url);
                }
                printed.push(line);
            }
            Err(printed)
        });
        let mut spin_up = SpinUp {
            child,
            url: String::new(),
        };
        let url = tokio::time::timeout(Duration::from_secs(120), url)
            .await
            .expect("spin up printed no address within 120 s")
            .expect("reading spin's stdout");
        spin_up.url = match url {
            Ok(url) => url,
            Err(printed) => {
                let status = spin_up.child.wait().expect("wait");
                panic!("{spin:?} up exited ({status}) without serving; stdout: {printed:?}");
            }
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if client
                .get(format!("{}{probe}", spin_up.url))
                .send()
                .await
                .is_ok()
            {
                return spin_up;
            }
            if let Ok(Some(status)) = spin_up.child.try_wait() {
                panic!("spin up exited early: {status}");
            }
            assert!(Instant::now() < deadline, "spin up did not answer in time");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `spin up` on a manifest it should refuse and returns what it
    /// printed (stdout and stderr) once it has exited unsuccessfully.
    pub fn refuses(options: SpinUpOptions<'_>) -> String {
        let mut child = command(&options)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?} (SPIN_BIN): {e}", spin_cli()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut printed = String::new();
        let _ = stdout.read_to_string(&mut printed);
        printed.push_str(&err.join().unwrap_or_default());
        let status = child.wait().expect("wait for spin up");
        assert!(
            !status.success(),
            "spin up should have refused {}: {printed}",
            options.manifest.display()
        );
        printed
    }
}

/// Builds a test-only component (`tests/components/<dir>`, package
/// `package`) for `wasm32-wasip2` into `target/wasm`, as `spin build` would,
/// once per test binary, and returns the `.wasm` path.
pub fn build_test_component(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let wasm = root
        .join("target/wasm/wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if built.iter().any(|p| p == package) {
        return wasm;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "-p",
            package,
            "--target",
            "wasm32-wasip2",
            "--release",
        ])
        .args(["--target-dir", "target/wasm"])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap_or_else(|e| panic!("running {cargo}: {e}"));
    assert!(
        output.status.success(),
        "building {package} for wasm32-wasip2 failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.push(package.to_owned());
    wasm
}

/// One observable answer, with server-set timestamps blanked.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub allow: Option<String>,
    pub body: Value,
}

fn blank_timestamps(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if ["created_at", "timestamp", "edited_at", "deleted_at", "at"]
                    .contains(&k.as_str())
                {
                    *v = Value::String("<ts>".into());
                } else {
                    blank_timestamps(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(blank_timestamps),
        _ => {}
    }
}

/// Sends one request and reads the answer.
pub async fn ask(client: &Client, base: &str, method: &Method, path: &str, body: &str) -> Answer {
    let mut req = client.request(method.clone(), format!("{base}{path}"));
    if !body.is_empty() {
        req = req.body(body.to_owned());
    }
    let res = req.send().await.expect("request sent");
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    let (status, content_type, location, allow) = (
        res.status().as_u16(),
        header("content-type"),
        header("location"),
        header("allow"),
    );
    let text = res.text().await.expect("body");
    let mut body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    blank_timestamps(&mut body);
    Answer {
        status,
        content_type,
        location,
        allow,
        body,
    }
}

/// Real `spin up` on a fresh state directory, with the component's schema
/// made, and a file-mode sidecar (`bin`, pass
/// `env!("CARGO_BIN_EXE_sidecar-process")`) in front of it on the same
/// file: the layout's one origin is `sidecar.url`.
pub struct BesideSpinUp {
    pub sidecar: crate::process::SidecarProcess,
    /// The database file they share.
    pub db: PathBuf,
    _spin: SpinUp,
    _state: tempfile::TempDir,
}

impl BesideSpinUp {
    /// With `env` for `spin up` (`SPIN_VARIABLE_...`) and `flags` for the
    /// sidecar. Panics if Spin does not start.
    pub async fn start(bin: &Path, env: Vec<(String, String)>, flags: &[&str]) -> Self {
        let state = tempfile::tempdir().expect("temp dir");
        let manifest = workspace_root().join("spin.toml");
        let mut options = SpinUpOptions::new(&manifest, state.path());
        options.env = env;
        let spin = SpinUp::start(options, "/healthz").await;
        // The component makes the schema on its first use of the store.
        let listed = reqwest::get(format!("{}/chatrooms", spin.url))
            .await
            .expect("list the rooms");
        assert_eq!(listed.status(), 200);
        let db = state.path().join("sqlite_db.db");
        let sidecar = crate::process::SidecarProcess::start_with(bin, &db, &spin.url, flags).await;
        BesideSpinUp {
            sidecar,
            db,
            _spin: spin,
            _state: state,
        }
    }
}
