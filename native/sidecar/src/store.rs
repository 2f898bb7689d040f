//! `ChatStore`: what the sidecar needs from storage, whichever mode it runs
//! in. In file mode that is the shared SQLite file ([`crate::file_store`]);
//! in edge mode, the REST component's internal API
//! ([`crate::edge_store`]). The rest of the sidecar (events, tail,
//! presence, retention) holds a [`SharedStore`] and is the same in both.

use std::sync::Arc;

use async_trait::async_trait;
use chatroom_core::internal::LeaseState;
use chatroom_core::{
    ApiError, Change, PruneStep, Retention, RoomAccess, StoreError, Write, Written,
};

/// The store as the sidecar's parts share it.
pub type SharedStore = Arc<dyn ChatStore>;

#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    /// What `user` (or an anonymous socket) may do in room `id`
    /// (docs/protocol.md §10); `None` when there is no such room.
    async fn room_access(
        &self,
        id: i64,
        user: Option<&str>,
    ) -> Result<Option<RoomAccess>, StoreError>;

    /// The newest change's `seq` (0 when there is none).
    async fn latest_seq(&self) -> Result<i64, StoreError>;

    /// Up to `limit` changes of any room after `after`, in `seq` order
    /// (the tail's read).
    async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError>;

    /// The oldest page (at most `HISTORY_PAGE_ROWS`) of room `room`'s
    /// changes with a `seq` in `(after, through]`, in order.
    async fn room_changes(
        &self,
        room: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<Change>, ApiError>;

    /// One step of retention from room `from_room` (docs/protocol.md §4.6).
    async fn prune_step(&self, policy: Retention, from_room: i64) -> Result<PruneStep, ApiError>;

    /// Stores a socket's run of writes in order, each with its own answer.
    /// A message's `client_id` is remembered for `window_ms` (in edge mode
    /// the component's `client_id_window_secs` decides).
    async fn write_batch(
        &self,
        writes: Vec<Write>,
        window_ms: i64,
    ) -> Result<Vec<Result<Written, ApiError>>, StoreError>;

    /// Takes or renews `node`'s presence lease.
    async fn renew(&self, node: &str, lease_ms: i64) -> Result<LeaseState, StoreError>;

    /// Forgets `node` and every connection it held.
    async fn drop_node(&self, node: &str) -> Result<(), StoreError>;

    /// Lists connection `sid`, held by `node`, in `room` as `username`.
    async fn join(
        &self,
        node: &str,
        sid: &str,
        room: i64,
        username: &str,
    ) -> Result<(), StoreError>;

    /// Unlists connection `sid` in `room`.
    async fn leave(&self, node: &str, sid: &str, room: i64) -> Result<(), StoreError>;

    /// Unlists each of connections `sids`, held by `node`, everywhere.
    async fn disconnect_all(&self, node: &str, sids: &[String]) -> Result<(), StoreError>;
}
