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
use http_body_util::{BodyExt, Full};

use crate::rest_upstream::{RestUpstream, UpstreamError, tls_failure};

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

/// The request's target if it is a path (origin-form, `/...`), as sent:
/// an asterisk-form (`OPTIONS *`) or absolute-form (`GET http://host/x`)
/// target is not for a REST API and is refused, never rewritten.
fn origin_form(uri: &http::Uri) -> Result<&str, ApiError> {
    let target = uri.path_and_query().map_or("", |pq| pq.as_str());
    if uri.scheme().is_some() || uri.authority().is_some() || !target.starts_with('/') {
        return Err(ApiError::BadRequest(
            "the request target must be a path (origin-form)".to_owned(),
        ));
    }
    Ok(target)
}

/// Middleware in front of everything a front serves: a request whose
/// target is not a path is `400` `bad_request`, whoever would have
/// answered it (CORS would take `OPTIONS *` for a preflight).
pub async fn only_paths(req: Request, next: axum::middleware::Next) -> Response {
    match origin_form(req.uri()) {
        Ok(_) => next.run(req).await,
        Err(e) => {
            discard(req.into_body());
            error_response(&e)
        }
    }
}

async fn forward(State(up): State<RestUpstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = match origin_form(&parts.uri) {
        Ok(target) => target.to_owned(),
        Err(e) => {
            discard(body);
            return error_response(&e);
        }
    };
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    let passthrough = up.passthrough();
    let Ok(uri) = passthrough.uri(&target) else {
        return error_response(&ApiError::BadRequest(
            "the request target cannot be forwarded".to_owned(),
        ));
    };
    let mut call = http::Request::builder().method(parts.method).uri(uri);
    if let Some(headers) = call.headers_mut() {
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                headers.append(name, value.clone());
            }
        }
    }
    let Ok(call) = call.body(Full::new(body)) else {
        return error_response(&ApiError::BadRequest(
            "the request cannot be forwarded".to_owned(),
        ));
    };
    let res = match passthrough.send(call).await {
        Ok(res) => res,
        Err(e) => {
            match tls_failure(&e) {
                Some(tls) => {
                    tracing::error!(error = %UpstreamError::Tls(tls), "REST upstream refused")
                }
                None => tracing::warn!(error = %e, "REST upstream unavailable"),
            }
            return error_response(&ApiError::BadGateway);
        }
    };
    let (head, body) = res.into_parts();
    let mut answer = Response::builder().status(head.status);
    if let Some(out) = answer.headers_mut() {
        for (name, value) in &head.headers {
            if !hop_by_hop(name) || name == header::CONTENT_LENGTH {
                out.append(name, value.clone());
            }
        }
    }
    answer
        .body(Body::new(body))
        .unwrap_or_else(|_| error_response(&ApiError::BadGateway))
}

/// A route of a front's own (`/healthz`, `/metrics`): `GET` and `HEAD`
/// are `route`'s; any other method is `405` `method_not_allowed` with the
/// JSON error body and `Allow`, as the REST API answers.
pub fn get_only<S: Clone + Send + Sync + 'static>(
    route: axum::routing::MethodRouter<S>,
) -> axum::routing::MethodRouter<S> {
    route.fallback(async || {
        let mut answer = error_response(&ApiError::MethodNotAllowed);
        answer
            .headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        answer
    })
}
