//! Serving HTTP the way Spin's HTTP trigger does: each request is matched to
//! a route, gets a fresh instance of the component (from a pre-instantiated
//! template, so that is cheap), Spin's `spin-*` request headers, WASI with
//! inherited stdout/stderr, the SQLite interface for the databases the
//! component lists, its variables (resolved at start-up from
//! `SPIN_VARIABLE_*` and the defaults) and outbound Redis to the hosts it
//! is allowed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chatroom_core::ApiError;
use chatroom_front::body::{self, DiscardOnDrop};
use hyper::body::Body;
use tokio::sync::Semaphore;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allowed_hosts::AllowedHosts;
use crate::compile_cache::CompileCache;
use crate::headers::{add_spin_headers, check_head};
use crate::manifest::{ComponentSpec, Manifest};
use crate::outbound::OutboundPolicy;
use crate::redis::{self, RedisAccess, RedisCtx, RedisPool, RedisView};
use crate::response::{ResponseBody, empty_response, error_response};
use crate::routes::{RouteMatch, Router};
use crate::runtime_config::RuntimeConfig;
use crate::sqlite::{self, ConnectionPool, SqliteConfig, SqliteCtx, SqliteView};
use crate::variables::{self, AppVariables, ComponentVariables, VariableSource};
use crate::well_known::WellKnown;

/// Where a host keeps its state and how it is reached.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Spin's `--state-dir`; the runtime config's `state_dir`, else `.spin`
    /// beside `spin.toml`, when `None`.
    pub state_dir: Option<PathBuf>,
    /// Spin's `--runtime-config-file`, read (empty when there is none).
    pub runtime_config: RuntimeConfig,
    /// What one request, and all of them together, may use.
    pub limits: HostLimits,
    /// Where compiled components are kept ([`CompileCache`]); `None`
    /// compiles at every start. Default: [`CompileCache::default_dir`].
    pub compile_cache: Option<PathBuf>,
    /// Where `SPIN_VARIABLE_<NAME>` values are read: the process's
    /// environment by default.
    pub variables: VariableSource,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            state_dir: None,
            runtime_config: RuntimeConfig::default(),
            limits: HostLimits::default(),
            compile_cache: CompileCache::default_dir(),
            variables: VariableSource::default(),
        }
    }
}

/// Resource limits of the host (per request, and across requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// Longest a request's instance may run, streaming included.
    pub request_timeout: Duration,
    /// Linear memory one instance may grow to.
    pub max_instance_memory: usize,
    /// Instances running at once.
    pub max_concurrent_requests: usize,
    /// How long a request waits for a free instance slot before `503`.
    pub queue_timeout: Duration,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            request_timeout: Duration::from_secs(30),
            max_instance_memory: 256 << 20,
            max_concurrent_requests: 128,
            queue_timeout: Duration::from_secs(2),
        }
    }
}

/// How often the engine's epoch advances; deadlines are counted in these.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}

/// The connections to the `default` database, and the file's owner.
fn default_pool(file: PathBuf) -> Arc<ConnectionPool> {
    Arc::new(ConnectionPool::new(chatroom_dbfile::DatabaseFile::new(
        file,
    )))
}

/// The file of the `default` SQLite database, as Spin places it: the
/// runtime config's `path`, else `sqlite_db.db` in the state directory.
fn database_path(configured: Option<&Path>, state_dir: &Path) -> PathBuf {
    configured.map_or_else(|| state_dir.join("sqlite_db.db"), Path::to_path_buf)
}

/// Each component's allowed outbound hosts, after the checks Spin makes as
/// a manifest loads, in Spin's order: the allowed hosts (with the
/// variables' defaults), the components' variable templates, then the
/// required variables.
fn checked_allowed_hosts(
    manifest: &Manifest,
    app_variables: &AppVariables,
) -> anyhow::Result<BTreeMap<String, AllowedHosts>> {
    let mut allowed_hosts = BTreeMap::new();
    for spec in manifest.components.values() {
        let allowed = AllowedHosts::resolve(&spec.allowed_outbound_hosts, app_variables)
            .with_context(|| format!("Failed to load component `{}`", spec.id))?;
        allowed_hosts.insert(spec.id.clone(), allowed);
    }
    for spec in manifest.components.values() {
        app_variables
            .check_templates(&spec.variables)
            .with_context(|| format!("component `{}`: [component.{0}.variables]", spec.id))?;
    }
    app_variables.check_required()?;
    Ok(allowed_hosts)
}

/// The imports every component gets: WASI, `wasi:http`, and Spin's SQLite,
/// variables and Redis.
fn linker(engine: &Engine) -> anyhow::Result<Linker<RequestState>> {
    let mut linker: Linker<RequestState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)?;
    sqlite::add_to_linker(&mut linker, sqlite_view).map_err(anyhow::Error::from)?;
    variables::add_to_linker(&mut linker, variables_view).map_err(anyhow::Error::from)?;
    redis::add_to_linker(&mut linker, redis_view).map_err(anyhow::Error::from)?;
    Ok(linker)
}

/// The manifest's HTTP routes, each to its component's index.
fn routes(manifest: &Manifest) -> anyhow::Result<Router> {
    let routes = manifest.routes.iter().filter_map(|route| {
        let index = manifest
            .components
            .keys()
            .position(|id| *id == route.component)?;
        Some((route.route.as_str(), index, route.component.as_str()))
    });
    Ok(Router::build(routes)?)
}

/// Compiles (or takes from the cache) and links one component.
fn link(
    engine: &Engine,
    linker: &Linker<RequestState>,
    cache: Option<&CompileCache>,
    spec: &ComponentSpec,
) -> anyhow::Result<ProxyPre<RequestState>> {
    let component = match cache {
        Some(cache) => cache.load(engine, &spec.source),
        None => Component::from_file(engine, &spec.source).map_err(anyhow::Error::from),
    }
    .with_context(|| {
        format!(
            "cannot load component {:?} from {} (build it first: `spin build`, or \
             `cargo build -p chatroom-rest --target wasm32-wasip2 --release \
             --target-dir target/wasm`)",
            spec.id,
            spec.source.display()
        )
    })?;
    linker
        .instantiate_pre(&component)
        .and_then(ProxyPre::new)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot link component {:?}", spec.id))
}

/// How much of an instance's linear memory, from its start, stays mapped
/// in a pool slot between requests. The REST component's stack (256 KiB,
/// components/rest/build.rs), its data image and the first heap pages a
/// request uses fall inside it, so a fresh instance takes no page faults
/// there: each fault on a page written and then given back interrupts the
/// other core to flush its TLB, and faults were a fifth of `/healthz`'s CPU
/// (docs/benchmarks.md). Kept small on purpose: the pagemap scan cannot tell
/// without userfaultfd which pages *this* use wrote, so every page a slot
/// ever wrote inside the window is reset on every use (with a 2 MiB window
/// that `memset` was a third of a request). `tests/rest.rs` checks that the
/// component fits. A slot keeps at most this much resident.
pub const INSTANCE_KEEP_RESIDENT_BYTES: usize = 640 << 10;

/// Instances come from wasmtime's pooling allocator, as in Spin: memories,
/// tables and stacks are reserved once for every slot and reused, so an
/// instance costs no `mmap`, and copy-on-write images make its memory
/// start at the component's initial data.
fn engine(limits: &HostLimits) -> anyhow::Result<Engine> {
    let slots = u32::try_from(limits.max_concurrent_requests.max(1)).unwrap_or(u32::MAX);
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(4))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(4))
        .total_stacks(slots)
        .max_memory_size(limits.max_instance_memory)
        // The first stretch of each slot's memory stays mapped between
        // uses, and only the pages a use wrote there are reset (wasmtime's
        // pagemap scan); past it, what an instance touched is given back
        // (`madvise`) and faulted in again by the next.
        .linear_memory_keep_resident(INSTANCE_KEEP_RESIDENT_BYTES)
        .table_keep_resident(16 << 10)
        // Return memory to the kernel several slots at a time: each
        // `madvise` interrupts every core running this process.
        .decommit_batch_size(16);
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    // For profiling the component's own code with `perf`:
    // `/tmp/perf-<pid>.map` names the compiled functions.
    if std::env::var_os("CHATROOM_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// The store data of one request's instance.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    sqlite: SqliteCtx,
    outbound: OutboundPolicy,
    variables: ComponentVariables,
    redis: RedisCtx,
    limits: StoreLimits,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

fn sqlite_view(state: &mut RequestState) -> SqliteView<'_> {
    SqliteView {
        ctx: &mut state.sqlite,
        table: &mut state.table,
    }
}

fn variables_view(state: &mut RequestState) -> &ComponentVariables {
    &state.variables
}

fn redis_view(state: &mut RequestState) -> RedisView<'_> {
    RedisView {
        ctx: &mut state.redis,
        table: &mut state.table,
    }
}

/// One component, compiled and linked once.
#[derive(Clone)]
struct LoadedComponent {
    pre: ProxyPre<RequestState>,
    sqlite: SqliteConfig,
    outbound: OutboundPolicy,
    variables: ComponentVariables,
    redis: RedisAccess,
}

/// A Spin application ready to serve: every component pre-instantiated.
pub struct SpinHost {
    routes: Router,
    well_known: WellKnown,
    components: Vec<LoadedComponent>,
    state_dir: PathBuf,
    /// The `default` database file when the runtime config names it
    /// (otherwise `sqlite_db.db` in the state directory).
    configured_database: Option<PathBuf>,
    /// The `default` database's connections (every component's), and so
    /// the owner of its file.
    default_db: Arc<ConnectionPool>,
    limits: HostLimits,
    slots: Arc<Semaphore>,
}

/// Why a request's instance gave no response.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the request ran past its deadline")]
    Deadline,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl SpinHost {
    /// Reads `spin.toml`, compiles its components and links them.
    pub fn load(manifest_path: &Path, options: HostOptions) -> anyhow::Result<Self> {
        let manifest = Manifest::load(manifest_path)?;
        let app_variables = AppVariables::resolve(&manifest.variables, &options.variables)?;
        let mut allowed_hosts = checked_allowed_hosts(&manifest, &app_variables)?;
        let state_dir = options
            .state_dir
            .or(options.runtime_config.state_dir)
            .unwrap_or_else(|| manifest.dir.join(".spin"));
        let configured_database = options.runtime_config.default_database;
        let default_db = default_pool(database_path(configured_database.as_deref(), &state_dir));
        let engine = engine(&options.limits)?;
        let cache = options.compile_cache.map(CompileCache::new);
        start_epoch_ticker(&engine)?;
        let linker = linker(&engine)?;
        let redis_pool = Arc::new(RedisPool::default());
        let mut components = Vec::new();
        for spec in manifest.components.values() {
            let allowed = allowed_hosts.remove(&spec.id).unwrap_or_default();
            let pre = link(&engine, &linker, cache.as_ref(), spec)?;
            components.push(LoadedComponent {
                pre,
                sqlite: SqliteConfig {
                    allowed: Arc::new(spec.sqlite_databases.iter().cloned().collect()),
                    default_db: default_db.clone(),
                },
                outbound: OutboundPolicy::new(allowed.clone()),
                variables: app_variables.component(&spec.id, &spec.variables)?,
                redis: RedisAccess {
                    allowed_hosts: allowed,
                    pool: redis_pool.clone(),
                },
            });
        }
        Ok(SpinHost {
            routes: routes(&manifest)?,
            well_known: WellKnown::new(&manifest),
            components,
            state_dir,
            configured_database,
            default_db,
            limits: options.limits,
            slots: Arc::new(Semaphore::new(
                options.limits.max_concurrent_requests.max(1),
            )),
        })
    }

    /// The same compiled application with its state in another directory
    /// (cheap: nothing is compiled again). A `default` database the
    /// runtime config names stays where it is, as with Spin's
    /// `--state-dir`.
    pub fn with_state_dir(&self, state_dir: PathBuf) -> SpinHost {
        let default_db = default_pool(database_path(
            self.configured_database.as_deref(),
            &state_dir,
        ));
        let components = self
            .components
            .iter()
            .map(|c| LoadedComponent {
                sqlite: SqliteConfig {
                    allowed: c.sqlite.allowed.clone(),
                    default_db: default_db.clone(),
                },
                ..c.clone()
            })
            .collect();
        SpinHost {
            routes: self.routes.clone(),
            well_known: self.well_known.clone(),
            components,
            state_dir,
            configured_database: self.configured_database.clone(),
            default_db,
            limits: self.limits,
            slots: Arc::new(Semaphore::new(self.limits.max_concurrent_requests.max(1))),
        }
    }

    /// The state directory (Spin's `--state-dir`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The owner of the `default` database file: hand it to whatever else
    /// in this process uses the file (the default run's sidecar), so they
    /// share its write gate and hear its commits.
    pub fn database(&self) -> chatroom_dbfile::DatabaseFile {
        self.default_db.file().clone()
    }

    /// The file of the `default` SQLite database: the runtime config's
    /// `path`, else `sqlite_db.db` in the state directory.
    pub fn database_path(&self) -> PathBuf {
        database_path(self.configured_database.as_deref(), &self.state_dir)
    }

    /// Answers one request as Spin would; `client` is the peer's address
    /// (like Spin, the host takes the authority from the `Host` header).
    pub async fn handle<B>(
        &self,
        req: hyper::Request<B>,
        client: SocketAddr,
    ) -> hyper::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // Whoever refuses the body (the component's `413`, an early
        // answer here) leaves the rest to be discarded, not reset.
        let expects_continue = body::expects_continue(req.headers());
        let mut req = req.map(|b| DiscardOnDrop::new(b, expects_continue));
        let path = req.uri().path().to_owned();
        if let Some(response) = self.well_known.answer(&path) {
            return response;
        }
        let Some(matched) = self.routes.route(&path) else {
            return empty_response(404);
        };
        if let Err(refused) = check_head(&req) {
            tracing::debug!(%path, error = %refused, "request head refused");
            return error_response(&ApiError::BadRequest(refused.detail().to_owned()));
        }
        add_spin_headers(&mut req, &matched, client);
        let slot = tokio::time::timeout(
            self.limits.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await;
        let Ok(Ok(slot)) = slot else {
            tracing::warn!(%path, "every instance slot is busy: answering 503");
            return error_response(&ApiError::Overloaded);
        };
        match self.run(req, &matched, slot).await {
            Ok(response) => response,
            Err(RunError::Deadline) => {
                tracing::warn!(%path, "request ran past its deadline");
                error_response(&ApiError::Timeout)
            }
            Err(RunError::Failed(e)) => {
                tracing::error!(error = %format!("{e:#}"), %path, "component failed");
                error_response(&ApiError::Internal)
            }
        }
    }

    /// A fresh store for one request to `component`: its own WASI and
    /// HTTP contexts, the component's capabilities, the memory limit and
    /// the epoch deadline.
    fn new_store(&self, component: &LoadedComponent) -> Store<RequestState> {
        let state = RequestState {
            wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            sqlite: SqliteCtx::new(component.sqlite.clone()),
            outbound: component.outbound.clone(),
            variables: component.variables.clone(),
            redis: RedisCtx::new(component.redis.clone()),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.max_instance_memory)
                .build(),
        };
        let mut store = Store::new(component.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        let ticks = self.limits.request_timeout.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        store
    }

    async fn run<B>(
        &self,
        req: hyper::Request<B>,
        matched: &RouteMatch,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<hyper::Response<ResponseBody>, RunError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let component = &self.components[matched.component];
        let mut store = self.new_store(component);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(anyhow::Error::from)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(anyhow::Error::from)?;
        let pre = component.pre.clone();
        // The instance runs in its own task so it can keep streaming the
        // body after the response head has been handed back.
        // It holds its instance slot until it is done.
        // Past the deadline the task is dropped with its instance, whatever
        // it waits on (a stalled client body, say); wasm that never yields
        // is stopped by the epoch deadline instead.
        let deadline = self.limits.request_timeout;
        let task = tokio::task::spawn(async move {
            let _slot = slot;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            let outcome = tokio::time::timeout(deadline, run)
                .await
                .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into()));
            // Let the connection write the response before the instance's
            // memory is given back (which can take a batch of `madvise`s):
            // woken from here it waits in this worker's own slot, which no
            // other worker may take.
            tokio::task::yield_now().await;
            drop(store);
            outcome
        });
        response_head(receiver, self.limits.request_timeout, task).await
    }
}

/// What an instance hands back through its response outparam.
type InstanceHead = Result<hyper::Response<ResponseBody>, ErrorCode>;

/// What a request's instance gave in its time: the response head, or why
/// there is none (its task tells a trap or a deadline from a handler that
/// returned without answering).
async fn response_head(
    head: tokio::sync::oneshot::Receiver<InstanceHead>,
    deadline: Duration,
    task: tokio::task::JoinHandle<wasmtime::Result<()>>,
) -> Result<hyper::Response<ResponseBody>, RunError> {
    match tokio::time::timeout(deadline, head).await {
        Err(_) => Err(RunError::Deadline),
        Ok(Ok(Ok(response))) => Ok(response),
        Ok(Ok(Err(code))) => Err(anyhow::anyhow!("component answered with error {code:?}").into()),
        Ok(Err(_)) => {
            let outcome = task.await.map_err(anyhow::Error::from)?;
            match outcome {
                Ok(()) => Err(anyhow::anyhow!("component returned no response").into()),
                Err(e)
                    if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) =>
                {
                    Err(RunError::Deadline)
                }
                Err(e) => Err(anyhow::Error::from(e).context("component trapped").into()),
            }
        }
    }
}
