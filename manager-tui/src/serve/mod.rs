//! `manager-tui serve`: the control plane of a deployment.
mod api;
mod auth;
mod balancer;
mod control;
mod data;
mod local;

use std::sync::Arc;

use anyhow::Context;
use common::config::ManagerConfig;
use common::db::Db;

pub use control::ControlPlane;

/// Wall-clock seconds since the Unix epoch: the one clock of the control plane.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

pub async fn run(config: ManagerConfig) -> anyhow::Result<()> {
    anyhow::ensure!(config.provider == "local", "provider {:?} is not available yet; use \"local\"", config.provider);
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url).await.context("connecting to the database")?;
    // The store is read only for the totals; the workers' configuration says where it is.
    let store = match common::config::Config::load() {
        Ok(worker) => common::store::open(&worker).await.ok(),
        Err(e) => {
            tracing::warn!(error = %e, "worker configuration unreadable; storage totals unavailable");
            None
        }
    };
    let pool = Arc::new(local::LocalPool::new(config.clone())?);
    let control = ControlPlane::new(config.clone(), pool.clone() as Arc<dyn common::cloud::Provider>, db, store).await?;

    let balancer_addr = (config.balancer_address, config.balancer_port);
    let listener = tokio::net::TcpListener::bind(balancer_addr)
        .await
        .with_context(|| format!("binding the balancer to {}:{}", balancer_addr.0, balancer_addr.1))?;
    tokio::spawn(Arc::new(balancer::Balancer::new(pool.clone())).serve(listener));
    tokio::spawn(control.clone().reconcile_loop());
    tokio::spawn(control.clone().health_loop());
    tokio::spawn(control.clone().sample_loop());

    if config.operators.is_empty() {
        tracing::warn!("no operator e-mail addresses configured (`operators`): nobody can log in");
    }
    let auth = auth::Auth::new(&config, Box::new(auth::Outbox { dir: config.data_dir.join("outbox") }));
    let rocket = api::build(control.clone(), auth).ignite().await?;
    let shutdown = rocket.shutdown();
    let c = control.clone();
    tokio::spawn(async move {
        c.shutdown.notified().await;
        shutdown.notify();
    });
    tracing::info!(
        "control API on http://{}:{}, balancer on http://{}:{}",
        config.control_address,
        config.control_port,
        config.balancer_address,
        config.balancer_port
    );
    let result = rocket.launch().await;
    // Whatever ended the API (Ctrl-C, SIGTERM, /stop), leave no worker behind.
    control.stop_everything().await;
    common::cloud::Provider::kill_all(pool.as_ref());
    result.map(|_| ()).map_err(Into::into)
}
