//! Helpers for end-to-end tests: start the built binaries against the servers that
//! `scripts/test` runs, and wait on conditions (never on luck).
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env("GALLERY_TESTDATA")).join(name)
}

/// A new, empty database on the test MariaDB; returns its URL.
pub async fn fresh_database(tag: &str) -> String {
    let base = env("GALLERY_TEST_DATABASE_URL");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("gallery_{tag}_{}_{nanos}", std::process::id());
    let mut conn = mysql_async::Conn::from_url(&base).await.expect("MariaDB from scripts/test");
    conn.query_drop(format!("CREATE DATABASE {name}")).await.unwrap();
    conn.disconnect().await.unwrap();
    format!("{}/{}", base.rsplit_once('/').unwrap().0, name)
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `gallery-server` process; killed when dropped.
pub struct Worker {
    pub child: Child,
    pub port: u16,
}

impl Worker {
    pub fn spawn(database_url: &str, data_dir: &Path) -> Worker {
        let port = free_port();
        let child = Command::new(env("GALLERY_SERVER_BIN"))
            .arg("serve")
            .env("GALLERY_DATABASE_URL", database_url)
            .env("GALLERY_DATA_DIR", data_dir)
            .env("GALLERY_PORT", port.to_string())
            .env("GALLERY_MODEL_PATH", env("GALLERY_MODEL_PATH"))
            .env("GALLERY_CONFIG", data_dir.join("none.toml"))
            .stdin(Stdio::null())
            .spawn()
            .expect("gallery-server binary (built by scripts/test)");
        Worker { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn wait_healthy(&mut self, http: &reqwest::Client) {
        let url = self.url("/healthz");
        let child = &mut self.child;
        wait_until("the worker to become healthy", Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("gallery-server exited early: {status}");
            }
            let req = http.get(&url).send();
            async move { req.await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await
    }

    /// SIGTERM, then wait for the process to exit on its own.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let child = &mut self.child;
        wait_until("the worker to exit after SIGTERM", Duration::from_secs(30), || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
