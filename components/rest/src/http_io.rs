//! Reading request bodies within the size limit and writing JSON responses,
//! either whole or streamed as an array a page at a time (so a history of any
//! length never sits in the component's memory).

use chatroom_core::ApiError;
use chatroom_core::limits::{DISCARD_BYTES, MAX_BODY_BYTES};
use futures::{Sink, SinkExt, StreamExt};
use serde::Serialize;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

/// Flush a streamed response to the host once this much is buffered.
const STREAM_CHUNK: usize = 64 * 1024;

const JSON: &str = chatroom_core::CONTENT_TYPE;

/// Reads the whole body if it is at most [`MAX_BODY_BYTES`]. Of an
/// oversized one, up to [`DISCARD_BYTES`] are read and thrown away before
/// the `413`, so ordinary clients that send the whole body see the answer
/// instead of a reset connection; bodies declared larger are not read, nor
/// is an oversized one whose client waits for `100 Continue`.
pub async fn read_body(req: IncomingRequest) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
    // A client waiting for `100 Continue` has sent nothing: refuse it
    // before it does (reading the body would tell it to go on).
    let expects_continue = req
        .headers()
        .get("expect")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > DISCARD_BYTES || (expects_continue && n > MAX_BODY_BYTES)) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = Vec::new();
    let mut seen = 0usize;
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body ended early".into()))?;
        seen += chunk.len();
        if seen <= MAX_BODY_BYTES {
            body.extend_from_slice(&chunk);
        } else if seen > DISCARD_BYTES {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(body)
}

fn response(status: u16, extra: &[(&str, String)]) -> OutgoingResponse {
    let mut headers = vec![("content-type".to_owned(), JSON.as_bytes().to_vec())];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec())),
    );
    // Names and values are our own constants and digits: always valid.
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    // Every status we use is a valid HTTP status.
    let _ = response.set_status_code(status);
    response
}

/// Answers with one JSON value.
pub async fn send_json<T: Serialize>(
    out: ResponseOutparam,
    status: u16,
    value: &T,
    extra: &[(&str, String)],
) {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        // Our wire types always serialise; this is only a last resort.
        Err(e) => {
            eprintln!("chatroom-rest: serialising a response failed: {e}");
            (500, ApiError::Internal.to_json())
        }
    };
    send_raw_json(out, status, body, extra).await
}

/// Answers with a body that is JSON already.
async fn send_raw_json(
    out: ResponseOutparam,
    status: u16,
    body: Vec<u8>,
    extra: &[(&str, String)],
) {
    let mut headers = extra.to_vec();
    headers.push(("content-length", body.len().to_string()));
    if let Err(e) = out.set_with_body(response(status, &headers), body).await {
        eprintln!("chatroom-rest: writing a response failed: {e:?}");
    }
}

/// Answers `200` with a JSON document compiled into the component.
pub async fn send_static_json(out: ResponseOutparam, body: &'static str) {
    let headers = [("content-length", body.len().to_string())];
    if let Err(e) = out
        .set_with_body(response(200, &headers), body.as_bytes().to_vec())
        .await
    {
        eprintln!("chatroom-rest: writing a response failed: {e:?}");
    }
}

/// Answers `status` (a `204`) with no body.
pub async fn send_empty(out: ResponseOutparam, status: u16) {
    let response = OutgoingResponse::new(Fields::new());
    // Every status we use is a valid HTTP status.
    let _ = response.set_status_code(status);
    if let Err(e) = out.set_with_body(response, Vec::new()).await {
        eprintln!("chatroom-rest: writing a response failed: {e:?}");
    }
}

/// Answers with an error body `{"detail", "code"}` and its status, and
/// for a `405` the `Allow` of the methods the path does take: the one
/// rendering of every error the component answers with.
pub async fn send_error(out: ResponseOutparam, err: &ApiError, allow: Option<String>) {
    if err.status() >= 500 {
        eprintln!("chatroom-rest: {err}");
    }
    let headers: Vec<(&str, String)> = allow.map(|allow| ("allow", allow)).into_iter().collect();
    send_raw_json(out, err.status(), err.to_json(), &headers).await
}

/// The body of a streamed response, once the status line is out.
type BodySink = std::pin::Pin<Box<dyn Sink<Vec<u8>, Error = anyhow::Error>>>;

/// A `200` JSON array built from pages. One that fits in
/// [`STREAM_CHUNK`] goes out whole, with a `content-length`, in one write;
/// a longer one is streamed as its pages arrive. (Spin's server does not
/// set `TCP_NODELAY`: a small body written in several pieces waited 40 ms
/// for the client's delayed ACK.)
pub struct JsonArray {
    out: Option<ResponseOutparam>,
    sink: Option<BodySink>,
    buf: Vec<u8>,
    first: bool,
}

impl JsonArray {
    pub fn new(out: ResponseOutparam) -> Self {
        JsonArray {
            out: Some(out),
            sink: None,
            buf: b"[".to_vec(),
            first: true,
        }
    }

    /// Appends the items of `page`, a JSON array; once more than
    /// [`STREAM_CHUNK`] is buffered it goes to the host.
    pub async fn extend(&mut self, page: &str) -> anyhow::Result<()> {
        let items = page
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .ok_or_else(|| anyhow::anyhow!("a page is not a JSON array"))?;
        if !items.is_empty() {
            if !self.first {
                self.buf.push(b',');
            }
            self.first = false;
            self.buf.extend_from_slice(items.as_bytes());
        }
        if self.buf.len() >= STREAM_CHUNK {
            let chunk = std::mem::take(&mut self.buf);
            self.stream().send(chunk).await?;
        }
        Ok(())
    }

    /// The streamed body, starting the response if it is not yet.
    fn stream(&mut self) -> &mut BodySink {
        let out = self.out.take();
        self.sink.get_or_insert_with(|| {
            let response = response(200, &[]);
            let sink = response
                .take_body()
                .sink_map_err(|e| anyhow::anyhow!("{e:?}"));
            if let Some(out) = out {
                out.set(response);
            }
            Box::pin(sink)
        })
    }

    /// Closes the array and the body.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        self.buf.push(b']');
        let body = std::mem::take(&mut self.buf);
        match self.out.take() {
            Some(out) => {
                let headers = [("content-length", body.len().to_string())];
                out.set_with_body(response(200, &headers), body)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            }
            None => {
                let sink = self.stream();
                sink.send(body).await?;
                sink.close().await
            }
        }
    }
}
