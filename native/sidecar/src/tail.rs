//! `MessageTail`: follows the change log (`changes`, in file mode) or the
//! component's feed of it (in edge mode) and hands every new change (a
//! message, an edit, a delete, a reaction), in `seq` order, to the
//! [`RoomRegistry`], whoever wrote it (a socket on this or another sidecar,
//! or REST). Because SQLite serialises writers, changes commit in `seq`
//! order, so a cursor never skips one.
//!
//! The task never waits on a socket and never replays history: joins and
//! their `since` replays happen in each connection's own task against the
//! registry (see `rooms`), so one slow reader cannot stall any room.
//!
//! The task sleeps until woken: directly after the sidecar's own writes, by
//! the commit probe of `watch` when another process's commit becomes
//! visible, by a Redis wake-up (edge mode, `wakeups`), by a few quick
//! re-checks when a file event showed no new row, and by a safety poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use chatroom_core::ChangeEvent;

use crate::eraser::OldPageEraser;
use crate::rooms::{Delivery, RoomRegistry};
use crate::store::SharedStore;

/// Rows read per tail query.
const BATCH: i64 = 500;
/// Re-checks after a file event, in case the commit was not yet visible.
const RECHECKS: [Duration; 5] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(20),
    Duration::from_millis(80),
];

/// How soon a tail that could not read (an outage of the file or of the
/// REST side) tries again, however long its safety poll.
const OUTAGE_RETRY: Duration = Duration::from_millis(500);

/// A handle on the tail task.
#[derive(Clone)]
pub struct MessageTail {
    own_write: Arc<Notify>,
    file_change: Arc<Notify>,
    reading: Arc<AtomicBool>,
}

impl MessageTail {
    /// Starts the task; it delivers everything above the registry's cursor.
    /// `commits` wakes it: the sidecar's own writes notify it, and so may
    /// other writers in this process (the embedded Spin host).
    pub fn start(
        store: SharedStore,
        rooms: Arc<RoomRegistry>,
        poll: Duration,
        commits: Arc<Notify>,
        eraser: Option<OldPageEraser>,
    ) -> Self {
        let own_write = commits;
        let file_change = Arc::new(Notify::new());
        let reading = Arc::new(AtomicBool::new(true));
        let task = TailTask {
            eraser,
            store,
            rooms,
            own_write: own_write.clone(),
            file_change: file_change.clone(),
            reading: reading.clone(),
            poll,
        };
        tokio::spawn(task.run());
        MessageTail {
            own_write,
            file_change,
            reading,
        }
    }

    /// Whether its last read of new messages worked (the database, or in
    /// edge mode the component's feed): what `/healthz` reports.
    pub fn is_reading(&self) -> bool {
        self.reading.load(Ordering::Relaxed)
    }

    /// A new commit is visible (the sidecar's own, or one the commit probe
    /// saw): deliver it now.
    pub fn wake(&self) {
        self.own_write.notify_one();
    }

    /// The database files changed on disk, but no new row is visible yet:
    /// look again shortly, a few times.
    pub fn file_changed(&self) {
        self.file_change.notify_one();
    }
}

struct TailTask {
    store: SharedStore,
    /// Erases the old text of edits and deletes from the disk (file mode).
    eraser: Option<OldPageEraser>,
    rooms: Arc<RoomRegistry>,
    own_write: Arc<Notify>,
    file_change: Arc<Notify>,
    reading: Arc<AtomicBool>,
    poll: Duration,
}

impl TailTask {
    async fn run(self) {
        let mut rechecks = RECHECKS.len();
        loop {
            let poll = if self.reading.load(Ordering::Relaxed) {
                self.poll
            } else {
                // Out of touch: retry soon, whatever the safety poll (a
                // long one with Redis) would wait.
                self.poll.min(OUTAGE_RETRY)
            };
            let delay = RECHECKS.get(rechecks).copied().unwrap_or(poll);
            tokio::select! {
                biased;
                () = self.own_write.notified() => {
                    self.drain().await;
                }
                () = self.file_change.notified() => {
                    if self.drain().await == 0 {
                        rechecks = 0;
                    }
                }
                () = tokio::time::sleep(delay) => {
                    let found = self.drain().await;
                    rechecks = if found == 0 { rechecks + 1 } else { RECHECKS.len() };
                }
            }
        }
    }

    /// Delivers every change above the cursor; how many there were.
    async fn drain(&self) -> usize {
        let mut sent = 0;
        loop {
            let after = self.rooms.cursor();
            let batch = match self.store.changes_after(after, BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    // Said once per outage, not once per retry.
                    if self.reading.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "reading new changes failed; retrying until it works");
                    } else {
                        tracing::debug!(error = %e, "reading new changes failed again");
                    }
                    return sent;
                }
            };
            if !self.reading.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    cursor = after,
                    "reading new changes again; catching up from the cursor"
                );
            }
            let read = batch.len();
            if let Some(eraser) = &self.eraser
                && batch.iter().any(|c| {
                    matches!(
                        c.event,
                        ChangeEvent::MessageEdited | ChangeEvent::MessageDeleted
                    )
                })
            {
                eraser.erase_soon();
            }
            let batch: Vec<Delivery> = batch.into_iter().map(Delivery::from).collect();
            self.rooms.deliver(&batch);
            sent += read;
            if (read as i64) < BATCH {
                return sent;
            }
        }
    }
}
