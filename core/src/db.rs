//! The storage seam: one method to run a statement, implemented on Spin's
//! SQLite API in the component and on rusqlite natively, so every statement in
//! [`crate::store`] runs unchanged on both sides.

/// A value bound to or read from a statement (SQLite's storage classes).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

/// A failure of the storage layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement (I/O, busy, constraint...).
    #[error("database error: {0}")]
    Database(String),
    /// A row did not have the shape a statement promises.
    #[error("unexpected row shape: {0}")]
    Shape(&'static str),
}

/// Something that runs one SQL statement with positional parameters and
/// returns every row it produced.
pub trait Database {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.0.get(i) {
            Some(Value::Integer(v)) => Ok(*v),
            _ => Err(StoreError::Shape("expected an integer column")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(v.clone()),
            _ => Err(StoreError::Shape("expected a text column")),
        }
    }
}
