//! The local deployment's load balancer: round robin over healthy workers, bodies streamed
//! both ways, `X-Forwarded-For`, 502 when no worker can take the request.
//!
//! Each request opens its own connection to a worker *before* its body is sent, so a worker
//! that has just died (connection refused) costs no request: the next healthy worker is
//! tried, and the dead one leaves the rotation at once. When a request fails mid-way, the
//! worker leaves it too if it no longer takes connections (killed while its listener still
//! accepted), so that the client's retry does not land on it again; a worker that merely
//! answered early and closed (a 404 or 413 before the whole upload arrived) stays.
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

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A healthy worker the balancer may send a request to.
#[derive(Clone)]
pub struct Target {
    pub id: String,
    pub addr: SocketAddr,
    /// Requests being served by it through the balancer (a draining worker is stopped at 0).
    pub in_flight: Arc<AtomicU64>,
}

/// Where the balancer finds the healthy workers (the local pool; a fixed list in tests).
pub trait Targets: Send + Sync {
    fn targets(&self) -> Vec<Target>;
    /// A target refused or dropped a connection: take it out of rotation (health checks
    /// bring it back).
    fn report_unreachable(&self, id: &str);
}

pub struct Balancer {
    pool: Arc<dyn Targets>,
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

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn text(status: StatusCode, message: &str) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from(message.to_owned()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

impl Balancer {
    pub fn new(pool: Arc<dyn Targets>) -> Self {
        Balancer {
            pool,
            next: AtomicUsize::new(0),
        }
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

    /// After a failed request: out of rotation if the worker refuses a new connection.
    async fn bench_if_gone(&self, target: &Target) {
        if TcpStream::connect(target.addr).await.is_err() {
            self.pool.report_unreachable(&target.id);
        }
    }

    async fn forward(&self, mut req: Request<Incoming>, client: SocketAddr) -> Response<ProxyBody> {
        let Some((target, stream)) = self.connect().await else {
            return text(
                StatusCode::BAD_GATEWAY,
                "no healthy gallery worker is available; try again shortly\n",
            );
        };
        let guard = InFlight::new(target.in_flight.clone());
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(worker = %target.id, error = %e, "handshake with worker failed");
                    self.bench_if_gone(&target).await;
                    return text(
                        StatusCode::BAD_GATEWAY,
                        "the gallery worker did not answer\n",
                    );
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
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );

        match sender.send_request(req).await {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                let mut res = Response::from_parts(
                    parts,
                    Tracked {
                        inner: body,
                        _guard: guard,
                    }
                    .boxed(),
                );
                for name in HOP_BY_HOP {
                    res.headers_mut().remove(name);
                }
                res
            }
            Err(e) => {
                tracing::warn!(worker = %target.id, error = %e, "request to worker failed");
                self.bench_if_gone(&target).await;
                text(
                    StatusCode::BAD_GATEWAY,
                    "the gallery worker failed while handling the request\n",
                )
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A backend that answers "<name> <x-forwarded-for> <body length>".
    async fn backend(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<Incoming>| async move {
                            let xff = req
                                .headers()
                                .get("x-forwarded-for")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                                "{name} {xff} {}",
                                body.len()
                            )))))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    struct Fixed {
        targets: Mutex<Vec<Target>>,
        unreachable: Mutex<Vec<String>>,
    }

    impl Targets for Fixed {
        fn targets(&self) -> Vec<Target> {
            self.targets.lock().unwrap().clone()
        }
        fn report_unreachable(&self, id: &str) {
            self.unreachable.lock().unwrap().push(id.to_owned());
            self.targets.lock().unwrap().retain(|t| t.id != id);
        }
    }

    fn target(id: &str, addr: SocketAddr) -> Target {
        Target {
            id: id.into(),
            addr,
            in_flight: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn balancer(targets: Vec<Target>) -> (String, Arc<Fixed>) {
        let fixed = Arc::new(Fixed {
            targets: Mutex::new(targets),
            unreachable: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(Arc::new(Balancer::new(fixed.clone())).serve(listener));
        (url, fixed)
    }

    #[tokio::test]
    async fn round_robin_with_forwarded_for_and_whole_bodies() {
        let (a, b) = (backend("a").await, backend("b").await);
        let (url, _) = balancer(vec![target("a", a), target("b", b)]).await;
        let http = reqwest::Client::new();
        let body = vec![7u8; 5 * 1024 * 1024];
        let mut seen = Vec::new();
        for _ in 0..4 {
            let res = http
                .post(&url)
                .header("x-forwarded-for", "10.1.2.3")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            seen.push(res.text().await.unwrap());
        }
        let names: Vec<&str> = seen.iter().map(|s| s.split(' ').next().unwrap()).collect();
        assert!(
            names == ["a", "b", "a", "b"] || names == ["b", "a", "b", "a"],
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .all(|s| s.ends_with(&format!("10.1.2.3, 127.0.0.1 {}", body.len()))),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_refusing_worker_costs_no_request_and_leaves_the_rotation() {
        let a = backend("a").await;
        // A port nobody listens on.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (url, fixed) = balancer(vec![target("dead", dead), target("a", a)]).await;
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let res = http.get(&url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert!(res.text().await.unwrap().starts_with("a "));
        }
        assert_eq!(*fixed.unreachable.lock().unwrap(), vec!["dead".to_string()]);
    }

    #[tokio::test]
    async fn a_worker_that_dies_during_a_request_leaves_the_rotation() {
        let a = backend("a").await;
        // Takes one connection, then goes away with it unanswered, like a killed worker.
        let dying = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dying_addr = dying.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = dying.accept().await.unwrap();
            drop(dying);
            drop(stream);
        });
        let (url, fixed) = balancer(vec![target("dying", dying_addr), target("a", a)]).await;
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(http.get(&url).send().await.unwrap().status().as_u16());
        }
        // Round robin starts with the dying one: its request fails, no later one goes there.
        assert_eq!(statuses, vec![502, 200, 200, 200]);
        assert_eq!(
            *fixed.unreachable.lock().unwrap(),
            vec!["dying".to_string()]
        );
    }

    #[tokio::test]
    async fn a_worker_that_answers_before_the_upload_arrived_stays_in_rotation() {
        // Answers 413 at once and closes, without reading the 5 MiB body.
        let early = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let early_addr = early.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = early.accept().await.unwrap();
                use tokio::io::AsyncWriteExt;
                let reply = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large";
                let _ = stream.write_all(reply).await;
                drop(stream);
            }
        });
        let (url, fixed) = balancer(vec![target("early", early_addr)]).await;
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let res = http
                .post(&url)
                .body(vec![1u8; 5 * 1024 * 1024])
                .send()
                .await
                .unwrap();
            assert!(
                [413, 502].contains(&res.status().as_u16()),
                "{}",
                res.status()
            );
        }
        assert!(
            fixed.unreachable.lock().unwrap().is_empty(),
            "a worker that is up is never benched"
        );
        assert_eq!(fixed.targets().len(), 1);
    }

    #[tokio::test]
    async fn no_healthy_worker_is_a_502_with_a_reason() {
        let (url, _) = balancer(Vec::new()).await;
        let res = reqwest::get(&url).await.unwrap();
        assert_eq!(res.status(), 502);
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("no healthy gallery worker"));
    }
}
