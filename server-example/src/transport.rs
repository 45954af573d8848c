//! The connection layer: accepting sockets, timeouts, a connection cap and a bounded
//! graceful shutdown (`axum::serve` has none of these).
//!
//! Every limit is a [`Limits`] field, each a flag with an environment variable
//! ([`crate::config::ServeArgs`]):
//!
//! | limit | default | what happens |
//! |---|---|---|
//! | request head | 10 s from its first byte | the connection is closed |
//! | keep-alive idle | 30 s with no request in flight | the connection is closed |
//! | request body | 30 s for the whole body | 408 `REQUEST_TIMEOUT`, `Connection: close` ([`crate::body`]) |
//! | connections | 10 000 at once | no further `accept` until one closes |
//! | shutdown | 10 s after the signal | connections still open are dropped |
//!
//! At start the process's open-file limit is raised to its hard limit ([`raise_fd_limit`]),
//! and the connection cap is lowered when that limit could not hold it.
//!
//! A connection's clock is kept by a `Watch`: the socket wrapper notes when a request's first
//! byte arrives and the service wrapper notes when its head has been read and its response is
//! ready. A watchdog ticking with the connection decides from those notes; hyper's own header
//! timer would also count keep-alive idle time as head time.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// Default time a request head may take, from its first byte.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a whole request body may take.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a kept-alive connection may wait for its next request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time connections are given to finish after the shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// File descriptors kept out of the connection cap (listeners, database pools, logs).
const RESERVED_FDS: u64 = 256;

/// The connection layer's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time from a request's first byte to the end of its head.
    pub head_timeout: Duration,
    /// Time for a whole request body (enforced where the body is read, [`crate::body`]).
    pub body_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Time given to open connections after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Raises the soft open-file limit to the hard limit and returns the connection cap that fits
/// in it (at most `wanted`).
pub fn raise_fd_limit(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            open_file_limit = limit,
            max_connections = fits,
            "the open-file limit holds fewer connections than asked; capping them"
        );
    }
    wanted.min(fits)
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes, then gives open
/// connections [`Limits::shutdown_grace`] to finish and drops the rest.
///
/// # Errors
///
/// None today: a failed `accept` (too many open files, say) is logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut builder = Builder::new(TokioExecutor::new());
    // The watchdog owns the head and idle timeouts; hyper's header timer would count idle time.
    builder.http1().timer(hyper_util::rt::TokioTimer::new());
    builder.http1().header_read_timeout(None);
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let builder = builder.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, router, builder, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; dropping them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: Builder<TokioExecutor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let clock = Arc::new(Watch::new());
    let io = TokioIo::new(Watched {
        inner: Some(stream),
        clock: Arc::clone(&clock),
    });
    let service_clock = Arc::clone(&clock);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = service_clock.request_started();
            let router = router.clone();
            async move {
                let res = router.oneshot(req.map(axum::body::Body::new)).await;
                // In flight until the whole body is sent (a streamed download can take far
                // longer than the idle timeout), not only until its head is ready. A body of
                // known length (every JSON answer) is written at once: no wrapper for it, so
                // the hot path pays nothing.
                res.map(|r| {
                    if axum::body::HttpBody::size_hint(r.body()).exact().is_some() {
                        drop(guard);
                        return r;
                    }
                    r.map(|body| {
                        axum::body::Body::new(Guarded {
                            body,
                            _guard: guard,
                        })
                    })
                })
            }
        });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let tick = (limits.head_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = ticks.tick() => {
                if let Some(why) = clock.expired(limits) {
                    tracing::debug!(%peer, why, "closing the connection");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// One connection's notes, in milliseconds since it was accepted (0 in `head_started`: no
/// request head is being read).
#[derive(Debug)]
struct Watch {
    origin: Instant,
    in_flight: AtomicUsize,
    last_activity: AtomicU64,
    head_started: AtomicU64,
}

impl Watch {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_activity: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Bytes arrived: when no request is in flight, a request head has begun.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let now = self.now_ms().max(1);
            let _ = self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// A request head was read; the guard notes when its response is ready.
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        InFlight(Arc::clone(self))
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: Limits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now_ms();
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 {
            let waited = Duration::from_millis(now.saturating_sub(head));
            return (waited > limits.head_timeout).then_some("request head timeout");
        }
        let idle =
            Duration::from_millis(now.saturating_sub(self.last_activity.load(Ordering::Acquire)));
        (idle > limits.idle_timeout).then_some("keep-alive idle timeout")
    }
}

/// A request in flight on a [`Watch`]ed connection.
struct InFlight(Arc<Watch>);

/// A response body that keeps its request in flight until it is sent (or dropped).
struct Guarded {
    body: axum::body::Body,
    _guard: InFlight,
}

impl axum::body::HttpBody for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now_ms();
        self.0.last_activity.store(now, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What is read and thrown away after the server closes a connection, at most.
const LINGER_BYTES: usize = 1024 * 1024;
/// How long that reading may take, at most.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A socket that tells its [`Watch`] when bytes arrive.
///
/// When it is dropped (the connection is over) it lingers: what the client is still sending
/// is read and discarded, up to [`LINGER_BYTES`] or [`LINGER_TIME`], before the socket closes.
/// Closing a socket with unread bytes resets it, and a client that writes its whole request
/// before reading (a body refused with 413 unread, say) would see the reset instead of the
/// answer that was already sent.
struct Watched {
    inner: Option<TcpStream>,
    clock: Arc<Watch>,
}

impl Watched {
    fn stream(&mut self) -> std::io::Result<Pin<&mut TcpStream>> {
        self.inner
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let (Some(mut stream), Ok(rt)) = (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        rt.spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 8192];
            let mut left = LINGER_BYTES;
            let _ = tokio::time::timeout(LINGER_TIME, async {
                while left > 0 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            })
            .await;
        });
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = match self.stream() {
            Ok(s) => s.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.stream() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.stream() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.stream() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.stream() {
            Ok(s) => s.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            head_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn head_idle_and_in_flight() {
        let w = Arc::new(Watch::new());
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(w.expired(limits()), None, "idle below its limit");
        w.bytes_read();
        tokio::time::advance(Duration::from_millis(150)).await;
        assert_eq!(w.expired(limits()), Some("request head timeout"));
        let guard = w.request_started();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            w.expired(limits()),
            None,
            "a request in flight is the body's business"
        );
        drop(guard);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(w.expired(limits()), None);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(w.expired(limits()), Some("keep-alive idle timeout"));
    }
}
