//! Forwarding non-Socket.IO HTTP to the REST deployment (`spin up`, or a
//! Spin host at `https://host/prefix`), so the sidecar alone gives clients
//! one origin for both halves. The calls go through the [`RestUpstream`]'s
//! client (TLS, the base path kept).
//!
//! The request body is read here, whole and within the REST size limit,
//! before anything is sent upstream: a body the sidecar cannot read (bad
//! chunked framing, shorter than its `Content-Length`, too slow) is the
//! client's fault and gets the REST `400`, never a `502`. A body over the
//! limit gets `413`, and the rest of it is read and thrown away (bounded,
//! [`chatroom_front::body`]) so the client sees that answer rather than a
//! reset; one announced with `Expect: 100-continue` is refused unsent.

use std::time::Duration;

use crate::body::{discard, expects_continue};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use chatroom_core::ApiError;
use chatroom_core::limits::MAX_BODY_BYTES;
use http_body_util::BodyExt;

use crate::rest_upstream::{RestUpstream, UpstreamError, classify};

/// A router sending every request to the REST deployment.
pub fn forward_to(upstream: RestUpstream) -> Router {
    Router::new().fallback(forward).with_state(upstream)
}

/// A router answering every request with the REST `404` body.
pub fn not_found() -> Router {
    Router::new().fallback(async || error_response(&ApiError::NotFound))
}

/// How long a client may take to send its whole request body.
const BODY_PATIENCE: Duration = Duration::from_secs(30);

/// A REST error answer (`chatroom_front::error`), as an axum response.
pub fn error_response(err: &ApiError) -> Response {
    crate::error::response(err)
        .map(axum::body::Body::from)
        .into_response()
}

/// Reads the whole body, within [`MAX_BODY_BYTES`] and [`BODY_PATIENCE`].
async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) && expects_continue(headers) {
        // Nothing was sent yet: refuse before the client sends it.
        return Err(ApiError::PayloadTooLarge);
    }
    let deadline = tokio::time::Instant::now() + BODY_PATIENCE;
    let mut whole = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return Ok(whole.into()),
            Ok(Some(Err(_))) => {
                return Err(ApiError::BadRequest(
                    "the request body is malformed or ended early".to_owned(),
                ));
            }
            Err(_) => {
                return Err(ApiError::BadRequest(
                    "the request body did not arrive in time".to_owned(),
                ));
            }
        };
        if let Some(data) = frame.data_ref() {
            if whole.len() + data.len() > MAX_BODY_BYTES {
                discard(body);
                return Err(ApiError::PayloadTooLarge);
            }
            whole.extend_from_slice(data);
        }
    }
}

/// Headers that describe one connection, not the message: never passed on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "expect"
    )
}

async fn forward(State(up): State<RestUpstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            headers.append(name, value.clone());
        }
    }
    let call = up
        .client()
        .request(parts.method, up.url(path))
        .headers(headers)
        .body(body);
    let res = match call.send().await {
        Ok(res) => res,
        Err(e) => {
            match classify(&e) {
                tls @ UpstreamError::Tls(_) => {
                    tracing::error!(error = %tls, "REST upstream refused")
                }
                other => tracing::warn!(error = %other, "REST upstream unavailable"),
            }
            return error_response(&ApiError::BadGateway);
        }
    };
    let mut answer = Response::builder().status(res.status());
    if let Some(out) = answer.headers_mut() {
        for (name, value) in res.headers() {
            if !hop_by_hop(name) || name == header::CONTENT_LENGTH {
                out.append(name, value.clone());
            }
        }
    }
    answer
        .body(Body::from_stream(res.bytes_stream()))
        .unwrap_or_else(|_| error_response(&ApiError::BadGateway))
}
