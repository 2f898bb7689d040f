//! Fidelity with real Spin: the same requests, sent to `spin up` and to the
//! project's host on the same `.wasm` (each on a fresh state directory),
//! must get the same status, headers that matter, and body (timestamps
//! aside). Runs only where a Spin CLI is found (`SPIN_BIN`, or `spin` on
//! PATH) and says so plainly when it skips.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chatroom_tests::{TestServer, real_spin, workspace_root};
use reqwest::{Client, Method};
use serde_json::Value;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
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

async fn wait_until_up(client: &Client, base: &str, spin: &mut KillOnDrop) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await
            && res.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = spin.0.try_wait() {
            panic!("spin up exited early: {status}");
        }
        assert!(Instant::now() < deadline, "spin up did not answer in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_answers_like_spin_up() {
    let Some(spin) = real_spin() else {
        return;
    };
    let root = workspace_root();
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spin_up = KillOnDrop(
        Command::new(spin)
            .current_dir(&root)
            .args(["up", "-f", "spin.toml", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spin up starts"),
    );
    let spin_url = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    wait_until_up(&client, &spin_url, &mut spin_up).await;
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
