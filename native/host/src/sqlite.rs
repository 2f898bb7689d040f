//! Spin's SQLite interface (`fermyon:spin/sqlite@2.0.0`) on rusqlite, as
//! local Spin provides it: `open("default")` gives a connection to
//! `<state dir>/sqlite_db.db`, labels the component does not list in
//! `sqlite_databases` are refused with `access-denied`, `ATTACH` is refused,
//! one result is capped at 128 MiB and an instance holds at most 256
//! connections.
//!
//! Unlike local Spin, connections are not opened per `open`: a
//! [`ConnectionPool`] keeps closed-by-the-component connections open and
//! hands them out again, with their prepared statements. A component
//! cannot tell: a connection goes back only in autocommit mode (an open
//! transaction is rolled back, as closing would), with `last_insert_rowid()`
//! reset, and only if every statement it ran was one that leaves no state
//! on the connection (plain queries, DML, transaction control, pragmas that
//! only read); after anything else (`CREATE TEMP`, a pragma that sets) it is
//! closed.
//!
//! A single write outside a transaction (an `INSERT` in autocommit, what
//! most components do) joins a [`GroupCommit`]: one writer thread commits
//! every waiting write in one synced transaction and then answers each.
//! Other writers of the file in this process take turns at a
//! [`WriteGate`] before SQLite's lock, and a busy wait polls every
//! millisecond (up to 5 s, as Spin's busy timeout) instead of SQLite's
//! growing sleeps. After a write commits, the file's `commits` notification is
//! woken (the default run's broadcast tail listens there).
//!
//! Statements that may wait (writes, and anything inside a write
//! transaction) run on tokio's blocking pool so that a wait on the database
//! never stalls the async workers serving other requests; reads run in
//! place.
//!
//! Here: the WIT binding and where each statement runs ([`Lease`]); the
//! pool is `pool`, opening a connection `connection`, the reading of
//! statements `statement`, the writer of single statements `group_commit`.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

use chatroom_dbfile::{BUSY_TIMEOUT, WritePermit};

use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

pub use self::pool::ConnectionPool;
use self::statement::{begins_writing, leaves_no_state};

mod connection;
mod group_commit;
mod pool;
mod statement;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "host",
        imports: { default: async | trappable },
        with: { "fermyon:spin/sqlite.connection": super::Connection },
    });
}

use bindings::fermyon::spin::sqlite::{self, Error, QueryResult, RowResult, Value};

/// Most bytes one `execute` may return (Spin's cap).
const MAX_RESULT_BYTES: usize = 128 * 1024 * 1024;
/// Most connections one instance may hold open (Spin's cap).
const MAX_OPEN_PER_INSTANCE: usize = 256;
/// The label of Spin's default store.
const DEFAULT_LABEL: &str = "default";

/// What the databases of one component are: shared by all its requests.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Labels from the component's `sqlite_databases`.
    pub allowed: Arc<HashSet<String>>,
    /// `<state dir>/sqlite_db.db`.
    pub default_db: Arc<ConnectionPool>,
}

/// Per-instance state: the config and how many connections are open.
#[derive(Debug)]
pub struct SqliteCtx {
    config: SqliteConfig,
    open: usize,
}

impl SqliteCtx {
    pub fn new(config: SqliteConfig) -> Self {
        SqliteCtx { config, open: 0 }
    }
}

/// An open connection, as held in the instance's resource table.
pub struct Connection(Arc<Mutex<Lease>>);

/// Where a statement runs (see [`Lease::plan`]).
enum Plan {
    Here,
    Group,
    Blocking,
}

/// A pooled connection lent to one instance.
struct Lease {
    conn: Option<rusqlite::Connection>,
    pool: Arc<ConnectionPool>,
    /// Held from a connection's first write until it is back in autocommit.
    permit: Option<WritePermit>,
    /// Whether the statements so far leave the connection as a fresh one.
    reusable: bool,
    /// Whether the current transaction wrote.
    wrote: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn, self.reusable);
        }
        if self.wrote {
            self.pool.file().commits().notify_one();
        }
    }
}

impl Lease {
    /// Where `statement` runs: a read outside any write cannot wait on
    /// another connection (in WAL mode a reader never waits for a writer),
    /// so it runs where it is asked for; a hop to the blocking pool costs
    /// more than most reads. A write outside a transaction that leaves
    /// nothing on the connection joins the group commit. The rest may wait
    /// and runs on the blocking pool.
    fn plan(&self, statement: &str) -> Plan {
        let Some(conn) = self.conn.as_ref() else {
            return Plan::Here;
        };
        if self.permit.is_some() || self.wrote || begins_writing(statement) {
            return Plan::Blocking;
        }
        match conn.prepare_cached(statement).map(|stmt| stmt.readonly()) {
            // A statement that does not prepare fails at once, here.
            Ok(true) | Err(_) => Plan::Here,
            Ok(false) if conn.is_autocommit() && leaves_no_state(statement) => Plan::Group,
            Ok(false) => Plan::Blocking,
        }
    }

    fn execute(&mut self, statement: &str, parameters: Vec<Value>) -> Result<QueryResult, Error> {
        let conn = self.conn.as_ref().ok_or(Error::InvalidConnection)?;
        let mut stmt = conn.prepare_cached(statement).map_err(io_error)?;
        self.reusable &= leaves_no_state(statement);
        let writes = !stmt.readonly() || begins_writing(statement);
        if writes && self.permit.is_none() {
            self.permit = self.pool.file().gate().acquire(BUSY_TIMEOUT);
        }
        let result = run(&mut stmt, parameters);
        drop(stmt);
        self.wrote |= writes;
        if conn.is_autocommit() {
            self.permit = None;
            if std::mem::take(&mut self.wrote) {
                self.pool.file().commits().notify_one();
            }
        }
        result
    }
}

/// What the generated host traits are implemented on.
pub struct SqliteView<'a> {
    pub ctx: &'a mut SqliteCtx,
    pub table: &'a mut ResourceTable,
}

struct Sqlite;

impl HasData for Sqlite {
    type Data<'a> = SqliteView<'a>;
}

/// Adds the SQLite interface to a linker whose store data gives a view.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SqliteView<'_>,
) -> wasmtime::Result<()> {
    sqlite::add_to_linker::<T, Sqlite>(linker, view)
}

fn io_error(e: impl std::fmt::Display) -> Error {
    Error::Io(e.to_string())
}

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

/// Converts one column value, adding its size to `bytes`.
fn from_sql(v: ValueRef<'_>, bytes: &mut usize) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => {
            *bytes += 8;
            Value::Integer(i)
        }
        ValueRef::Real(f) => {
            *bytes += 8;
            Value::Real(f)
        }
        ValueRef::Text(t) => {
            *bytes += t.len();
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
        ValueRef::Blob(b) => {
            *bytes += b.len();
            Value::Blob(b.to_vec())
        }
    }
}

fn run(
    stmt: &mut rusqlite::CachedStatement<'_>,
    parameters: Vec<Value>,
) -> Result<QueryResult, Error> {
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params = rusqlite::params_from_iter(parameters.into_iter().map(to_sql));
    let mut rows = stmt.query(params).map_err(io_error)?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(io_error)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(from_sql(row.get_ref(i).map_err(io_error)?, &mut bytes));
        }
        if bytes > MAX_RESULT_BYTES {
            return Err(Error::Io(format!(
                "query result exceeds the maximum size of {MAX_RESULT_BYTES} bytes"
            )));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

impl sqlite::Host for SqliteView<'_> {}

impl sqlite::HostConnection for SqliteView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        if !self.ctx.config.allowed.contains(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        if database != DEFAULT_LABEL {
            return Ok(Err(Error::NoSuchDatabase));
        }
        if self.ctx.open >= MAX_OPEN_PER_INSTANCE {
            return Ok(Err(Error::Io(format!(
                "too many open connections (at most {MAX_OPEN_PER_INSTANCE})"
            ))));
        }
        let pool = self.ctx.config.default_db.clone();
        let conn = match pool.take_idle() {
            Ok(Some(conn)) => conn,
            Ok(None) => {
                let opening = pool.clone();
                match tokio::task::spawn_blocking(move || opening.open_new()).await? {
                    Ok(conn) => conn,
                    Err(e) => return Ok(Err(e)),
                }
            }
            Err(e) => return Ok(Err(e)),
        };
        let lease = Lease {
            conn: Some(conn),
            pool,
            permit: None,
            reusable: true,
            wrote: false,
        };
        let handle = self.table.push(Connection(Arc::new(Mutex::new(lease))))?;
        self.ctx.open += 1;
        Ok(Ok(handle))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let lease = match self.table.get(&conn) {
            Ok(c) => c.0.clone(),
            Err(_) => return Ok(Err(Error::InvalidConnection)),
        };
        let plan = {
            let mut here = lease.lock();
            match here.plan(&statement) {
                Plan::Here => return Ok(here.execute(&statement, parameters)),
                plan => plan,
            }
        };
        if let Plan::Group = plan {
            let pool = self.ctx.config.default_db.clone();
            let outcome = pool.group().write(statement, parameters).await;
            if outcome.result.is_ok()
                && let Some(conn) = lease.lock().conn.as_ref()
            {
                // SAFETY: the handle is this open connection's own, used
                // while `conn` is borrowed under the lease's lock.
                unsafe {
                    rusqlite::ffi::sqlite3_set_last_insert_rowid(
                        conn.handle(),
                        outcome.last_insert_rowid,
                    )
                };
            }
            return Ok(outcome.result);
        }
        let result =
            tokio::task::spawn_blocking(move || lease.lock().execute(&statement, parameters))
                .await?;
        Ok(result)
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        self.ctx.open = self.ctx.open.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chatroom_dbfile::DatabaseFile;
    use tokio::sync::Notify;

    use super::sqlite::HostConnection;
    use super::*;

    struct Instance {
        ctx: SqliteCtx,
        table: ResourceTable,
        _dir: Arc<tempfile::TempDir>,
    }

    impl Instance {
        fn new(allowed: &[&str]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let file = DatabaseFile::new(dir.path().join("sqlite_db.db"));
            let config = SqliteConfig {
                allowed: Arc::new(allowed.iter().map(|s| s.to_string()).collect()),
                default_db: Arc::new(ConnectionPool::new(file)),
            };
            Instance {
                ctx: SqliteCtx::new(config),
                table: ResourceTable::new(),
                _dir: Arc::new(dir),
            }
        }

        /// The next request's instance: same pool, fresh table.
        fn next(&self) -> Self {
            Instance {
                ctx: SqliteCtx::new(self.ctx.config.clone()),
                table: ResourceTable::new(),
                _dir: self._dir.clone(),
            }
        }

        fn pool(&self) -> &ConnectionPool {
            &self.ctx.config.default_db
        }

        fn idle(&self) -> usize {
            self.pool().idle.lock().len()
        }

        fn view(&mut self) -> SqliteView<'_> {
            SqliteView {
                ctx: &mut self.ctx,
                table: &mut self.table,
            }
        }

        async fn open(&mut self, label: &str) -> Result<Resource<Connection>, Error> {
            self.view().open(label.to_owned()).await.unwrap()
        }

        async fn execute(
            &mut self,
            conn: &Resource<Connection>,
            sql: &str,
            params: Vec<Value>,
        ) -> Result<QueryResult, Error> {
            let conn = Resource::new_borrow(conn.rep());
            self.view()
                .execute(conn, sql.to_owned(), params)
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn labels_not_granted_are_denied_and_unknown_ones_do_not_exist() {
        let mut inst = Instance::new(&["default", "other"]);
        assert!(matches!(inst.open("nope").await, Err(Error::AccessDenied)));
        assert!(matches!(
            inst.open("other").await,
            Err(Error::NoSuchDatabase)
        ));
        let mut none = Instance::new(&[]);
        assert!(matches!(
            none.open("default").await,
            Err(Error::AccessDenied)
        ));
    }

    #[tokio::test]
    async fn statements_run_with_parameters_and_typed_values() {
        let mut inst = Instance::new(&["default"]);
        let conn = inst.open("default").await.unwrap();
        inst.execute(
            &conn,
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
            vec![],
        )
        .await
        .unwrap();
        let row = vec![
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("é".into()),
            Value::Blob(vec![0, 1]),
            Value::Null,
        ];
        inst.execute(&conn, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", row.clone())
            .await
            .unwrap();
        let result = inst
            .execute(&conn, "SELECT * FROM t", vec![])
            .await
            .unwrap();
        assert_eq!(result.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(result.rows.len(), 1);
        assert_eq!(format!("{:?}", result.rows[0].values), format!("{row:?}"));
        let err = inst.execute(&conn, "SELECT * FROM missing", vec![]).await;
        assert!(matches!(err, Err(Error::Io(m)) if m.contains("no such table")));
    }

    #[tokio::test]
    async fn attach_is_refused() {
        let mut inst = Instance::new(&["default"]);
        let conn = inst.open("default").await.unwrap();
        let other = inst._dir.path().join("other.db");
        let sql = format!("ATTACH DATABASE '{}' AS other", other.display());
        assert!(matches!(
            inst.execute(&conn, &sql, vec![]).await,
            Err(Error::Io(_))
        ));
        assert!(!other.exists());
    }

    #[tokio::test]
    async fn one_result_is_capped_at_128_mib() {
        let mut inst = Instance::new(&["default"]);
        let conn = inst.open("default").await.unwrap();
        let ok = inst
            .execute(
                &conn,
                "SELECT zeroblob(60000000), zeroblob(60000000)",
                vec![],
            )
            .await;
        assert!(ok.is_ok());
        let err = inst
            .execute(
                &conn,
                "SELECT zeroblob(70000000), zeroblob(70000000)",
                vec![],
            )
            .await;
        assert!(matches!(err, Err(Error::Io(m)) if m.contains("maximum size")));
    }

    #[tokio::test]
    async fn an_instance_holds_at_most_256_connections() {
        let mut inst = Instance::new(&["default"]);
        let mut open = Vec::new();
        for _ in 0..MAX_OPEN_PER_INSTANCE {
            open.push(inst.open("default").await.unwrap());
        }
        assert!(matches!(inst.open("default").await, Err(Error::Io(_))));
        let first = open.remove(0);
        inst.view().drop(first).await.unwrap();
        assert!(inst.open("default").await.is_ok());
    }

    #[tokio::test]
    async fn a_connection_is_reused_only_as_good_as_new() {
        // A schema statement leaves no connection state but is not on the
        // list: the connection was closed, not pooled.
        let mut inst = Instance::new(&["default"]);
        let conn = inst.open("default").await.unwrap();
        inst.execute(&conn, "CREATE TABLE t (x)", vec![])
            .await
            .unwrap();
        inst.view().drop(conn).await.unwrap();
        assert_eq!(inst.idle(), 0);

        // Plain DML and reads: back in the pool, then handed out again,
        // with an unfinished transaction rolled back and no rowid left.
        let mut a = inst.next();
        let conn = a.open("default").await.unwrap();
        a.execute(&conn, "INSERT INTO t VALUES (1)", vec![])
            .await
            .unwrap();
        a.execute(&conn, "BEGIN", vec![]).await.unwrap();
        a.execute(&conn, "INSERT INTO t VALUES (2)", vec![])
            .await
            .unwrap();
        drop(a);
        assert_eq!(inst.idle(), 1, "a clean connection is kept");
        let mut b = inst.next();
        let conn = b.open("default").await.unwrap();
        assert_eq!(inst.idle(), 0, "and handed out again");
        let rows = b.execute(&conn, "SELECT x FROM t", vec![]).await.unwrap();
        assert_eq!(rows.rows.len(), 1, "the open transaction was rolled back");
        let rowid = b
            .execute(&conn, "SELECT last_insert_rowid()", vec![])
            .await
            .unwrap();
        assert_eq!(format!("{:?}", rowid.rows[0].values), "[Value::Integer(0)]");

        // A temporary table would follow the connection: it is closed.
        b.execute(&conn, "CREATE TEMP TABLE mine (y)", vec![])
            .await
            .unwrap();
        b.view().drop(conn).await.unwrap();
        assert_eq!(inst.idle(), 0);
        let mut c = inst.next();
        let conn = c.open("default").await.unwrap();
        assert!(
            c.execute(&conn, "SELECT * FROM mine", vec![])
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_committed_write_wakes_the_listener_and_a_read_does_not() {
        let mut inst = Instance::new(&["default"]);
        let commit = inst.pool().file().commits().clone();
        let conn = inst.open("default").await.unwrap();
        let woken = |commit: Arc<Notify>| async move {
            tokio::time::timeout(Duration::from_millis(50), commit.notified())
                .await
                .is_ok()
        };
        inst.execute(&conn, "CREATE TABLE t (x)", vec![])
            .await
            .unwrap();
        assert!(woken(commit.clone()).await);
        inst.execute(&conn, "SELECT * FROM t", vec![])
            .await
            .unwrap();
        assert!(!woken(commit.clone()).await);
        inst.execute(&conn, "BEGIN IMMEDIATE", vec![])
            .await
            .unwrap();
        inst.execute(&conn, "INSERT INTO t VALUES (1)", vec![])
            .await
            .unwrap();
        assert!(!woken(commit.clone()).await, "not before the commit");
        inst.execute(&conn, "COMMIT", vec![]).await.unwrap();
        assert!(woken(commit.clone()).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_from_many_instances_commit_together_each_with_its_answer() {
        let mut setup = Instance::new(&["default"]);
        let conn = setup.open("default").await.unwrap();
        setup
            .execute(&conn, "CREATE TABLE t (x INTEGER PRIMARY KEY, y)", vec![])
            .await
            .unwrap();
        let commit = setup.pool().file().commits().clone();
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let mut inst = setup.next();
                tokio::spawn(async move {
                    let conn = inst.open("default").await.unwrap();
                    let sql = "INSERT INTO t (y) VALUES (?) RETURNING x";
                    let rows = inst
                        .execute(&conn, sql, vec![Value::Integer(i)])
                        .await
                        .unwrap();
                    let rowid = inst
                        .execute(&conn, "SELECT last_insert_rowid()", vec![])
                        .await
                        .unwrap();
                    (
                        format!("{:?}", rows.rows[0].values),
                        format!("{:?}", rowid.rows[0].values),
                    )
                })
            })
            .collect();
        let mut ids = Vec::new();
        for w in writers {
            let (returned, rowid) = w.await.unwrap();
            assert_eq!(
                returned, rowid,
                "last_insert_rowid() is the statement's row"
            );
            ids.push(returned);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 64, "every write got its own row");
        let count = setup
            .execute(&conn, "SELECT count(*) FROM t", vec![])
            .await
            .unwrap();
        assert_eq!(
            format!("{:?}", count.rows[0].values),
            "[Value::Integer(64)]"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), commit.notified())
                .await
                .is_ok(),
            "a group commit wakes the listener"
        );
    }
}
