//! CPU work of two kinds. Accepting an upload (checking that it decodes) is admitted to a
//! bounded pool with a bounded queue, and "come back later" beyond it. Processing photos from
//! the backlog runs on threads of its own at a lower OS priority, so that accepting stays
//! fast while the same worker is busy processing.
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

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
        JobPool {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Result<T, tokio::task::JoinError>, Busy> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        Ok(tokio::task::spawn_blocking(job).await)
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Puts the calling thread at the processing priority; threads it starts inherit it.
fn lower_priority() {
    // SAFETY: setpriority on this thread (a Linux thread id is a "process" for it); failing
    // leaves the thread at normal priority, which is only slower to yield.
    unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            BACKGROUND_NICE,
        )
    };
}

/// Runs `load` on a thread named `name` at the processing priority and waits for it. A
/// detection runtime starts its own threads while it loads (OpenVINO a thread per stream,
/// ONNX Runtime its pool), and they run the network: started from here they inherit the
/// lower priority, so that detection yields to accepting uploads as the rest of processing
/// does (started from the main thread they would not, and detection is most of the CPU).
pub fn at_processing_priority<T: Send>(name: &str, load: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, || {
                lower_priority();
                load()
            })
            .expect("spawning a thread");
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Threads that run processing jobs at a lower priority (nice 10): the kernel gives the
/// accepting threads the CPU first when both want it.
#[derive(Clone)]
pub struct Background {
    jobs: mpsc::Sender<Job>,
}

/// The nice value of the processing threads.
const BACKGROUND_NICE: i32 = 10;

impl Background {
    pub fn new(threads: usize) -> Background {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("processing-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = queue.lock().unwrap().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a processing thread");
        }
        Background { jobs }
    }

    /// Runs `job` on a processing thread; `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            let _ = done.send(outcome.ok());
        });
        self.jobs.send(job).ok()?;
        result.await.ok().flatten()
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
        let first =
            tokio::spawn(async move { p1.run(move || r1.lock().unwrap().recv().unwrap()).await });
        let r2 = rx.clone();
        let p2 = pool.clone();
        let second =
            tokio::spawn(async move { p2.run(move || r2.lock().unwrap().recv().unwrap()).await });
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

    #[tokio::test]
    async fn background_jobs_run_at_a_lower_priority() {
        let pool = Background::new(1);
        // SAFETY: getpriority of the calling thread.
        let nice = pool
            .run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) })
            .await;
        assert_eq!(nice, Some(BACKGROUND_NICE));
        assert_eq!(
            pool.run(|| -> u32 { panic!("a bad photo") }).await,
            None,
            "a panic is reported, not spread"
        );
        assert_eq!(pool.run(|| 7).await, Some(7), "the thread survives it");
    }

    fn nice_of(tid: i32) -> i32 {
        // Field 19 of /proc/<pid>/task/<tid>/stat, after the command name in parentheses.
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("own thread");
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[16].parse().unwrap()
    }

    #[test]
    fn threads_a_runtime_starts_while_loading_run_at_the_lower_priority() {
        let (started, nice) = at_processing_priority("loader", || {
            // As a runtime does: a thread of its own that outlives the load.
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop, wait) = std::sync::mpsc::channel::<()>();
            let runtime = std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                let _ = wait.recv();
            });
            let tid = rx.recv().unwrap();
            let nice = nice_of(tid);
            drop(stop);
            runtime.join().unwrap();
            (tid, nice)
        });
        assert!(started > 0);
        assert_eq!(nice, BACKGROUND_NICE);
        // SAFETY: getpriority of the calling thread.
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        assert_eq!(ours, 0, "the caller keeps its priority");
    }
}
