//! What `GET /status` answers, assembled from the control plane's state, the pool, the
//! database and the store. The store's objects and bytes are recounted at most every
//! `totals_max_age_secs`: listing a large bucket on every refresh would cost more than the
//! dashboard is worth.
use std::sync::Mutex;

use common::api::{AutoscalerStatus, Demand, FrontDoor, LaunchProblem, PoolCounts, Status, Totals};
use common::autoscale::{Phase, Policy};
use common::config::ManagerConfig;
use common::db::Db;
use common::metrics::SERIES_AGE;
use common::store::SharedStore;

use super::now;
use super::pool::Provider;

/// The photos whose upload-to-processed times `/status` reports: those of the last 5 minutes.
const PROCESSING_TIMES_SECS: u64 = 300;

/// The control plane's own state at one moment.
pub struct Snapshot {
    pub policy: Policy,
    pub enabled: bool,
    pub phase: Phase,
    pub desired: u32,
    pub launch_problem: Option<LaunchProblem>,
    pub demand: Option<Demand>,
    pub front_door: Option<FrontDoor>,
}

/// The store's contents as last counted.
#[derive(Default)]
pub struct StoreTotals {
    counted: Mutex<Option<Counted>>,
}

#[derive(Clone, Copy)]
struct Counted {
    at: f64,
    objects: u64,
    bytes: u64,
}

impl StoreTotals {
    /// The next status lists the store afresh.
    pub fn forget(&self) {
        *self.counted.lock().unwrap() = None;
    }

    /// Objects and bytes, as counted within the last `max_age` seconds, or counted now.
    async fn get(&self, store: Option<&SharedStore>, max_age: f64) -> Option<Counted> {
        let t = now();
        if let Some(c) = self.counted.lock().unwrap().filter(|c| t - c.at < max_age) {
            return Some(c);
        }
        let listed = match store {
            Some(store) => store.list("").await.ok()?,
            None => Vec::new(),
        };
        let counted = Counted {
            at: t,
            objects: listed.len() as u64,
            bytes: listed.iter().map(|o| o.size).sum(),
        };
        *self.counted.lock().unwrap() = Some(counted);
        Some(counted)
    }
}

pub async fn assemble(
    state: Snapshot,
    pool: &dyn Provider,
    db: &Db,
    store: Option<&SharedStore>,
    stored: &StoreTotals,
    config: &ManagerConfig,
) -> Status {
    let workers = pool.status().await;
    let t = now();
    let seconds_left = match state.phase {
        Phase::Idle => None,
        Phase::Resizing { since, .. } => {
            Some((since + state.policy.resize_timeout_secs - t).max(0.0))
        }
        Phase::Cooldown { until } => Some((until - t).max(0.0)),
    };
    let totals = match (
        db.count_rows().await.ok(),
        stored.get(store, config.totals_max_age_secs).await,
    ) {
        (Some(rows), Some(c)) => Some(Totals {
            accounts: rows.accounts,
            photos: rows.photos,
            objects: c.objects,
            bytes: c.bytes,
        }),
        _ => None,
    };
    Status {
        deployment: pool.kind(),
        balancer: match pool.entry_point().await {
            Some(url) => url,
            None => format!("{}:{}", config.balancer_address, config.balancer_port),
        },
        now: t,
        pool: PoolCounts::of(&workers, state.desired),
        workers,
        policy: state.policy,
        autoscaler: AutoscalerStatus {
            enabled: state.enabled,
            phase: state.phase,
            seconds_left,
        },
        history: db
            .worker_counts_since(SERIES_AGE as u64)
            .await
            .unwrap_or_default(),
        events: db.scaling_events(50).await.unwrap_or_default(),
        totals,
        backlog: db.backlog().await.ok(),
        demand: state.demand,
        processing_times: db
            .processing_times(PROCESSING_TIMES_SECS)
            .await
            .ok()
            .flatten(),
        launch_problem: state.launch_problem,
        front_door: state.front_door,
        refusals: pool.refusals(),
    }
}
