//! Spin's SQLite interface (`fermyon:spin/sqlite@2.0.0`) on rusqlite, as
//! local Spin provides it: every `open` is a fresh connection to
//! `<state dir>/sqlite_db.db` for the `default` label (no pooling, rusqlite's
//! 5 s busy timeout), labels the component does not list in
//! `sqlite_databases` are refused with `access-denied`, `ATTACH` is refused,
//! one result is capped at 128 MiB and an instance holds at most 256
//! connections.
//!
//! Statements run on tokio's blocking pool so that a busy wait on the
//! database never stalls the async workers serving other requests.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chatroom_core::FileIdentity;
use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

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
const MAX_CONNECTIONS: usize = 256;
/// The label of Spin's default store.
const DEFAULT_LABEL: &str = "default";

/// What the databases of one component are: shared by all its requests.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Labels from the component's `sqlite_databases`.
    pub allowed: Arc<HashSet<String>>,
    /// `<state dir>/sqlite_db.db`, by identity: once deleted or replaced
    /// under the running host, opens fail instead of creating a new file.
    pub default_file: Arc<FileIdentity>,
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
pub struct Connection(Arc<Mutex<rusqlite::Connection>>);

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

/// Opens the file if it is still the one this host has been using, and
/// keeps it in WAL mode.
fn open_checked(file: &FileIdentity) -> Result<rusqlite::Connection, Error> {
    let unavailable = |e: chatroom_core::StoreError| {
        tracing::error!(error = %e, "refusing to open the database");
        Error::Io("the database is unavailable".to_owned())
    };
    file.check().map_err(unavailable)?;
    let conn = open_file(file.path().to_owned())?;
    file.check().map_err(unavailable)?;
    chatroom_core::assert_wal(&conn).map_err(unavailable)?;
    Ok(conn)
}

fn open_file(path: PathBuf) -> Result<rusqlite::Connection, Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let conn = rusqlite::Connection::open(&path).map_err(io_error)?;
    // No attached databases: a component must not reach other files.
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)
        .map_err(io_error)?;
    Ok(conn)
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
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> Result<QueryResult, Error> {
    let mut stmt = conn.prepare_cached(statement).map_err(io_error)?;
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
        if self.ctx.open >= MAX_CONNECTIONS {
            return Ok(Err(Error::Io(format!(
                "too many open connections (at most {MAX_CONNECTIONS})"
            ))));
        }
        let file = self.ctx.config.default_file.clone();
        let conn = match tokio::task::spawn_blocking(move || open_checked(&file)).await? {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        let handle = self.table.push(Connection(Arc::new(Mutex::new(conn))))?;
        self.ctx.open += 1;
        Ok(Ok(handle))
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let conn = match self.table.get(&conn) {
            Ok(c) => c.0.clone(),
            Err(_) => return Ok(Err(Error::InvalidConnection)),
        };
        let result = tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| Error::InvalidConnection)?;
            run(&conn, &statement, parameters)
        })
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
    use super::sqlite::HostConnection;
    use super::*;

    struct Instance {
        ctx: SqliteCtx,
        table: ResourceTable,
        _dir: tempfile::TempDir,
    }

    impl Instance {
        fn new(allowed: &[&str]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let config = SqliteConfig {
                allowed: Arc::new(allowed.iter().map(|s| s.to_string()).collect()),
                default_file: Arc::new(FileIdentity::new(dir.path().join("sqlite_db.db"))),
            };
            Instance {
                ctx: SqliteCtx::new(config),
                table: ResourceTable::new(),
                _dir: dir,
            }
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
        for _ in 0..MAX_CONNECTIONS {
            open.push(inst.open("default").await.unwrap());
        }
        assert!(matches!(inst.open("default").await, Err(Error::Io(_))));
        let first = open.remove(0);
        inst.view().drop(first).await.unwrap();
        assert!(inst.open("default").await.is_ok());
    }
}
