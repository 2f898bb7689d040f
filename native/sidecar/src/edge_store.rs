//! [`ChatStore`] on the REST component's internal API ([`EdgeApi`]): edge
//! mode (docs/protocol.md §6), where the database is a store the sidecar
//! cannot open. Reads use the internal feed and room access; writes go
//! through the component, which is then the only writer and publishes
//! every new message itself. A socket's run of messages goes in as few
//! requests as fit the component's body limit; actions go one by one.

use async_trait::async_trait;
use chatroom_core::internal::{
    Departures, FeedHead, LeaseAnswer, LeaseRequest, LeaseState, PresenceEntry, PruneRequest,
};
use chatroom_core::limits::{DEPARTURES_MAX, HISTORY_PAGE_ROWS};
use chatroom_core::{
    ApiError, Change, PruneStep, Retention, RoomAccess, StoreError, Write, Written,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};

use crate::edge::{EdgeApi, refused, resync_from, upstream};
use crate::store::ChatStore;

#[async_trait]
impl ChatStore for EdgeApi {
    /// `GET /internal/rooms/{id}/access`.
    async fn room_access(
        &self,
        id: i64,
        user: Option<&str>,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let mut path = format!("/internal/rooms/{id}/access");
        if let Some(user) = user {
            path.push_str("?username=");
            path.extend(utf8_percent_encode(user, NON_ALPHANUMERIC));
        }
        match self.call(Method::GET, &path, None).await? {
            (StatusCode::OK, body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| upstream("a room's access", e)),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, body) => Err(refused(&path, status, &body)),
        }
    }

    async fn latest_seq(&self) -> Result<i64, StoreError> {
        let head: FeedHead = self.json(Method::GET, "/internal/feed/head", None).await?;
        Ok(head.last_id)
    }

    async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let path = format!("/internal/feed?after={after}&limit={limit}");
        self.json(Method::GET, &path, None).await
    }

    /// `resync_required` when retention no longer keeps them all.
    async fn room_changes(
        &self,
        room: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<Change>, ApiError> {
        let path = format!(
            "/internal/feed?room={room}&after={after}&through={through}&limit={HISTORY_PAGE_ROWS}"
        );
        match self.call(Method::GET, &path, None).await? {
            (StatusCode::OK, body) => {
                serde_json::from_slice(&body).map_err(|e| upstream(&path, e).into())
            }
            (StatusCode::GONE, body) => Err(resync_from(&body)
                .unwrap_or_else(|| refused(&path, StatusCode::GONE, &body).into())),
            (status, body) => Err(refused(&path, status, &body).into()),
        }
    }

    async fn prune_step(&self, policy: Retention, from_room: i64) -> Result<PruneStep, ApiError> {
        let body = serde_json::to_vec(&PruneRequest { policy, from_room })
            .map_err(|e| upstream("prune", e))?;
        Ok(self
            .json(Method::POST, "/internal/prune", Some(body))
            .await?)
    }

    /// Runs of messages in one request each (as far as the body limit
    /// allows), actions one by one, every answer in order.
    async fn write_batch(
        &self,
        writes: Vec<Write>,
        _window_ms: i64,
    ) -> Result<Vec<Result<Written, ApiError>>, StoreError> {
        let mut results = Vec::with_capacity(writes.len());
        let mut writes = writes.into_iter().peekable();
        while let Some(write) = writes.next() {
            match write {
                Write::Action(action) => {
                    results.push(self.apply(&action).await.map(Written::Applied))
                }
                Write::Message(room_id, draft) => {
                    let mut drafts = vec![(room_id, draft)];
                    while let Some(Write::Message(..)) = writes.peek() {
                        if let Some(Write::Message(room_id, draft)) = writes.next() {
                            drafts.push((room_id, draft));
                        }
                    }
                    let stored = self.insert_messages(&drafts).await?;
                    results.extend(stored.into_iter().map(|r| r.map(Written::Message)));
                }
            }
        }
        Ok(results)
    }

    async fn renew(&self, node: &str, lease_ms: i64) -> Result<LeaseState, StoreError> {
        let body = serde_json::to_vec(&LeaseRequest { lease_ms }).unwrap_or_default();
        let answer: LeaseAnswer = self
            .json(Method::PUT, &format!("/internal/nodes/{node}"), Some(body))
            .await?;
        Ok(answer.lease)
    }

    async fn drop_node(&self, node: &str) -> Result<(), StoreError> {
        self.send(Method::DELETE, &format!("/internal/nodes/{node}"), None)
            .await
    }

    async fn join(
        &self,
        node: &str,
        sid: &str,
        room: i64,
        username: &str,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_vec(&PresenceEntry {
            username: username.to_owned(),
        })
        .unwrap_or_default();
        let path = format!("/internal/nodes/{node}/presence/{sid}/{room}");
        self.send(Method::PUT, &path, Some(body)).await
    }

    async fn leave(&self, node: &str, sid: &str, room: i64) -> Result<(), StoreError> {
        let path = format!("/internal/nodes/{node}/presence/{sid}/{room}");
        self.send(Method::DELETE, &path, None).await
    }

    async fn disconnect_all(&self, node: &str, sids: &[String]) -> Result<(), StoreError> {
        let path = format!("/internal/nodes/{node}/departures");
        for chunk in sids.chunks(DEPARTURES_MAX) {
            let body = serde_json::to_vec(&Departures {
                sids: chunk.to_vec(),
            })
            .unwrap_or_default();
            self.send(Method::POST, &path, Some(body)).await?;
        }
        Ok(())
    }
}
