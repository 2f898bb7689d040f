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
