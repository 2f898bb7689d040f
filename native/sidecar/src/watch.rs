//! Wakes the tail when another process writes the database.
//!
//! A file-change watch (inotify on Linux) on the directory holding the
//! database and its `-wal` file notices REST writes without polling. The
//! event fires on the write of the WAL frames, but SQLite makes a commit
//! visible only after it has synced the WAL and updated its shared-memory
//! index, which produces no file event. So each event starts a short
//! `CommitProbe` window on its own thread: it reads the newest message id
//! every [`PROBE_STEP`] until it has been quiet for [`PROBE_WINDOW`], and
//! wakes the tail the moment a new row is visible; then the tail re-checks
//! a few times, for a commit whose sync outlasted the window. Closing a file
//! after writing it also counts as an event: Spin (and the project's host)
//! closes its connection after each request, so that event follows the
//! commit even when the sync was slow. Idle, nothing runs.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use chatroom_core::latest_seq;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::tail::MessageTail;

/// How often the probe looks for a newly visible commit.
const PROBE_STEP: Duration = Duration::from_micros(100);
/// How long the probe keeps looking after the last event or new row.
const PROBE_WINDOW: Duration = Duration::from_millis(3);

/// Keeps the watch (and its probe thread) alive while held.
pub struct DatabaseWatch {
    _watcher: notify::RecommendedWatcher,
}

impl DatabaseWatch {
    pub fn start(db_path: &Path, tail: MessageTail) -> notify::Result<Self> {
        let name = db_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = db_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        // One pending wake-up is enough: events arriving while the probe
        // runs only extend its window.
        let (events, pending) = sync_channel::<()>(1);
        CommitProbe::spawn(db_path.to_owned(), tail, pending)?;
        let mut watcher = notify::recommended_watcher(move |event| {
            if is_database_change(&event, &name) {
                let _ = events.try_send(());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(DatabaseWatch { _watcher: watcher })
    }
}

fn is_database_change(event: &notify::Result<notify::Event>, name: &str) -> bool {
    let Ok(event) = event else { return false };
    matches!(
        event.kind,
        EventKind::Modify(_)
            | EventKind::Create(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    ) && event.paths.iter().any(|p| {
        p.file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with(name))
    })
}

/// Turns file events into tail wake-ups at the moment a commit is visible.
struct CommitProbe {
    conn: rusqlite::Connection,
    tail: MessageTail,
    seen: i64,
}

impl CommitProbe {
    /// Starts the probe thread; it ends when the watcher (the sender) goes.
    fn spawn(db_path: PathBuf, tail: MessageTail, pending: Receiver<()>) -> notify::Result<()> {
        let conn = chatroom_dbfile::open_file(&db_path)
            .map_err(|e| notify::Error::generic(&format!("probe connection: {e}")))?;
        let seen = latest_seq(&conn).unwrap_or(0);
        let mut probe = CommitProbe { conn, tail, seen };
        std::thread::Builder::new()
            .name("commit-probe".into())
            .spawn(move || {
                while pending.recv().is_ok() {
                    if !probe.watch_window(&pending) {
                        return;
                    }
                }
            })
            .map_err(notify::Error::io)?;
        Ok(())
    }

    /// Probes until quiet; false once the watcher is gone.
    fn watch_window(&mut self, pending: &Receiver<()>) -> bool {
        let mut quiet_at = Instant::now() + PROBE_WINDOW;
        loop {
            loop {
                match pending.try_recv() {
                    Ok(()) => quiet_at = Instant::now() + PROBE_WINDOW,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return false,
                }
            }
            match latest_seq(&self.conn) {
                Ok(latest) if latest > self.seen => {
                    self.seen = latest;
                    self.tail.wake();
                    quiet_at = Instant::now() + PROBE_WINDOW;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "commit probe read failed");
                    break;
                }
            }
            if Instant::now() >= quiet_at {
                break;
            }
            std::thread::sleep(PROBE_STEP);
        }
        // Even when a row showed up, the commit that caused the last event
        // may still be syncing (under I/O load a sync can outlast the
        // window): the tail's own re-checks, then its safety poll, take it
        // from here.
        self.tail.file_changed();
        true
    }
}
