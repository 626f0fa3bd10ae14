//! The gallery worker: accounts, uploads with text detection, pages, media, health, metrics.
pub mod accounts;
pub mod allocator;
pub mod detect;
pub mod error;
pub mod image;
pub mod jobs;
pub mod metrics;
pub mod photos;
pub mod pipeline;
pub mod routes;
pub mod session;
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
use crate::metrics::Metrics;
use crate::image::DecodeLimits;
use crate::jobs::JobPool;

/// Everything a request handler needs, shared by all of them.
pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub store: SharedStore,
    pub signer: UrlSigner,
    pub detector: Arc<dyn Detector>,
    pub jobs: JobPool,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits { max_side: self.config.max_image_side, max_pixels: self.config.max_image_pixels }
    }
    pub fn media_ttl(&self) -> Duration {
        Duration::from_secs(self.config.media_url_ttl_secs)
    }
}

/// The deployment secret: from config, or made once and kept in the data directory. Every
/// worker of a local deployment shares the data directory, so they share the key and a
/// session or media URL made by one is honoured by all.
pub fn load_or_create_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.secret_key {
        let bytes = hex::decode(s.trim()).context("`secret_key` must be hex (64 or 128 digits)")?;
        anyhow::ensure!(bytes.len() == 32 || bytes.len() == 64, "`secret_key` must be 32 or 64 bytes of hex");
        return Ok(bytes);
    }
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
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
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
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
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(hex::decode(s.trim()).with_context(|| format!("{} is not hex", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Connects to the database and store and assembles the Rocket instance.
pub async fn build(config: Config, detector: Arc<dyn Detector>) -> anyhow::Result<Rocket<Build>> {
    let secret = load_or_create_secret(&config)?;
    let db = Db::connect(&config.database_url).await.context("connecting to the database")?;
    let store = common::store::open(&config).await.context("opening the object store")?;
    tracing::info!(store = %store.describe(), detector = detector.describe(), "worker ready");

    let max = config.max_upload_bytes;
    let limits = Limits::default()
        .limit("file", max.bytes())
        // Room for the other fields and multipart framing around the file.
        .limit("data-form", (max + 64 * 1024).bytes())
        .limit("form", routes::forms::FORM_LIMIT.bytes())
        .limit("string", 8.kibibytes());
    let figment = rocket::Config::figment()
        .merge(("address", config.address))
        .merge(("port", config.port))
        .merge(("secret_key", hex::encode(&secret)))
        .merge(("limits", limits))
        .merge(("ident", "gallery"))
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
        tokio::spawn(metrics::publish(metrics.clone(), publisher, Duration::from_secs(config.metrics_interval_secs)));
    }
    let state = AppState {
        jobs: JobPool::new(config.pipeline_workers(), config.pipeline_queue),
        signer: UrlSigner::new(&secret),
        config,
        db,
        store,
        detector,
        metrics: metrics.clone(),
    };
    Ok(routes::mount(rocket::custom(figment).manage(state).attach(metrics::RequestCounter(metrics))))
}
