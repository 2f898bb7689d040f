//! `OldPageEraser`: after an edit or a delete, the old text must leave the
//! disk (docs/protocol.md §4.2). The statement itself zeroes the freed
//! bytes in its page (`PRAGMA secure_delete`), but the write-ahead log
//! still holds older images of that page, text and all, until it is
//! checkpointed and truncated. The tail asks for that when it delivers an
//! edit or a delete; this task does it shortly after (one truncation for a
//! burst of them) and tries again while readers keep it from finishing.
//! File mode only: in edge mode the component's store belongs to its host.

use std::sync::Arc;
use std::time::Duration;

use chatroom_core::{StoreError, truncate_wal};
use tokio::sync::Notify;

use crate::db::Db;

/// How long a request waits for others to join it.
const COALESCE: Duration = Duration::from_millis(200);
/// How soon a truncation a reader prevented is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How long a truncation of the write-ahead log may wait for others.
const ERASE_PATIENCE: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub struct OldPageEraser {
    wanted: Arc<Notify>,
}

impl OldPageEraser {
    /// Starts the task for the file `db` (file mode: in edge mode the
    /// component's store is its host's to keep).
    pub fn start(db: Db) -> Self {
        let wanted = Arc::new(Notify::new());
        tokio::spawn(run(db, wanted.clone()));
        OldPageEraser { wanted }
    }

    /// An edit or a delete was committed: erase the old pages soon.
    pub fn erase_soon(&self) {
        self.wanted.notify_one();
    }
}

async fn run(db: Db, wanted: Arc<Notify>) {
    loop {
        wanted.notified().await;
        tokio::time::sleep(COALESCE).await;
        loop {
            match erase_old_pages(&db).await {
                Ok(true) => break,
                Ok(false) => {
                    tracing::debug!("a reader kept the log from being truncated; retrying")
                }
                // Busy, mostly: others were reading or writing. A file
                // that is really gone shows in the tail and /healthz.
                Err(e) => {
                    tracing::debug!(error = %e, "truncating the write-ahead log failed; retrying")
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Truncates the file's write-ahead log, so the old text's page images
/// leave the disk. `Ok(false)` when a reader kept it from finishing.
async fn erase_old_pages(db: &Db) -> Result<bool, StoreError> {
    db.run(|c| {
        // A truncation waits for readers while it keeps writers out:
        // give up after a moment (the eraser tries again) rather than
        // stall anyone, then wait as usual again.
        let _ = c.busy_timeout(ERASE_PATIENCE);
        let erased = truncate_wal(c);
        let _ = chatroom_dbfile::poll_when_busy(c);
        erased
    })
    .await
}
