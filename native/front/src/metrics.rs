//! `/metrics` answers: a `prometheus_client` registry in the Prometheus
//! text exposition format (OpenMetrics), the same way for whatever a
//! binary mounts registers its series in (the sidecar's, docs/protocol.md
//! §8).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The answer to a scrape of `registry`.
pub fn exposition(registry: &Registry) -> Response {
    let mut body = String::new();
    match encode(&mut body, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics failed");
            crate::error::response(&chatroom_core::ApiError::Internal).map(axum::body::Body::from)
        }
    }
}
