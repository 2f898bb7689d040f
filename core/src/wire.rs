//! The JSON shapes on the wire, shared by REST responses and Socket.IO events.

use serde::{Deserialize, Serialize};

/// A chat room: `{"id", "name", "created_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

/// A stored message: `{"id", "room_id", "sender", "content", "timestamp"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: i64,
    pub room_id: i64,
    pub sender: String,
    pub content: String,
    pub timestamp: String,
}

/// Who is in a room: distinct usernames in order of joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUsers {
    pub room_id: i64,
    pub user_count: usize,
    pub users: Vec<String>,
}

/// The REST error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub detail: String,
    pub code: &'static str,
}

/// The internal API of edge mode (SPEC §6): what the component and the
/// edge-mode sidecars say to each other, behind the deployment's token.
pub mod internal {
    use super::Message;
    use serde::{Deserialize, Serialize};

    /// The path prefix of the internal API.
    pub const PREFIX: &str = "/internal";
    /// Where new messages are announced on Redis unless configured.
    pub const DEFAULT_CHANNEL: &str = "chatroom:messages";

    /// `GET /internal/feed/head`: the newest message id (0 for none).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FeedHead {
        pub last_id: i64,
    }

    /// `PUT /internal/nodes/{node}`: take or renew a presence lease.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LeaseRequest {
        pub lease_ms: i64,
    }

    /// Its answer: `renewed` while the lease held, `taken` when the node
    /// had none (or it had run out, and its rows may be gone).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LeaseAnswer {
        pub lease: LeaseState,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum LeaseState {
        Renewed,
        Taken,
    }

    /// `PUT /internal/nodes/{node}/presence/{sid}/{room_id}`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PresenceEntry {
        pub username: String,
    }

    /// One element of `POST /internal/messages` (an array of them, stored
    /// in order in one transaction).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Draft {
        pub room_id: i64,
        pub sender: String,
        pub message: String,
    }

    /// The answer for one draft: the stored message, or why not.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Outcome {
        pub ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<Message>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detail: Option<String>,
    }
}
