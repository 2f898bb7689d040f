//! Outbound HTTP as Spin allows it: only to hosts matching the component's
//! `allowed_outbound_hosts` (`scheme://host:port`, each part may be `*`, and
//! a host may be `*.domain`); everything else is `HttpRequestDenied`.

use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

type Body = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, HttpError>;

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Arc<Vec<AllowedHost>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: String,
    host: String,
    port: Option<String>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OutboundPolicy {
    /// Parses entries; ones that are not `scheme://host[:port]` allow nothing.
    pub fn new(entries: &[String]) -> Self {
        let allowed = entries
            .iter()
            .filter_map(|e| {
                let (scheme, rest) = e.split_once("://")?;
                let rest = rest.trim_end_matches('/');
                let (host, port) = match rest.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p.to_owned())),
                    None => (rest, None),
                };
                Some(AllowedHost {
                    scheme: scheme.to_ascii_lowercase(),
                    host: host.to_ascii_lowercase(),
                    port,
                })
            })
            .collect();
        OutboundPolicy {
            allowed: Arc::new(allowed),
        }
    }

    /// Whether a request to `uri` may be sent.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = uri.port_u16().or_else(|| default_port(&scheme));
        self.allowed.iter().any(|a| {
            let scheme_ok = a.scheme == "*" || a.scheme == scheme;
            let host_ok = a.host == "*"
                || a.host == host
                || a.host
                    .strip_prefix("*.")
                    .is_some_and(|d| host.ends_with(&format!(".{d}")));
            let port_ok = match &a.port {
                Some(p) if p == "*" => true,
                Some(p) => p.parse::<u16>().ok() == port,
                None => default_port(&a.scheme) == port || a.scheme == "*",
            };
            scheme_ok && host_ok && port_ok
        })
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
        OutboundPolicy::new(&entries).allows(&uri.parse().unwrap())
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
    }
}
