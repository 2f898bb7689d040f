//! Forwarding non-Socket.IO HTTP to a REST server (e.g. `spin up`), so the
//! sidecar alone gives clients one origin for both halves.
//!
//! The request body is read here, whole and within the REST size limit,
//! before anything is sent upstream: a body the sidecar cannot read (bad
//! chunked framing, shorter than its `Content-Length`, too slow) is the
//! client's fault and gets the REST `400` (or `413`), never a `502`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chatroom_core::ApiError;
use chatroom_core::limits::MAX_BODY_BYTES;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
struct Upstream {
    base: Uri,
    client: Client<HttpConnector, Body>,
}

/// A router sending every request to `base` (`http://host:port`).
pub fn forward_to(base: Uri) -> Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    Router::new()
        .fallback(forward)
        .with_state(Upstream { base, client })
}

/// A router answering every request with the REST `404` body.
pub fn not_found() -> Router {
    Router::new().fallback(async || error_response(&ApiError::NotFound))
}

/// How long a client may take to send its whole request body.
const BODY_PATIENCE: Duration = Duration::from_secs(30);

/// A REST error answer, with the component's content type.
fn error_response(err: &ApiError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::to_vec(&err.body()).unwrap_or_default();
    let json = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    (status, json, body).into_response()
}

/// Reads the whole body, within [`MAX_BODY_BYTES`] and [`BODY_PATIENCE`].
async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limited = Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(BODY_PATIENCE, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge)
        }
        Ok(Err(_)) => Err(ApiError::BadRequest(
            "the request body is malformed or ended early".to_owned(),
        )),
        Err(_) => Err(ApiError::BadRequest(
            "the request body did not arrive in time".to_owned(),
        )),
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    let mut req = Request::from_parts(parts, Body::from(body));
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut parts = up.base.clone().into_parts();
    parts.path_and_query = path.parse().ok();
    let Ok(uri) = Uri::from_parts(parts) else {
        return error_response(&ApiError::BadRequest(
            "the request target is invalid".into(),
        ));
    };
    *req.uri_mut() = uri;
    req.headers_mut().remove(header::HOST);
    match up.client.request(req).await {
        Ok(res) => res.map(Body::new).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "REST upstream unavailable");
            let body = serde_json::json!({
                "detail": "The REST server is unavailable",
                "code": "upstream_unavailable",
            });
            (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
        }
    }
}
