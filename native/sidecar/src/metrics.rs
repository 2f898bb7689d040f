//! `SidecarMetrics`: what an operator watches (docs/protocol.md §8), served at
//! `/metrics` by the front ([`chatroom_front::metrics`]), counted with the
//! Prometheus project's own client crate.
//!
//! Counters are bumped where things happen (the registry's deliveries,
//! joins' replays, refused events, evictions); the gauges (connections,
//! joined sockets, rooms with members) are read from their owners at
//! scrape time, so they cannot drift.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry, Unit};

/// The label of a refused event: its error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

/// Every series of the sidecar.
pub struct SidecarMetrics {
    registry: Registry,
    connections: Gauge,
    joined_sockets: Gauge,
    rooms_with_members: Gauge,
    pub delivered: Counter,
    pub broadcast_lag: Histogram,
    pub replays: Counter,
    pub replayed: Counter,
    pub refused: Family<CodeLabel, Counter>,
    pub rate_limited: Counter,
    pub slow_disconnects: Counter,
}

/// A series' name (under the `chatroom_` prefix) and help.
type Series = (&'static str, &'static str);

const CONNECTIONS: Series = (
    "socketio_connections",
    "Socket.IO connections open on this sidecar",
);
const JOINED_SOCKETS: Series = (
    "joined_sockets",
    "Room memberships of this sidecar's sockets (a socket in two rooms counts twice)",
);
const ROOMS_WITH_MEMBERS: Series = (
    "rooms_with_members",
    "Rooms with at least one socket joined on this sidecar",
);
const DELIVERED: Series = (
    "messages_delivered",
    "change events (new_message, message_edited, message_deleted, reaction_added, reaction_removed) handed to sockets, live and replayed",
);
const REPLAYS: Series = ("replays", "Joins with `since` that replayed history");
const REPLAYED: Series = ("replayed_messages", "Messages sent by `since` replays");
const REFUSED: Series = (
    "events_refused",
    "Socket.IO events answered with an error, by error code",
);
const RATE_LIMITED: Series = (
    "rate_limited_events",
    "Socket.IO events refused by the per-connection rate limit",
);
const SLOW_DISCONNECTS: Series = (
    "slow_member_disconnects",
    "Sockets disconnected because they could not keep up",
);
const BROADCAST_LAG: Series = (
    "broadcast_lag",
    "From a message's commit (its timestamp) to its broadcast to the room's sockets",
);

/// `metric`, registered in `registry` as `series`; the handle to count
/// with.
fn registered<M: Metric + Clone>(registry: &mut Registry, (name, help): Series, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for SidecarMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chatroom");
        let r = &mut registry;
        let connections = registered(r, CONNECTIONS, Gauge::default());
        let joined_sockets = registered(r, JOINED_SOCKETS, Gauge::default());
        let rooms_with_members = registered(r, ROOMS_WITH_MEMBERS, Gauge::default());
        let delivered = registered(r, DELIVERED, Counter::default());
        // 0.5 ms to about 16 s.
        let broadcast_lag = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let (name, help) = BROADCAST_LAG;
        r.register_with_unit(name, help, Unit::Seconds, broadcast_lag.clone());
        let replays = registered(r, REPLAYS, Counter::default());
        let replayed = registered(r, REPLAYED, Counter::default());
        let refused = registered(r, REFUSED, Family::<CodeLabel, Counter>::default());
        let rate_limited = registered(r, RATE_LIMITED, Counter::default());
        let slow_disconnects = registered(r, SLOW_DISCONNECTS, Counter::default());
        SidecarMetrics {
            registry,
            connections,
            joined_sockets,
            rooms_with_members,
            delivered,
            broadcast_lag,
            replays,
            replayed,
            refused,
            rate_limited,
            slow_disconnects,
        }
    }
}

/// The figures read from their owners at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub connections: usize,
    pub joined_sockets: usize,
    pub rooms_with_members: usize,
}

fn as_gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SidecarMetrics {
    /// Counts an event refused with `code`.
    pub fn refuse(&self, code: &str) {
        self.refused
            .get_or_create(&CodeLabel {
                code: code.to_owned(),
            })
            .inc();
        if code == "rate_limited" {
            self.rate_limited.inc();
        }
    }

    /// Observes the lag of a message stamped `timestamp` (RFC 3339), now.
    pub fn observe_lag(&self, timestamp: &str) {
        if let Ok(committed) = humantime::parse_rfc3339(timestamp) {
            let lag = SystemTime::now()
                .duration_since(committed)
                .unwrap_or(Duration::ZERO);
            self.broadcast_lag.observe(lag.as_secs_f64());
        }
    }

    /// The exposition, with the gauges set from `now`.
    pub fn render(&self, now: Snapshot) -> Response {
        self.connections.set(as_gauge(now.connections));
        self.joined_sockets.set(as_gauge(now.joined_sockets));
        self.rooms_with_members
            .set(as_gauge(now.rooms_with_members));
        chatroom_front::metrics::exposition(&self.registry)
    }
}

/// Shared by the sidecar's parts.
pub type Metrics = Arc<SidecarMetrics>;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use chatroom_front::metrics::CONTENT_TYPE;

    #[tokio::test]
    async fn renders_every_series_with_prometheus_names() {
        let m = SidecarMetrics::default();
        m.refuse("rate_limited");
        m.refuse("room_not_found");
        m.observe_lag("2020-01-01T00:00:00.000Z");
        let res = m.render(Snapshot {
            connections: 3,
            joined_sockets: 2,
            rooms_with_members: 1,
        });
        assert_eq!(res.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        for line in [
            "chatroom_socketio_connections 3",
            "chatroom_joined_sockets 2",
            "chatroom_rooms_with_members 1",
            "chatroom_messages_delivered_total 0",
            "chatroom_events_refused_total{code=\"rate_limited\"} 1",
            "chatroom_events_refused_total{code=\"room_not_found\"} 1",
            "chatroom_rate_limited_events_total 1",
            "chatroom_broadcast_lag_seconds_count 1",
            "# HELP chatroom_broadcast_lag_seconds From a message's commit",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}
