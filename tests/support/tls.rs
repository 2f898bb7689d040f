//! TLS for the operations tests: a private CA and a server certificate
//! made by the test ([`TestCa`], rcgen), and a real TLS listener
//! ([`TlsProxy`], tokio-rustls) in front of a plain TCP server (the Spin
//! host), which the test can stop and start again on the same port to cut
//! the sidecars off. Redis speaks TLS itself (`redis-server --tls-port`)
//! with the same files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA of the test's own and a certificate it signed for `127.0.0.1`
/// and `localhost`, written as PEM files in `dir`.
pub struct TestCa {
    /// The CA's certificate: what `--ca-file` trusts.
    pub ca_file: PathBuf,
    /// The server's certificate and key.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCa {
    /// Makes a CA named `name` and its server certificate, in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        let server_key = KeyPair::generate().expect("server key");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let ca_file = dir.join(format!("{name}-ca.pem"));
        let cert_file = dir.join(format!("{name}-server.pem"));
        let key_file = dir.join(format!("{name}-server.key"));
        std::fs::write(&ca_file, ca_cert.pem()).expect("write the CA");
        std::fs::write(&cert_file, server_cert.pem()).expect("write the certificate");
        std::fs::write(&key_file, server_key.serialize_pem()).expect("write the key");
        TestCa {
            ca_file,
            cert_file,
            key_file,
            cert_der: server_cert.der().clone(),
            key_der: server_key.serialize_der(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)
            .expect("a server TLS config");
        TlsAcceptor::from(Arc::new(config))
    }
}

/// A TLS listener forwarding each connection's plaintext to `target`.
pub struct TlsProxy {
    /// Where it listens (kept across [`TlsProxy::stop`] and
    /// [`TlsProxy::start_again`]).
    pub addr: SocketAddr,
    target: SocketAddr,
    acceptor: TlsAcceptor,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TlsProxy {
    /// Listens on a free loopback port with `ca`'s server certificate.
    pub async fn start(ca: &TestCa, target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = ca.acceptor();
        let task = Some(tokio::spawn(serve(listener, acceptor.clone(), target)));
        TlsProxy {
            addr,
            target,
            acceptor,
            task,
        }
    }

    /// `https://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Stops listening and cuts every open connection.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn start_again(&mut self) {
        self.stop();
        let listener = TcpListener::bind(self.addr).await.expect("bind again");
        self.task = Some(tokio::spawn(serve(
            listener,
            self.acceptor.clone(),
            self.target,
        )));
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts until aborted; the connections' tasks are aborted with it.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, target: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let Ok(mut tls) = acceptor.accept(client).await else {
                return;
            };
            let Ok(mut upstream) = TcpStream::connect(target).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
        });
        while connections.try_join_next().is_some() {}
    }
}
