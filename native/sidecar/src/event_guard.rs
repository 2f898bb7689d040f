//! `EventGuard`: keeps a malformed event name from closing a connection.
//!
//! socketioxide reads an event's name as a borrowed `&str`, so a name that
//! JSON must escape (a control character, a quote, a lone surrogate) or
//! that is not a string at all fails to parse and the library closes the
//! connection, where docs/protocol.md §3 wants an `error` event. Before socketioxide
//! sees an event packet (`42[...]`), this module checks its name and, if it
//! is not a plain JSON string, replaces the packet with one naming
//! [`INVALID_EVENT`] (same namespace and ack id), which the event handler
//! answers with `invalid_payload`. Both transports pass through here: the
//! body of a long-polling POST ([`guard_polling`]) and each websocket text
//! frame from the client ([`FrameGuard`], which the front listener reads
//! upgraded connections through: [`frame_guard`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use chatroom_front::listener::UpgradedReads;
use http_body_util::{BodyExt, Limited};

/// The name an event with an unreadable name is renamed to.
pub const INVALID_EVENT: &str = "chatroom:invalid-event-name";

/// The packet to use instead of `packet` (an Engine.IO message, e.g.
/// `42["join_room",{...}]`), or `None` if it can go through as it is.
pub fn guard_packet(packet: &str) -> Option<String> {
    let rest = packet.strip_prefix("42")?;
    let (namespace, rest) = match rest.strip_prefix('/') {
        Some(_) => match rest.find(',') {
            Some(comma) => rest.split_at(comma + 1),
            None => return None, // not an event packet socketioxide accepts
        },
        None => ("", rest),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (ack, rest) = rest.split_at(digits);
    if plain_first_string(rest) {
        return None;
    }
    Some(format!("42{namespace}{ack}[\"{INVALID_EVENT}\"]"))
}

/// Whether `array` starts `["name"` with `name` free of escapes and control
/// characters (what socketioxide can read in place).
fn plain_first_string(array: &str) -> bool {
    let Some(rest) = array.strip_prefix('[') else {
        return false;
    };
    let Some(name) = rest.trim_start().strip_prefix('"') else {
        return false;
    };
    match name
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)
    {
        Some(end) => name.as_bytes()[end] == b'"',
        None => false,
    }
}

/// Middleware: rewrites the event packets of a long-polling POST body
/// (packets separated by U+001E) before socketioxide reads them.
pub async fn guard_polling(max_payload: usize, req: Request, next: Next) -> Response {
    let is_polling_post = req.method() == Method::POST
        && chatroom_front::is_socket_io(req.uri().path())
        && req
            .uri()
            .query()
            .is_some_and(|q| q.contains("transport=polling"));
    if !is_polling_post {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, max_payload).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let body = match std::str::from_utf8(&bytes) {
        Ok(text) if text.split('\u{1e}').any(|p| guard_packet(p).is_some()) => Body::from(
            text.split('\u{1e}')
                .map(|p| guard_packet(p).unwrap_or_else(|| p.to_owned()))
                .collect::<Vec<_>>()
                .join("\u{1e}"),
        ),
        _ => Body::from(bytes),
    };
    let mut req = Request::from_parts(parts, body);
    req.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
    next.run(req).await
}

/// Largest frame the guard looks into; bigger ones pass untouched (the
/// Engine.IO limit closes such a connection anyway).
const MAX_INSPECTED: usize = 2 << 20;

/// Rewrites the client's websocket text frames as they are read: complete
/// frames are parsed from `raw` and handed on, unchanged or rewritten, in
/// `out`.
#[derive(Default)]
pub struct FrameGuard {
    raw: BytesMut,
    out: BytesMut,
    /// Bytes of an oversized frame still to pass through untouched.
    passthrough: usize,
}

impl UpgradedReads for FrameGuard {
    /// Takes bytes read from the client. Once every byte has been parsed,
    /// the guard lets go of its buffer: an idle connection holds none.
    fn push(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        self.process();
        if self.raw.is_empty() {
            self.raw = BytesMut::new();
        }
    }

    /// Bytes ready for the websocket reader.
    fn ready(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// At end of stream: whatever was held back, as it is.
    fn finish(&mut self) {
        let rest = self.raw.split();
        self.out.extend_from_slice(&rest);
    }
}

impl FrameGuard {
    fn process(&mut self) {
        loop {
            if self.passthrough > 0 {
                let n = self.passthrough.min(self.raw.len());
                let bytes = self.raw.split_to(n);
                self.out.extend_from_slice(&bytes);
                self.passthrough -= n;
                if self.passthrough > 0 {
                    return;
                }
            }
            let Some(header) = FrameHeader::parse(&self.raw) else {
                return;
            };
            if header.payload > MAX_INSPECTED {
                self.passthrough = header.len + header.payload;
                continue;
            }
            if self.raw.len() < header.len + header.payload {
                return;
            }
            let frame = self.raw.split_to(header.len + header.payload);
            match header.rewrite(&frame) {
                Some(rewritten) => self.out.extend_from_slice(&rewritten),
                None => self.out.extend_from_slice(&frame),
            }
        }
    }
}

/// The parts of a websocket frame header the guard needs.
struct FrameHeader {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Header length in bytes.
    len: usize,
    payload: usize,
}

impl FrameHeader {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (b0, b1) = (*bytes.first()?, *bytes.get(1)?);
        let mut len = 2;
        let payload = match b1 & 0x7f {
            126 => {
                len += 2;
                usize::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?))
            }
            127 => {
                len += 8;
                let n = u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?);
                usize::try_from(n).unwrap_or(usize::MAX)
            }
            n => usize::from(n),
        };
        let mask = if b1 & 0x80 != 0 {
            let key: [u8; 4] = bytes.get(len..len + 4)?.try_into().ok()?;
            len += 4;
            Some(key)
        } else {
            None
        };
        Some(FrameHeader {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            mask,
            len,
            payload,
        })
    }

    /// A whole text frame from the client, rewritten if its event packet
    /// needs it.
    fn rewrite(&self, frame: &[u8]) -> Option<BytesMut> {
        let key = self.mask?;
        if !self.fin || self.opcode != 1 {
            return None;
        }
        let mut payload = frame[self.len..].to_vec();
        apply_mask(&mut payload, key);
        let packet = std::str::from_utf8(&payload).ok()?;
        let replaced = guard_packet(packet)?;
        let mut new = replaced.into_bytes();
        apply_mask(&mut new, key);
        let mut out = BytesMut::with_capacity(new.len() + 14);
        out.put_u8(frame[0]);
        match new.len() {
            n @ 0..=125 => out.put_u8(0x80 | n as u8),
            n @ 126..=65535 => {
                out.put_u8(0x80 | 126);
                out.put_u16(n as u16);
            }
            n => {
                out.put_u8(0x80 | 127);
                out.put_u64(n as u64);
            }
        }
        out.put_slice(&key);
        out.put_slice(&new);
        Some(out)
    }
}

fn apply_mask(bytes: &mut [u8], key: [u8; 4]) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The front listener's reader of upgraded connections: a [`FrameGuard`].
pub fn frame_guard() -> Box<dyn UpgradedReads> {
    Box::<FrameGuard>::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_front::listener::drain_into;

    #[test]
    fn plain_names_pass_and_others_are_renamed() {
        for ok in [
            r#"42["join_room",{"room_id":1}]"#,
            r#"4217["send_message",{}]"#,
            r#"42/chat,3["x"]"#,
            "40",
            "2",
            r#"43["ack"]"#,
        ] {
            assert_eq!(guard_packet(ok), None, "{ok}");
        }
        let cases = [
            (
                r#"42["\u0001",{"room_id":1}]"#,
                r#"42["chatroom:invalid-event-name"]"#,
            ),
            (
                r#"425["\ud800",{}]"#,
                r#"425["chatroom:invalid-event-name"]"#,
            ),
            (
                r#"42/chat,9["a\"b"]"#,
                r#"42/chat,9["chatroom:invalid-event-name"]"#,
            ),
            (r#"42[5,{}]"#, r#"42["chatroom:invalid-event-name"]"#),
            (r#"42{}"#, r#"42["chatroom:invalid-event-name"]"#),
            ("42[\"tab\there\"]", r#"42["chatroom:invalid-event-name"]"#),
        ];
        for (bad, fixed) in cases {
            assert_eq!(guard_packet(bad).as_deref(), Some(fixed), "{bad}");
        }
    }

    fn client_frame(text: &str, key: [u8; 4]) -> Vec<u8> {
        let mut payload = text.as_bytes().to_vec();
        apply_mask(&mut payload, key);
        let mut frame = vec![0x81];
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        frame.extend_from_slice(&key);
        frame.extend_from_slice(&payload);
        frame
    }

    #[test]
    fn frames_are_rewritten_whole_in_any_split() {
        let key = [1, 2, 3, 4];
        let good = client_frame(
            &format!("42[\"send_message\",\"{}\"]", "x".repeat(300)),
            key,
        );
        let bad = client_frame(r#"421["\u0001",{"room_id":1}]"#, key);
        let mut stream = good.clone();
        stream.extend_from_slice(&bad);
        stream.extend_from_slice(&good);
        let expected = {
            let mut e = good.clone();
            e.extend_from_slice(&client_frame(r#"421["chatroom:invalid-event-name"]"#, key));
            e.extend_from_slice(&good);
            e
        };
        for step in [1, 7, 100, stream.len()] {
            let mut guard = FrameGuard::default();
            for chunk in stream.chunks(step) {
                guard.push(chunk);
            }
            assert_eq!(guard.ready().to_vec(), expected, "in chunks of {step}");
        }
    }

    #[test]
    fn an_idle_guard_holds_no_buffer() {
        let frame = client_frame(r#"42["send_message",{"room_id":1}]"#, [9, 8, 7, 6]);
        let mut guard = FrameGuard::default();
        guard.push(&frame[..5]);
        assert!(guard.raw.capacity() > 0, "a partial frame is held");
        guard.push(&frame[5..]);
        assert_eq!(guard.raw.capacity(), 0, "every byte was parsed");
        let mut read = [0u8; 8];
        let mut buf = tokio::io::ReadBuf::new(&mut read);
        drain_into(guard.ready(), &mut buf);
        assert!(
            guard.ready().capacity() > 0,
            "part of the frame is still to read"
        );
        let mut rest = vec![0u8; frame.len()];
        let mut buf = tokio::io::ReadBuf::new(&mut rest);
        drain_into(guard.ready(), &mut buf);
        assert_eq!(buf.filled(), &frame[8..]);
        assert_eq!(guard.ready().capacity(), 0, "all was read");
    }
}
