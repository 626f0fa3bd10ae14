//! The local deployment's load balancer: round robin over healthy workers, bodies streamed
//! both ways, the client's address in `X-Forwarded-For`, 503 when no worker can take the
//! request, and limits on what any client can hold (see [`limits`]). Signed photo links of
//! the local store it answers itself ([`media`]), as S3 does on AWS.
//!
//! Each request opens its own connection to a worker *before* its body is sent, so a worker
//! that has just died (connection refused) costs no request: the next healthy worker is
//! tried, and the dead one leaves the rotation at once. Only a refused or reset connection
//! counts against a worker: running out of file descriptors here, or a client's broken body,
//! says nothing about it. When a request fails mid-way, the worker leaves the rotation if it
//! no longer takes connections (killed while its listener still accepted), so that the
//! client's retry does not land on it again; a worker that merely answered early and closed
//! (a 404 or 413 before the whole upload arrived) stays.
mod headers;
pub mod limits;
pub mod media;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use limits::{Activity, ClientBodyError, Counters, FromClient, Limits, Watched};

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
    limits: Limits,
    /// Photo files answered here rather than by a worker (the local directory store).
    media: Option<media::MediaFiles>,
    connections: Arc<tokio::sync::Semaphore>,
    pub counters: Arc<Counters>,
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

/// Whether a connect or request error means the worker itself is gone. Anything else (no
/// file descriptors left, no memory for a socket) is the balancer's own trouble.
fn worker_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// A worker's metrics and readiness (with the reason it is not ready) are the control
/// plane's, which asks the worker directly; users get the cheap `/healthz` only.
const INTERNAL_PATHS: [&str; 2] = ["/metrics", "/readyz"];
/// Where photos are uploaded: by the API (load generators, scripts) and by the page's form.
const UPLOAD_PATHS: [&str; 2] = ["/api/upload", "/upload"];

enum Connect {
    Connected(Target, TcpStream),
    NoWorker,
    /// This process could not open a socket: nobody is benched for it.
    Local(io::Error),
}

impl Balancer {
    pub fn new(pool: Arc<dyn Targets>, limits: Limits) -> Self {
        let counters = Arc::new(Counters::default());
        counters
            .max
            .store(limits.max_connections as u64, Ordering::Relaxed);
        Balancer {
            pool,
            next: AtomicUsize::new(0),
            connections: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            limits,
            media: None,
            counters,
        }
    }

    /// Answers signed media links itself from the store's directory.
    pub fn with_media(mut self, media: media::MediaFiles) -> Self {
        self.media = Some(media);
        self
    }

    /// Connects to the next healthy worker in turn, skipping ones that refuse.
    async fn connect(&self) -> Connect {
        let targets = self.pool.targets();
        if targets.is_empty() {
            return Connect::NoWorker;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..targets.len() {
            let target = &targets[(start + i) % targets.len()];
            match TcpStream::connect(target.addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Connect::Connected(target.clone(), stream);
                }
                Err(e) if worker_gone(&e) => self.pool.report_unreachable(&target.id),
                Err(e) => return Connect::Local(e),
            }
        }
        Connect::NoWorker
    }

    /// After a failed request: out of rotation if the worker refuses a new connection.
    async fn bench_if_gone(&self, target: &Target) {
        if let Err(e) = TcpStream::connect(target.addr).await {
            if worker_gone(&e) {
                self.pool.report_unreachable(&target.id);
            }
        }
    }

    /// Answers a request, counting the uploads and those not accepted.
    async fn forward(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        activity: &Arc<Activity>,
    ) -> Response<ProxyBody> {
        let upload =
            req.method() == hyper::Method::POST && UPLOAD_PATHS.contains(&req.uri().path());
        let res = self.answer(req, client, activity).await;
        if upload {
            Counters::bump(&self.counters.uploads);
            if res.status().is_server_error() {
                Counters::bump(&self.counters.refused_uploads);
            }
        }
        res
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        activity: &Arc<Activity>,
    ) -> Response<ProxyBody> {
        if INTERNAL_PATHS.contains(&req.uri().path()) {
            return text(StatusCode::NOT_FOUND, "there is nothing here\n");
        }
        if let Some(media) = &self.media {
            if let media::Answer::Here(res) = media.answer(&req).await {
                return res;
            }
        }
        let (target, stream) = match self.connect().await {
            Connect::Connected(target, stream) => (target, stream),
            Connect::NoWorker => {
                // Not a worker's fault but a pool between workers (all booting, or the one
                // there restarting): unavailable for now, and the client is told when to
                // come back, as for a full backlog.
                let mut res = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no healthy gallery worker is available; try again shortly\n",
                );
                res.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("5"),
                );
                return res;
            }
            Connect::Local(e) => {
                tracing::warn!(error = %e, "balancer could not open a connection to a worker");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the gallery is at its connection limit; try again shortly\n",
                );
            }
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

        let (mut parts, body) = req.into_parts();
        headers::set_forwarded(&mut parts.headers, client.ip());
        let req = Request::from_parts(parts, FromClient::new(body, self.limits.body_stall));

        // The body and the worker each have their own clock from here.
        let excused = activity.excuse();
        let sent = tokio::time::timeout(self.limits.worker, sender.send_request(req)).await;
        drop(excused);
        match sent {
            Ok(Ok(res)) => {
                let (parts, body) = res.into_parts();
                let mut res = Response::from_parts(
                    parts,
                    Tracked {
                        inner: body,
                        _guard: guard,
                    }
                    .boxed(),
                );
                headers::strip_hop_by_hop(res.headers_mut());
                res
            }
            Ok(Err(e)) => match limits::client_body_error(&e) {
                Some(ClientBodyError::Stalled) => {
                    Counters::bump(&self.counters.bad_bodies);
                    text(
                        StatusCode::REQUEST_TIMEOUT,
                        "the upload stopped arriving; try again\n",
                    )
                }
                Some(ClientBodyError::Malformed(cause)) => {
                    Counters::bump(&self.counters.bad_bodies);
                    tracing::debug!(error = %cause, "malformed request body from a client");
                    text(StatusCode::BAD_REQUEST, "the request body is malformed\n")
                }
                None => {
                    tracing::warn!(worker = %target.id, error = %e, "request to worker failed");
                    self.bench_if_gone(&target).await;
                    text(
                        StatusCode::BAD_GATEWAY,
                        "the gallery worker failed while handling the request\n",
                    )
                }
            },
            Err(_) => {
                Counters::bump(&self.counters.worker_timeouts);
                tracing::warn!(worker = %target.id, "worker did not answer in time");
                text(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the gallery worker took too long to answer; try again\n",
                )
            }
        }
    }

    /// Over the connection limit: a short answer, then the connection is closed.
    fn refuse(&self, mut stream: TcpStream) {
        Counters::bump(&self.counters.refused);
        tokio::spawn(async move {
            let message = "the gallery has too many open connections; try again shortly\n";
            let reply = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}",
                message.len()
            );
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
            .await;
        });
    }

    /// Serves until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, client) = match listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors: the waiting connections stay queued in the kernel.
                    tracing::warn!(error = %e, "balancer accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                self.refuse(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            tokio::spawn(async move {
                this.counters.open.fetch_add(1, Ordering::Relaxed);
                this.connection(stream, client).await;
                this.counters.open.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    }

    async fn connection(self: &Arc<Self>, stream: TcpStream, client: SocketAddr) {
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let this = self.clone();
        let watched = activity.clone();
        let service = hyper::service::service_fn(move |req| {
            let (this, activity) = (this.clone(), watched.clone());
            async move { Ok::<_, Infallible>(this.forward(req, client, &activity).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.headers)
            .serve_connection(io, service);
        let idle = self.limits.idle;
        let watchdog = async {
            let tick = (idle / 4).max(std::time::Duration::from_millis(50));
            loop {
                tokio::time::sleep(tick).await;
                if activity.stalled_for().is_some_and(|t| t >= idle) {
                    return;
                }
            }
        };
        tokio::select! {
            ended = conn => match ended {
                Err(e) if e.is_timeout() => Counters::bump(&self.counters.timed_out),
                Err(e) => tracing::debug!(error = %e, "client connection ended with an error"),
                Ok(()) => {}
            },
            () = watchdog => Counters::bump(&self.counters.timed_out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A backend that answers "<name> <x-forwarded-for> <body length>".
    /// A worker on a free port that answers every request with `answer`.
    async fn spawn_backend<F, Fut>(answer: F) -> SocketAddr
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let reply = answer(req);
                        async move { Ok::<_, Infallible>(reply.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    /// A worker that answers with its name, the X-Forwarded-For it got and the body's size.
    async fn backend(name: &'static str) -> SocketAddr {
        spawn_backend(move |req: Request<Incoming>| async move {
            let xff = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Response::new(Full::new(Bytes::from(format!(
                "{name} {xff} {}",
                body.len()
            ))))
        })
        .await
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

    fn test_limits() -> Limits {
        Limits {
            max_connections: 64,
            headers: Duration::from_millis(400),
            body_stall: Duration::from_millis(400),
            idle: Duration::from_millis(800),
            worker: Duration::from_secs(2),
        }
    }

    async fn balancer(targets: Vec<Target>) -> (String, Arc<Fixed>) {
        let (url, fixed, _) = balancer_with(targets, test_limits()).await;
        (url, fixed)
    }

    async fn balancer_with(
        targets: Vec<Target>,
        limits: Limits,
    ) -> (String, Arc<Fixed>, Arc<Counters>) {
        let fixed = Arc::new(Fixed {
            targets: Mutex::new(targets),
            unreachable: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let balancer = Arc::new(Balancer::new(fixed.clone(), limits));
        let counters = balancer.counters.clone();
        tokio::spawn(balancer.serve(listener));
        (url, fixed, counters)
    }

    /// Sends raw bytes and reads what comes back until the balancer closes the connection
    /// (or 10 s pass, which fails the test).
    async fn raw(url: &str, request: &[u8]) -> String {
        use tokio::io::AsyncReadExt;
        let mut stream = TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
            .await
            .expect("the balancer closes the connection")
            .ok();
        String::from_utf8_lossy(&reply).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_head_is_closed() {
        let a = backend("a").await;
        let (url, fixed, counters) = balancer_with(vec![target("a", a)], test_limits()).await;
        let reply = raw(&url, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        assert!(!reply.contains("200"), "{reply}");
        assert_eq!(counters.snapshot().timed_out_connections, 1);
        assert!(fixed.unreachable.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_upload_that_stops_half_way_is_a_408_and_the_worker_stays() {
        let a = backend("a").await;
        let (url, fixed, counters) = balancer_with(vec![target("a", a)], test_limits()).await;
        let reply = raw(
            &url,
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly this much",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains("stopped arriving"), "{reply}");
        assert_eq!(counters.snapshot().bad_bodies, 1);
        assert!(fixed.unreachable.lock().unwrap().is_empty());
        assert_eq!(fixed.targets().len(), 1);
    }

    #[tokio::test]
    async fn a_malformed_chunked_body_is_the_clients_400_and_the_worker_stays() {
        let a = backend("a").await;
        let (url, fixed, _) = balancer_with(vec![target("a", a)], test_limits()).await;
        let reply = raw(
            &url,
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\nabc\r\n0\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert!(fixed.unreachable.lock().unwrap().is_empty());
        assert_eq!(fixed.targets().len(), 1);
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_answered_503_and_counted() {
        let a = backend("a").await;
        let limits = Limits {
            max_connections: 3,
            headers: Duration::from_secs(30),
            ..test_limits()
        };
        let (url, _, counters) = balancer_with(vec![target("a", a)], limits).await;
        let addr = url.trim_start_matches("http://").to_owned();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(&addr).await.unwrap());
        }
        wait_for(|| counters.snapshot().open_connections == 3).await;
        let reply = raw(&url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        assert!(reply.contains("too many open connections"), "{reply}");
        assert_eq!(counters.snapshot().refused_connections, 1);
        drop(held);
        wait_for(|| counters.snapshot().open_connections == 0).await;
        let res = reqwest::get(&url).await.unwrap();
        assert_eq!(res.status(), 200, "room again once they closed");
    }

    #[tokio::test]
    async fn a_worker_that_never_answers_is_a_504() {
        // Accepts and reads, never answers.
        let mute = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mute_addr = mute.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(mute.accept().await.unwrap());
            }
        });
        let (url, fixed, counters) =
            balancer_with(vec![target("mute", mute_addr)], test_limits()).await;
        let res = reqwest::get(&url).await.unwrap();
        assert_eq!(res.status(), 504);
        assert_eq!(counters.snapshot().worker_timeouts, 1);
        assert!(fixed.unreachable.lock().unwrap().is_empty());
    }

    /// A worker that refuses every request as a full backlog does.
    async fn full_backend() -> SocketAddr {
        spawn_backend(|req: Request<Incoming>| async move {
            let _ = req.into_body().collect().await;
            let mut res = Response::new(Full::new(Bytes::from("the backlog is full")));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        })
        .await
    }

    #[tokio::test]
    async fn uploads_not_accepted_are_counted_whoever_refused_them() {
        let (url, fixed, counters) = balancer_with(vec![], test_limits()).await;
        let http = reqwest::Client::new();
        let upload = |path: &str| http.post(format!("{url}{path}")).body("photo").send();
        assert_eq!(upload("/api/upload").await.unwrap().status(), 503);
        assert_eq!(
            reqwest::get(format!("{url}/")).await.unwrap().status(),
            503,
            "a page, not an upload"
        );
        let counted = counters.snapshot();
        assert_eq!((counted.uploads, counted.refused_uploads), (1, 1));

        *fixed.targets.lock().unwrap() = vec![target("a", backend("a").await)];
        assert_eq!(upload("/upload").await.unwrap().status(), 200);
        *fixed.targets.lock().unwrap() = vec![target("full", full_backend().await)];
        assert_eq!(upload("/api/upload").await.unwrap().status(), 503);
        let counted = counters.snapshot();
        assert_eq!((counted.uploads, counted.refused_uploads), (3, 2));
    }

    #[test]
    fn only_a_refused_or_reset_connection_counts_against_a_worker() {
        use std::io::{Error, ErrorKind};
        assert!(worker_gone(&Error::from(ErrorKind::ConnectionRefused)));
        assert!(worker_gone(&Error::from(ErrorKind::ConnectionReset)));
        // EMFILE: this process is out of descriptors, the worker is fine.
        assert!(!worker_gone(&Error::from_raw_os_error(libc::EMFILE)));
        assert!(!worker_gone(&Error::from(ErrorKind::OutOfMemory)));
    }

    async fn wait_for(mut condition: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn round_robin_with_the_clients_address_and_whole_bodies() {
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
                .all(|s| s.ends_with(&format!(" 127.0.0.1 {}", body.len()))
                    && !s.contains("10.1.2.3")),
            "the client's own X-Forwarded-For is replaced: {seen:?}"
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
    async fn the_workers_internals_are_not_routed() {
        let a = backend("a").await;
        let (url, _) = balancer(vec![target("a", a)]).await;
        for path in ["/metrics", "/readyz", "/readyz?x=1"] {
            let res = reqwest::get(format!("{url}{path}")).await.unwrap();
            assert_eq!(res.status(), 404, "{path}");
        }
        let res = reqwest::get(format!("{url}/healthz")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().starts_with("a "));
    }

    #[tokio::test]
    async fn no_healthy_worker_is_a_503_with_a_reason_and_when_to_retry() {
        let (url, _) = balancer(Vec::new()).await;
        let res = reqwest::get(&url).await.unwrap();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "5");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("no healthy gallery worker"));
    }
}
