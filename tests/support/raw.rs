//! Socket.IO spoken by hand, for what a well-behaved client library will not
//! do: stop reading (a slow member), send frames it would never build, or
//! use Engine.IO long-polling with a session id it did not get.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::socket::PATIENCE;

/// A Socket.IO connection over a raw websocket, joined to the default
/// namespace.
pub struct RawSocket {
    ws: WebSocketStream<TcpStream>,
    closed: bool,
}

impl RawSocket {
    /// Connects to `base` (`http://host:port`); with `receive_buffer`, the
    /// TCP receive buffer is made that small, so a client that stops
    /// reading backs up quickly.
    pub async fn connect(base: &str, receive_buffer: Option<u32>) -> Self {
        let addr = base
            .trim_start_matches("http://")
            .parse()
            .expect("base is http://ip:port");
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let stream = socket.connect(addr).await.expect("tcp connect");
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http://", "ws://", 1)
        );
        let request = url.into_client_request().expect("request");
        let (ws, _) = client_async(request, stream).await.expect("ws handshake");
        let mut raw = RawSocket { ws, closed: false };
        let open = raw.next_text().await.expect("engine.io open");
        assert!(open.starts_with('0'), "{open}");
        raw.send_text("40").await;
        let connected = raw.next_text().await.expect("namespace connect");
        assert!(connected.starts_with("40"), "{connected}");
        raw
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Frame::text(text.to_owned()))
            .await
            .expect("frame sent");
    }

    /// Emits `event` with `data` (no ack).
    pub async fn emit(&mut self, event: &str, data: &Value) {
        let packet = format!("42{}", serde_json::json!([event, data]));
        self.send_text(&packet).await;
    }

    /// The next text frame, answering Engine.IO pings; `None` once the
    /// connection is closed (or nothing came within the patience).
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .ok()??;
            match frame {
                Ok(Frame::Text(text)) if text.as_str() == "2" => self.send_text("3").await,
                Ok(Frame::Text(text)) => return Some(text.as_str().to_owned()),
                Ok(Frame::Close(_)) | Err(_) => {
                    self.closed = true;
                    return None;
                }
                Ok(_) => {}
            }
        }
    }

    /// Whether the server ended the connection (as opposed to a read that
    /// only ran out of patience).
    pub fn was_closed(&self) -> bool {
        self.closed
    }

    /// The next Socket.IO event `[name, data]`, skipping other packets;
    /// `None` when the server disconnected this socket or closed it.
    pub async fn next_event(&mut self) -> Option<(String, Value)> {
        loop {
            let text = self.next_text().await?;
            if text.starts_with("41") || text == "1" {
                self.closed = true;
                return None;
            }
            if let Some(json) = text.strip_prefix("42") {
                let mut parts: Vec<Value> = serde_json::from_str(json).ok()?;
                if parts.len() >= 2 {
                    let data = parts.swap_remove(1);
                    let name = parts[0].as_str().unwrap_or_default().to_owned();
                    return Some((name, data));
                }
            }
        }
    }
}

/// Engine.IO long-polling by hand: a session id and the two requests.
pub struct Polling {
    pub base: String,
    pub sid: String,
    http: reqwest::Client,
}

impl Polling {
    /// Opens a polling session and connects it to the default namespace.
    pub async fn connect(base: &str) -> Self {
        let polling = Self::open(base).await.expect("the handshake succeeds");
        let answer = polling.connect_namespace("40").await;
        assert!(answer.starts_with("40"), "{answer}");
        polling
    }

    /// The Engine.IO handshake alone: the session, or the refusal's status
    /// and body.
    pub async fn open(base: &str) -> Result<Self, (u16, String)> {
        Self::open_with(base, &[]).await
    }

    /// [`Self::open`] with extra request headers (`X-Forwarded-For`, say).
    pub async fn open_with(base: &str, headers: &[(&str, &str)]) -> Result<Self, (u16, String)> {
        let http = reqwest::Client::new();
        let mut req = http.get(format!("{base}/socket.io/?EIO=4&transport=polling"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("handshake");
        let status = res.status().as_u16();
        let body = res.text().await.expect("handshake body");
        if status != 200 {
            return Err((status, body));
        }
        let open: Value = serde_json::from_str(body.trim_start_matches('0')).expect("open json");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        Ok(Polling {
            base: base.to_owned(),
            sid,
            http,
        })
    }

    /// Sends the namespace CONNECT `packet` (`40`, or `40{"token":...}`);
    /// the server's answer: `40{...}` (connected) or `44{...}`
    /// (`connect_error`).
    pub async fn connect_namespace(&self, packet: &str) -> String {
        assert_eq!(self.post(packet).await, 200);
        let packets = self.poll_until("4").await;
        packets
            .into_iter()
            .find(|p| p.starts_with("40") || p.starts_with("44"))
            .unwrap_or_else(|| panic!("no answer to {packet}"))
    }

    /// POSTs `body` as session `sid`; the status.
    pub async fn post_as(&self, sid: &str, body: &str) -> u16 {
        self.http
            .post(format!(
                "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
                self.base
            ))
            .body(body.to_owned())
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    pub async fn post(&self, body: &str) -> u16 {
        self.post_as(&self.sid, body).await
    }

    /// One long-poll GET as session `sid`: (status, body).
    pub async fn poll_as(&self, sid: &str) -> (u16, String) {
        let res = tokio::time::timeout(
            PATIENCE,
            self.http
                .get(format!(
                    "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
                    self.base
                ))
                .send(),
        )
        .await
        .expect("poll answered in time")
        .expect("poll");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    pub async fn poll(&self) -> String {
        let (status, body) = self.poll_as(&self.sid).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls until a packet containing `needle` arrives; every packet seen.
    pub async fn poll_until(&self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            let body = self.poll().await;
            let found = body.contains(needle);
            if body.split('\u{1e}').any(|p| p == "2") {
                // An Engine.IO ping: answer it, as any client does.
                self.post("3").await;
            }
            seen.extend(body.split('\u{1e}').map(str::to_owned));
            if found {
                return seen;
            }
        }
        panic!("no packet with {needle} within the patience: {seen:?}");
    }
}

fn authority(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// Reads an HTTP answer's head and whatever body follows within a moment.
pub async fn read_answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(end) = text.find("\r\n\r\n")
                    && text[end..].contains('}')
                {
                    break;
                }
            }
            Ok(Err(e)) => panic!("the connection failed while reading the answer: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// POSTs a JSON body of `size` bytes to `path` as a plain client does
/// (the whole body, then the answer), or announces it with
/// `Expect: 100-continue` and sends nothing until told to; the answer.
pub async fn post_oversized(base: &str, path: &str, size: usize, expect_continue: bool) -> String {
    let mut stream = TcpStream::connect(authority(base)).await.expect("connect");
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\n{expect}\r\n",
        authority(base)
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    if !expect_continue {
        let mut body = br#"{"sender":"big","message":""#.to_vec();
        body.resize(size, b'x');
        for chunk in body.chunks(64 * 1024) {
            if let Err(e) = stream.write_all(chunk).await {
                panic!("{base}: the connection was reset while the body was sent: {e}");
            }
        }
    }
    read_answer(&mut stream).await
}

/// Every oversized shape through the front at `base`, for room `room`.
pub async fn refuses_oversized_bodies_cleanly(base: &str, room: i64, front: &str) {
    let path = format!("/chatrooms/{room}/messages");
    for (size, expect) in [
        (1_000_000, false),
        (20_000_000, false),
        (20_000_000, true),
        (1_000_000, true),
    ] {
        let answer = post_oversized(base, &path, size, expect).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{front}: {size} bytes (Expect: 100-continue {expect}) got {answer:?}"
        );
        assert!(answer.contains("payload_too_large"), "{front}: {answer}");
        assert!(
            !answer.contains("100 Continue"),
            "{front}: nothing to continue for a refused body"
        );
    }
    // Nothing was stored, and the front still serves.
    let history = crate::http::history_ids(base, room).await;
    assert!(history.is_empty(), "{front}: {history:?}");
}
