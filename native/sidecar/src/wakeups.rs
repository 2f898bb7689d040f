//! `RedisWakeups`: in edge mode, the component publishes each stored
//! message on a Redis channel (docs/protocol.md §6); this subscription wakes the
//! [`MessageTail`] for each one, so sockets get it at once. The same
//! subscription brings the other sidecars' presence events (`relay`).
//!
//! A publish is only a wake-up, never the message itself: the tail reads
//! the feed from its cursor, so a lost, late or repeated publish cannot
//! lose, repeat or reorder anything. While Redis is unreachable the tail's
//! poll carries delivery, and the subscription is retried; on every
//! (re)subscription the tail is woken once to catch up on what the
//! subscription may have missed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::RedisConfig;
use crate::relay::{PresenceRelay, Relayed, presence_channel};
use crate::rooms::RoomRegistry;
use crate::tail::MessageTail;
use chatroom_front::rest_upstream::tls_failure;

/// Pause between attempts to reach Redis.
const RETRY: Duration = Duration::from_secs(1);

/// The running subscription; dropping it stops it.
pub struct RedisWakeups {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RedisWakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Redis client for `config`: `rediss://` is TLS (rustls; the system's
/// roots, or `config.ca_pem`), `user:password@` authenticates.
pub fn client(config: &RedisConfig) -> Result<redis::Client, redis::RedisError> {
    match &config.ca_pem {
        Some(pem) if config.url.starts_with("rediss://") => redis::Client::build_with_tls(
            config.url.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        _ => redis::Client::open(config.url.as_str()),
    }
}

/// `url` with any password replaced, for logs.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("<secret>"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsable>".to_owned(),
    }
}

/// Why Redis could not be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RedisRefusal {
    /// The URL is not a Redis URL.
    #[error("--redis: {0}")]
    BadUrl(redis::RedisError),
    /// TLS failed: the server's certificate did not verify.
    #[error(
        "Redis's TLS certificate was refused ({0}); for a private CA pass --ca-file (or set SSL_CERT_FILE)"
    )]
    Tls(String),
    /// The server refused the credentials.
    #[error("Redis refused the credentials in --redis: {0}")]
    Auth(redis::RedisError),
}

/// Connects once and pings, at start-up: a bad URL, a refused certificate
/// or refused credentials are for the operator to fix and stop the start;
/// a server that is merely away is logged, and the subscription keeps
/// trying (the feed is polled meanwhile).
pub async fn check(config: &RedisConfig) -> Result<(), RedisRefusal> {
    let client = client(config).map_err(RedisRefusal::BadUrl)?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await
    };
    match tokio::time::timeout(CHECK_TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            if let Some(tls) = tls_failure(&e) {
                return Err(RedisRefusal::Tls(tls));
            }
            if e.kind() == redis::ErrorKind::AuthenticationFailed
                || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"))
            {
                return Err(RedisRefusal::Auth(e));
            }
            tracing::warn!(error = %e, "Redis unreachable at start-up; the feed is polled until it is back");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("Redis did not answer at start-up; the feed is polled until it does");
            Ok(())
        }
    }
}

/// How long the start-up check waits for Redis.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisWakeups {
    /// Subscribes to `config`'s channel, retrying for as long as it runs,
    /// and relays `rooms`' presence events as sidecar `node`.
    pub fn start(
        config: &RedisConfig,
        node: &str,
        tail: MessageTail,
        rooms: Arc<RoomRegistry>,
    ) -> Result<Self, redis::RedisError> {
        let client = client(config)?;
        let channel = config.channel.clone();
        rooms.relay_to(PresenceRelay::start(client.clone(), &channel, node));
        let task = tokio::spawn(async move {
            loop {
                match follow(&client, &channel, &tail, &rooms).await {
                    Ok(()) => tracing::warn!("Redis closed the subscription; resubscribing"),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis unavailable; the feed is polled meanwhile")
                    }
                }
                tokio::time::sleep(RETRY).await;
            }
        });
        Ok(RedisWakeups { task })
    }
}

/// Subscribes once and wakes the tail for every message, until the
/// connection ends.
async fn follow(
    client: &redis::Client,
    channel: &str,
    tail: &MessageTail,
    rooms: &RoomRegistry,
) -> Result<(), redis::RedisError> {
    let presence = presence_channel(channel);
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&[channel, presence.as_str()]).await?;
    tracing::info!(channel, "following Redis wake-ups");
    // Anything published before the subscription took is in the feed.
    tail.wake();
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        if msg.get_channel_name() != presence {
            tail.wake();
            continue;
        }
        match serde_json::from_slice::<Relayed>(msg.get_payload_bytes()) {
            Ok(relayed) => rooms.relayed(&relayed),
            Err(e) => tracing::debug!(error = %e, "ignoring a malformed presence event"),
        }
    }
    Ok(())
}
