//! `PresenceStore`: the presence rows behind `GET /chatrooms/{id}/users`,
//! written as sockets join, leave and go, under this sidecar's node id and
//! a lease it keeps renewing (docs/protocol.md §6). Rows are keyed by the connection's
//! public id.
//!
//! The lease is what makes several sidecars safe: a sidecar only ever
//! drops its own node's rows, and the rows of one that died stop counting
//! when its lease runs out. A sidecar whose lease lapsed (cut off from the
//! store for longer than the lease) records its connections again.
//!
//! Departures are unlisted in batches, as writes are committed: while one
//! batch is being unlisted the next gathers, so a thousand connections
//! closing at once (a client fleet's network going away) cost a few calls
//! to the store instead of a thousand at the same moment, which at the edge
//! timed out and left the departed listed as long as this sidecar lived.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chatroom_core::StoreError;
use chatroom_core::internal::LeaseState;
use chatroom_core::limits::DEPARTURES_MAX;
use tokio::sync::{mpsc, oneshot};

use crate::store::SharedStore;

/// A departed connection's public id, and who waits until it is unlisted.
type Departure = (String, oneshot::Sender<Result<(), StoreError>>);

#[derive(Clone)]
pub struct PresenceStore {
    store: SharedStore,
    node: Arc<str>,
    lease: Duration,
    departures: mpsc::UnboundedSender<Departure>,
}

impl PresenceStore {
    /// A presence store for `node`; its departures are unlisted by a task
    /// that lives as long as the store's clones.
    pub fn new(store: SharedStore, node: &str, lease: Duration) -> Self {
        let node: Arc<str> = node.into();
        let (departures, queue) = mpsc::unbounded_channel();
        tokio::spawn(unlist_departures(store.clone(), node.clone(), queue));
        PresenceStore {
            store,
            node,
            lease,
            departures,
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

    /// Unlists connection `public_id` everywhere, with whatever other
    /// departures are waiting, and returns once it is. A failure is
    /// logged, as the departure itself cannot be refused; the row then
    /// stays until this node's rows go (its lease lapses, or it restarts
    /// and drops them).
    pub async fn forget(&self, public_id: &str) {
        let (done, unlisted) = oneshot::channel();
        let stopped = || {
            Err(StoreError::Database(
                "the departures task has stopped".into(),
            ))
        };
        let result = match self.departures.send((public_id.to_owned(), done)) {
            Ok(()) => unlisted.await.unwrap_or_else(|_| stopped()),
            Err(_) => stopped(),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not clear presence");
        }
    }

    /// Unlists everyone this sidecar holds: it is going away.
    pub async fn drop_all(&self) -> Result<(), StoreError> {
        self.store.drop_node(&self.node).await
    }
}

/// Unlists the departures `queue` brings, each batch all that waited (up
/// to [`DEPARTURES_MAX`]) in one call, and tells each waiter how it went.
async fn unlist_departures(
    store: SharedStore,
    node: Arc<str>,
    mut queue: mpsc::UnboundedReceiver<Departure>,
) {
    let mut batch = Vec::with_capacity(DEPARTURES_MAX);
    while queue.recv_many(&mut batch, DEPARTURES_MAX).await > 0 {
        let sids: Vec<String> = batch.iter().map(|(sid, _)| sid.clone()).collect();
        let result = store.disconnect_all(&node, &sids).await;
        for (_, done) in batch.drain(..) {
            let _ = done.send(result.clone());
        }
    }
}
