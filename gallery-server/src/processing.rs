//! The processors: every worker runs `pipeline_workers` of them. Each claims the photo that
//! has waited longest in the backlog (from any worker's uploads), processes it on the
//! low-priority threads, stores the annotated copy and thumbnail (keyed by the photo's id, so
//! a second try overwrites the first), and marks the row ready: that update, made only while
//! the claim is still held, is the commit point. A failure is tried again after 2, 4, 8 … s,
//! then the photo is marked failed with its reason. A photo deleted meanwhile leaves nothing
//! behind: the commit finds no row, and the copies just written are removed.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::db::{Claim, Db, Photo, PhotoState};
use common::store::SharedStore;
use tokio::sync::Notify;

use crate::detect::Detector;
use crate::image::DecodeLimits;
use crate::jobs::Background;
use crate::metrics::Metrics;

/// What the processors share.
pub struct Processing {
    pub db: Db,
    pub store: SharedStore,
    pub detector: Arc<dyn Detector>,
    pub cpu: Background,
    pub metrics: Arc<Metrics>,
    pub limits: DecodeLimits,
    /// Names this worker's claims.
    pub worker: String,
    pub lease_secs: u64,
    pub attempts: u32,
    /// Rung after an upload is accepted here, so an idle processor starts at once.
    pub wake: Notify,
    stopping: AtomicBool,
    stopped: Notify,
}

/// How often an idle processor looks for photos accepted by other workers (or due for another
/// try): first after half a second, then twice as long after each look that finds nothing,
/// up to 5 s. Each look is a query: a hundred idle workers looking every half second kept
/// the database answering 400 a second. An upload accepted here wakes its processors at once.
const IDLE_POLL_FIRST: Duration = Duration::from_millis(500);
const IDLE_POLL_MAX: Duration = Duration::from_secs(5);

/// The wait after a look that found nothing, when the one before was `last`.
fn next_idle_poll(last: Option<Duration>) -> Duration {
    last.map_or(IDLE_POLL_FIRST, |d| (d * 2).min(IDLE_POLL_MAX))
}

impl Processing {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        store: SharedStore,
        detector: Arc<dyn Detector>,
        cpu: Background,
        metrics: Arc<Metrics>,
        limits: DecodeLimits,
        worker: String,
        config: &common::config::Config,
    ) -> Arc<Processing> {
        Arc::new(Processing {
            db,
            store,
            detector,
            cpu,
            metrics,
            limits,
            worker,
            lease_secs: config.processing_lease_secs,
            attempts: config.processing_attempts,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
        })
    }

    /// Starts `n` processors.
    pub fn start(self: &Arc<Self>, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n).map(|_| tokio::spawn(self.clone().run())).collect()
    }

    /// A draining worker: no new claims; those in progress finish (the caller waits for the
    /// processors), then [`Processing::release`] gives back whatever is left.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stopped.notify_waiters();
        self.wake.notify_waiters();
    }

    pub async fn release(&self) {
        match self.db.release_claims(&self.worker).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(photos = n, "claims released for other workers"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release claims; they return when their leases run out")
            }
        }
    }

    async fn run(self: Arc<Self>) {
        let mut idle: Option<Duration> = None;
        while !self.stopping.load(Ordering::SeqCst) {
            match self.db.claim(&self.worker, self.lease_secs).await {
                Ok(Some(claim)) => {
                    idle = None;
                    self.process(claim).await
                }
                Ok(None) => {
                    let wait = next_idle_poll(idle);
                    tokio::select! {
                        _ = self.wake.notified() => idle = None,
                        _ = tokio::time::sleep(wait) => idle = Some(wait),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim from the backlog; trying again");
                    tokio::select! {
                        _ = self.stopped.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Processes one claimed photo to its end: ready, back in the queue for a later try, failed,
    /// or (the photo was deleted meanwhile) nothing left of it.
    pub async fn process(&self, claim: Claim) {
        let Claim { photo, attempt } = claim;
        let held = Arc::new(AtomicBool::new(true));
        let renewal = tokio::spawn(renew(
            self.db.clone(),
            photo.id.clone(),
            self.worker.clone(),
            self.lease_secs,
            held.clone(),
        ));
        let outcome = self.work(&photo, &held).await;
        renewal.abort();
        let id = photo.id.as_str();
        let worker = self.worker.as_str();
        let result = match outcome {
            Ok(done) => match self.db.finish_claim(worker, &done).await {
                Ok(true) => {
                    self.metrics.processed.inc();
                    let waited = (now_ms() - photo.created_ms).max(0) as f64 / 1000.0;
                    self.metrics.time_to_processed.observe(waited);
                    tracing::info!(photo = id, boxes = done.boxes, waited, "photo processed");
                    Ok(())
                }
                Ok(false) => {
                    self.discard_if_deleted(&photo).await;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Err(Outcome::Lost) => {
                self.discard_if_deleted(&photo).await;
                Ok(())
            }
            Err(Outcome::Failed(reason)) if attempt < self.attempts => {
                let after = 2u64.pow(attempt.min(8));
                tracing::warn!(photo = id, attempt, retry_in = after, %reason, "processing failed; trying again later");
                self.db
                    .retry_claim(id, worker, after, &reason)
                    .await
                    .map(|_| ())
            }
            Err(Outcome::Failed(reason)) => {
                tracing::error!(photo = id, attempt, %reason, "processing failed for good");
                self.metrics.failed.inc();
                self.db.fail_claim(id, worker, &reason).await.map(|_| ())
            }
        };
        if let Err(e) = result {
            // The lease runs out and another processor takes the photo again.
            tracing::warn!(photo = id, error = %e, "could not record the outcome of processing");
        }
    }

    /// Processes the photo and stores its copies; what the row becomes when it is ready.
    async fn work(&self, photo: &Photo, held: &AtomicBool) -> Result<Photo, Outcome> {
        let data = match self.store.get(&photo.original_key()).await {
            Ok(Some(data)) => data,
            Ok(None) => {
                return Err(Outcome::Failed(
                    "the original is missing from the store".into(),
                ))
            }
            Err(e) => return Err(Outcome::Failed(format!("the store could not be read: {e}"))),
        };
        let detector = self.detector.clone();
        let limits = self.limits;
        let processed = self
            .cpu
            .run(move || crate::pipeline::process(&data, detector.as_ref(), limits))
            .await
            .ok_or_else(|| Outcome::Failed("processing crashed".into()))?
            .map_err(|e| Outcome::Failed(e.to_string()))?;
        for (stage, took) in &processed.timings {
            self.metrics
                .stages
                .with_label_values(&[stage])
                .observe(took.as_secs_f64());
        }
        if !held.load(Ordering::SeqCst) {
            return Err(Outcome::Lost);
        }
        let started = Instant::now();
        for (key, data) in [
            (photo.annotated_key(), processed.annotated),
            (photo.thumbnail_key(), processed.thumbnail),
        ] {
            self.store
                .put(&key, Bytes::from(data), "image/jpeg")
                .await
                .map_err(|e| Outcome::Failed(format!("the store could not be written: {e}")))?;
        }
        self.metrics
            .stages
            .with_label_values(&["store"])
            .observe(started.elapsed().as_secs_f64());
        Ok(Photo {
            boxes: processed.boxes.len() as u32,
            detector: self.detector.describe(),
            runtime: self.detector.runtime().to_owned(),
            width: processed.width,
            height: processed.height,
            state: PhotoState::Ready,
            ..photo.clone()
        })
    }

    /// The claim was lost or the commit found no row: if the photo was deleted meanwhile, the
    /// copies this processor may have written are removed (its owner's delete came first and
    /// could not see them). If another processor holds it now, its copies stay.
    async fn discard_if_deleted(&self, photo: &Photo) {
        if let Ok(None) = self.db.photo(&photo.id).await {
            for key in [photo.annotated_key(), photo.thumbnail_key()] {
                if let Err(e) = self.store.delete(&key).await {
                    tracing::error!(%key, error = %e, "could not remove a deleted photo's copy");
                }
            }
            tracing::info!(photo = %photo.id, "photo deleted while it was processed; its copies removed");
        }
    }
}

enum Outcome {
    /// The claim is no longer this processor's.
    Lost,
    Failed(String),
}

/// Renews the claim every third of its lease while the photo is processed; clears `held`
/// when the claim is gone (the photo deleted, or the lease ran out while the database was
/// unreachable and another processor took it).
async fn renew(db: Db, id: String, worker: String, lease_secs: u64, held: Arc<AtomicBool>) {
    let every = Duration::from_secs_f64(lease_secs as f64 / 3.0);
    loop {
        tokio::time::sleep(every).await;
        match db.renew_claim(&id, &worker, lease_secs).await {
            Ok(true) => {}
            Ok(false) => {
                held.store(false, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(photo = %id, error = %e, "could not renew a claim; trying again")
            }
        }
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_processor_looks_less_often_the_longer_it_finds_nothing() {
        let mut waits = Vec::new();
        let mut last = None;
        for _ in 0..7 {
            let w = next_idle_poll(last);
            waits.push(w.as_millis());
            last = Some(w);
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }
}
