//! What one client may hold of the balancer. The control plane's balancer runs in the same
//! process as the health checks, the control API and the launches, so a client that opens
//! connections and sends nothing, or stops an upload half-way, must not be able to hold its
//! file descriptors for ever.
//!
//! Every stage of a request has its own clock: the request head (hyper's header timeout,
//! which also ends idle keep-alive connections), the body (no frame for `body_stall`: 408),
//! the worker's answer (`worker`: 504), and sending the answer (no byte moved for `idle`).
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use common::api::FrontDoor;
use common::config::ManagerConfig;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub headers: Duration,
    pub body_stall: Duration,
    pub idle: Duration,
    pub worker: Duration,
}

impl Limits {
    pub fn of(config: &ManagerConfig) -> Self {
        Limits {
            max_connections: config.balancer_max_connections,
            headers: Duration::from_secs_f64(config.balancer_header_timeout_secs),
            body_stall: Duration::from_secs_f64(config.balancer_body_timeout_secs),
            idle: Duration::from_secs_f64(config.balancer_idle_timeout_secs),
            worker: Duration::from_secs_f64(config.balancer_worker_timeout_secs),
        }
    }

    /// Each client connection may need one to a worker, and the process needs descriptors
    /// of its own (database, health checks, the control API, worker logs): the limit is
    /// lowered to what the file limit leaves, after raising the soft limit to the hard one.
    pub fn fitted_to_file_limit(mut self) -> Self {
        let available = raise_file_limit();
        let fits = (available.saturating_sub(256) / 2).max(16) as usize;
        if self.max_connections > fits {
            tracing::warn!(
                configured = self.max_connections,
                allowed = fits,
                file_limit = available,
                "balancer connection limit lowered to fit the file limit"
            );
            self.max_connections = fits;
        }
        self
    }
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit and returns the soft limit in force.
fn raise_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        // rlim_t is u64 on Linux, not on every target.
        #[allow(clippy::unnecessary_cast)]
        let cur = lim.rlim_cur as u64;
        cur
    }
}

/// The balancer's counts since it started, for `/status`.
#[derive(Default)]
pub struct Counters {
    pub open: AtomicU64,
    pub max: AtomicU64,
    pub refused: AtomicU64,
    pub timed_out: AtomicU64,
    pub bad_bodies: AtomicU64,
    pub worker_timeouts: AtomicU64,
    pub uploads: AtomicU64,
    pub refused_uploads: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> FrontDoor {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FrontDoor {
            open_connections: get(&self.open),
            max_connections: get(&self.max),
            refused_connections: get(&self.refused),
            timed_out_connections: get(&self.timed_out),
            bad_bodies: get(&self.bad_bodies),
            worker_timeouts: get(&self.worker_timeouts),
            uploads: get(&self.uploads),
            refused_uploads: get(&self.refused_uploads),
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// When a client connection last moved a byte, and whether a stage with its own clock (a
/// body being received, a worker working) has it in hand.
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    excused: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            excused: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long nothing has moved, unless a stage with its own clock is running.
    pub fn stalled_for(&self) -> Option<Duration> {
        if self.excused.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.start.elapsed().saturating_sub(last))
    }

    /// Until the guard is dropped, the idle clock does not count.
    pub fn excuse(self: &Arc<Self>) -> Excused {
        self.excused.fetch_add(1, Ordering::SeqCst);
        Excused(self.clone())
    }
}

pub struct Excused(Arc<Activity>);

impl Drop for Excused {
    fn drop(&mut self) {
        self.0.touch();
        self.0.excused.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A client socket that records every byte it moves in its [`Activity`].
pub struct Watched<S> {
    pub inner: S,
    pub activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why a client's request body could not be passed on: the client's fault, never the
/// worker's.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    #[error("the request body is malformed: {0}")]
    Malformed(hyper::Error),
    #[error("the request body stopped arriving")]
    Stalled,
}

/// The client's request body on its way to a worker, failing with [`ClientBodyError`] when
/// the client sends garbage or nothing for `stall`.
pub struct FromClient {
    inner: Incoming,
    stall: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl FromClient {
    pub fn new(inner: Incoming, stall: Duration) -> Self {
        FromClient {
            inner,
            stall,
            timer: Box::pin(tokio::time::sleep(stall)),
        }
    }
}

impl Body for FromClient {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.stall;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ClientBodyError::Malformed(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(ClientBodyError::Stalled))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The client body error behind a failed request to a worker, if that is what failed it.
pub fn client_body_error(e: &hyper::Error) -> Option<&ClientBodyError> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(found) = err.downcast_ref::<ClientBodyError>() {
            return Some(found);
        }
        source = err.source();
    }
    None
}
