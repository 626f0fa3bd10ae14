//! The single actuator of the pool: desired size (from the operator or the autoscaler), the
//! loops (reconciler that launches and drains to reach it, health rounds, samples for the
//! autoscaler), and the state that survives restarts (policy, enabled flag, desired size in
//! MySQL; history and events too). What `/status` shows is assembled by `status`.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::{Demand, LaunchProblem, PoolCounts, Status};
use common::autoscale::demand::{self, MEASURE_WINDOW_SECS};
use common::autoscale::{self, DemandSample, Phase, Policy, PoolView, Sample, Signals};
use common::config::ManagerConfig;
use common::db::{Db, ManagerSettings};
use common::metrics::Series;
use common::store::SharedStore;
use tokio::sync::Notify;

use common::metrics::SERIES_AGE;

use super::now;
use super::pool::Provider;
use super::status;

struct State {
    desired: u32,
    policy: Policy,
    enabled: bool,
    phase: Phase,
    /// Mean CPU of healthy workers, one point per sample.
    samples: Series,
    /// The backlog and the flow through it, one point per decision, oldest first.
    demand: VecDeque<DemandSample>,
    /// The processing rate per worker the demand policy last measured.
    learned_rate: Option<f64>,
    /// The learned rate as last stored, and when (it is stored when it moves, at most
    /// once a minute).
    stored_rate: (Option<f64>, f64),
    /// The demand policy's reading of the latest demand sample.
    estimate: Option<Demand>,
    last_history: f64,
    last_recorded: (u32, u32),
    /// Launches failing in a row (a bad image, no capacity): retried with backoff.
    launch_problem: Option<LaunchProblem>,
}

/// Seconds to wait after `failures` failed launches in a row: 2, 4, 8, … up to 2 minutes.
pub fn launch_backoff(failures: u32) -> f64 {
    2f64.powi(failures.min(7) as i32).min(120.0)
}

pub struct ControlPlane {
    pub config: Arc<ManagerConfig>,
    pub pool: Arc<dyn Provider>,
    /// The local balancer's counts; `None` behind a cloud load balancer.
    front_door: Option<Arc<super::balancer::limits::Counters>>,
    pub db: Db,
    pub store: Option<SharedStore>,
    /// The store's objects and bytes, as last counted.
    stored: status::StoreTotals,
    state: Mutex<State>,
    /// Wakes the reconciler after a change of desired size.
    wake: Notify,
    /// Held while a resize records its event and applies it.
    resizing: tokio::sync::Mutex<()>,
    pub shutdown: Notify,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] common::db::DbError),
}

impl ControlPlane {
    /// Restores the persisted settings (or stores the configured ones on first start).
    pub async fn new(
        config: Arc<ManagerConfig>,
        pool: Arc<dyn Provider>,
        front_door: Option<Arc<super::balancer::limits::Counters>>,
        db: Db,
        store: Option<SharedStore>,
    ) -> anyhow::Result<Arc<Self>> {
        let (policy, enabled, desired, learned_rate) = match db.manager_settings().await? {
            Some(stored) => {
                let policy: Policy = serde_json::from_str(&stored.policy).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "stored policy unreadable; using the configured one");
                    config.policy.clone()
                });
                let rate = stored.learned_rate.filter(|r| r.is_finite() && *r > 0.0);
                (
                    policy,
                    stored.autoscaler_enabled,
                    stored.desired_workers,
                    rate,
                )
            }
            None => (config.policy.clone(), true, config.policy.min_workers, None),
        };
        let desired = policy.clamp(desired);
        let settings = ManagerSettings {
            policy: serde_json::to_string(&policy)?,
            autoscaler_enabled: enabled,
            desired_workers: desired,
            learned_rate,
        };
        db.save_manager_settings(&settings).await?;
        tracing::info!(
            desired,
            enabled,
            ?learned_rate,
            "control plane state restored"
        );
        Ok(Arc::new(ControlPlane {
            config,
            pool,
            front_door,
            db,
            store,
            stored: status::StoreTotals::default(),
            state: Mutex::new(State {
                desired,
                policy,
                enabled,
                phase: Phase::Idle,
                samples: Series::new(SERIES_AGE),
                demand: VecDeque::new(),
                learned_rate,
                stored_rate: (learned_rate, now()),
                estimate: None,
                last_history: 0.0,
                last_recorded: (u32::MAX, u32::MAX),
                launch_problem: None,
            }),
            wake: Notify::new(),
            resizing: tokio::sync::Mutex::new(()),
            shutdown: Notify::new(),
        }))
    }

    /// Whether the learned rate is new, or has moved by more than 5 % since it was stored a
    /// minute or more ago: then it is to be stored, and is marked so.
    fn rate_moved(&self) -> bool {
        let mut s = self.state.lock().unwrap();
        let (stored, at) = s.stored_rate;
        let moved = match (stored, s.learned_rate) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => (b - a).abs() > 0.05 * a,
        };
        let t = now();
        if moved && (stored.is_none() || t - at >= 60.0) {
            s.stored_rate = (s.learned_rate, t);
            true
        } else {
            false
        }
    }

    async fn persist(&self) -> Result<(), ControlError> {
        let settings = {
            let s = self.state.lock().unwrap();
            ManagerSettings {
                policy: serde_json::to_string(&s.policy).expect("policy serialises"),
                autoscaler_enabled: s.enabled,
                desired_workers: s.desired,
                learned_rate: s.learned_rate,
            }
        };
        self.db.save_manager_settings(&settings).await?;
        Ok(())
    }

    /// Sets the desired size (bounded by the policy) and records why. The event is written
    /// before the size changes: a promoted standby serves within a second, and nobody should
    /// see the pool grown without the reason for it.
    pub async fn resize(&self, to: u32, reason: &str) -> Result<u32, ControlError> {
        let _one_at_a_time = self.resizing.lock().await;
        let (from, to) = {
            let s = self.state.lock().unwrap();
            (s.desired, s.policy.clamp(to))
        };
        if from != to {
            tracing::info!(from, to, reason, "resizing pool");
            self.db.record_scaling_event(from, to, reason).await?;
            self.state.lock().unwrap().desired = to;
            self.persist().await?;
            self.wake.notify_one();
        }
        Ok(to)
    }

    /// The operator's +1 / −1. An operator's resize starts a cooldown so the autoscaler
    /// does not undo it at once.
    pub async fn grow_or_shrink(&self, delta: i32) -> Result<u32, ControlError> {
        let (current, policy) = {
            let s = self.state.lock().unwrap();
            (s.desired, s.policy.clone())
        };
        let target = (current as i64 + delta as i64).max(0) as u32;
        if target > policy.max_workers {
            return Err(ControlError::Invalid(format!(
                "the pool is at its maximum of {} workers",
                policy.max_workers
            )));
        }
        if target < policy.min_workers {
            return Err(ControlError::Invalid(format!(
                "the pool is at its minimum of {} workers",
                policy.min_workers
            )));
        }
        let reason = if delta > 0 {
            "operator: grow by one"
        } else {
            "operator: shrink by one"
        };
        let to = self.resize(target, reason).await?;
        self.state.lock().unwrap().phase = Phase::Resizing {
            target: to,
            since: now(),
        };
        Ok(to)
    }

    pub fn policy(&self) -> Policy {
        self.state.lock().unwrap().policy.clone()
    }

    pub async fn set_policy(&self, policy: Policy) -> Result<Policy, ControlError> {
        policy.validate().map_err(ControlError::Invalid)?;
        let desired = {
            let mut s = self.state.lock().unwrap();
            s.policy = policy.clone();
            s.desired
        };
        self.persist().await?;
        let bounded = policy.clamp(desired);
        if bounded != desired {
            self.resize(bounded, "policy bounds changed").await?;
        }
        Ok(policy)
    }

    pub async fn set_enabled(&self, enabled: bool) -> Result<(), ControlError> {
        {
            let mut s = self.state.lock().unwrap();
            s.enabled = enabled;
            if enabled {
                s.phase = Phase::Idle;
            }
        }
        self.persist().await
    }

    pub fn desired(&self) -> u32 {
        self.state.lock().unwrap().desired
    }

    /// The pool's workers by state, and the size it is asked to have.
    async fn counts(&self) -> PoolCounts {
        PoolCounts::of(&self.pool.status().await, self.desired())
    }

    /// Launches (promoting a ready standby worker first) or drains until the pool matches the
    /// desired size, then tops the warm standby up to the policy's count. Starting and
    /// draining workers are counted, so a slow start never causes a second launch.
    pub async fn reconcile(self: &Arc<Self>) {
        let (desired, standby_wanted) = {
            let s = self.state.lock().unwrap();
            (
                s.desired,
                if self.pool.has_standby() {
                    s.policy.standby_workers
                } else {
                    0
                },
            )
        };
        let counts = self.counts().await;
        let active = counts.active();
        if active < desired {
            for _ in active..desired {
                if self.pool.promote_standby().await.is_some() {
                    continue;
                }
                if !self.try_launch(false).await {
                    return;
                }
            }
        } else if active > desired {
            for id in self.pool.mark_draining(active - desired).await {
                let this = self.clone();
                tokio::spawn(async move { this.pool.drain_and_stop(&id).await });
            }
        }
        let standby = self.counts().await.standby;
        if standby < standby_wanted {
            for _ in standby..standby_wanted {
                if !self.try_launch(true).await {
                    return;
                }
            }
        } else if standby > standby_wanted {
            self.pool.retire_standby(standby - standby_wanted).await;
        }
    }

    /// One launch, unless launches are failing and the backoff has not run out; false when
    /// no launch should follow it now.
    async fn try_launch(&self, standby: bool) -> bool {
        let waiting = self
            .state
            .lock()
            .unwrap()
            .launch_problem
            .as_ref()
            .is_some_and(|p| now() < p.retry_at);
        if waiting {
            return false;
        }
        let launched = if standby {
            self.pool.launch_standby().await
        } else {
            self.pool.launch().await
        };
        let mut s = self.state.lock().unwrap();
        match launched {
            Ok(_) => {
                if let Some(p) = s.launch_problem.take() {
                    tracing::info!(after = p.failures, "launching works again");
                }
                true
            }
            Err(e) => {
                let failures = s.launch_problem.as_ref().map_or(0, |p| p.failures) + 1;
                let wait = launch_backoff(failures);
                tracing::error!(error = %e, failures, retry_in = wait, standby, "could not launch a worker");
                s.launch_problem = Some(LaunchProblem {
                    error: format!("{e:#}"),
                    failures,
                    retry_at: now() + wait,
                });
                false
            }
        }
    }

    pub async fn reconcile_loop(self: Arc<Self>) {
        loop {
            self.reconcile().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    pub async fn health_loop(self: Arc<Self>) {
        let every = Duration::from_secs_f64(self.config.health_interval_secs);
        loop {
            self.pool.check_health().await;
            self.wake.notify_one();
            self.record_history(false).await;
            tokio::time::sleep(every).await;
        }
    }

    /// Samples the workers' CPU for the CPU step policy.
    pub async fn sample_loop(self: Arc<Self>) {
        let every = Duration::from_secs_f64(self.config.sample_interval_secs);
        loop {
            tokio::time::sleep(every).await;
            if let Some(cpu) = self.pool.sample().await {
                self.state.lock().unwrap().samples.push(now(), cpu);
            }
        }
    }

    /// Counts the backlog and the flow through it, then lets the autoscaler decide, every
    /// `decide_interval_secs`: a load step is met within that, not within a CPU sample.
    pub async fn autoscale_loop(self: Arc<Self>) {
        let every = Duration::from_secs_f64(self.config.decide_interval_secs);
        loop {
            tokio::time::sleep(every).await;
            self.decide().await;
        }
    }

    async fn demand_sample(&self, healthy: u32) -> Option<DemandSample> {
        let (backlog, flow) = match tokio::try_join!(
            self.db.backlog(),
            self.db.flow(MEASURE_WINDOW_SECS)
        ) {
            Ok(counts) => counts,
            Err(e) => {
                tracing::warn!(error = %e, "could not count the backlog; the autoscaler holds still");
                return None;
            }
        };
        Some(DemandSample {
            at: now(),
            queued: backlog.queued,
            processing: backlog.processing,
            arrivals_per_sec: flow.accepted as f64 / MEASURE_WINDOW_SECS,
            processed_per_sec: flow.processed as f64 / MEASURE_WINDOW_SECS,
            healthy,
        })
    }

    /// One autoscaler tick.
    pub async fn decide(&self) {
        let counts = self.counts().await;
        let sample = self.demand_sample(counts.healthy).await;
        let t = now();
        let view = PoolView {
            desired: counts.desired,
            healthy: counts.healthy,
            starting: counts.starting,
        };
        let decision = {
            let mut s = self.state.lock().unwrap();
            if let Some(sample) = sample {
                s.demand.push_back(sample);
            }
            while s.demand.front().is_some_and(|d| t - d.at > SERIES_AGE) {
                s.demand.pop_front();
            }
            let demand: Vec<DemandSample> = s.demand.iter().copied().collect();
            s.estimate = demand::estimate(&demand, s.learned_rate, &s.policy, t).map(|e| Demand {
                accepted_per_sec: e.sample.arrivals_per_sec,
                processed_per_sec: e.sample.processed_per_sec,
                rate_per_worker: e.rate.per_worker,
                rate_source: e.rate.source,
                needed: e.needed,
            });
            if !s.enabled {
                return;
            }
            let cpu: Vec<Sample> = s
                .samples
                .points()
                .map(|(at, cpu)| Sample { at, cpu })
                .collect();
            let signals = Signals {
                cpu: &cpu,
                demand: &demand,
                learned_rate: s.learned_rate,
            };
            let d = autoscale::step(s.phase, view, &signals, &s.policy, t);
            s.phase = d.phase;
            if d.learned_rate.is_some() {
                s.learned_rate = d.learned_rate;
            }
            d
        };
        if self.rate_moved() {
            if let Err(e) = self.persist().await {
                tracing::warn!(error = %e, "could not store the measured rate per worker");
            }
        }
        if let Some(r) = decision.resize {
            if let Err(e) = self
                .resize(r.to, &format!("autoscaler: {}", r.reason))
                .await
            {
                tracing::error!(error = %e, "could not record a resize");
            }
        }
    }

    /// One history point a minute, and one on every change.
    async fn record_history(&self, force: bool) {
        let t = now();
        let counts = self.counts().await;
        let point = (counts.desired, counts.healthy);
        let due = {
            let mut s = self.state.lock().unwrap();
            let due = force || t - s.last_history >= 60.0 || point != s.last_recorded;
            if due {
                s.last_history = t;
                s.last_recorded = point;
            }
            due
        };
        if due {
            if let Err(e) = self.db.record_worker_count(point.0, point.1).await {
                tracing::warn!(error = %e, "could not record worker count");
            }
        }
    }

    /// The next status lists the store afresh (after a delete the operator expects to see it).
    pub fn forget_totals(&self) {
        self.stored.forget();
    }

    pub async fn status(&self) -> Status {
        let now = {
            let s = self.state.lock().unwrap();
            status::Snapshot {
                policy: s.policy.clone(),
                enabled: s.enabled,
                phase: s.phase,
                desired: s.desired,
                launch_problem: s.launch_problem.clone(),
                demand: s.estimate,
                front_door: self.front_door.as_ref().map(|c| c.snapshot()),
            }
        };
        status::assemble(
            now,
            self.pool.as_ref(),
            &self.db,
            self.store.as_ref(),
            &self.stored,
            &self.config,
        )
        .await
    }

    /// Drains and stops every worker, then lets the control plane exit.
    pub async fn stop_everything(self: &Arc<Self>) {
        {
            let mut s = self.state.lock().unwrap();
            s.enabled = false;
            s.desired = 0;
        }
        self.pool.retire_standby(u32::MAX).await;
        let ids = self.pool.mark_draining(u32::MAX).await;
        let mut tasks = Vec::new();
        for id in ids {
            let this = self.clone();
            tasks.push(tokio::spawn(
                async move { this.pool.drain_and_stop(&id).await },
            ));
        }
        for t in tasks {
            let _ = t.await;
        }
        self.shutdown.notify_waiters();
    }
}
