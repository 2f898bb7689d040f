//! `AddressLimits`: limits per client address in the native front (docs/protocol.md
//! §7): Socket.IO connections open at once, REST writes per minute, and
//! room creations per hour. Each is off unless configured, because behind a
//! proxy every client shares the proxy's address; the client's address is
//! then taken from `X-Forwarded-For` (its last entry, the one the proxy
//! added), but only when that header is configured as trusted.
//!
//! A refused request gets `429` `rate_limited` with `Retry-After`, before
//! it reaches Socket.IO or the component. A Socket.IO handshake takes a
//! [`ConnectionSlot`] for its address, which the connection holds until it
//! closes (see `events`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chatroom_core::ApiError;

/// What is limited per address; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressLimitsConfig {
    /// Socket.IO connections one address may hold open.
    pub connections: Option<usize>,
    /// REST writes (any method but `GET`, `HEAD`, `OPTIONS`) per minute.
    pub writes_per_minute: Option<u32>,
    /// Room creations (`POST .../chatrooms`) per hour.
    pub rooms_per_hour: Option<u32>,
    /// Take the client's address from `X-Forwarded-For` (last entry).
    pub trust_forwarded_for: bool,
}

impl AddressLimitsConfig {
    fn any(&self) -> bool {
        self.connections.is_some()
            || self.writes_per_minute.is_some()
            || self.rooms_per_hour.is_some()
    }
}

/// The address a request is counted against, for handlers behind the
/// middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// A live Socket.IO connection of one address; dropping it frees the slot.
#[derive(Debug, Clone)]
pub struct ConnectionSlot {
    _held: Arc<SlotInner>,
}

#[derive(Debug)]
struct SlotInner {
    address: IpAddr,
    limits: Arc<Tables>,
}

impl Drop for SlotInner {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock();
        if let Some(count) = open.get(&self.address)
            && count.fetch_sub(1, Ordering::AcqRel) <= 1
        {
            open.remove(&self.address);
        }
    }
}

/// A token bucket per address: `capacity` tokens, refilled evenly over
/// `period` (governor's keyed GCRA limiter).
struct Buckets {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets")
            .field("addresses", &self.limiter.len())
            .finish()
    }
}

/// Addresses kept before idle (full) buckets are forgotten.
const PRUNE_AT: usize = 10_000;

impl Buckets {
    fn new(capacity: u32, period: Duration) -> Self {
        let capacity = NonZeroU32::new(capacity.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period / capacity.get())
            .unwrap_or_else(|| Quota::per_second(capacity))
            .allow_burst(capacity);
        Buckets {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token for `address`; `Err(wait)` when there is none.
    fn take(&self, address: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() >= PRUNE_AT {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[derive(Debug, Default)]
struct Tables {
    open: Mutex<HashMap<IpAddr, Arc<AtomicUsize>>>,
}

/// The limits and their counts, shared by every request.
#[derive(Debug, Clone)]
pub struct AddressLimits {
    config: AddressLimitsConfig,
    tables: Arc<Tables>,
    writes: Option<Arc<Buckets>>,
    rooms: Option<Arc<Buckets>>,
}

impl AddressLimits {
    pub fn new(config: AddressLimitsConfig) -> Self {
        AddressLimits {
            config,
            tables: Arc::default(),
            writes: config
                .writes_per_minute
                .map(|n| Arc::new(Buckets::new(n, Duration::from_secs(60)))),
            rooms: config
                .rooms_per_hour
                .map(|n| Arc::new(Buckets::new(n, Duration::from_secs(3600)))),
        }
    }

    /// A slot for one more connection of `address`, if it has one left.
    fn open_slot(&self, address: IpAddr) -> Option<ConnectionSlot> {
        let max = self.config.connections?;
        let mut open = self.tables.open.lock();
        let count = open.entry(address).or_default();
        if count.load(Ordering::Acquire) >= max {
            return None;
        }
        count.fetch_add(1, Ordering::AcqRel);
        Some(ConnectionSlot {
            _held: Arc::new(SlotInner {
                address,
                limits: self.tables.clone(),
            }),
        })
    }

    /// The client's address: the peer's, or the last `X-Forwarded-For`
    /// entry when that header is trusted and readable.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        if self.config.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
    }
}

/// Whether `req` opens a new Socket.IO session (an Engine.IO handshake:
/// no `sid` yet, over polling or websocket).
fn is_handshake(req: &Request) -> bool {
    crate::is_socket_io(req.uri().path())
        && !req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .any(|pair| pair.starts_with("sid="))
}

/// Whether `req` is a REST write.
fn is_write(req: &Request) -> bool {
    !crate::is_socket_io(req.uri().path())
        && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether `req` creates a room.
fn creates_room(req: &Request) -> bool {
    req.method() == Method::POST
        && req
            .uri()
            .path()
            .trim_end_matches('/')
            .ends_with("/chatrooms")
}

fn too_many(wait: Duration) -> Response {
    crate::error::response_retry_after(&ApiError::RateLimited, Some(wait))
        .map(axum::body::Body::from)
        .into_response()
}

/// How long a client turned away for too many connections should wait.
const CONNECTIONS_RETRY: Duration = Duration::from_secs(5);

/// The middleware: counts and refuses, then passes the request on with
/// its [`ClientAddress`] (and a [`ConnectionSlot`] for a handshake).
pub async fn limit(State(limits): State<AddressLimits>, mut req: Request, next: Next) -> Response {
    if !limits.config.any() {
        return next.run(req).await;
    }
    let Some(address) = limits.client(&req) else {
        return next.run(req).await;
    };
    req.extensions_mut().insert(ClientAddress(address));
    if limits.config.connections.is_some() && is_handshake(&req) {
        match limits.open_slot(address) {
            Some(slot) => {
                req.extensions_mut().insert(slot);
            }
            None => {
                tracing::debug!(%address, "connection refused: too many from this address");
                return too_many(CONNECTIONS_RETRY);
            }
        }
    }
    if is_write(&req) {
        if let Some(writes) = &limits.writes
            && let Err(wait) = writes.take(address)
        {
            tracing::debug!(%address, "write refused: rate limited");
            return too_many(wait);
        }
        if creates_room(&req)
            && let Some(rooms) = &limits.rooms
            && let Err(wait) = rooms.take(address)
        {
            tracing::debug!(%address, "room creation refused: rate limited");
            return too_many(wait);
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_evenly_and_say_how_long_to_wait() {
        let b = Buckets::new(2, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(b.take(a).is_ok());
        assert!(b.take(a).is_ok());
        let wait = b.take(a).unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(b.take(other).is_ok(), "addresses are counted apart");
    }

    #[test]
    fn connection_slots_are_counted_until_dropped() {
        let limits = AddressLimits::new(AddressLimitsConfig {
            connections: Some(2),
            ..Default::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limits.open_slot(a).unwrap();
        let second = limits.open_slot(a).unwrap();
        assert!(limits.open_slot(a).is_none());
        drop(first);
        let third = limits.open_slot(a).unwrap();
        drop((second, third));
        assert!(limits.tables.open.lock().is_empty());
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted() {
        let mut req = Request::new(axum::body::Body::empty());
        req.headers_mut().insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        req.extensions_mut()
            .insert(ConnectInfo("127.0.0.1:5000".parse::<SocketAddr>().unwrap()));
        let untrusted = AddressLimits::new(AddressLimitsConfig::default());
        assert_eq!(untrusted.client(&req), Some("127.0.0.1".parse().unwrap()));
        let trusted = AddressLimits::new(AddressLimitsConfig {
            trust_forwarded_for: true,
            ..Default::default()
        });
        assert_eq!(trusted.client(&req), Some("198.51.100.7".parse().unwrap()));
    }
}
