//! Liveness for the load balancer, readiness of the shared dependencies, and metrics for the
//! control plane. The balancer's check is liveness only: when a dependency every worker shares
//! (the database, the store) is down, taking every worker out of rotation would answer each
//! request with "no worker" and, on AWS, replace the whole fleet — while the workers are fine
//! and serve again the moment it is back.
use rocket::http::{ContentType, Status};
use rocket::{get, routes, Route, State};

use crate::AppState;

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz, metrics]
}

/// 200 while this worker serves requests; checks nothing it shares with the others.
#[get("/healthz")]
fn healthz() -> &'static str {
    "ok"
}

/// 200 when the database and the store both answer, 503 (with the reason) otherwise.
#[get("/readyz")]
async fn readyz(state: &State<AppState>) -> (Status, String) {
    let db = tokio::time::timeout(std::time::Duration::from_secs(3), state.db.ping()).await;
    let store = tokio::time::timeout(std::time::Duration::from_secs(3), state.store.check()).await;
    match (db, store) {
        (Ok(Ok(())), Ok(Ok(()))) => (Status::Ok, "ok".into()),
        (Ok(Err(e)), _) => (
            Status::ServiceUnavailable,
            format!("database unavailable: {e}"),
        ),
        (Err(_), _) => (
            Status::ServiceUnavailable,
            "database unavailable: timed out".into(),
        ),
        (_, Ok(Err(e))) => (
            Status::ServiceUnavailable,
            format!("store unavailable: {e}"),
        ),
        (_, Err(_)) => (
            Status::ServiceUnavailable,
            "store unavailable: timed out".into(),
        ),
    }
}

#[get("/metrics")]
async fn metrics(state: &State<AppState>) -> (ContentType, String) {
    if let Ok(b) = state.backlog().await {
        for (name, n) in [
            ("queued", b.queued),
            ("processing", b.processing),
            ("failed", b.failed),
        ] {
            state
                .metrics
                .backlog
                .with_label_values(&[name])
                .set(n as i64);
        }
    }
    (
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        state.metrics.render(),
    )
}
