//! `TypingBoard`: who is typing in which room, for the `typing` event.
//!
//! Typing is not history: nothing of it is stored, and it never touches
//! the database. A connection's `typing` (`{"room_id", "typing": true}`)
//! is announced to the room's other members as `typing` `{"room_id",
//! "username", "typing": true}`, at most once per [`THROTTLE`] while it
//! keeps refreshing; `{"typing": false}`, leaving the room, disconnecting,
//! or [`EXPIRY`] without a refresh announce `"typing": false`. In edge mode
//! with Redis the announcements reach the other sidecars' members too (the
//! presence relay), best effort: a client should also forget a typist it
//! has not heard from for a few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use std::time::Duration;

use chatroom_core::{ServerEvent, TypingNotice};
use socketioxide::socket::Sid;
use tokio::time::Instant;

use crate::rooms::RoomRegistry;

/// A typist's `typing: true` is announced again at most this often.
pub const THROTTLE: Duration = Duration::from_secs(2);
/// Without a refresh for this long, a typist has stopped.
pub const EXPIRY: Duration = Duration::from_secs(5);

/// One connection typing in one room.
struct Typist {
    username: String,
    announced: Instant,
    refreshed: Instant,
}

/// Who is typing where, on this sidecar.
pub struct TypingBoard {
    typists: Mutex<HashMap<(i64, Sid), Typist>>,
    rooms: Weak<RoomRegistry>,
    me: Weak<TypingBoard>,
}

impl TypingBoard {
    /// A board announcing through `rooms`.
    pub fn new(rooms: &Arc<RoomRegistry>) -> Arc<Self> {
        Arc::new_cyclic(|me| TypingBoard {
            typists: Mutex::new(HashMap::new()),
            rooms: Arc::downgrade(rooms),
            me: me.clone(),
        })
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<(i64, Sid), Typist>> {
        self.typists.lock()
    }

    /// `sid` (as `username`) is typing in `room_id`; whether that was
    /// announced (not within the throttle of the last announcement).
    pub fn typing(&self, room_id: i64, sid: Sid, username: &str) -> bool {
        let now = Instant::now();
        let (announce, watch) = {
            let mut typists = self.lock();
            match typists.get_mut(&(room_id, sid)) {
                Some(typist) => {
                    typist.refreshed = now;
                    let due = now.duration_since(typist.announced) >= THROTTLE;
                    if due {
                        typist.announced = now;
                    }
                    (due, false)
                }
                None => {
                    typists.insert(
                        (room_id, sid),
                        Typist {
                            username: username.to_owned(),
                            announced: now,
                            refreshed: now,
                        },
                    );
                    (true, true)
                }
            }
        };
        if announce {
            self.announce(room_id, sid, username, true);
        }
        if watch && let Some(board) = self.me.upgrade() {
            tokio::spawn(board.expire(room_id, sid));
        }
        announce
    }

    /// `sid` stopped typing in `room_id` (said so, left, or went away);
    /// announced if it was typing.
    pub fn stopped(&self, room_id: i64, sid: Sid) {
        let gone = self.lock().remove(&(room_id, sid));
        if let Some(typist) = gone {
            self.announce(room_id, sid, &typist.username, false);
        }
    }

    /// `sid` stopped typing everywhere (a disconnect).
    pub fn stopped_everywhere(&self, sid: Sid) {
        let rooms: Vec<i64> = self
            .lock()
            .keys()
            .filter(|(_, s)| *s == sid)
            .map(|(room, _)| *room)
            .collect();
        for room_id in rooms {
            self.stopped(room_id, sid);
        }
    }

    /// Waits until the typist has gone [`EXPIRY`] without a refresh, then
    /// stops it (unless it stopped meanwhile).
    async fn expire(self: Arc<Self>, room_id: i64, sid: Sid) {
        loop {
            let refreshed = match self.lock().get(&(room_id, sid)) {
                Some(typist) => typist.refreshed,
                None => return,
            };
            if refreshed.elapsed() >= EXPIRY {
                self.stopped(room_id, sid);
                return;
            }
            tokio::time::sleep_until(refreshed + EXPIRY).await;
        }
    }

    fn announce(&self, room_id: i64, sid: Sid, username: &str, typing: bool) {
        if let Some(rooms) = self.rooms.upgrade() {
            let event = ServerEvent::Typing(TypingNotice {
                room_id,
                username: username.to_owned(),
                typing,
            });
            rooms.announce_except(room_id, &event, sid);
        }
    }
}
