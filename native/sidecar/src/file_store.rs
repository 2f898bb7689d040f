//! [`ChatStore`] on the shared SQLite file ([`Db`]): file mode, beside
//! `spin up` or inside the default run. Every statement is core's; here is
//! only which of the file's connections runs it: the tail reads in place,
//! retention searches beside the writers and takes the write gate only for
//! its batch, presence rows go through the unsynced connection.

use async_trait::async_trait;
use chatroom_core::internal::LeaseState;
use chatroom_core::limits::HISTORY_PAGE_ROWS;
use chatroom_core::{
    ApiError, Change, PruneStep, Retention, RoomAccess, StoreError, Write, Written, changes_after,
    find_prunable, latest_seq, presence, prune_range, room_access, room_changes, write_batch,
};

use crate::db::Db;
use crate::store::ChatStore;

#[async_trait]
impl ChatStore for Db {
    async fn room_access(
        &self,
        id: i64,
        user: Option<&str>,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let user = user.map(str::to_owned);
        self.run(move |c| room_access(c, id, user.as_deref())).await
    }

    async fn latest_seq(&self) -> Result<i64, StoreError> {
        self.run(latest_seq).await
    }

    async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        self.read_here(move |c| changes_after(c, after, limit))
            .await
    }

    async fn room_changes(
        &self,
        room: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<Change>, ApiError> {
        self.run(move |c| room_changes(c, room, after, through, HISTORY_PAGE_ROWS))
            .await
    }

    async fn prune_step(&self, policy: Retention, from_room: i64) -> Result<PruneStep, ApiError> {
        let search = self
            .run(move |c| find_prunable(c, &policy, from_room))
            .await?;
        let pruned = match search.range {
            Some(range) => self.write(move |c| prune_range(c, &range)).await?,
            None => 0,
        };
        Ok(search.step(pruned))
    }

    async fn write_batch(
        &self,
        writes: Vec<Write>,
        window_ms: i64,
    ) -> Result<Vec<Result<Written, ApiError>>, StoreError> {
        self.write(move |c| write_batch(c, &writes, window_ms))
            .await
    }

    async fn renew(&self, node: &str, lease_ms: i64) -> Result<LeaseState, StoreError> {
        let node = node.to_owned();
        self.write_presence(move |c| presence::renew(c, &node, lease_ms))
            .await
    }

    async fn drop_node(&self, node: &str) -> Result<(), StoreError> {
        let node = node.to_owned();
        self.write_presence(move |c| presence::drop_node(c, &node))
            .await
    }

    async fn join(
        &self,
        node: &str,
        sid: &str,
        room: i64,
        username: &str,
    ) -> Result<(), StoreError> {
        let (node, sid, name) = (node.to_owned(), sid.to_owned(), username.to_owned());
        self.write_presence(move |c| presence::join(c, &node, &sid, room, &name))
            .await
    }

    async fn leave(&self, _node: &str, sid: &str, room: i64) -> Result<(), StoreError> {
        let sid = sid.to_owned();
        self.write_presence(move |c| presence::leave(c, &sid, room).map(drop))
            .await
    }

    async fn disconnect_all(&self, _node: &str, sids: &[String]) -> Result<(), StoreError> {
        let sids = sids.to_vec();
        self.write_presence(move |c| presence::disconnect_all(c, &sids))
            .await
    }
}
