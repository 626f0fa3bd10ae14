//! Liveness for the load balancer and metrics for the control plane.
use rocket::http::{ContentType, Status};
use rocket::{get, routes, Route, State};

use crate::AppState;

pub fn routes() -> Vec<Route> {
    routes![healthz, metrics]
}

/// 200 when the database and the store both answer, 503 (with the reason) otherwise.
#[get("/healthz")]
async fn healthz(state: &State<AppState>) -> (Status, String) {
    let db = tokio::time::timeout(std::time::Duration::from_secs(3), state.db.ping()).await;
    let store = tokio::time::timeout(std::time::Duration::from_secs(3), state.store.check()).await;
    match (db, store) {
        (Ok(Ok(())), Ok(Ok(()))) => (Status::Ok, "ok".into()),
        (Ok(Err(e)), _) => (Status::ServiceUnavailable, format!("database unavailable: {e}")),
        (Err(_), _) => (Status::ServiceUnavailable, "database unavailable: timed out".into()),
        (_, Ok(Err(e))) => (Status::ServiceUnavailable, format!("store unavailable: {e}")),
        (_, Err(_)) => (Status::ServiceUnavailable, "store unavailable: timed out".into()),
    }
}

#[get("/metrics")]
async fn metrics(state: &State<AppState>) -> (ContentType, String) {
    if let Ok(b) = state.backlog().await {
        for (name, n) in [("queued", b.queued), ("processing", b.processing), ("failed", b.failed)] {
            state.metrics.backlog.with_label_values(&[name]).set(n as i64);
        }
    }
    (ContentType::new("text", "plain").with_params(("version", "0.0.4")), state.metrics.render())
}
