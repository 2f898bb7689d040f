//! `MessageTail`: the one path by which messages reach sockets.
//!
//! A single task follows the `messages` table with a cursor and broadcasts
//! every new row, in id order, to its room, whoever wrote it (a socket here
//! or the Spin component in another process). Because SQLite serialises
//! writers, rows commit in id order, so a cursor never skips one.
//!
//! Joins go through the same task: it first catches up with the table, then
//! replays `(since, cursor]` to the joining socket and only then adds it to
//! the room. Every later broadcast carries ids above the cursor, so the
//! socket sees each message once, in order, with no gap.
//!
//! The task sleeps until woken: directly after the sidecar's own writes, by
//! the commit probe of `watch` when another process's commit becomes
//! visible, by a few quick re-checks when a file event showed no new row,
//! and by a slow safety poll.

use std::sync::Arc;
use std::time::Duration;

use chatroom_core::{
    HistoryPages, Message, MessagePage, StoreError, latest_message_id, messages_after,
};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::db::Db;

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
/// How long a replay waits for a slow socket's buffer to drain.
const REPLAY_PATIENCE: Duration = Duration::from_secs(10);

/// The Socket.IO room of a chat room: its decimal id.
pub fn room_name(room_id: i64) -> String {
    room_id.to_string()
}

struct JoinRequest {
    socket: SocketRef,
    room_id: i64,
    since: Option<i64>,
    done: oneshot::Sender<Result<usize, StoreError>>,
}

/// A handle on the tail task.
#[derive(Clone)]
pub struct MessageTail {
    own_write: Arc<Notify>,
    file_change: Arc<Notify>,
    joins: mpsc::UnboundedSender<JoinRequest>,
}

impl MessageTail {
    /// Starts the task, positioned after the newest stored message.
    pub async fn start(db: Db, io: SocketIo, poll: Duration) -> Result<Self, StoreError> {
        let cursor = db.run(latest_message_id).await?;
        let own_write = Arc::new(Notify::new());
        let file_change = Arc::new(Notify::new());
        let (joins, join_rx) = mpsc::unbounded_channel();
        let task = TailTask {
            db,
            io,
            cursor,
            own_write: own_write.clone(),
            file_change: file_change.clone(),
            joins: join_rx,
            poll,
        };
        tokio::spawn(task.run());
        Ok(MessageTail {
            own_write,
            file_change,
            joins,
        })
    }

    /// A new commit is visible (the sidecar's own, or one the commit probe
    /// saw): broadcast it now.
    pub fn wake(&self) {
        self.own_write.notify_one();
    }

    /// The database files changed on disk, but no new row is visible yet:
    /// look again shortly, a few times.
    pub fn file_changed(&self) {
        self.file_change.notify_one();
    }

    /// Adds `socket` to `room_id`'s broadcasts, first replaying every message
    /// with an id above `since` if given. Returns how many were replayed.
    pub async fn join(
        &self,
        socket: SocketRef,
        room_id: i64,
        since: Option<i64>,
    ) -> Result<usize, StoreError> {
        let (done, result) = oneshot::channel();
        let request = JoinRequest {
            socket,
            room_id,
            since,
            done,
        };
        let stopped = || StoreError::Database("the message tail has stopped".into());
        self.joins.send(request).map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

struct TailTask {
    db: Db,
    io: SocketIo,
    cursor: i64,
    own_write: Arc<Notify>,
    file_change: Arc<Notify>,
    joins: mpsc::UnboundedReceiver<JoinRequest>,
    poll: Duration,
}

impl TailTask {
    async fn run(mut self) {
        let mut rechecks = RECHECKS.len();
        loop {
            let delay = RECHECKS.get(rechecks).copied().unwrap_or(self.poll);
            tokio::select! {
                biased;
                join = self.joins.recv() => match join {
                    Some(join) => {
                        self.drain().await;
                        let result = self.join(&join).await;
                        let _ = join.done.send(result);
                    }
                    None => return,
                },
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

    /// Broadcasts every message above the cursor; how many there were.
    async fn drain(&mut self) -> usize {
        let mut sent = 0;
        loop {
            let after = self.cursor;
            let batch = match self.db.run(move |c| messages_after(c, after, BATCH)).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "reading new messages failed; will retry");
                    return sent;
                }
            };
            for message in &batch {
                self.broadcast(message).await;
                self.cursor = message.id;
            }
            sent += batch.len();
            if (batch.len() as i64) < BATCH {
                return sent;
            }
        }
    }

    async fn broadcast(&self, message: &Message) {
        if let Err(e) = self
            .io
            .to(room_name(message.room_id))
            .emit("new_message", message)
            .await
        {
            tracing::warn!(error = %e, id = message.id, "broadcast incomplete");
        }
    }

    /// Replays `(since, cursor]` to the socket, then adds it to the room.
    async fn join(&self, join: &JoinRequest) -> Result<usize, StoreError> {
        let mut replayed = 0;
        if let Some(since) = join.since.filter(|since| *since < self.cursor) {
            let mut range = MessagePage::since(since);
            range.before = self.cursor + 1;
            let mut pages = HistoryPages::new(join.room_id, range);
            loop {
                let (next, page) = self
                    .db
                    .run(move |c| {
                        let page = pages.next_page(c)?;
                        Ok::<_, StoreError>((pages, page))
                    })
                    .await?;
                pages = next;
                let Some(page) = page else { break };
                for message in &page {
                    if !replay_one(&join.socket, message).await {
                        return Ok(replayed);
                    }
                    replayed += 1;
                }
            }
        }
        join.socket.join(room_name(join.room_id));
        Ok(replayed)
    }
}

/// Emits one replayed message, waiting while the socket's buffer is full.
/// `false` if the socket is gone (or hopelessly slow).
async fn replay_one(socket: &SocketRef, message: &Message) -> bool {
    let deadline = tokio::time::Instant::now() + REPLAY_PATIENCE;
    loop {
        match socket.emit("new_message", message) {
            Ok(()) => return true,
            Err(e) if socket.connected() && tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, sid = %socket.id, "replay waiting for the socket");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, sid = %socket.id, "replay abandoned");
                return false;
            }
        }
    }
}
