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

use tokio::sync::Notify;

use crate::store::ChatStore;

/// How long a request waits for others to join it.
const COALESCE: Duration = Duration::from_millis(200);
/// How soon a truncation a reader prevented is tried again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct OldPageEraser {
    wanted: Arc<Notify>,
}

impl OldPageEraser {
    /// Starts the task for `store`; `None` in edge mode.
    pub fn start(store: ChatStore) -> Option<Self> {
        if !matches!(store, ChatStore::File(_)) {
            return None;
        }
        let wanted = Arc::new(Notify::new());
        tokio::spawn(run(store, wanted.clone()));
        Some(OldPageEraser { wanted })
    }

    /// An edit or a delete was committed: erase the old pages soon.
    pub fn erase_soon(&self) {
        self.wanted.notify_one();
    }
}

async fn run(store: ChatStore, wanted: Arc<Notify>) {
    loop {
        wanted.notified().await;
        tokio::time::sleep(COALESCE).await;
        loop {
            match store.erase_old_pages().await {
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
