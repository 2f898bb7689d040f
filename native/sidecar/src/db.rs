//! The sidecar's connection to the shared SQLite file. rusqlite is blocking,
//! so every use runs on tokio's blocking pool; the connection sits behind a
//! mutex because SQLite serialises writers anyway.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chatroom_core::StoreError;

#[derive(Clone)]
pub struct Db(Arc<Mutex<rusqlite::Connection>>);

impl Db {
    /// Opens the file (creating it and the schema if needed).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Db(Arc::new(Mutex::new(chatroom_core::open_file(path)?))))
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn run<T, E>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection usable.
            let conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&conn)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Database(format!("database task failed: {e}")).into()))
    }
}
