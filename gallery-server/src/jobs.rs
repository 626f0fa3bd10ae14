//! Admission of CPU work: a bounded number of photos processed at once, a bounded queue, and
//! "come back later" beyond it.
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Bounds CPU work: `workers` jobs run at once, at most `queue` more wait; beyond that the
/// caller is told to come back later instead of piling up memory and latency.
#[derive(Clone)]
pub struct JobPool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

#[derive(Debug)]
pub struct Busy;

impl JobPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        JobPool { admitted: Arc::new(Semaphore::new(workers + queue)), running: Arc::new(Semaphore::new(workers)) }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Result<T, tokio::task::JoinError>, Busy> {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| Busy)?;
        let _running = self.running.clone().acquire_owned().await.expect("semaphore never closed");
        Ok(tokio::task::spawn_blocking(job).await)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn job_pool_refuses_beyond_queue() {
        let pool = JobPool::new(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let r1 = rx.clone();
        let p1 = pool.clone();
        let first = tokio::spawn(async move { p1.run(move || r1.lock().unwrap().recv().unwrap()).await });
        let r2 = rx.clone();
        let p2 = pool.clone();
        let second = tokio::spawn(async move { p2.run(move || r2.lock().unwrap().recv().unwrap()).await });
        // Wait until both are admitted (one running, one queued) before the third tries.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.admitted.available_permits() > 0 {
            assert!(Instant::now() < deadline, "jobs were not admitted");
            tokio::task::yield_now().await;
        }
        assert!(pool.run(|| ()).await.is_err(), "third job must be refused");
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
    }
}
