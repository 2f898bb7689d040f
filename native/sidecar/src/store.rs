//! `ChatStore`: where the sidecar reads and writes chat data, whichever
//! mode it runs in. In file mode that is the shared SQLite file ([`Db`]);
//! in edge mode, the REST component's API ([`EdgeApi`]). The rest of the
//! sidecar (events, tail, presence) is the same in both.

use std::sync::Arc;

use chatroom_core::internal::LeaseState;
use chatroom_core::limits::HISTORY_PAGE_ROWS;
use chatroom_core::{
    ApiError, HistoryPages, Message, MessageDraft, MessagePage, PageDirection, StoreError,
    find_room, insert_messages, latest_message_id, messages_after, presence,
};

use crate::db::Db;
use crate::edge::EdgeApi;

#[derive(Clone)]
pub enum ChatStore {
    File(Db),
    Edge(Arc<EdgeApi>),
}

impl ChatStore {
    /// Whether room `id` exists.
    pub async fn room_exists(&self, id: i64) -> Result<bool, StoreError> {
        match self {
            ChatStore::File(db) => db.run(move |c| find_room(c, id)).await.map(|r| r.is_some()),
            ChatStore::Edge(api) => api.room_exists(id).await,
        }
    }

    /// The newest message id (0 when there is none).
    pub async fn latest_message_id(&self) -> Result<i64, StoreError> {
        match self {
            ChatStore::File(db) => db.run(latest_message_id).await,
            ChatStore::Edge(api) => api.latest_message_id().await,
        }
    }

    /// Up to `limit` messages of any room after `after`, in id order.
    pub async fn messages_after(&self, after: i64, limit: i64) -> Result<Vec<Message>, StoreError> {
        match self {
            ChatStore::File(db) => db.run(move |c| messages_after(c, after, limit)).await,
            ChatStore::Edge(api) => api.messages_after(after, limit).await,
        }
    }

    /// The oldest page (at most [`HISTORY_PAGE_ROWS`]) of room `room`'s
    /// messages with ids in `(after, before)`, in id order.
    pub async fn room_page(
        &self,
        room: i64,
        after: i64,
        before: i64,
    ) -> Result<Vec<Message>, StoreError> {
        match self {
            ChatStore::File(db) => {
                let page = MessagePage {
                    after,
                    before,
                    limit: Some(HISTORY_PAGE_ROWS),
                    direction: PageDirection::Oldest,
                };
                let mut pages = HistoryPages::new(room, page);
                db.run(move |c| pages.next_page(c).map(Option::unwrap_or_default))
                    .await
            }
            ChatStore::Edge(api) => api.room_page(room, after, before).await,
        }
    }

    /// Stores the drafts in order, each with its own answer.
    pub async fn insert_messages(
        &self,
        drafts: Vec<(i64, MessageDraft)>,
    ) -> Result<Vec<Result<Message, ApiError>>, StoreError> {
        match self {
            ChatStore::File(db) => db.write(move |c| insert_messages(c, &drafts)).await,
            ChatStore::Edge(api) => api.insert_messages(&drafts).await,
        }
    }

    /// Takes or renews `node`'s presence lease.
    pub async fn renew(&self, node: &str, lease_ms: i64) -> Result<LeaseState, StoreError> {
        match self {
            ChatStore::File(db) => {
                let node = node.to_owned();
                let lease = db
                    .write(move |c| presence::renew(c, &node, lease_ms))
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
                db.write(move |c| presence::drop_node(c, &node)).await
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
                db.write(move |c| presence::join(c, &node, &sid, room, &name))
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
                db.write(move |c| presence::leave(c, &sid, room).map(drop))
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
                db.write(move |c| presence::disconnect(c, &sid).map(drop))
                    .await
            }
            ChatStore::Edge(api) => api.disconnect(node, sid).await,
        }
    }
}
