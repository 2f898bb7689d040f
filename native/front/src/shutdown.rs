//! Stopping without dropping anyone: on SIGTERM or SIGINT (Ctrl-C) a
//! binary stops accepting connections, lets the requests in flight finish,
//! closes what it holds open (Socket.IO transports, so clients reconnect
//! elsewhere; presence), and exits. All of it within a grace period
//! (`--shutdown-grace-secs`, 10 s by default): whatever is still open
//! then is cut, so an orchestrator's kill never comes first when its own
//! grace period is longer (Kubernetes: 30 s).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The draining flag every binary has.
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownFlags {
    /// On SIGTERM or Ctrl-C: how long requests in flight may take to
    /// finish, in seconds, before the process exits anyway.
    #[arg(long, default_value_t = DEFAULT_GRACE.as_secs(), env = "CHATROOM_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: u64,
}

impl ShutdownFlags {
    /// The grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// A token cancelled on the first SIGTERM or SIGINT.
pub fn on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        signal().await;
        cancel.cancel();
    });
    stop
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: draining"),
        () = term => tracing::info!("SIGTERM: draining"),
    }
}

/// Runs `serving` (a server that stops accepting and finishes its
/// requests once `stop` is cancelled) and, once `stop` is cancelled,
/// `closing` (what else must be let go of). Returns when both are done,
/// or `grace` after the cancellation, whichever comes first. A server
/// that ends by itself (an error) cancels `stop`, so the rest is let go
/// of too.
pub async fn drain<E>(
    stop: &CancellationToken,
    grace: Duration,
    serving: impl Future<Output = Result<(), E>>,
    closing: impl Future<Output = ()>,
) -> Result<(), E> {
    let serving = async {
        let served = serving.await;
        stop.cancel();
        served
    };
    let closing = async {
        stop.cancelled().await;
        closing.await;
    };
    let both = async { tokio::join!(serving, closing).0 };
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = both => {
            tracing::info!("drained");
            result
        }
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over: exiting with connections still open");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_both_halves_but_no_longer_than_the_grace() {
        let stop = CancellationToken::new();
        stop.cancel();
        let started = tokio::time::Instant::now();
        let quick = drain::<()>(
            &stop,
            Duration::from_secs(10),
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            },
            tokio::time::sleep(Duration::from_secs(2)),
        );
        quick.await.unwrap();
        assert_eq!(started.elapsed().as_secs(), 2);

        let started = tokio::time::Instant::now();
        let stuck = drain::<()>(
            &stop,
            Duration::from_secs(10),
            std::future::pending(),
            async {},
        );
        stuck.await.unwrap();
        assert_eq!(started.elapsed().as_secs(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_fails_by_itself_still_closes_the_rest() {
        let stop = CancellationToken::new();
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = closed.clone();
        let run = drain(
            &stop,
            Duration::from_secs(10),
            async { Err("bind failed") },
            async move {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
            },
        );
        let ended = tokio::time::timeout(Duration::from_secs(60), run).await;
        assert_eq!(ended, Ok(Err("bind failed")));
        assert!(closed.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_closes_before_the_stop() {
        let stop = CancellationToken::new();
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = closed.clone();
        let run = drain::<()>(
            &stop,
            Duration::from_secs(10),
            std::future::pending(),
            async move {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
            },
        );
        let waited = tokio::time::timeout(Duration::from_secs(60), run).await;
        assert!(waited.is_err(), "drain returned before any stop");
        assert!(!closed.load(std::sync::atomic::Ordering::SeqCst));
    }
}
