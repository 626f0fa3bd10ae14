//! `manager-tui serve`: the control plane of a deployment.
mod api;
mod auth;
mod balancer;
mod control;
mod data;
mod mail;
mod pool;
mod status;

use std::sync::Arc;

use anyhow::Context;
use common::config::{ManagerConfig, ProviderKind};
use common::db::Db;

use mail::MailTransport;
use pool::Provider;

pub use control::ControlPlane;

pub use common::clock::now;

/// The signal that ended `serve` (Ctrl-C, SIGTERM), if one did: the process then exits
/// 128 + its number, as a shell expects of a program stopped by it, and not 0, which means
/// an operator stopped it through the control API.
static ENDED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

pub fn ended_by_signal() -> Option<i32> {
    match ENDED_BY.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// SIGINT and SIGTERM, listened to beside Rocket (which stops on either), so that the end
/// can tell which one arrived.
struct EndingSignals(Vec<(tokio::signal::unix::Signal, i32)>);

impl EndingSignals {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut listening = Vec::new();
        for (kind, number) in [
            (SignalKind::interrupt(), libc::SIGINT),
            (SignalKind::terminate(), libc::SIGTERM),
        ] {
            listening.push((signal(kind).context("listening for signals")?, number));
        }
        Ok(EndingSignals(listening))
    }

    /// Records the signal that has arrived, if one has (polled once: by the time Rocket has
    /// stopped on it, it is waiting here too).
    async fn record(mut self) {
        for (stream, number) in &mut self.0 {
            if let Ok(Some(())) =
                tokio::time::timeout(std::time::Duration::ZERO, stream.recv()).await
            {
                ENDED_BY.store(*number, std::sync::atomic::Ordering::SeqCst);
                return;
            }
        }
    }
}

pub async fn run(config: ManagerConfig) -> anyhow::Result<()> {
    let signals = EndingSignals::listen()?;
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    // The store is read only for the totals; the workers' configuration says where it is.
    let store = match common::config::Config::load() {
        Ok(worker) => common::store::open(&worker).await.ok(),
        Err(e) => {
            tracing::warn!(error = %e, "worker configuration unreadable; storage totals unavailable");
            None
        }
    };
    let outbox = || {
        Box::new(mail::Outbox {
            dir: config.data_dir.join("outbox"),
        }) as Box<dyn MailTransport>
    };
    let (pool, mail, front_door): (Arc<dyn Provider>, Box<dyn MailTransport>, _) = match config
        .provider
    {
        ProviderKind::Local => {
            let pool = Arc::new(pool::local::LocalPool::new(config.clone())?);
            let balancer_addr = (config.balancer_address, config.balancer_port);
            let listener = tokio::net::TcpListener::bind(balancer_addr)
                .await
                .with_context(|| {
                    format!(
                        "binding the balancer to {}:{}",
                        balancer_addr.0, balancer_addr.1
                    )
                })?;
            let limits = balancer::limits::Limits::of(&config).fitted_to_file_limit();
            let mut balancer = balancer::Balancer::new(pool.clone(), limits);
            if let Some(media) = local_media(&config) {
                balancer = balancer.with_media(media);
            }
            let balancer = Arc::new(balancer);
            let counters = balancer.counters.clone();
            tokio::spawn(balancer.serve(listener));
            tracing::info!(
                "balancer on http://{}:{}",
                config.balancer_address,
                config.balancer_port
            );
            (pool, outbox(), Some(counters))
        }
        #[cfg(feature = "aws")]
        ProviderKind::Aws => {
            let pool = pool::aws::AwsPool::new(config.clone())
                .await
                .context("setting up the aws pool")?;
            let mail: Box<dyn MailTransport> = match &config.mail_from {
                Some(from) => Box::new(mail::Ses::new(from, config.aws_region.as_deref()).await),
                None => outbox(),
            };
            (Arc::new(pool), mail, None)
        }
        #[cfg(not(feature = "aws"))]
        ProviderKind::Aws => anyhow::bail!(
            "the aws provider is not built into this manager-tui (build it with the `aws` feature)"
        ),
    };
    let control = ControlPlane::new(config.clone(), pool.clone(), front_door, db, store).await?;
    tokio::spawn(control.clone().reconcile_loop());
    tokio::spawn(control.clone().health_loop());
    tokio::spawn(control.clone().sample_loop());
    tokio::spawn(control.clone().autoscale_loop());

    if config.operators.is_empty() {
        tracing::warn!("no operator e-mail addresses configured (`operators`): nobody can log in");
    }
    let auth = auth::Auth::new(&config, mail);
    let rocket = api::build(control.clone(), auth).ignite().await?;
    let shutdown = rocket.shutdown();
    let c = control.clone();
    tokio::spawn(async move {
        c.shutdown.notified().await;
        shutdown.notify();
    });
    tracing::info!(provider = %pool.kind(), "control API on http://{}:{}", config.control_address, config.control_port);
    let result = rocket.launch().await;
    signals.record().await;
    // Local workers are this process's children: whatever ended the API (Ctrl-C, SIGTERM,
    // /stop), leave none behind. Cloud workers keep serving users and are adopted again by
    // the next start; only /stop (which drained them already) ends them.
    if !pool.outlives_control_plane() {
        control.stop_everything().await;
        pool.kill_all();
    }
    result.map(|_| ()).map_err(Into::into)
}

/// The local store's files for the balancer to answer, when the workers keep photos in a
/// directory (with S3 the links point at S3).
fn local_media(config: &ManagerConfig) -> Option<balancer::media::MediaFiles> {
    use balancer::media::{MediaFiles, Secret};
    use common::config::{Config, StoreLocation};
    let workers = match Config::of_local_workers(&config.database_url, &config.data_dir) {
        Ok(workers) => workers,
        Err(e) => {
            tracing::info!(error = %e, "media links go to the workers: their configuration does not load here");
            return None;
        }
    };
    let StoreLocation::Dir(root) = workers.store_location().ok()? else {
        return None;
    };
    let secret = match workers.secret_key.as_deref().map(|k| hex::decode(k.trim())) {
        Some(Ok(key)) => Secret::Key(key),
        Some(Err(_)) => return None,
        None => Secret::File(workers.data_dir.join("secret.key")),
    };
    tracing::info!(store = %root.display(), "the balancer answers media links from the store");
    Some(MediaFiles::new(root, secret))
}
