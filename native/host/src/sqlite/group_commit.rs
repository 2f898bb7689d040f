//! `GroupCommit`: group commit for the statements instances run on their
//! own, outside a transaction. Each such write would be its own
//! transaction with its own sync to disk, one after another; here one
//! writer thread takes every write waiting, runs each in a savepoint of
//! one transaction (a failing statement is undone alone, with its own
//! error), commits once, and only then answers each instance. What an
//! instance sees is what autocommit gives it: its statement's result or
//! error, after the write is durable. What it does not see is the
//! connection it ran on (`changes()` stays that of its own connection;
//! `last_insert_rowid()` is carried over).
//!
//! A write that finds nobody writing and nothing queued (the gate free,
//! the writer idle) commits at once on the caller's thread, as a group of
//! one: an unloaded request then crosses no thread to store its message
//! and back, which on a two-core machine was a third of a `POST`'s
//! latency. Under load writes queue behind it and the thread groups them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use chatroom_dbfile::{BUSY_TIMEOUT, DatabaseFile, WritePermit};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::connection::open_connection;
use super::{Error, QueryResult, Value, io_error, run};

/// Most statements committed together.
const MAX_BATCH: usize = 256;

/// What a write gave back.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<QueryResult, Error>,
    /// The connection's `last_insert_rowid()` right after the statement.
    pub last_insert_rowid: i64,
}

/// One statement to run in a group.
struct Write {
    statement: String,
    parameters: Vec<Value>,
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Outcome>,
}

/// The writer of one database file; its thread ends when this is dropped.
#[derive(Debug)]
pub struct GroupCommit {
    jobs: Sender<Job>,
    /// The file's writing connection, used by the thread and by a write
    /// that commits on its caller's thread.
    writer: Arc<Mutex<Writer>>,
    /// Jobs sent to the thread and not yet taken by it.
    queued: Arc<AtomicUsize>,
}

impl GroupCommit {
    pub fn start(file: DatabaseFile) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel();
        let writer = Arc::new(Mutex::new(Writer { file, conn: None }));
        let queued = Arc::new(AtomicUsize::new(0));
        let thread = WriterThread {
            writer: writer.clone(),
            queued: queued.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("sqlite-group-commit".into())
            .spawn(move || thread.run(queue));
        if let Err(e) = spawned {
            // Without a thread every queued write gets an error.
            tracing::error!(error = %e, "cannot start the group commit thread");
        }
        GroupCommit {
            jobs,
            writer,
            queued,
        }
    }

    /// Runs `statement` in the next group (or at once, alone, when nobody
    /// else is writing); its outcome once committed.
    pub async fn write(&self, statement: String, parameters: Vec<Value>) -> Outcome {
        let write = Write {
            statement,
            parameters,
        };
        let write = match self.commit_alone(write) {
            Ok(outcome) => return outcome,
            Err(write) => write,
        };
        let (reply, answer) = oneshot::channel();
        let lost = || Outcome {
            result: Err(Error::Io("the database writer is gone".to_owned())),
            last_insert_rowid: 0,
        };
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.jobs.send(Job { write, reply }).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return lost();
        }
        answer.await.unwrap_or_else(|_| lost())
    }

    /// Commits `write` on this thread if nothing is queued, the writer is
    /// idle and the file's gate is free; otherwise hands it back.
    fn commit_alone(&self, mut write: Write) -> Result<Outcome, Write> {
        if self.queued.load(Ordering::Acquire) != 0 {
            return Err(write);
        }
        let Some(mut writer) = self.writer.try_lock() else {
            return Err(write);
        };
        let Some(turn) = writer.file.gate().try_acquire() else {
            return Err(write);
        };
        let mut outcomes = writer.commit_batch(std::slice::from_mut(&mut write), Some(turn));
        Ok(outcomes.pop().unwrap_or_else(|| Outcome {
            result: Err(Error::Io("no outcome".to_owned())),
            last_insert_rowid: 0,
        }))
    }
}

/// The thread that commits queued writes in groups.
struct WriterThread {
    writer: Arc<Mutex<Writer>>,
    queued: Arc<AtomicUsize>,
}

impl WriterThread {
    fn run(self, queue: Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
            let (mut writes, replies): (Vec<Write>, Vec<_>) =
                batch.into_iter().map(|job| (job.write, job.reply)).unzip();
            let outcomes = {
                let mut writer = self.writer.lock();
                let turn = writer.file.gate().acquire(BUSY_TIMEOUT);
                writer.commit_batch(&mut writes, turn)
            };
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // An instance that stopped waiting (past its deadline) is
                // simply not told.
                let _ = reply.send(outcome);
            }
        }
    }
}

#[derive(Debug)]
struct Writer {
    file: DatabaseFile,
    conn: Option<rusqlite::Connection>,
}

impl Writer {
    /// Runs `batch` in one transaction, holding `_turn` at the file's gate
    /// (`None`: its wait ran out, SQLite's own locking takes over).
    fn commit_batch(&mut self, batch: &mut [Write], _turn: Option<WritePermit>) -> Vec<Outcome> {
        let n = batch.len();
        let failed = |e: Error| {
            (0..n)
                .map(|_| Outcome {
                    result: Err(e.clone()),
                    last_insert_rowid: 0,
                })
                .collect()
        };
        if self.conn.is_none() {
            match open_connection(self.file.identity()) {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => return failed(e),
            }
        }
        let Some(conn) = self.conn.as_ref() else {
            return failed(Error::Io("no connection".to_owned()));
        };
        if let Err(e) = self.file.check() {
            tracing::error!(error = %e, "refusing to write the database");
            return failed(Error::Io("the database is unavailable".to_owned()));
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return failed(io_error(e));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for write in batch.iter_mut() {
            let parameters = std::mem::take(&mut write.parameters);
            match one_statement(conn, &write.statement, parameters) {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return failed(e);
                }
            }
        }
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            return failed(io_error(e));
        }
        self.file.commits().notify_one();
        outcomes
    }
}

/// One job in its own savepoint: undone alone if it fails. `Err` only if
/// the savepoint itself failed (then the whole group is abandoned).
fn one_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> Result<Outcome, Error> {
    conn.execute_batch("SAVEPOINT statement")
        .map_err(io_error)?;
    let result = conn
        .prepare_cached(statement)
        .map_err(io_error)
        .and_then(|mut stmt| run(&mut stmt, parameters));
    let last_insert_rowid = conn.last_insert_rowid();
    if result.is_err() {
        conn.execute_batch("ROLLBACK TO statement")
            .map_err(io_error)?;
    }
    conn.execute_batch("RELEASE statement").map_err(io_error)?;
    Ok(Outcome {
        result,
        last_insert_rowid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(statement: &str) -> Write {
        Write {
            statement: statement.to_owned(),
            parameters: Vec::new(),
        }
    }

    fn count(file: &DatabaseFile) -> i64 {
        open_connection(file.identity())
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_alone_commits_at_once_and_one_behind_a_writer_waits_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let file = DatabaseFile::new(dir.path().join("sqlite_db.db"));
        open_connection(file.identity())
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        let group = Arc::new(GroupCommit::start(file.clone()));
        let alone = group.commit_alone(write("INSERT INTO t DEFAULT VALUES"));
        assert!(
            alone.is_ok_and(|o| o.result.is_ok()),
            "nobody writing: committed on this thread"
        );
        assert_eq!(count(&file), 1);

        // Someone else (the sidecar, say) holds the file's gate.
        let held = file.gate().try_acquire().unwrap();
        assert!(
            group
                .commit_alone(write("INSERT INTO t DEFAULT VALUES"))
                .is_err(),
            "not past another writer"
        );
        let queued = {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .write("INSERT INTO t DEFAULT VALUES".to_owned(), Vec::new())
                    .await
            })
        };
        // The thread took it and waits for the gate, holding the writer
        // until it gets it. (Not `queued`: it is 1 only between the send
        // and the thread's taking, which a test descheduled there misses.)
        while group.writer.try_lock().is_some() {
            tokio::task::yield_now().await;
        }
        assert_eq!(count(&file), 1, "nothing committed while the gate is held");
        drop(held);
        assert!(queued.await.unwrap().result.is_ok());
        assert_eq!(count(&file), 2);
    }

    #[test]
    fn a_failing_statement_is_undone_alone_and_the_rest_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let file = DatabaseFile::new(dir.path().join("sqlite_db.db"));
        let setup = open_connection(file.identity()).unwrap();
        setup
            .execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY, y UNIQUE)")
            .unwrap();
        let mut writer = Writer {
            file: file.clone(),
            conn: None,
        };
        let statements = [
            "INSERT INTO t (y) VALUES ('a')",
            // Two rows, the second refused: neither may stay.
            "INSERT INTO t (y) VALUES ('b'), ('a')",
            "INSERT INTO t (y) VALUES ('c') RETURNING x",
        ];
        let mut batch: Vec<Write> = statements.iter().map(|s| write(s)).collect();
        let outcomes = writer.commit_batch(&mut batch, None);
        assert!(outcomes[0].result.is_ok());
        assert!(matches!(&outcomes[1].result, Err(Error::Io(m)) if m.contains("UNIQUE")));
        let third = outcomes[2].result.as_ref().unwrap();
        assert_eq!(format!("{:?}", third.rows[0].values), "[Value::Integer(2)]");
        assert_eq!(outcomes[2].last_insert_rowid, 2);
        let rows: Vec<String> = setup
            .prepare("SELECT y FROM t ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            ["a", "c"],
            "committed, without the refused statement's rows"
        );
    }
}
