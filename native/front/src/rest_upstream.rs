//! `RestUpstream`: the REST deployment the sidecar talks to, and the one
//! HTTP(S) client it uses for it, for forwarding and edge mode alike.
//!
//! The base URL keeps its path: with `https://app.example.com/chat`, a
//! request for `/chatrooms` goes to `https://app.example.com/chat/chatrooms`
//! (a component mounted under a prefix). TLS is rustls, trusting the
//! system's roots and webpki's, plus a private CA from `--ca-file` (or
//! `SSL_CERT_FILE`). A certificate that does not verify is a
//! configuration error the operator must see: [`UpstreamError::Tls`],
//! told apart from an upstream that is merely away.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::passthrough::Passthrough;
pub use crate::upstream_error::{UpstreamError, classify, tls_failure};

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The CA certificates to trust beyond the system's: `--ca-file`, else the
/// file `SSL_CERT_FILE` names, else none.
pub fn ca_file(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("SSL_CERT_FILE").map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty())
}

/// Reads a PEM bundle.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, UpstreamError> {
    let fail = |reason: String| UpstreamError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(pem)
}

/// The REST deployment and the client that reaches it.
#[derive(Clone)]
pub struct RestUpstream {
    base: String,
    client: reqwest::Client,
    /// Boxed: it is most of the size, and every holder clones the handle.
    passthrough: std::sync::Arc<Passthrough>,
}

impl std::fmt::Debug for RestUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestUpstream")
            .field("base", &self.base)
            .finish()
    }
}

impl RestUpstream {
    /// The deployment at `base` (`https://host[:port][/prefix]`), trusting
    /// the certificates of `ca_file` too.
    pub fn new(base: &str, ca_file: Option<&Path>) -> Result<Self, UpstreamError> {
        let url = reqwest::Url::parse(base).map_err(|_| UpstreamError::BadUrl(base.into()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(UpstreamError::BadUrl(base.into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(UpstreamError::BadUrl(base.into()));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        let ca_pem = ca_file.map(read_ca_file).transpose()?;
        if let (Some(path), Some(pem)) = (ca_file, &ca_pem) {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| UpstreamError::CaFile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(RestUpstream {
            passthrough: std::sync::Arc::new(Passthrough::new(
                &base,
                ca_pem.as_deref(),
                CONNECT_TIMEOUT,
            )?),
            base,
            client,
        })
    }

    /// The client that forwards a request with its target unchanged.
    pub fn passthrough(&self) -> &Passthrough {
        &self.passthrough
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path_and_query` (starting with `/`) on the deployment.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// The client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// At start-up, when forwarding only: a certificate the upstream
    /// presents that does not verify is an error; an upstream that is
    /// away is not (requests get `502` until it is back).
    pub async fn check_tls(&self) -> Result<(), UpstreamError> {
        let call = self
            .client
            .get(self.url("/healthz"))
            .timeout(CONNECT_TIMEOUT)
            .send()
            .await;
        match call {
            Err(e) => match classify(&e) {
                tls @ UpstreamError::Tls(_) => Err(tls),
                other => {
                    tracing::warn!(error = %other, "REST upstream not answering at start-up");
                    Ok(())
                }
            },
            Ok(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_path_is_kept() {
        let up = RestUpstream::new("https://app.example.com/chat/", None).unwrap();
        assert_eq!(up.base(), "https://app.example.com/chat");
        assert_eq!(
            up.url("/chatrooms?limit=1"),
            "https://app.example.com/chat/chatrooms?limit=1"
        );
        let bare = RestUpstream::new("http://127.0.0.1:3000", None).unwrap();
        assert_eq!(bare.url("/healthz"), "http://127.0.0.1:3000/healthz");
    }

    #[test]
    fn only_http_urls_are_upstreams() {
        for bad in [
            "ftp://x",
            "127.0.0.1:3000",
            "https://",
            "https://h/?q=1",
            "",
        ] {
            assert!(
                matches!(RestUpstream::new(bad, None), Err(UpstreamError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_tls_error_is_found_however_deep_it_is_wrapped() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped =
            std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        assert!(tls_failure(&wrapped).is_some_and(|s| s.contains("certificate")));
        let plain =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(tls_failure(&plain), None);
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("ca-test-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let err = RestUpstream::new("https://h", Some(&dir)).unwrap_err();
        assert!(matches!(err, UpstreamError::CaFile { .. }), "{err}");
        let _ = std::fs::remove_file(&dir);
        let missing = RestUpstream::new("https://h", Some(Path::new("/no/such/ca.pem")));
        assert!(matches!(missing, Err(UpstreamError::CaFile { .. })));
    }
}
