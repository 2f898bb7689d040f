//! Outbound HTTP as Spin allows it: only to URLs the component's
//! `allowed_outbound_hosts` allow (matched as Spin matches them, see
//! [`AllowedHosts`]); everything else is `HttpRequestDenied`, as are
//! requests to the application itself (`self`), which the host does not
//! route back to itself.

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

use crate::allowed_hosts::AllowedHosts;

type Body = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, HttpError>;

/// The outbound HTTP policy of one component.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: AllowedHosts,
}

impl OutboundPolicy {
    pub fn new(allowed: AllowedHosts) -> Self {
        OutboundPolicy { allowed }
    }

    /// Whether a request to `uri` may be sent: like Spin, `https` is
    /// assumed for a URI without a scheme, and a URI the allowed hosts
    /// cannot be checked against (they did not resolve) is refused.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let is_self = uri.authority().is_none_or(|a| a.host() == "self.alt");
        if is_self {
            return false;
        }
        self.allowed
            .check_url(&uri.to_string(), "https")
            .unwrap_or(false)
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<Body>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<Body>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.allows(request.uri()) {
            tracing::info!(uri = %request.uri(), "outbound request denied");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], uri: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        OutboundPolicy::new(AllowedHosts::literal(&entries).unwrap()).allows(&uri.parse().unwrap())
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!allows(&[], "https://example.com/"));
    }

    #[test]
    fn matches_scheme_host_and_port() {
        assert!(allows(&["https://example.com"], "https://example.com/x"));
        assert!(!allows(&["https://example.com"], "http://example.com/x"));
        assert!(!allows(
            &["https://example.com"],
            "https://example.com:8443/"
        ));
        assert!(allows(
            &["https://*.example.com"],
            "https://api.example.com/"
        ));
        assert!(allows(&["http://localhost:*"], "http://localhost:3000/"));
        assert!(allows(&["*://*:*"], "http://anything:1/"));
        assert!(!allows(&["*://*:*"], "http://self.alt/"));
    }
}
