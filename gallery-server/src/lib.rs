//! The gallery worker: accounts, uploads with text detection, pages, media, health, metrics.
pub mod accounts;
pub mod allocator;
pub mod client;
pub mod detect;
pub mod error;
pub mod image;
pub mod jobs;
pub mod kdf;
pub mod manifest;
pub mod metrics;
pub mod photos;
pub mod pipeline;
pub mod processing;
pub mod routes;
pub mod session;
pub mod throttle;
pub mod upload;
pub mod views;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::config::Config;
use common::db::Db;
use common::signing::UrlSigner;
use common::store::SharedStore;
use rocket::data::{Limits, ToByteUnit};
use rocket::{Build, Rocket};

use crate::detect::Detector;
use crate::image::DecodeLimits;
use crate::jobs::{Background, JobPool};
use crate::metrics::Metrics;
use crate::processing::Processing;

/// Everything a request handler needs, shared by all of them.
pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub store: SharedStore,
    pub signer: UrlSigner,
    pub detector: Arc<dyn Detector>,
    /// Admission of the checks uploads get before they are accepted.
    pub jobs: JobPool,
    pub processing: Arc<Processing>,
    /// API credentials verified or confirmed in the last minutes (see `VerifiedCredentials`).
    pub verified: common::auth::VerifiedCredentials,
    /// Password hashing, bounded (see `kdf`).
    pub hashing: kdf::PasswordHashing,
    /// Wrong passwords, counted (see `throttle`).
    pub throttle: Arc<throttle::Throttle>,
    pub metrics: Arc<Metrics>,
    /// The backlog as last read, and when (uploads check it against `backlog_limit`).
    backlog: tokio::sync::Mutex<Option<(std::time::Instant, common::db::Backlog)>>,
}

impl AppState {
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits::of(&self.config)
    }
    pub fn media_ttl(&self) -> Duration {
        Duration::from_secs(self.config.media_url_ttl_secs)
    }

    /// The deployment's backlog, read at most once a second per worker.
    pub async fn backlog(&self) -> Result<common::db::Backlog, common::db::DbError> {
        let mut cached = self.backlog.lock().await;
        if let Some((at, b)) = *cached {
            if at.elapsed() < Duration::from_secs(1) {
                return Ok(b);
            }
        }
        let b = self.db.backlog().await?;
        *cached = Some((std::time::Instant::now(), b));
        Ok(b)
    }

    /// An upload was accepted here: the backlog is read afresh next time (so its limit holds
    /// for a burst within the second), and an idle processor starts on it.
    pub async fn accepted(&self) {
        *self.backlog.lock().await = None;
        self.metrics.accepted.inc();
        self.processing.wake.notify_one();
    }
}

/// Names this worker's claims on photos in the backlog: the instance, or host, port and pid.
fn worker_name(config: &Config) -> String {
    let name = match &config.instance_id {
        Some(id) => id.clone(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}:{}:{}", host.trim(), config.port, std::process::id())
        }
    };
    name.chars().take(64).collect()
}

/// The deployment secret: from config, or made once and kept in the data directory. Every
/// worker of a local deployment shares the data directory, so they share the key and a
/// session or media URL made by one is honoured by all.
pub fn load_or_create_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.secret_key {
        let bytes = hex::decode(s.trim()).context("`secret_key` must be hex (64 or 128 digits)")?;
        anyhow::ensure!(
            bytes.len() == 32 || bytes.len() == 64,
            "`secret_key` must be 32 or 64 bytes of hex"
        );
        return Ok(bytes);
    }
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join("secret.key");
    if let Some(key) = read_secret(&path)? {
        return Ok(key);
    }
    // Write aside, then link into place: of workers starting together exactly one key wins,
    // and nobody ever reads a half-written file.
    let tmp = dir.join(format!(".secret.key.{}", std::process::id()));
    let key: [u8; 32] = rand::random();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(hex::encode(key).as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_secret(&path)?.context("secret key file vanished")
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

fn read_secret(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    common::signing::read_secret(path).map_err(anyhow::Error::msg)
}

/// Connects to the database and store and assembles the Rocket instance.
pub async fn build(config: Config, detector: Arc<dyn Detector>) -> anyhow::Result<Rocket<Build>> {
    let secret = load_or_create_secret(&config)?;
    let db = Db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    let store = common::store::open(&config)
        .await
        .context("opening the object store")?;
    tracing::info!(store = %store.describe(), detector = detector.describe(), "worker ready");

    // Uploads are read by `upload::read` within `max_upload_bytes`; no Rocket form takes a
    // file, so a multipart body sent to a form (a login, a registration) is held to the
    // limit of an urlencoded one.
    let limits = Limits::default()
        .limit("data-form", routes::forms::FORM_LIMIT.bytes())
        .limit("form", routes::forms::FORM_LIMIT.bytes())
        .limit("string", 8.kibibytes());
    let figment = rocket::Config::figment()
        .merge(("address", config.address))
        .merge(("port", config.port))
        .merge(("secret_key", hex::encode(&secret)))
        .merge(("limits", limits))
        .merge(("ident", "gallery"))
        // The client's address is taken from X-Forwarded-For only from trusted proxies
        // (`client::ClientAddr`); Rocket would believe X-Real-IP from anyone.
        .merge(("ip_header", false))
        .merge(("log_level", "critical"))
        .merge(("cli_colors", false))
        // In-flight uploads get time to finish when the worker is told to stop.
        .merge(("shutdown.grace", 25))
        .merge(("shutdown.mercy", 5));

    let metrics = Arc::new(Metrics::new());
    if let Some(namespace) = &config.metrics_namespace {
        let instance_id = match &config.instance_id {
            Some(id) => id.clone(),
            None => common::cloudwatch::instance_id_from_metadata()
                .await
                .context("metrics_namespace is set but this worker's instance id is unknown (set instance_id)")?,
        };
        let publisher = common::cloudwatch::Publisher::new(
            common::cloudwatch::client().await,
            namespace,
            &instance_id,
        );
        tracing::info!(%namespace, %instance_id, "publishing metrics to CloudWatch");
        tokio::spawn(metrics::publish(
            metrics.clone(),
            publisher,
            Duration::from_secs(config.metrics_interval_secs),
        ));
    }
    let decode_limits = DecodeLimits::of(&config);
    let processing = Processing::new(
        db.clone(),
        store.clone(),
        detector.clone(),
        Background::new(config.pipeline_workers()),
        metrics.clone(),
        decode_limits,
        worker_name(&config),
        &config,
    );
    // Uploads recorded while the database was away, by this worker or one that has gone.
    tokio::spawn(manifest::run(
        store.clone(),
        db.clone(),
        Duration::from_secs(10),
    ));
    let processors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let n = config.processors.unwrap_or(config.pipeline_workers());
    if config.standby {
        // Installed before the worker answers a health check, so a promotion never meets
        // SIGUSR1's default action (exit).
        let mut promoted =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .context("listening for the promotion signal")?;
        let (processing, handles) = (processing.clone(), processors.clone());
        tracing::info!(
            "warm standby: processing starts when the control plane promotes this worker (SIGUSR1)"
        );
        tokio::spawn(async move {
            if promoted.recv().await.is_some() {
                tracing::info!(processors = n, "promoted from standby");
                handles.lock().unwrap().extend(processing.start(n));
            }
        });
    } else {
        processors.lock().unwrap().extend(processing.start(n));
    }
    let state = AppState {
        jobs: JobPool::new(config.pipeline_workers(), config.pipeline_queue),
        processing: processing.clone(),
        // Long enough to carry an upload stream through a failover of the database (one to
        // two minutes on RDS): while the database answers, every use is checked against it.
        verified: common::auth::VerifiedCredentials::new(Duration::from_secs(300)),
        hashing: kdf::PasswordHashing::new(
            match config.password_checks {
                0 => config.pipeline_workers(),
                n => n,
            },
            config.password_queue,
        ),
        throttle: throttle::Throttle::new(throttle::Rules::default()),
        backlog: tokio::sync::Mutex::new(None),
        signer: UrlSigner::new(&secret),
        config,
        db,
        store,
        detector,
        metrics: metrics.clone(),
    };
    let drain = Drain {
        processing,
        processors,
    };
    Ok(routes::mount(
        rocket::custom(figment)
            .manage(state)
            .attach(metrics::RequestCounter(metrics))
            .attach(drain),
    ))
}

/// When the worker is told to stop: no new claims, the photos in progress finish (within the
/// shutdown grace), and whatever is still held goes back to the backlog for other workers.
struct Drain {
    processing: Arc<Processing>,
    processors: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

#[rocket::async_trait]
impl rocket::fairing::Fairing for Drain {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "drain the processors",
            kind: rocket::fairing::Kind::Shutdown,
        }
    }

    async fn on_shutdown(&self, _rocket: &Rocket<rocket::Orbit>) {
        self.processing.stop();
        let processors = std::mem::take(&mut *self.processors.lock().unwrap());
        let finished =
            tokio::time::timeout(Duration::from_secs(20), futures_join(processors)).await;
        if finished.is_err() {
            tracing::warn!("photos still processing at shutdown; giving them back");
        }
        self.processing.release().await;
    }
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}
