//! `ChatStore`: where the sidecar reads and writes chat data, whichever
//! mode it runs in. In file mode that is the shared SQLite file ([`Db`]);
//! in edge mode, the REST component's API ([`EdgeApi`]). The rest of the
//! sidecar (events, tail, presence) is the same in both.

use std::sync::Arc;

use chatroom_core::internal::LeaseState;
use chatroom_core::limits::HISTORY_PAGE_ROWS;
use chatroom_core::{
    ApiError, Change, PruneStep, Retention, RoomAccess, StoreError, Write, Written, changes_after,
    find_prunable, latest_seq, presence, prune_range, room_access, room_changes, truncate_wal,
    write_batch,
};

use crate::db::Db;
use crate::edge::EdgeApi;

/// How long a truncation of the write-ahead log may wait for others.
const ERASE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Clone)]
pub enum ChatStore {
    File(Db),
    Edge(Arc<EdgeApi>),
}

impl ChatStore {
    /// What `user` (or an anonymous socket) may do in room `id`
    /// (docs/protocol.md §10); `None` when there is no such room.
    pub async fn room_access(
        &self,
        id: i64,
        user: Option<&str>,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let user = user.map(str::to_owned);
        match self {
            ChatStore::File(db) => db.run(move |c| room_access(c, id, user.as_deref())).await,
            ChatStore::Edge(api) => api.room_access(id, user.as_deref()).await,
        }
    }

    /// The newest change's `seq` (0 when there is none).
    pub async fn latest_seq(&self) -> Result<i64, StoreError> {
        match self {
            ChatStore::File(db) => db.run(latest_seq).await,
            ChatStore::Edge(api) => api.latest_seq().await,
        }
    }

    /// Up to `limit` changes of any room after `after`, in `seq` order
    /// (the tail's read: in file mode on its own connection, here).
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        match self {
            ChatStore::File(db) => db.read_here(move |c| changes_after(c, after, limit)).await,
            ChatStore::Edge(api) => api.changes_after(after, limit).await,
        }
    }

    /// The oldest page (at most [`HISTORY_PAGE_ROWS`]) of room `room`'s
    /// changes with a `seq` in `(after, through]`, in order.
    pub async fn room_changes(
        &self,
        room: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<Change>, ApiError> {
        match self {
            ChatStore::File(db) => {
                db.run(move |c| room_changes(c, room, after, through, HISTORY_PAGE_ROWS))
                    .await
            }
            ChatStore::Edge(api) => api.room_changes(room, after, through).await,
        }
    }

    /// One step of retention from room `from_room` (docs/protocol.md §4.6).
    pub async fn prune_step(
        &self,
        policy: Retention,
        from_room: i64,
    ) -> Result<PruneStep, ApiError> {
        match self {
            // The search reads beside the writers; only the batch itself
            // takes the write gate.
            ChatStore::File(db) => {
                let search = db
                    .run(move |c| find_prunable(c, &policy, from_room))
                    .await?;
                let pruned = match search.range {
                    Some(range) => db.write(move |c| prune_range(c, &range)).await?,
                    None => 0,
                };
                Ok(search.step(pruned))
            }
            ChatStore::Edge(api) => api.prune_step(policy, from_room).await,
        }
    }

    /// Stores a socket's run of writes in order, each with its own answer:
    /// in one transaction in file mode; in edge mode through the
    /// component, runs of messages in one request and actions one by one.
    /// A message's `client_id` is remembered for `window_ms` (in edge mode
    /// the component's `client_id_window_secs` decides).
    pub async fn write_batch(
        &self,
        writes: Vec<Write>,
        window_ms: i64,
    ) -> Result<Vec<Result<Written, ApiError>>, StoreError> {
        let api = match self {
            ChatStore::File(db) => {
                return db.write(move |c| write_batch(c, &writes, window_ms)).await;
            }
            ChatStore::Edge(api) => api,
        };
        let mut results = Vec::with_capacity(writes.len());
        let mut writes = writes.into_iter().peekable();
        while let Some(write) = writes.next() {
            match write {
                Write::Action(action) => {
                    results.push(api.apply(&action).await.map(Written::Applied))
                }
                Write::Message(room_id, draft) => {
                    let mut drafts = vec![(room_id, draft)];
                    while let Some(Write::Message(..)) = writes.peek() {
                        if let Some(Write::Message(room_id, draft)) = writes.next() {
                            drafts.push((room_id, draft));
                        }
                    }
                    let stored = api.insert_messages(&drafts).await?;
                    results.extend(stored.into_iter().map(|r| r.map(Written::Message)));
                }
            }
        }
        Ok(results)
    }

    /// After an edit or a delete: truncates the file's write-ahead log, so
    /// the old text's page images leave the disk (file mode; in edge mode
    /// the component's store is its host's to keep). `Ok(false)` when a
    /// reader kept it from finishing.
    pub async fn erase_old_pages(&self) -> Result<bool, StoreError> {
        let ChatStore::File(db) = self else {
            return Ok(true);
        };
        db.run(|c| {
            // A truncation waits for readers while it keeps writers out:
            // give up after a moment (the eraser tries again) rather than
            // stall anyone, then wait as usual again.
            let _ = c.busy_timeout(ERASE_PATIENCE);
            let erased = truncate_wal(c);
            let _ = chatroom_dbfile::poll_when_busy(c);
            erased
        })
        .await
    }

    /// Takes or renews `node`'s presence lease.
    pub async fn renew(&self, node: &str, lease_ms: i64) -> Result<LeaseState, StoreError> {
        match self {
            ChatStore::File(db) => {
                let node = node.to_owned();
                let lease = db
                    .write_presence(move |c| presence::renew(c, &node, lease_ms))
                    .await?;
                Ok(match lease {
                    presence::Lease::Renewed => LeaseState::Renewed,
                    presence::Lease::Taken => LeaseState::Taken,
                })
            }
            ChatStore::Edge(api) => api.renew(node, lease_ms).await,
        }
    }

    /// Forgets `node` and every connection it held.
    pub async fn drop_node(&self, node: &str) -> Result<(), StoreError> {
        match self {
            ChatStore::File(db) => {
                let node = node.to_owned();
                db.write_presence(move |c| presence::drop_node(c, &node))
                    .await
            }
            ChatStore::Edge(api) => api.drop_node(node).await,
        }
    }

    /// Lists connection `sid`, held by `node`, in `room` as `username`.
    pub async fn join(
        &self,
        node: &str,
        sid: &str,
        room: i64,
        username: &str,
    ) -> Result<(), StoreError> {
        match self {
            ChatStore::File(db) => {
                let (node, sid, name) = (node.to_owned(), sid.to_owned(), username.to_owned());
                db.write_presence(move |c| presence::join(c, &node, &sid, room, &name))
                    .await
            }
            ChatStore::Edge(api) => api.join(node, sid, room, username).await,
        }
    }

    /// Unlists connection `sid` in `room`.
    pub async fn leave(&self, node: &str, sid: &str, room: i64) -> Result<(), StoreError> {
        match self {
            ChatStore::File(db) => {
                let sid = sid.to_owned();
                db.write_presence(move |c| presence::leave(c, &sid, room).map(drop))
                    .await
            }
            ChatStore::Edge(api) => api.leave(node, sid, room).await,
        }
    }

    /// Unlists connection `sid` everywhere.
    pub async fn disconnect(&self, node: &str, sid: &str) -> Result<(), StoreError> {
        match self {
            ChatStore::File(db) => {
                let sid = sid.to_owned();
                db.write_presence(move |c| presence::disconnect(c, &sid).map(drop))
                    .await
            }
            ChatStore::Edge(api) => api.disconnect(node, sid).await,
        }
    }
}
