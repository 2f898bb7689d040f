//! What a statement does to its connection, judged by its text before it
//! runs: whether a connection that ran it is still as good as new, and
//! whether it takes the write lock though SQLite counts it as read-only.

/// Whether a statement leaves nothing on its connection that a fresh
/// connection would not have (judged by its first keyword).
pub(super) fn leaves_no_state(statement: &str) -> bool {
    let s = statement.trim_start();
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match word.as_str() {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "WITH" | "VALUES" | "BEGIN"
        | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => true,
        "PRAGMA" => !s.contains(['=', '(']),
        _ => false,
    }
}

/// `BEGIN IMMEDIATE` / `BEGIN EXCLUSIVE`: takes the write lock though
/// SQLite counts it as read-only.
pub(super) fn begins_writing(statement: &str) -> bool {
    let upper = statement.trim_start().to_ascii_uppercase();
    upper.starts_with("BEGIN") && (upper.contains("IMMEDIATE") || upper.contains("EXCLUSIVE"))
}
