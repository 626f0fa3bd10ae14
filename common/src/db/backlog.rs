//! The backlog: the `photos` table is the queue, the row the job, so there is no second
//! system to keep consistent with it. A processor claims the oldest queued photo (or one whose
//! claim ran out) with `SELECT … FOR UPDATE SKIP LOCKED`, so processors on every worker take
//! different photos without waiting on each other; the claim is a lease the processor renews
//! while it works, and every later write is conditional on still holding it.
use mysql_async::prelude::*;

use super::{Db, DbError, Photo};
pub use crate::api::{Backlog, ProcessingTimes};

/// A photo a processor holds, and which try this is (1 for the first).
#[derive(Debug, Clone)]
pub struct Claim {
    pub photo: Photo,
    pub attempt: u32,
}

impl Db {
    /// Claims the photo waiting longest (queued and due, or processing under a lease that
    /// ran out) for `worker` for `lease_secs`; `None` when nothing waits.
    pub async fn claim(&self, worker: &str, lease_secs: u64) -> Result<Option<Claim>, DbError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        let row: Option<(String, u32)> = tx
            .query_first(
                "SELECT id, attempts FROM photos
                 WHERE (state = 'queued' AND (not_before IS NULL OR not_before <= NOW(3)))
                    OR (state = 'processing' AND lease_until < NOW(3))
                 ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .await?;
        let Some((id, attempts)) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        tx.exec_drop(
            "UPDATE photos SET state = 'processing', claimed_by = ?, lease_until = NOW(3) + INTERVAL ? SECOND,
                    attempts = attempts + 1
             WHERE id = ?",
            (worker, lease_secs, &id),
        )
        .await?;
        let photo: Option<Photo> = tx
            .exec_first(
                format!("SELECT {} FROM photos WHERE id = ?", Photo::COLUMNS),
                (&id,),
            )
            .await?;
        tx.commit().await?;
        Ok(photo.map(|photo| Claim {
            photo,
            attempt: attempts + 1,
        }))
    }

    /// Extends `worker`'s claim on the photo; false when it no longer holds it (the photo was
    /// deleted, or its lease ran out and another processor took it).
    pub async fn renew_claim(
        &self,
        id: &str,
        worker: &str,
        lease_secs: u64,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "UPDATE photos SET lease_until = NOW(3) + INTERVAL ? SECOND
             WHERE id = ? AND claimed_by = ? AND state = 'processing'",
            (lease_secs, id, worker),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// The commit point of processing: the photo is ready with what was found. False when
    /// `worker` no longer holds the claim.
    pub async fn finish_claim(&self, worker: &str, done: &Photo) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "UPDATE photos SET state = 'ready', boxes = ?, detector = ?, runtime = ?, width = ?, height = ?,
                    processed_at = NOW(3), claimed_by = NULL, lease_until = NULL, failure = ''
             WHERE id = ? AND claimed_by = ? AND state = 'processing'",
            (done.boxes, &done.detector, &done.runtime, done.width, done.height, &done.id, worker),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Gives a failed try back to the queue, due again in `after_secs`.
    pub async fn retry_claim(
        &self,
        id: &str,
        worker: &str,
        after_secs: u64,
        reason: &str,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "UPDATE photos SET state = 'queued', claimed_by = NULL, lease_until = NULL,
                    not_before = NOW(3) + INTERVAL ? SECOND, failure = ?
             WHERE id = ? AND claimed_by = ? AND state = 'processing'",
            (after_secs, truncate(reason), id, worker),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Gives up on the photo: its owner sees `reason`.
    pub async fn fail_claim(&self, id: &str, worker: &str, reason: &str) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "UPDATE photos SET state = 'failed', claimed_by = NULL, lease_until = NULL, failure = ?, processed_at = NOW(3)
             WHERE id = ? AND claimed_by = ? AND state = 'processing'",
            (truncate(reason), id, worker),
        )
        .await?;
        Ok(conn.affected_rows() > 0)
    }

    /// Puts every photo `worker` still holds back in the queue at once (a draining worker);
    /// returns how many. The try it was on does not count against the photo.
    pub async fn release_claims(&self, worker: &str) -> Result<u64, DbError> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "UPDATE photos SET state = 'queued', claimed_by = NULL, lease_until = NULL, attempts = GREATEST(attempts, 1) - 1
             WHERE claimed_by = ? AND state = 'processing'",
            (worker,),
        )
        .await?;
        Ok(conn.affected_rows())
    }

    pub async fn backlog(&self) -> Result<Backlog, DbError> {
        let mut conn = self.conn().await?;
        let row: Option<(u64, u64, u64, Option<f64>)> = conn
            .query_first(
                "SELECT COALESCE(SUM(state = 'queued'), 0), COALESCE(SUM(state = 'processing'), 0),
                        COALESCE(SUM(state = 'failed'), 0),
                        CAST(TIMESTAMPDIFF(MICROSECOND, MIN(IF(state IN ('queued', 'processing'), created_at, NULL)), NOW(3)) / 1e6 AS DOUBLE)
                 FROM photos WHERE state <> 'ready'",
            )
            .await?;
        let (queued, processing, failed, oldest) = row.unwrap_or_default();
        Ok(Backlog {
            queued,
            processing,
            failed,
            oldest_secs: oldest.unwrap_or(0.0),
        })
    }
}

/// Uploads accepted and photos processed (ready or failed) in the last seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flow {
    pub accepted: u64,
    pub processed: u64,
}

impl Db {
    /// What was accepted and processed in the last `secs` seconds, by the database's clock
    /// (the one that stamped the rows), so workers' clocks do not matter.
    pub async fn flow(&self, secs: f64) -> Result<Flow, DbError> {
        let mut conn = self.conn().await?;
        let micros = (secs * 1e6) as u64;
        let row: Option<(u64, u64)> = conn
            .exec_first(
                "SELECT (SELECT COUNT(*) FROM photos WHERE created_at >= NOW(3) - INTERVAL ? MICROSECOND),
                        (SELECT COUNT(*) FROM photos WHERE processed_at >= NOW(3) - INTERVAL ? MICROSECOND)",
                (micros, micros),
            )
            .await?;
        let (accepted, processed) = row.unwrap_or_default();
        Ok(Flow {
            accepted,
            processed,
        })
    }

    /// Seconds from upload to processed of the photos processed in the last `secs` seconds
    /// (at most the latest 10 000).
    pub async fn processing_times(&self, secs: u64) -> Result<Option<ProcessingTimes>, DbError> {
        let mut conn = self.conn().await?;
        let mut waits: Vec<f64> = conn
            .exec(
                "SELECT CAST(TIMESTAMPDIFF(MICROSECOND, created_at, processed_at) / 1e6 AS DOUBLE) FROM photos
                 WHERE processed_at >= NOW(3) - INTERVAL ? SECOND ORDER BY processed_at DESC LIMIT 10000",
                (secs,),
            )
            .await?;
        if waits.is_empty() {
            return Ok(None);
        }
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
        Ok(Some(ProcessingTimes {
            photos: waits.len() as u64,
            p50_secs: at(0.5),
            p99_secs: at(0.99),
        }))
    }
}

fn truncate(reason: &str) -> String {
    reason.chars().take(255).collect()
}
