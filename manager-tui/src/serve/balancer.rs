//! The local deployment's load balancer: round robin over healthy workers, bodies streamed
//! both ways, `X-Forwarded-For`, 502 when no worker can take the request.
//!
//! Each request opens its own connection to a worker *before* its body is sent, so a worker
//! that has just died (connection refused) costs no request: the next healthy worker is
//! tried, and the dead one leaves the rotation at once.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::local::{LocalPool, Target};

type ProxyBody = BoxBody<Bytes, hyper::Error>;

pub struct Balancer {
    pool: Arc<LocalPool>,
    next: AtomicUsize,
}

/// Counts a request as in flight on its worker until the response body is finished, so a
/// draining worker is stopped only after its last byte went out.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn new(counter: Arc<AtomicU64>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Tracked {
    inner: Incoming,
    _guard: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

fn text(status: StatusCode, message: &str) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(message.to_owned())).map_err(|never| match never {}).boxed())
        .expect("valid response")
}

impl Balancer {
    pub fn new(pool: Arc<LocalPool>) -> Self {
        Balancer { pool, next: AtomicUsize::new(0) }
    }

    /// Connects to the next healthy worker in turn, skipping ones that refuse.
    async fn connect(&self) -> Option<(Target, TcpStream)> {
        let targets = self.pool.targets();
        if targets.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..targets.len() {
            let target = &targets[(start + i) % targets.len()];
            match TcpStream::connect(target.addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Some((target.clone(), stream));
                }
                Err(_) => self.pool.report_unreachable(&target.id),
            }
        }
        None
    }

    async fn forward(&self, mut req: Request<Incoming>, client: SocketAddr) -> Response<ProxyBody> {
        let Some((target, stream)) = self.connect().await else {
            return text(StatusCode::BAD_GATEWAY, "no healthy gallery worker is available; try again shortly\n");
        };
        let guard = InFlight::new(target.in_flight.clone());
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(worker = %target.id, error = %e, "handshake with worker failed");
                return text(StatusCode::BAD_GATEWAY, "the gallery worker did not answer\n");
            }
        };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "worker connection closed with an error");
            }
        });

        let headers = req.headers_mut();
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
        let xff = HeaderName::from_static("x-forwarded-for");
        let forwarded = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {}", client.ip()),
            None => client.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded) {
            headers.insert(xff, v);
        }
        headers.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static("http"));

        match sender.send_request(req).await {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                let mut res = Response::from_parts(parts, Tracked { inner: body, _guard: guard }.boxed());
                for name in HOP_BY_HOP {
                    res.headers_mut().remove(name);
                }
                res
            }
            Err(e) => {
                tracing::warn!(worker = %target.id, error = %e, "request to worker failed");
                text(StatusCode::BAD_GATEWAY, "the gallery worker failed while handling the request\n")
            }
        }
    }

    /// Serves until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, client) = match listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "balancer accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.forward(req, client).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
            });
        }
    }
}
