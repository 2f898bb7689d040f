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

use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use chatroom_core::{BUSY_TIMEOUT, DatabaseFile};
use tokio::sync::oneshot;

use super::pool::open_connection;
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

struct Job {
    statement: String,
    parameters: Vec<Value>,
    reply: oneshot::Sender<Outcome>,
}

/// The writer of one database file; its thread ends when this is dropped.
#[derive(Debug)]
pub struct GroupCommit {
    jobs: Sender<Job>,
}

impl GroupCommit {
    pub fn start(file: DatabaseFile) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel();
        let writer = Writer { file, conn: None };
        let spawned = std::thread::Builder::new()
            .name("sqlite-group-commit".into())
            .spawn(move || writer.run(queue));
        if let Err(e) = spawned {
            // Without a thread every submitted write gets an error.
            tracing::error!(error = %e, "cannot start the group commit thread");
        }
        GroupCommit { jobs }
    }

    /// Runs `statement` in the next group; its outcome once committed.
    pub async fn write(&self, statement: String, parameters: Vec<Value>) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            statement,
            parameters,
            reply,
        };
        let lost = || Outcome {
            result: Err(Error::Io("the database writer is gone".to_owned())),
            last_insert_rowid: 0,
        };
        if self.jobs.send(job).is_err() {
            return lost();
        }
        answer.await.unwrap_or_else(|_| lost())
    }
}

struct Writer {
    file: DatabaseFile,
    conn: Option<rusqlite::Connection>,
}

impl Writer {
    fn run(mut self, queue: Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            let outcomes = self.commit_batch(&mut batch);
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                // An instance that stopped waiting (past its deadline) is
                // simply not told.
                let _ = job.reply.send(outcome);
            }
        }
    }

    fn commit_batch(&mut self, batch: &mut [Job]) -> Vec<Outcome> {
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
        let _turn = self.file.gate().acquire(BUSY_TIMEOUT);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return failed(io_error(e));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            let parameters = std::mem::take(&mut job.parameters);
            match one_statement(conn, &job.statement, parameters) {
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

    fn job(statement: &str) -> (Job, oneshot::Receiver<Outcome>) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            statement: statement.to_owned(),
            parameters: Vec::new(),
            reply,
        };
        (job, answer)
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
        let mut batch: Vec<Job> = statements.iter().map(|s| job(s).0).collect();
        let outcomes = writer.commit_batch(&mut batch);
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
