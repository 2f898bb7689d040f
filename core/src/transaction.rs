//! Transactions as every writer in core runs them: one closure in one
//! write transaction, or a batch of items each with its own answer; and
//! the pragma set before text is overwritten or removed.

use crate::db::{Database, StoreError};
use crate::error::ApiError;

/// Before an edit or a delete: SQLite then overwrites the freed bytes of
/// the old text with zeros instead of leaving them in the page
/// (docs/protocol.md §4.2). Per connection, so set on whichever one writes.
pub(crate) const SECURE_DELETE: &str = "PRAGMA secure_delete = ON";

/// Runs `f` in one write transaction: committed if it succeeds, rolled
/// back if it fails.
pub(crate) fn transaction<D: Database, T>(
    db: &D,
    f: impl FnOnce(&D) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    db.query("BEGIN IMMEDIATE", &[])?;
    match f(db) {
        Ok(value) => match db.query("COMMIT", &[]) {
            Ok(_) => Ok(value),
            Err(e) => {
                let _ = db.query("ROLLBACK", &[]);
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = db.query("ROLLBACK", &[]);
            Err(e)
        }
    }
}

/// Runs `each` on every item in one transaction, in order; each gets its
/// own answer, and a client error fails only its item. `Err` if the
/// transaction failed (a storage error in any item rolls it all back).
pub(crate) fn in_one_transaction<D: Database, I, T>(
    db: &D,
    items: &[I],
    each: impl Fn(&D, &I) -> Result<T, ApiError>,
) -> Result<Vec<Result<T, ApiError>>, StoreError> {
    db.query("BEGIN IMMEDIATE", &[])?;
    let results: Vec<_> = items.iter().map(|item| each(db, item)).collect();
    let failed = results.iter().find_map(|r| match r {
        Err(ApiError::Storage(e)) => Some(e.clone()),
        _ => None,
    });
    if let Some(e) = failed {
        let _ = db.query("ROLLBACK", &[]);
        return Err(e);
    }
    if let Err(e) = db.query("COMMIT", &[]) {
        let _ = db.query("ROLLBACK", &[]);
        return Err(e);
    }
    Ok(results)
}
