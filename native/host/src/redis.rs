//! Spin's outbound Redis interface (`fermyon:spin/redis@2.0.0`) on the
//! `redis` crate, answering as Spin 4 answers: `open` of an address the
//! component's `allowed_outbound_hosts` does not allow (scheme `redis`
//! assumed when it has none) is `invalid-address`, and so is one the
//! `redis` crate cannot read; a failed connection or command is
//! `other(<the redis crate's message>)`; an instance holds at most 1024
//! connections (`too-many-connections` beyond), and a `get` result is
//! capped at 128 MiB.
//!
//! Unlike Spin, which connects at every `open`, the host keeps one
//! multiplexed connection per address ([`RedisPool`]) and hands it to every
//! `open` of that address, from any request: a component cannot tell, and
//! a request that publishes one message does not pay a connection. A
//! connection whose socket has closed (its driver task has ended) is
//! replaced at the next `open`, and one that failed with a connection error
//! is dropped from the pool, so a restarted Redis is reconnected to.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, FromRedisValue, Value as RedisValue};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::allowed_hosts::AllowedHosts;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "redis-host",
        imports: { default: async | trappable },
        with: { "fermyon:spin/redis.connection": super::RedisConnection },
    });
}

use bindings::fermyon::spin::redis::{self as guest, Error, RedisParameter, RedisResult};

/// Most connections one instance may hold open (Spin's cap).
const MAX_OPEN_PER_INSTANCE: usize = 1024;
/// Most bytes a `get` or `execute` may return (Spin's cap).
const MAX_RESULT_BYTES: usize = 128 << 20;
/// Addresses the pool keeps a connection to; others connect per `open`.
const MAX_POOLED_ADDRESSES: usize = 64;

/// A connection and the task driving its socket.
struct Pooled {
    conn: MultiplexedConnection,
    driver: tokio::task::JoinHandle<()>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Pooled>>>;

/// One multiplexed connection per address, shared by every instance of
/// every component.
#[derive(Default)]
pub struct RedisPool {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool").finish_non_exhaustive()
    }
}

/// Connects to `address`, answering as Spin does when it cannot; the
/// connection's driver runs until every clone of it is dropped.
async fn connect(address: &str) -> Result<Pooled, Error> {
    let client = ::redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
    let (conn, driver) = client
        .create_multiplexed_tokio_connection()
        .await
        .map_err(other)?;
    Ok(Pooled {
        conn,
        driver: tokio::spawn(driver),
    })
}

impl RedisPool {
    /// A connection to `address`: the pooled one if its socket is still
    /// open, else a new one (pooled if there is room).
    async fn connection(&self, address: &str) -> Result<MultiplexedConnection, Error> {
        let slot = {
            let mut slots = self.slots.lock();
            match slots.get(address) {
                Some(slot) => Some(slot.clone()),
                None if slots.len() < MAX_POOLED_ADDRESSES => {
                    let slot = Slot::default();
                    slots.insert(address.to_owned(), slot.clone());
                    Some(slot)
                }
                None => None,
            }
        };
        let Some(slot) = slot else {
            return Ok(connect(address).await?.conn);
        };
        let mut pooled = slot.lock().await;
        if let Some(p) = pooled.as_ref()
            && !p.driver.is_finished()
        {
            return Ok(p.conn.clone());
        }
        if pooled.is_some() {
            tracing::debug!(%address, "the pooled Redis connection closed; reconnecting");
        }
        let fresh = connect(address).await?;
        let conn = fresh.conn.clone();
        *pooled = Some(fresh);
        Ok(conn)
    }

    /// Drops the pooled connection to `address` after it failed.
    fn forget(&self, address: &str) {
        let slot = self.slots.lock().get(address).cloned();
        if let Some(slot) = slot
            && let Ok(mut pooled) = slot.try_lock()
        {
            *pooled = None;
        }
    }
}

/// What the Redis interface needs of one component: shared by its
/// instances.
#[derive(Debug, Clone)]
pub struct RedisAccess {
    pub allowed_hosts: AllowedHosts,
    pub pool: Arc<RedisPool>,
}

/// Per-instance state: the config and how many connections are open.
#[derive(Debug)]
pub struct RedisCtx {
    config: RedisAccess,
    open: usize,
}

impl RedisCtx {
    pub fn new(config: RedisAccess) -> Self {
        RedisCtx { config, open: 0 }
    }
}

/// An open connection, as held in the instance's resource table.
pub struct RedisConnection {
    address: String,
    conn: MultiplexedConnection,
}

/// What the generated host traits are implemented on.
pub struct RedisView<'a> {
    pub ctx: &'a mut RedisCtx,
    pub table: &'a mut ResourceTable,
}

struct Redis;

impl HasData for Redis {
    type Data<'a> = RedisView<'a>;
}

/// Adds the Redis interface to a linker whose store data gives a view.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> RedisView<'_>,
) -> wasmtime::Result<()> {
    guest::add_to_linker::<T, Redis>(linker, view)
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl RedisView<'_> {
    /// The connection behind a handle.
    fn conn(
        &mut self,
        handle: &Resource<RedisConnection>,
    ) -> wasmtime::Result<(String, MultiplexedConnection)> {
        let c = self.table.get(handle)?;
        Ok((c.address.clone(), c.conn.clone()))
    }

    /// Runs one command on a handle's connection. A connection error drops
    /// the pooled connection and reconnects at once (the command is never
    /// run twice): a server that is gone then answers as Spin's fresh
    /// connection would (`Connection refused`), whether or not the pooled
    /// connection had noticed yet.
    async fn run<T>(
        &mut self,
        handle: &Resource<RedisConnection>,
        command: impl AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> wasmtime::Result<Result<T, Error>> {
        let (address, mut conn) = self.conn(handle)?;
        match command(&mut conn).await {
            Ok(value) => Ok(Ok(value)),
            Err(e) => {
                if e.is_connection_dropped() || e.is_unrecoverable_error() {
                    tracing::warn!(error = %e, "Redis connection failed; reopening it");
                    self.ctx.config.pool.forget(&address);
                    if let Err(refused) = self.ctx.config.pool.connection(&address).await {
                        return Ok(Err(refused));
                    }
                }
                Ok(Err(other(e)))
            }
        }
    }
}

impl guest::Host for RedisView<'_> {}

impl guest::HostConnection for RedisView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        match self.ctx.config.allowed_hosts.check_url(&address, "redis") {
            Ok(true) => {}
            Ok(false) => return Ok(Err(Error::InvalidAddress)),
            Err(e) => return Ok(Err(other(e))),
        }
        if self.ctx.open >= MAX_OPEN_PER_INSTANCE {
            return Ok(Err(Error::TooManyConnections));
        }
        let conn = match self.ctx.config.pool.connection(&address).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::info!(error = ?e, "cannot connect to Redis");
                return Ok(Err(e));
            }
        };
        let handle = self.table.push(RedisConnection { address, conn })?;
        self.ctx.open += 1;
        Ok(Ok(handle))
    }

    async fn publish(
        &mut self,
        handle: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.run(&handle, async |c| {
            c.publish::<_, _, ()>(&channel, &payload).await
        })
        .await
    }

    async fn get(
        &mut self,
        handle: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let value = self
            .run(&handle, async |c| c.get::<_, Option<Vec<u8>>>(&key).await)
            .await?;
        Ok(value.and_then(|v| {
            if v.as_ref().map_or(0, Vec::len) > MAX_RESULT_BYTES {
                Err(Error::Other(format!(
                    "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                )))
            } else {
                Ok(v)
            }
        }))
    }

    async fn set(
        &mut self,
        handle: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.run(&handle, async |c| c.set::<_, _, ()>(&key, &value).await)
            .await
    }

    async fn incr(
        &mut self,
        handle: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        self.run(&handle, async |c| c.incr::<_, _, i64>(&key, 1).await)
            .await
    }

    async fn del(
        &mut self,
        handle: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        self.run(&handle, async |c| c.del::<_, u32>(&keys).await)
            .await
    }

    async fn sadd(
        &mut self,
        handle: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let (address, mut conn) = self.conn(&handle)?;
        match conn.sadd::<_, _, u32>(&key, &values).await {
            Ok(n) => Ok(Ok(n)),
            Err(e) if e.kind() == redis::ErrorKind::TypeError => Ok(Err(Error::TypeError)),
            Err(e) => {
                if e.is_connection_dropped() || e.is_unrecoverable_error() {
                    self.ctx.config.pool.forget(&address);
                }
                Ok(Err(other(e)))
            }
        }
    }

    async fn smembers(
        &mut self,
        handle: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.run(&handle, async |c| c.smembers::<_, Vec<String>>(&key).await)
            .await
    }

    async fn srem(
        &mut self,
        handle: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        self.run(&handle, async |c| c.srem::<_, _, u32>(&key, &values).await)
            .await
    }

    async fn execute(
        &mut self,
        handle: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let mut cmd = ::redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(v) => cmd.arg(v),
                RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let results = self
            .run(&handle, async |c| cmd.query_async::<Results>(c).await)
            .await?;
        Ok(results.and_then(|Results(results)| {
            let bytes: usize = results
                .iter()
                .map(|r| match r {
                    RedisResult::Status(s) => s.len(),
                    RedisResult::Binary(b) => b.len(),
                    RedisResult::Nil | RedisResult::Int64(_) => 8,
                })
                .sum();
            if bytes > MAX_RESULT_BYTES {
                Err(Error::Other(format!(
                    "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                )))
            } else {
                Ok(results)
            }
        }))
    }

    async fn drop(&mut self, handle: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.ctx.open = self.ctx.open.saturating_sub(1);
        Ok(())
    }
}

/// What `execute` returns, read as Spin reads it: a value, or each value of
/// an array (nested arrays flattened).
struct Results(Vec<RedisResult>);

impl FromRedisValue for Results {
    fn from_redis_value(value: &RedisValue) -> redis::RedisResult<Self> {
        fn push(value: &RedisValue, out: &mut Vec<RedisResult>) -> redis::RedisResult<()> {
            match value {
                RedisValue::Nil => out.push(RedisResult::Nil),
                RedisValue::Int(n) => out.push(RedisResult::Int64(*n)),
                RedisValue::BulkString(b) => out.push(RedisResult::Binary(b.clone())),
                RedisValue::SimpleString(s) => out.push(RedisResult::Status(s.clone())),
                RedisValue::Okay => out.push(RedisResult::Status("OK".to_owned())),
                RedisValue::Array(items) | RedisValue::Set(items) => {
                    for item in items {
                        push(item, out)?;
                    }
                }
                RedisValue::Map(pairs) => {
                    for (k, v) in pairs {
                        push(k, out)?;
                        push(v, out)?;
                    }
                }
                RedisValue::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
                RedisValue::Boolean(b) => out.push(RedisResult::Int64(i64::from(*b))),
                RedisValue::VerbatimString { text, .. } => {
                    out.push(RedisResult::Binary(text.clone().into_bytes()))
                }
                RedisValue::BigNumber(n) => {
                    out.push(RedisResult::Binary(n.to_string().into_bytes()))
                }
                RedisValue::Attribute { data, .. } => push(data, out)?,
                RedisValue::Push { data, .. } => {
                    for item in data {
                        push(item, out)?;
                    }
                }
                RedisValue::ServerError(e) => {
                    return Err(redis::RedisError::from(e.clone()));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        push(value, &mut out)?;
        Ok(Results(out))
    }
}
