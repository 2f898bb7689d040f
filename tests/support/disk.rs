//! What is on the disk: the files of a SQLite database (`sqlite_db.db`
//! and its `-wal`, `-shm`, `-journal`) scanned for a text, for the proofs
//! that erased text is gone (deletes, edits, retention).

use std::path::Path;
use std::time::Duration;

/// Every file of the database at `db` (`sqlite_db.db`, `-wal`, `-shm`,
/// `-journal`) that holds `text`.
pub fn files_holding(db: &Path, text: &str) -> Vec<String> {
    let dir = db.parent().expect("a state directory");
    let stem = db
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    std::fs::read_dir(dir)
        .expect("the state directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(stem)))
        .filter(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            bytes.windows(text.len()).any(|w| w == text.as_bytes())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits (a few seconds at most) until no file of the database holds
/// `text`.
pub async fn erased(db: &Path, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let holding = files_holding(db, text);
        if holding.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{text:?} is still in {holding:?} 5 s after it was gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
