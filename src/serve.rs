//! Serves an axum router on a listener (plain TCP or TLS) with the bounds a
//! port open to a network needs (`[connections]`), which `axum::serve`
//! leaves unset: at most `max_per_listener` connections (past it, accepting
//! waits for one to close rather than running out of file descriptors),
//! request headers within `header_read_timeout` (a slow-loris client is cut
//! off), idle connections closed after `idle_timeout`, and HTTP/2 streams
//! and header sizes capped. HTTP/2 rapid resets are bounded by hyper's own
//! defaults (pending-accept and locally-errored reset limits), kept as they
//! are.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::ConnectionsConfig;

/// Serves `router` on `listener` until `shutdown`, then lets the connections
/// finish what they are doing and returns once they have.
pub async fn serve<L>(
    mut listener: L,
    router: axum::Router,
    limits: &ConnectionsConfig,
    shutdown: CancellationToken,
) where
    L: axum::serve::Listener,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_per_listener));
    let idle_timeout = limits.idle_timeout;
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (io, _peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let service = TowerToHyperService::new(router.clone().map_request(
            |request: http::Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
        ));
        let (builder, shutdown) = (builder.clone(), shutdown.clone());
        connections.spawn(async move {
            let _slot = slot;
            let last_io = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let io = TokioIo::new(Watched {
                inner: io,
                started,
                last_io: last_io.clone(),
            });
            let connection = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                let quiet_since = started + Duration::from_millis(last_io.load(Ordering::Relaxed));
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::trace!(%error, "connection ended with an error");
                        }
                        break;
                    }
                    _ = shutdown.cancelled(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ = tokio::time::sleep_until((quiet_since + idle_timeout).into()), if !closing => {
                        // Traffic since the sleep began moves the deadline on.
                        if started.elapsed().as_millis() as u64
                            >= last_io.load(Ordering::Relaxed) + idle_timeout.as_millis() as u64
                        {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// A connection's IO, noting when bytes last moved (ms since `started`).
struct Watched<T> {
    inner: T,
    started: Instant,
    last_io: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn touch(&self) {
        self.last_io
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
