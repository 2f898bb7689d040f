//! `Passthrough`: the HTTP(S) client that forwards a client's request to
//! the REST deployment with its target exactly as sent (docs/protocol.md
//! §2.1). The upstream client of [`crate::rest_upstream`] (reqwest) builds
//! every URL through the WHATWG URL parser, which resolves dot segments
//! (`/chatrooms/%2e%2e` becomes `/`) and re-encodes; forwarding must not
//! change what the client asked for, so it goes through hyper, whose
//! `http::Uri` keeps the bytes. TLS trusts what the upstream client trusts:
//! webpki's roots, the system's, and the CA file.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::upstream_error::UpstreamError;

/// The client and where it sends: the base's scheme, authority and path
/// prefix, to which a request's path and query are appended unchanged.
#[derive(Clone)]
pub struct Passthrough {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `https://host:port/prefix`, no trailing `/`.
    base: Arc<str>,
}

impl Passthrough {
    /// For `base` (checked by the caller: an absolute http(s) URL without
    /// query), trusting `ca_pem` beyond the usual roots.
    pub fn new(
        base: &str,
        ca_pem: Option<&[u8]>,
        connect: Duration,
    ) -> Result<Self, UpstreamError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is skipped, as reqwest does.
            let _ = roots.add(cert);
        }
        if let Some(pem) = ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| UpstreamError::Client(format!("the CA file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| UpstreamError::Client(format!("the CA file: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Passthrough {
            client: Client::builder(TokioExecutor::new()).build(https),
            base: Arc::from(base.trim_end_matches('/')),
        })
    }

    /// The upstream URI of `target`, a request's path and query as sent
    /// (origin-form, starting with `/`): appended to the base byte for
    /// byte.
    pub fn uri(&self, target: &str) -> Result<Uri, http::uri::InvalidUri> {
        Uri::try_from(format!("{}{target}", self.base))
    }

    /// Sends `req` (its URI from [`Passthrough::uri`]).
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_appended_unchanged() {
        let up = Passthrough::new(
            "https://app.example.com/chat/",
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        for target in [
            "/chatrooms/%2e%2e",
            "/chatrooms/./1",
            "/a//b?x=%zz&y=..",
            "/%F0%9F%91%8D",
        ] {
            let uri = up.uri(target).unwrap();
            assert_eq!(
                uri.path_and_query().unwrap().as_str(),
                format!("/chat{target}")
            );
        }
    }
}
