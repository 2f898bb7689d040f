//! The host's response body type and the answers the host gives itself
//! (no route, an error before or instead of a component's answer), shared
//! by the server and Spin's well-known endpoints.

use bytes::Bytes;
use chatroom_core::ApiError;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The body type of every response the host gives.
pub type ResponseBody = HyperOutgoingBody;

/// A response with no body, as Spin gives for a path no route matches.
pub(crate) fn empty_response(status: u16) -> hyper::Response<ResponseBody> {
    let body = Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response
}

/// An answer of the host itself: the error's status, body and headers
/// (`chatroom_front::error`), as the host's body type.
pub fn error_response(err: &ApiError) -> hyper::Response<ResponseBody> {
    chatroom_front::error::response(err).map(|body| {
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync()
    })
}
