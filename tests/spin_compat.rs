//! Fidelity with real Spin: the same requests, sent to `spin up` and to the
//! project's host on the same `.wasm` (each on a fresh state directory),
//! must get the same status, headers that matter, and body (timestamps
//! aside). Runs where a Spin CLI was found when this package was built
//! (`SPIN_BIN`, or `spin` on PATH; see `build.rs`) and then fails if that
//! Spin does not start; elsewhere `cargo test` lists it as ignored.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chatroom_tests::{TestServer, spin_cli, workspace_root};
use reqwest::{Client, Method};
use serde_json::Value;

/// `spin up` and what it starts: it runs the HTTP trigger as a child
/// process (`spin trigger http`), which outlives a killed `spin up`. So it
/// runs in a process group of its own, and the whole group is killed.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One observable answer, with server-set timestamps blanked.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    allow: Option<String>,
    body: Value,
}

fn blank_timestamps(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "created_at" || k == "timestamp" {
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

async fn ask(client: &Client, base: &str, method: &Method, path: &str, body: &str) -> Answer {
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

/// Starts `spin up` on a port it picks itself (`--listen 127.0.0.1:0`;
/// Spin binds it and prints the bound address in its route list, e.g.
/// `  rest: http://127.0.0.1:41234/...`), and returns it with its base URL.
async fn spin_up(state: &std::path::Path) -> (KillOnDrop, String) {
    let spin = spin_cli();
    let mut child = Command::new(&spin)
        .current_dir(workspace_root())
        .args(["up", "-f", "spin.toml", "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {spin:?} (SPIN_BIN): {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut spin_up = KillOnDrop(child);
    let url = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("spin's stdout");
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
    let url = tokio::time::timeout(Duration::from_secs(120), url)
        .await
        .expect("spin up printed no address within 120 s")
        .expect("reading spin's stdout");
    let url = match url {
        Ok(url) => url,
        Err(printed) => {
            let status = spin_up.0.wait().expect("wait");
            panic!("{spin:?} up exited ({status}) without serving; stdout: {printed:?}");
        }
    };
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = client.get(format!("{url}/healthz")).send().await
            && res.status().is_success()
        {
            return (spin_up, url);
        }
        if let Ok(Some(status)) = spin_up.0.try_wait() {
            panic!("spin up exited early: {status}");
        }
        assert!(Instant::now() < deadline, "spin up did not answer in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(spin_cli),
    ignore = "no Spin CLI: set SPIN_BIN to run the comparison with real Spin"
)]
async fn the_host_answers_like_spin_up() {
    let state = tempfile::tempdir().unwrap();
    let (_spin_up, spin_url) = spin_up(state.path()).await;
    let client = Client::new();
    let ours = TestServer::start().await;

    let big = format!(
        "{{\"sender\":\"a\",\"message\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let script: Vec<(Method, &str, String)> = vec![
        (Method::GET, "/healthz", String::new()),
        (Method::GET, "/chatrooms", String::new()),
        (Method::POST, "/chatrooms", r#"{"name":"General"}"#.into()),
        (Method::POST, "/chatrooms", r#"{"name":"GENERAL"}"#.into()),
        (
            Method::POST,
            "/chatrooms?name=Caf%C3%A9%20%F0%9F%90%B1",
            String::new(),
        ),
        (Method::POST, "/chatrooms", r#"{"name":"   "}"#.into()),
        (Method::POST, "/chatrooms", "{".into()),
        (Method::GET, "/chatrooms", String::new()),
        (Method::GET, "/chatrooms/2", String::new()),
        (Method::GET, "/chatrooms/99", String::new()),
        (Method::GET, "/chatrooms/abc", String::new()),
        (
            Method::POST,
            "/chatrooms/1/messages",
            r#"{"sender":"Alice","message":"Hello"}"#.into(),
        ),
        (
            Method::POST,
            "/chatrooms/1/messages",
            r#"{"sender":"Bob","content":"Hi"}"#.into(),
        ),
        (
            Method::POST,
            "/chatrooms/1/messages?sender=Carol&content=q",
            String::new(),
        ),
        (
            Method::POST,
            "/chatrooms/1/messages",
            r#"{"sender":"x"}"#.into(),
        ),
        (
            Method::POST,
            "/chatrooms/9/messages",
            r#"{"sender":"x","message":"y"}"#.into(),
        ),
        (Method::POST, "/chatrooms/1/messages", big),
        (Method::GET, "/chatrooms/1/messages", String::new()),
        (
            Method::GET,
            "/chatrooms/1/messages?after=1&limit=1",
            String::new(),
        ),
        (Method::GET, "/chatrooms/1/messages?before=3", String::new()),
        (Method::GET, "/chatrooms/1/messages?limit=0", String::new()),
        (Method::GET, "/chatrooms/1/users", String::new()),
        (Method::GET, "/chatrooms/9/users", String::new()),
        (Method::DELETE, "/chatrooms", String::new()),
        (Method::GET, "/nope", String::new()),
    ];
    for (method, path, body) in &script {
        let theirs = ask(&client, &spin_url, method, path, body).await;
        let mine = ask(&client, &ours.url, method, path, body).await;
        assert_eq!(mine, theirs, "{method} {path}");
    }
    eprintln!(
        "compared {} requests with real Spin: identical",
        script.len()
    );
}
