//! Test support: serves the real REST component through the Spin-compatible
//! host on an ephemeral port with a fresh SQLite file per test, runs the
//! sidecar and the default run beside it, and names the real Spin to
//! compare with. The component itself is built by the build script of the
//! `chatroom` crate (a dependency), with `spin.toml`'s own build command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chatroom_front::access::{Access, AccessConfig};
use chatroom_front::forward as upstream;
use chatroom_front::serve::Front;
use chatroom_host::{HostOptions, SpinHost};
use chatroom_sidecar::{Sidecar, SidecarConfig};
use tokio_util::sync::{CancellationToken, DropGuard};

pub mod bench;
pub mod disk;
pub mod edge;
pub mod http;
pub mod process;
pub mod raw;
pub mod redis;
pub mod release;
pub mod socket;
pub mod spin;
pub mod tls;
pub mod tokens;

/// The in-process servers' logs on the test's output, when `RUST_LOG` is
/// set (`RUST_LOG=chatroom_sidecar=debug cargo test ...` to see what a
/// failing test's sidecar did); nothing otherwise.
pub fn logs_from_env() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The workspace root (where `spin.toml` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The repository's `spin.toml` with these `SPIN_VARIABLE_*` settings, for
/// a test binary to keep (loading compiles the component).
pub fn host_with_variables(vars: &[(&str, &str)]) -> SpinHost {
    let scratch = std::env::temp_dir().join("chatroom-tests-unused-state");
    let given = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    SpinHost::load(
        &workspace_root().join("spin.toml"),
        HostOptions {
            state_dir: Some(scratch),
            variables: chatroom_host::VariableSource::Given(given),
            ..HostOptions::default()
        },
    )
    .expect("the host loads spin.toml")
}

/// The repository's `spin.toml`, compiled once per test binary.
pub fn shared_host() -> &'static SpinHost {
    static HOST: OnceLock<SpinHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let scratch = std::env::temp_dir().join("chatroom-tests-unused-state");
        SpinHost::load(
            &workspace_root().join("spin.toml"),
            HostOptions {
                state_dir: Some(scratch),
                ..HostOptions::default()
            },
        )
        .expect("the host loads spin.toml")
    })
}

/// A host serving the real component on `127.0.0.1:<ephemeral>`, with its
/// own state directory; stops when dropped.
pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    pub db_path: PathBuf,
    _dir: tempfile::TempDir,
    _stop: DropGuard,
}

impl TestServer {
    /// Serves the repository's `spin.toml`.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = shared_host().with_state_dir(dir.path().to_owned());
        Self::serve(host, dir).await
    }

    /// Serves the repository's `spin.toml` within other host limits.
    pub async fn start_with_limits(limits: chatroom_host::HostLimits) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = SpinHost::load(
            &workspace_root().join("spin.toml"),
            HostOptions {
                state_dir: Some(dir.path().to_owned()),
                limits,
                ..HostOptions::default()
            },
        )
        .expect("the host loads spin.toml");
        Self::serve(host, dir).await
    }

    /// Serves another manifest (e.g. one denying a capability).
    pub async fn start_with_manifest(manifest: &Path) -> Self {
        Self::start_with_manifest_and_limits(manifest, chatroom_host::HostLimits::default()).await
    }

    /// Serves another manifest within other host limits.
    pub async fn start_with_manifest_and_limits(
        manifest: &Path,
        limits: chatroom_host::HostLimits,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = SpinHost::load(
            manifest,
            HostOptions {
                state_dir: Some(dir.path().to_owned()),
                limits,
                ..HostOptions::default()
            },
        )
        .expect("the host loads the manifest");
        Self::serve(host, dir).await
    }

    /// Serves `manifest` with host options adjusted by `adjust` (the state
    /// directory is a fresh one of its own).
    pub async fn start_with_options(
        manifest: &Path,
        adjust: impl FnOnce(&mut HostOptions),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = HostOptions {
            state_dir: Some(dir.path().to_owned()),
            ..HostOptions::default()
        };
        adjust(&mut options);
        let host = SpinHost::load(manifest, options).expect("the host loads the manifest");
        Self::serve(host, dir).await
    }

    async fn serve(host: SpinHost, dir: tempfile::TempDir) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = chatroom_host::router(Arc::new(host));
        let front = Front {
            grace: std::time::Duration::ZERO,
            ..Front::default()
        };
        TestServer {
            url: format!("http://{addr}"),
            addr,
            db_path: dir.path().join("sqlite_db.db"),
            _dir: dir,
            _stop: serve_in_background(front, listener, app, async {}),
        }
    }

    /// A direct rusqlite connection to the server's database file, with the
    /// schema in place: what the sidecar (or any other process) would use.
    pub fn open_db(&self) -> rusqlite::Connection {
        chatroom_dbfile::open_file(&self.db_path).expect("open the database file")
    }
}

/// The default run (`chatroom::app`: REST and Socket.IO on one port), on a
/// fresh state directory; stops when dropped.
pub struct DefaultRun {
    pub url: String,
    pub db_path: PathBuf,
    _dir: tempfile::TempDir,
    _stop: DropGuard,
}

impl DefaultRun {
    pub async fn start() -> Self {
        Self::start_on(shared_host(), |_| {}, &AccessConfig::default()).await
    }

    /// The default run of `host` (loaded with the variables a test wants),
    /// with the sidecar's configuration adjusted by `adjust` (the auth
    /// key) and `access` (limits per address), as `chatroom`'s flags would
    /// set them.
    pub async fn start_on(
        host: &SpinHost,
        adjust: impl FnOnce(&mut SidecarConfig),
        access: &AccessConfig,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = host.with_state_dir(dir.path().to_owned());
        let db_path = host.database_path();
        let mut config = chatroom::beside_host(&host, SidecarConfig::new);
        adjust(&mut config);
        let sidecar = Sidecar::start(config).await.expect("the sidecar starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let local = listener.local_addr().expect("addr");
        let app = chatroom::app(Arc::new(host), &sidecar, &Access::new(access));
        let front = Sidecar::front(Front {
            grace: std::time::Duration::ZERO,
            ..Front::default()
        });
        // The sidecar lives as long as the server.
        let stop = serve_in_background(front, listener, app, async move { drop(sidecar) });
        DefaultRun {
            url: format!("http://{local}"),
            db_path,
            _dir: dir,
            _stop: stop,
        }
    }
}

/// Serves `app` on `front` until the guard is dropped; `closing` is what
/// is let go of then.
fn serve_in_background(
    front: Front,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    closing: impl std::future::Future<Output = ()> + Send + 'static,
) -> DropGuard {
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move { front.serve(listener, app, token, closing).await });
    stop.drop_guard()
}

/// The Spin CLI to compare against: `SPIN_BIN`, else `spin` (on PATH).
/// Whether there is one was decided when this package was built (`build.rs`
/// sets `cfg(spin_cli)`); the test that uses it fails if it does not run.
pub fn spin_cli() -> PathBuf {
    std::env::var_os("SPIN_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("spin"), PathBuf::from)
}

/// The whole backend in-process: REST through the host, and the sidecar on
/// the same file in front of it (forwarding REST), so `url` serves both.
pub struct Stack {
    pub rest: TestServer,
    /// The sidecar's base URL: Socket.IO, and REST forwarded to the host.
    pub url: String,
    /// How many connections the sidecar holds state for.
    pub connections: chatroom_sidecar::ConnectionCount,
    _stop: DropGuard,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// With the sidecar's configuration adjusted by `adjust` (e.g. its
    /// wake-up paths).
    pub async fn start_with(adjust: impl FnOnce(&mut SidecarConfig)) -> Self {
        Self::start_behind(adjust, &AccessConfig::default()).await
    }

    /// With the sidecar's configuration adjusted by `adjust`, behind
    /// `access` (e.g. allowed origins).
    pub async fn start_behind(
        adjust: impl FnOnce(&mut SidecarConfig),
        access: &AccessConfig,
    ) -> Self {
        logs_from_env();
        let rest = TestServer::start().await;
        let mut config = SidecarConfig::new(&rest.db_path);
        adjust(&mut config);
        let sidecar = Sidecar::start(config).await.expect("the sidecar starts");
        let connections = sidecar.connections();
        let rest_upstream = chatroom_front::rest_upstream::RestUpstream::new(&rest.url, None)
            .expect("the REST upstream");
        let upstream = upstream::forward_to(rest_upstream);
        let router = Access::new(access).around(sidecar.router(upstream));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let front = Sidecar::front(Front {
            grace: std::time::Duration::ZERO,
            ..Front::default()
        });
        // The sidecar lives as long as the server.
        let stop = serve_in_background(front, listener, router, async move { drop(sidecar) });
        Stack {
            rest,
            url,
            connections,
            _stop: stop,
        }
    }

    pub async fn client(&self) -> socket::SocketClient {
        socket::SocketClient::connect(&self.url).await
    }
}
