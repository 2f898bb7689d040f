//! The one way a native front answers with an [`ApiError`]: its status,
//! the REST content type and body (`ApiError::to_json`), and `Retry-After`
//! where waiting helps. The host, the sidecar's forwarder, its origin check,
//! address limits and `/healthz` all answer through this.

use std::time::Duration;

use bytes::Bytes;
use chatroom_core::{ApiError, CONTENT_TYPE};
use http::header::{CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

/// `err` as a response.
pub fn response(err: &ApiError) -> Response<Bytes> {
    let wait = err.retry_after().map(Duration::from_secs);
    response_retry_after(err, wait)
}

/// `err` as a response telling the client to wait `wait` (rounded up to
/// whole seconds, at least one) when given.
pub fn response_retry_after(err: &ApiError, wait: Option<Duration>) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from(err.to_json()));
    *res.status_mut() = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    res.headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
    if let Some(wait) = wait {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_the_rest_shape_and_content_type() {
        let res = response(&ApiError::Overloaded);
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[CONTENT_TYPE_HEADER], CONTENT_TYPE);
        assert_eq!(res.headers()[RETRY_AFTER], "1");
        let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"detail": "The server is busy; retry shortly", "code": "overloaded"})
        );
        let limited =
            response_retry_after(&ApiError::RateLimited, Some(Duration::from_millis(1500)));
        assert_eq!(
            (limited.status().as_u16(), &limited.headers()[RETRY_AFTER]),
            (429, &HeaderValue::from(2u64))
        );
        assert!(
            response(&ApiError::NotFound)
                .headers()
                .get(RETRY_AFTER)
                .is_none()
        );
    }
}
