//! Refusing a request body without resetting the connection.
//!
//! When a server answers before reading the whole body (a `413`, say) and
//! then closes, the bytes still arriving make the kernel reset the
//! connection, and a client still sending never reads the answer. So a
//! refused body is read to its end and thrown away, in the background,
//! while the answer goes out, up to [`DISCARD_LIMIT`] bytes and
//! [`DISCARD_TIME`]; past either the connection is closed after all. A
//! client that asked `Expect: 100-continue` and was never told to go on
//! has sent nothing, so there is nothing to discard.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// Bytes of a refused body read and thrown away at most (the REST
/// component's own bound, so every layout answers the same bodies).
pub const DISCARD_LIMIT: u64 = chatroom_core::limits::DISCARD_BYTES as u64;
/// How long a refused body is read at most.
pub const DISCARD_TIME: Duration = Duration::from_secs(10);

/// Reads the rest of `body` and throws it away, in the background, within
/// [`DISCARD_LIMIT`] and [`DISCARD_TIME`]. Needs a tokio runtime; without
/// one the body is simply dropped.
pub fn discard<B>(body: B)
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut body = std::pin::pin!(body);
        let mut seen = 0u64;
        let read = async {
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    seen = seen.saturating_add(data.remaining() as u64);
                    if seen > DISCARD_LIMIT {
                        return false;
                    }
                }
            }
            true
        };
        match tokio::time::timeout(DISCARD_TIME, read).await {
            Ok(true) => tracing::debug!(bytes = seen, "refused body discarded"),
            _ => tracing::debug!(bytes = seen, "refused body too long to discard; closing"),
        }
    });
}

/// Whether the request asked `Expect: 100-continue`.
pub fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// A request body that, when dropped before its end by whoever refused it,
/// has the rest [`discard`]ed. If it was never read and the client waits
/// for `100 Continue`, nothing is discarded (nothing was sent).
pub struct DiscardOnDrop<B: Body + Send + 'static>
where
    B::Data: Send,
{
    inner: Option<Pin<Box<B>>>,
    polled: bool,
    ended: bool,
    expects_continue: bool,
}

impl<B: Body + Send + 'static> DiscardOnDrop<B>
where
    B::Data: Send,
{
    /// Wraps `body`; `expects_continue` is [`expects_continue`] of its
    /// request's headers.
    pub fn new(body: B, expects_continue: bool) -> Self {
        DiscardOnDrop {
            inner: Some(Box::pin(body)),
            polled: false,
            ended: false,
            expects_continue,
        }
    }
}

impl<B: Body + Send + 'static> Body for DiscardOnDrop<B>
where
    B::Data: Send,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.polled = true;
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = inner.as_mut().poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B: Body + Send + 'static> Drop for DiscardOnDrop<B>
where
    B::Data: Send,
{
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let unsent = !self.polled && self.expects_continue;
        if self.ended || unsent || inner.is_end_stream() {
            return;
        }
        discard(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A body of `chunks` chunks of 1 KiB that counts what was read.
    struct Counted {
        left: u32,
        read: Arc<AtomicU64>,
    }

    impl Body for Counted {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            self.read.fetch_add(1024, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(bytes::Bytes::from(vec![0u8; 1024])))))
        }
    }

    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_body_dropped_half_read_is_read_to_its_end() {
        let read = Arc::new(AtomicU64::new(0));
        let mut body = DiscardOnDrop::new(
            Counted {
                left: 100,
                read: read.clone(),
            },
            false,
        );
        body.frame().await.unwrap().unwrap();
        drop(body);
        settle().await;
        assert_eq!(read.load(Ordering::SeqCst), 100 * 1024);
    }

    #[tokio::test]
    async fn discarding_stops_at_the_limit() {
        let read = Arc::new(AtomicU64::new(0));
        let chunks = u32::try_from(DISCARD_LIMIT / 1024).unwrap() + 1000;
        discard(Counted {
            left: chunks,
            read: read.clone(),
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = read.load(Ordering::SeqCst);
        assert!(n > DISCARD_LIMIT && n <= DISCARD_LIMIT + 1024, "{n}");
    }

    #[tokio::test]
    async fn an_unread_body_awaiting_100_continue_is_left_alone() {
        let read = Arc::new(AtomicU64::new(0));
        drop(DiscardOnDrop::new(
            Counted {
                left: 100,
                read: read.clone(),
            },
            true,
        ));
        settle().await;
        assert_eq!(read.load(Ordering::SeqCst), 0);
        // Without the Expect header the same body is discarded.
        drop(DiscardOnDrop::new(
            Counted {
                left: 100,
                read: read.clone(),
            },
            false,
        ));
        settle().await;
        assert_eq!(read.load(Ordering::SeqCst), 100 * 1024);
    }
}
