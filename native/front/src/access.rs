//! `Access`: who may reach what, around whatever a binary mounts: CORS,
//! Socket.IO refused to browser origins not allowed ([`origin`]), and the
//! limits per client address ([`address_limits`]). [`AccessFlags`] are its
//! command-line flags, shared by `chatroom` and `chatroom-sidecar`.
//!
//! [`origin`]: crate::origin
//! [`address_limits`]: crate::address_limits

use axum::Router;
use axum::middleware::from_fn_with_state;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::address_limits::{self, AddressLimits, AddressLimitsConfig};
use crate::origin::{self, AllowedOrigins};

/// What [`Access`] allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// Origins allowed by CORS and to open Socket.IO connections; empty or
    /// `*` allows any.
    pub origins: Vec<String>,
    /// Limits per client address (docs/protocol.md §7), each off unless set.
    pub address_limits: AddressLimitsConfig,
}

/// The layers of [`AccessConfig`], made once: the per-address counts live
/// here, so every router it wraps shares them.
#[derive(Clone)]
pub struct Access {
    cors: CorsLayer,
    origins: AllowedOrigins,
    address_limits: AddressLimits,
}

impl Access {
    pub fn new(config: &AccessConfig) -> Self {
        Access {
            cors: cors(&config.origins),
            origins: AllowedOrigins::new(&config.origins),
            address_limits: AddressLimits::new(config.address_limits),
        }
    }

    /// `app` behind the request-target check (a path, never `*` or a
    /// URL), CORS, then the per-address limits, then the origin check (the
    /// order a request meets them in).
    pub fn around(&self, app: Router) -> Router {
        app.layer(from_fn_with_state(self.origins.clone(), origin::check))
            .layer(from_fn_with_state(
                self.address_limits.clone(),
                address_limits::limit,
            ))
            .layer(self.cors.clone())
            .layer(axum::middleware::from_fn(crate::forward::only_paths))
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let any = origins.is_empty() || origins.iter().any(|o| o == "*");
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(Any)
        .allow_headers(Any)
}

/// The access flags of the binaries that face browsers.
#[derive(Debug, Clone, clap::Args)]
pub struct AccessFlags {
    /// Origins allowed by CORS and to open Socket.IO connections (repeat,
    /// or comma-separated); `*` for any. Socket.IO requests from another
    /// browser origin get `403` `origin_not_allowed`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "*",
        env = "CHATROOM_CORS_ORIGINS"
    )]
    cors_origin: Vec<String>,
    /// Socket.IO connections one client address may hold open (`429`
    /// beyond); off unless set. Behind a proxy see --trust-forwarded-for.
    #[arg(long, env = "CHATROOM_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// REST writes one client address may make per minute (`429` with
    /// `Retry-After` beyond); off unless set.
    #[arg(long, env = "CHATROOM_WRITES_PER_MINUTE")]
    writes_per_minute: Option<u32>,
    /// Rooms one client address may create per hour; off unless set.
    #[arg(long, env = "CHATROOM_ROOMS_PER_HOUR")]
    rooms_per_hour: Option<u32>,
    /// Count clients by the last `X-Forwarded-For` entry (set this only
    /// behind a proxy that writes that header).
    #[arg(long, env = "CHATROOM_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
}

impl AccessFlags {
    /// What these flags allow.
    pub fn config(&self) -> AccessConfig {
        AccessConfig {
            origins: self.cors_origin.clone(),
            address_limits: AddressLimitsConfig {
                connections: self.max_connections_per_address,
                writes_per_minute: self.writes_per_minute,
                rooms_per_hour: self.rooms_per_hour,
                trust_forwarded_for: self.trust_forwarded_for,
            },
        }
    }
}
