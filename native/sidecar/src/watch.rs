//! Wakes the tail when another process writes the database: a file-change
//! watch (inotify on Linux) on the directory holding the database and its
//! `-wal` file, so no polling is needed to notice REST writes quickly.

use std::path::Path;

use notify::{EventKind, RecursiveMode, Watcher};

use crate::tail::MessageTail;

/// Keeps the watch alive while held.
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
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if !matches!(event.kind, EventKind::Modify(_) | EventKind::Create(_)) {
                    return;
                }
                let ours = event.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|f| f.to_string_lossy().starts_with(name.as_str()))
                });
                if ours {
                    tail.file_changed();
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(DatabaseWatch { _watcher: watcher })
    }
}
