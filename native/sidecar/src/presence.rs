//! `PresenceStore`: the presence rows behind `GET /chatrooms/{id}/users`,
//! written as sockets join, leave and go, under this sidecar's node id and
//! a lease it keeps renewing (docs/protocol.md §6). Rows are keyed by the connection's
//! public id.
//!
//! The lease is what makes several sidecars safe: a sidecar only ever
//! drops its own node's rows, and the rows of one that died stop counting
//! when its lease runs out. A sidecar whose lease lapsed (cut off from the
//! store for longer than the lease) records its connections again.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chatroom_core::StoreError;
use chatroom_core::internal::LeaseState;

use crate::store::SharedStore;

#[derive(Clone)]
pub struct PresenceStore {
    store: SharedStore,
    node: Arc<str>,
    lease: Duration,
}

impl PresenceStore {
    pub fn new(store: SharedStore, node: &str, lease: Duration) -> Self {
        PresenceStore {
            store,
            node: node.into(),
            lease,
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Starts afresh: whatever an earlier process with this node id left
    /// is dropped, and the lease is taken.
    pub async fn start(&self) -> Result<(), StoreError> {
        self.store.drop_node(&self.node).await?;
        self.store
            .renew(&self.node, self.lease_ms())
            .await
            .map(drop)
    }

    /// Renews the lease every third of it, for as long as `rooms` lives;
    /// when the lease had lapsed, the memberships `listed` finds there
    /// (`(public id, room, username)`) are recorded again.
    pub fn keep_lease<R: Send + Sync + 'static>(
        &self,
        rooms: Weak<R>,
        listed: fn(&R) -> Vec<(String, i64, String)>,
    ) {
        let presence = self.clone();
        let every = self.lease / 3;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(rooms) = rooms.upgrade() else { return };
                match presence
                    .store
                    .renew(&presence.node, presence.lease_ms())
                    .await
                {
                    Ok(LeaseState::Renewed) => {}
                    Ok(LeaseState::Taken) => {
                        tracing::warn!(node = %presence.node, "presence lease had lapsed; recording connections again");
                        for (sid, room, username) in listed(&rooms) {
                            if let Err(e) = presence.join(&sid, room, &username).await {
                                tracing::warn!(error = %e, "could not record presence again");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew the presence lease; will retry");
                    }
                }
            }
        });
    }

    /// Lists `username` in `room_id` for connection `public_id`.
    pub async fn join(
        &self,
        public_id: &str,
        room_id: i64,
        username: &str,
    ) -> Result<(), StoreError> {
        self.store
            .join(&self.node, public_id, room_id, username)
            .await
    }

    /// Unlists connection `public_id` in `room_id`.
    pub async fn leave(&self, public_id: &str, room_id: i64) -> Result<(), StoreError> {
        self.store.leave(&self.node, public_id, room_id).await
    }

    /// Unlists connection `public_id` everywhere (a failure is logged: the
    /// departure itself cannot be refused; the lease sweeps it in the end).
    pub async fn forget(&self, public_id: &str) {
        if let Err(e) = self.store.disconnect(&self.node, public_id).await {
            tracing::warn!(error = %e, "could not clear presence");
        }
    }

    /// Unlists everyone this sidecar holds: it is going away.
    pub async fn drop_all(&self) -> Result<(), StoreError> {
        self.store.drop_node(&self.node).await
    }
}
