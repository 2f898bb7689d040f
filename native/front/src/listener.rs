//! `FrontListener`: the TCP listener every chatroom binary serves on, with
//! the limits a public listener needs. At most
//! [`FrontLimits::max_connections`] connections are open at once (further
//! clients wait in the kernel's backlog until one closes); a connection on
//! which nothing is read or written for [`FrontLimits::idle_timeout`] is
//! closed (a half-sent request head, a stalled body; live Socket.IO
//! connections exchange a ping every 25 s and never go idle that long); and
//! accept errors back off (axum's own listener pauses after each one).
//! Once a connection is upgraded to a websocket, the client's bytes pass
//! through the server's [`UpgradedReads`] (the sidecar's check of Socket.IO
//! event names) before the server reads them, and the idle timer is
//! dropped: Engine.IO's heartbeat watches a websocket from then on (a
//! client that stops answering its pings is closed within the ping
//! interval and timeout), and an idle websocket costs a timer less.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::{Listener, ListenerExt, TapIo};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// What reads the client's bytes on an upgraded connection (once the
/// server answered `101 Switching Protocols`) before the server does.
pub trait UpgradedReads: Send + 'static {
    /// Takes bytes read from the client.
    fn push(&mut self, bytes: &[u8]);
    /// The bytes ready for the server.
    fn ready(&mut self) -> &mut BytesMut;
    /// At the end of the stream: whatever was held back.
    fn finish(&mut self);
}

/// Makes the [`UpgradedReads`] of each upgraded connection.
pub type UpgradedReadsFactory = fn() -> Box<dyn UpgradedReads>;

/// Copies ready bytes into a read buffer; how many. Once `ready` is
/// drained its buffer is freed (an idle connection holds none).
pub fn drain_into(ready: &mut BytesMut, buf: &mut ReadBuf<'_>) -> usize {
    let n = ready.len().min(buf.remaining());
    buf.put_slice(&ready[..n]);
    ready.advance(n);
    if ready.is_empty() {
        *ready = BytesMut::new();
    }
    n
}

/// The limits of the front listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Default for FrontLimits {
    fn default() -> Self {
        FrontLimits {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A TCP listener within [`FrontLimits`]; serve it with `axum::serve`.
pub struct FrontListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle_timeout: Duration,
    upgraded: Option<UpgradedReadsFactory>,
}

/// The listener to hand to `axum::serve`; upgraded connections' reads pass
/// through what `upgraded` makes, if anything. Each connection is tapped to
/// set `TCP_NODELAY`, which also lets routers read `ConnectInfo<SocketAddr>`
/// (axum provides that for tapped listeners).
pub fn listen(
    inner: TcpListener,
    limits: FrontLimits,
    upgraded: Option<UpgradedReadsFactory>,
) -> TapIo<FrontListener, fn(&mut FrontStream)> {
    FrontListener {
        inner,
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        idle_timeout: limits.idle_timeout,
        upgraded,
    }
    .tap_io(FrontStream::set_nodelay)
}

impl Listener for FrontListener {
    type Io = FrontStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed.
        let permit = loop {
            if let Ok(permit) = self.slots.clone().acquire_owned().await {
                break permit;
            }
        };
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let idle = Some(Box::pin(tokio::time::sleep(self.idle_timeout)));
        let io = FrontStream {
            stream,
            idle,
            timeout: self.idle_timeout,
            upgraded: self.upgraded,
            guard: None,
            eof: false,
            _permit: permit,
        };
        (io, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One accepted connection: it holds its slot until dropped, and fails
/// with `TimedOut` once idle too long.
pub struct FrontStream {
    stream: TcpStream,
    /// `None` once upgraded to a websocket.
    idle: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    upgraded: Option<UpgradedReadsFactory>,
    /// Set once the server answered `101 Switching Protocols`, if the
    /// server reads upgraded connections through anything.
    guard: Option<Box<dyn UpgradedReads>>,
    eof: bool,
    _permit: OwnedSemaphorePermit,
}

impl FrontStream {
    fn set_nodelay(&mut self) {
        let _ = self.stream.set_nodelay(true);
    }

    /// Notes a write of the server's `101` answer: from now on the client
    /// speaks websocket frames, and Engine.IO's heartbeat keeps time.
    fn saw_written(&mut self, head: &[u8]) {
        if self.idle.is_some() && head.starts_with(b"HTTP/1.1 101") {
            self.guard = self.upgraded.map(|make| make());
            self.idle = None;
        }
    }

    /// A read through the frame guard.
    fn poll_read_guarded(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let Some(guard) = self.guard.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if !guard.ready().is_empty() || self.eof {
                drain_into(guard.ready(), buf);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            let io = Pin::new(&mut self.stream).poll_read(cx, &mut read);
            match self.watch(cx, io) {
                Poll::Ready(Ok(())) => {
                    let Some(guard) = self.guard.as_mut() else {
                        return Poll::Ready(Ok(()));
                    };
                    if read.filled().is_empty() {
                        guard.finish();
                        self.eof = true;
                    } else {
                        guard.push(read.filled());
                    }
                }
                other => return other,
            }
        }
    }

    fn active(&mut self) {
        if let Some(idle) = self.idle.as_mut() {
            idle.as_mut().reset(Instant::now() + self.timeout);
        }
    }

    /// After a read or write: progress resets the idle timer; waiting
    /// fails once the connection has been idle too long.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        io: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match io {
            Poll::Ready(result) => {
                self.active();
                Poll::Ready(result)
            }
            Poll::Pending => match self.idle.as_mut().map(|idle| idle.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
                Some(Poll::Pending) | None => Poll::Pending,
            },
        }
    }
}

impl AsyncRead for FrontStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.guard.is_some() {
            return self.poll_read_guarded(cx, buf);
        }
        let io = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.watch(cx, io)
    }
}

impl AsyncWrite for FrontStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let io = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(io, Poll::Ready(Ok(_))) {
            self.saw_written(buf);
        }
        self.watch(cx, io)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let io = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(io, Poll::Ready(Ok(_)))
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
        {
            self.saw_written(first);
        }
        self.watch(cx, io)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
