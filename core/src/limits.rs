//! The limits of the contract (docs/protocol.md §2), in one place.

/// Room names: characters after trimming.
pub const ROOM_NAME_MAX_CHARS: usize = 100;
/// Sender names: characters after trimming.
pub const SENDER_MAX_CHARS: usize = 64;
/// A `client_id` (or `Idempotency-Key`), in ASCII characters.
pub const CLIENT_ID_MAX_CHARS: usize = 64;
/// How long a `client_id` is remembered: a repeat within it is the same
/// message; after it, the key may name a new one (24 hours).
pub const CLIENT_ID_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Message text: characters.
pub const CONTENT_MAX_CHARS: usize = 4000;
/// A request body larger than this is refused with `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of a body over [`MAX_BODY_BYTES`] is read and thrown away
/// before the `413`, so a client still sending reads the answer instead of
/// a reset connection (the component does it under any Spin host; the
/// project's fronts do it for every refused body). Beyond it, or for a
/// body declared larger, the connection may be reset.
pub const DISCARD_BYTES: usize = 64 * 1024 * 1024;
/// Largest `limit` accepted when paging messages.
pub const PAGE_LIMIT_MAX: i64 = 1000;
/// Rows read per query when a whole history is streamed; keeps every single
/// query result far below Spin's 128 MiB cap (1000 × 16 KiB at most).
pub const HISTORY_PAGE_ROWS: i64 = 1000;
/// Distinct emoji on one message; a new one beyond it is `409`
/// `too_many_reactions` (adding to an emoji already there always works).
pub const REACTION_KINDS_MAX: i64 = 20;
/// A reaction's short name (`:name:`): characters between the colons.
pub const EMOJI_NAME_MAX_CHARS: usize = 32;
/// A reaction that is one grapheme cluster: bytes (long ZWJ sequences fit).
pub const EMOJI_MAX_BYTES: usize = 64;
/// Retention (docs/protocol.md §4.6) never prunes a change younger than
/// this, whatever the policy: every sidecar's tail has delivered it long
/// before (the safety poll is at most 30 s), so pruning never takes a
/// change from under live delivery.
pub const RETENTION_FLOOR_MS: i64 = 60 * 1000;
/// Change-log rows pruned per transaction: each batch holds the write lock
/// for a few milliseconds at most.
pub const PRUNE_BATCH_ROWS: i64 = 500;
/// Rooms one pruning step looks at before it gives the write lock back.
pub const PRUNE_ROOMS_PER_STEP: i64 = 64;
/// Connections one `POST /internal/nodes/{node}/departures` may unlist
/// (a sidecar's departures are sent in batches of at most this many).
pub const DEPARTURES_MAX: usize = 1000;
