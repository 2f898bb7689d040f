//! [`chatroom_core::Database`] on Spin's SQLite API (`fermyon:spin/sqlite`).

use chatroom_core::{Database, Row, StoreError, Value};
use spin_sdk::sqlite;

/// The component's connection to Spin's `default` database.
pub struct SpinDb(sqlite::Connection);

impl SpinDb {
    /// Opens the `default` store and brings it to the current schema.
    pub fn open() -> Result<Self, StoreError> {
        let conn = sqlite::Connection::open_default()
            .map_err(|e| StoreError::Database(format!("open default: {e}")))?;
        let db = SpinDb(conn);
        chatroom_core::migrate(&db)?;
        Ok(db)
    }
}

fn to_spin(v: &Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Integer(i) => sqlite::Value::Integer(*i),
        Value::Real(f) => sqlite::Value::Real(*f),
        Value::Text(s) => sqlite::Value::Text(s.clone()),
        Value::Blob(b) => sqlite::Value::Blob(b.clone()),
    }
}

fn from_spin(v: sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Integer(i),
        sqlite::Value::Real(f) => Value::Real(f),
        sqlite::Value::Text(s) => Value::Text(s),
        sqlite::Value::Blob(b) => Value::Blob(b),
    }
}

impl Database for SpinDb {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let params: Vec<sqlite::Value> = params.iter().map(to_spin).collect();
        let result = self
            .0
            .execute(sql, &params)
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| Row(row.values.into_iter().map(from_spin).collect()))
            .collect())
    }
}
