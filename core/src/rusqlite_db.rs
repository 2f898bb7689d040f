//! [`Database`] on rusqlite, for native code (the sidecar, the host and the
//! tests). Opening the file, its identity and the write gate are native
//! runtime and live in `chatroom-dbfile`; this impl stays here because the
//! trait is this crate's.

use rusqlite::types::{Value as SqlValue, ValueRef};

use crate::db::{Database, Row, StoreError, Value};

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(*i),
        Value::Real(f) => SqlValue::Real(*f),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Database for rusqlite::Connection {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepare_cached(sql).map_err(db_err)?;
        let columns = stmt.column_count();
        let params = rusqlite::params_from_iter(params.iter().map(to_sql));
        let mut rows = stmt.query(params).map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let values = (0..columns)
                .map(|i| row.get_ref(i).map(from_sql))
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            out.push(Row(values));
        }
        Ok(out)
    }
}
