//! Forwarding non-Socket.IO HTTP to a REST server (e.g. `spin up`), so the
//! sidecar alone gives clients one origin for both halves.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chatroom_core::ApiError;
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
    Router::new().fallback(async || {
        let err = ApiError::NotFound;
        (StatusCode::NOT_FOUND, axum::Json(err.body())).into_response()
    })
}

async fn forward(State(up): State<Upstream>, mut req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut parts = up.base.clone().into_parts();
    parts.path_and_query = path.parse().ok();
    let Ok(uri) = Uri::from_parts(parts) else {
        return StatusCode::BAD_REQUEST.into_response();
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
