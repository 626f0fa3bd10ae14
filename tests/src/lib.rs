//! Helpers for end-to-end tests (and the worker's route tests): start the built binaries
//! against the servers that `scripts/test` runs, and wait on conditions (never on luck).
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env("GALLERY_TESTDATA")).join(name)
}

/// A new, empty database on the test MariaDB; returns its URL.
pub async fn fresh_database(tag: &str) -> String {
    let base = env("GALLERY_TEST_DATABASE_URL");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("gallery_{tag}_{}_{nanos}", std::process::id());
    let mut conn = mysql_async::Conn::from_url(&base)
        .await
        .expect("MariaDB from scripts/test");
    conn.query_drop(format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
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
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sigterm_and_wait(child: &mut Child, what: &str) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    wait_until(
        &format!("{what} to exit after SIGTERM"),
        Duration::from_secs(60),
        || {
            let status = child.try_wait().unwrap();
            async move { status }
        },
    )
    .await
}

/// A `gallery-server` process; killed when dropped.
pub struct Worker {
    pub child: Child,
    pub port: u16,
}

impl Worker {
    pub fn spawn(database_url: &str, data_dir: &Path) -> Worker {
        Self::spawn_with(database_url, data_dir, &[])
    }

    /// As [`Worker::spawn`], with more environment (settings, an AWS emulator's endpoint).
    pub fn spawn_with(database_url: &str, data_dir: &Path, env_vars: &[(&str, String)]) -> Worker {
        Self::spawn_in(&[], database_url, data_dir, env_vars)
    }

    /// As [`Worker::spawn_with`], run by `wrapper` (a sandbox: `bwrap ARGS...`), which is
    /// given the worker's command line after its own arguments.
    pub fn spawn_in(
        wrapper: &[String],
        database_url: &str,
        data_dir: &Path,
        env_vars: &[(&str, String)],
    ) -> Worker {
        let port = free_port();
        let server = env("GALLERY_SERVER_BIN");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&server);
                c
            }
            None => Command::new(&server),
        };
        let child = command
            .arg("serve")
            .env("GALLERY_DATABASE_URL", database_url)
            .env("GALLERY_DATA_DIR", data_dir)
            .env("GALLERY_PORT", port.to_string())
            .env("GALLERY_MODEL_PATH", env("GALLERY_MODEL_PATH"))
            .env("GALLERY_CONFIG", data_dir.join("none.toml"))
            .envs(env_vars.iter().map(|(k, v)| (k, v)))
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
        wait_until(
            "the worker to become healthy",
            Duration::from_secs(60),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("gallery-server exited early: {status}");
                }
                let req = http.get(&url).send();
                async move {
                    req.await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ())
                }
            },
        )
        .await
    }

    /// SIGTERM, then wait for the process to exit on its own.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        sigterm_and_wait(&mut self.child, "the worker").await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token in a successful `/auth/verify` or `/api-keys` reply.
async fn token_in(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A `manager-tui serve` process (control plane, balancer, workers); killed when dropped.
pub struct ControlPlane {
    pub child: Child,
    pub api_port: u16,
    pub lb_port: u16,
    pub data_dir: PathBuf,
    pub database_url: String,
}

impl ControlPlane {
    /// Starts a control plane with `manager_toml` as its configuration file.
    pub fn spawn(database_url: &str, data_dir: &Path, manager_toml: &str) -> ControlPlane {
        Self::spawn_on(
            database_url,
            data_dir,
            manager_toml,
            free_port(),
            free_port(),
        )
    }

    pub fn spawn_on(
        database_url: &str,
        data_dir: &Path,
        manager_toml: &str,
        api_port: u16,
        lb_port: u16,
    ) -> ControlPlane {
        Self::spawn_with(database_url, data_dir, manager_toml, api_port, lb_port, &[])
    }

    /// As [`ControlPlane::spawn_on`], with more environment (an AWS emulator's endpoint).
    pub fn spawn_with(
        database_url: &str,
        data_dir: &Path,
        manager_toml: &str,
        api_port: u16,
        lb_port: u16,
        env_vars: &[(&str, String)],
    ) -> ControlPlane {
        std::fs::create_dir_all(data_dir).unwrap();
        let config = data_dir.join("manager.toml");
        std::fs::write(&config, manager_toml).unwrap();
        let bin = env("GALLERY_MANAGER_BIN");
        let child = Command::new(bin)
            .arg("serve")
            .env("GALLERY_MANAGER_CONFIG", &config)
            .env("GALLERY_CONFIG", data_dir.join("none.toml"))
            .env("GALLERY_DATABASE_URL", database_url)
            .env("GALLERY_DATA_DIR", data_dir)
            .env("GALLERY_CONTROL_PORT", api_port.to_string())
            .env("GALLERY_BALANCER_PORT", lb_port.to_string())
            .env("GALLERY_WORKER_BIN", env("GALLERY_SERVER_BIN"))
            .env("GALLERY_MODEL_PATH", env("GALLERY_MODEL_PATH"))
            .envs(env_vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .spawn()
            .expect("manager-tui binary (built by scripts/test)");
        ControlPlane {
            child,
            api_port,
            lb_port,
            data_dir: data_dir.to_owned(),
            database_url: database_url.to_owned(),
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub fn lb(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.lb_port)
    }

    pub async fn wait_api(&mut self, http: &reqwest::Client) {
        let url = self.api("/status");
        let child = &mut self.child;
        wait_until("the control API", Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("manager-tui exited early: {status}");
            }
            let req = http.get(&url).send();
            async move { req.await.ok().map(|_| ()) }
        })
        .await
    }

    /// Files in the outbox, by name.
    pub fn outbox(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.data_dir.join("outbox"))
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Asks for a code and returns (challenge, the code from the newly written mail if any).
    pub async fn request_code(
        &self,
        http: &reqwest::Client,
        email: &str,
    ) -> (reqwest::StatusCode, Option<String>, Option<String>) {
        let before = self.outbox();
        let res = http
            .post(self.api("/auth/otp"))
            .json(&serde_json::json!({ "email": email }))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap();
        let challenge = body["challenge"].as_str().map(str::to_owned);
        let new: Vec<PathBuf> = self
            .outbox()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        let code = new.first().map(|p| {
            let mail = std::fs::read_to_string(p).unwrap();
            let at =
                mail.find("control plane is ").expect("code in mail") + "control plane is ".len();
            mail[at..at + 6].to_owned()
        });
        (status, challenge, code)
    }

    /// Logs in as `email` (which must be an operator) and returns the bearer token.
    /// `GET path` with the operator's token.
    pub async fn get(&self, http: &reqwest::Client, token: &str, path: &str) -> reqwest::Response {
        http.get(self.api(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` with the operator's token, read as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        token: &str,
        path: &str,
    ) -> T {
        self.get(http, token, path).await.json().await.unwrap()
    }

    /// A new API key made with `token`: the key itself.
    pub async fn make_api_key(
        &self,
        http: &reqwest::Client,
        token: &str,
        request: serde_json::Value,
    ) -> String {
        let res = http
            .post(self.api("/api-keys"))
            .bearer_auth(token)
            .json(&request)
            .send()
            .await
            .unwrap();
        token_in(res).await
    }

    pub async fn login(&self, http: &reqwest::Client, email: &str) -> String {
        let (_, challenge, code) = self.request_code(http, email).await;
        let res = http
            .post(self.api("/auth/verify"))
            .json(&serde_json::json!({ "challenge": challenge.unwrap(), "code": code.expect("a mail with the code") }))
            .send()
            .await
            .unwrap();
        token_in(res).await
    }

    pub async fn status(&self, http: &reqwest::Client, token: &str) -> common::api::Status {
        self.get_json(http, token, "/status").await
    }

    /// SIGTERM, then waits: the control plane stops its local workers and exits 143
    /// (128 + SIGTERM), as a program ended by that signal does.
    pub async fn terminate(mut self) {
        let status = sigterm_and_wait(&mut self.child, "the control plane").await;
        assert_eq!(
            status.code(),
            Some(128 + 15),
            "the control plane ends cleanly on SIGTERM: {status}"
        );
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MariaDB of the test's own (data directory and port), so the test can stop and restart
/// it without disturbing other tests.
pub struct PrivateMariaDb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateMariaDb {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn user() -> String {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            "root".into()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        }
    }

    pub async fn start() -> PrivateMariaDb {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal"])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db (installed by scripts/test)");
        assert!(ok.success());
        let mut db = PrivateMariaDb {
            child: None,
            dir,
            port: free_port(),
        };
        db.run().await;
        let status = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", db.socket().display()))
            .args(["-e", "CREATE DATABASE gallery; CREATE USER 'gallery'@'127.0.0.1' IDENTIFIED BY 'gallery'; GRANT ALL ON gallery.* TO 'gallery'@'127.0.0.1';"])
            .status()
            .unwrap();
        assert!(status.success());
        db
    }

    async fn run(&mut self) {
        let mariadbd = if Path::new("/usr/sbin/mariadbd").exists() {
            "/usr/sbin/mariadbd"
        } else {
            "mariadbd"
        };
        let child = Command::new(mariadbd)
            .arg("--no-defaults")
            .arg(format!(
                "--datadir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .arg(format!("--user={}", Self::user()))
            .arg(format!(
                "--log-error={}",
                self.dir.path().join("err.log").display()
            ))
            .stdout(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        let port = self.port;
        wait_until(
            "the private MariaDB to accept connections",
            Duration::from_secs(30),
            || async move {
                mysql_async::Conn::from_url(format!("mysql://root@127.0.0.1:{port}/"))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    }

    pub fn url(&self) -> String {
        format!("mysql://gallery:gallery@127.0.0.1:{}/gallery", self.port)
    }

    /// A clean shutdown, as a restart by the operator or the package manager would do.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigterm_and_wait(&mut child, "MariaDB").await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of the hidden field `name` in a page's form.
pub fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no hidden {name} in the page"))
        + name.len()
        + 15;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// A page's HTML (the request must succeed at the HTTP level).
pub async fn page(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// Logs in through the login page as a browser does (its CSRF token, then the form); the
/// answer is the page the login lands on. `url` turns a path into the server's address.
pub async fn browser_login(
    http: &reqwest::Client,
    url: impl Fn(&str) -> String,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = hidden(&page(http, &url("/login")).await, "csrf");
    http.post(url("/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}
