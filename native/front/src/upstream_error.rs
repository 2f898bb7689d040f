//! `UpstreamError`: what a call to the REST deployment, or setting up its
//! client, ran into, for both clients that reach it (reqwest's in
//! [`crate::rest_upstream`], hyper's in [`crate::passthrough`]). A
//! certificate that does not verify is told apart from an upstream that is
//! merely away.

use std::path::PathBuf;

/// What a call to the upstream, or setting it up, ran into.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not an absolute `http`/`https` URL.
    #[error("the REST upstream {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// The CA file could not be read or holds no certificate.
    #[error("the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    /// The upstream's certificate did not verify (or TLS failed otherwise).
    #[error(
        "the REST upstream's TLS certificate was refused ({0}); for a private CA pass --ca-file (or set SSL_CERT_FILE)"
    )]
    Tls(String),
    /// The upstream could not be reached, or answered too late.
    #[error("the REST upstream is unreachable: {0}")]
    Unreachable(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client: {0}")]
    Client(String),
}

/// Classifies a failed call: a TLS failure, or the upstream being away.
pub fn classify(e: &reqwest::Error) -> UpstreamError {
    match tls_failure(e) {
        Some(reason) => UpstreamError::Tls(reason),
        None => UpstreamError::Unreachable(chain(e)),
    }
}

/// The TLS error somewhere in `e`'s causes, if any. (An `io::Error`
/// wrapping another error does not list it as its source, and TLS
/// connectors wrap rustls's error in one or two of them, so those are
/// looked into too.)
pub fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls.to_string());
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        && let Some(found) = tls_failure(inner)
    {
        return Some(found);
    }
    e.source().and_then(tls_failure)
}

/// `e` and its causes, for a log line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(err) = cause {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cause = err.source();
    }
    out
}
