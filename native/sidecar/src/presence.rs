//! `PresenceStore`: the `presence` rows behind `GET /chatrooms/{id}/users`,
//! written by the sidecar as sockets join, leave and go. Rows are keyed by
//! the connection's public id.

use chatroom_core::{StoreError, presence};

use crate::db::Db;

#[derive(Clone)]
pub struct PresenceStore {
    db: Db,
}

impl PresenceStore {
    pub fn new(db: Db) -> Self {
        PresenceStore { db }
    }

    /// Lists `username` in `room_id` for connection `public_id`.
    pub async fn join(
        &self,
        public_id: &str,
        room_id: i64,
        username: &str,
    ) -> Result<(), StoreError> {
        let (id, name) = (public_id.to_owned(), username.to_owned());
        self.db
            .write(move |c| presence::join(c, &id, room_id, &name))
            .await
    }

    /// Unlists connection `public_id` in `room_id`.
    pub async fn leave(&self, public_id: &str, room_id: i64) -> Result<(), StoreError> {
        let id = public_id.to_owned();
        self.db
            .write(move |c| presence::leave(c, &id, room_id).map(drop))
            .await
    }

    /// Unlists connection `public_id` everywhere (a failure is logged: the
    /// departure itself cannot be refused).
    pub async fn forget(&self, public_id: &str) {
        let id = public_id.to_owned();
        if let Err(e) = self
            .db
            .write(move |c| presence::disconnect(c, &id).map(drop))
            .await
        {
            tracing::warn!(error = %e, "could not clear presence");
        }
    }

    /// Unlists everyone: a (re)started sidecar has no connections yet.
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.db.write(presence::clear).await
    }
}
