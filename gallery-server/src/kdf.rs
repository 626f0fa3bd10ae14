//! Password hashing with a bound. Each argon2id check takes 19 MiB and ~30 ms of a core; on
//! Rocket's blocking pool of 512 threads, 512 wrong passwords at once would take ~10 GiB.
//! Here at most `checks` run at once and `queue` more wait; anyone beyond is told to come
//! back (503), so a flood of sign-ins costs bounded memory and leaves the rest of the
//! worker its CPU.
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::error::Error;

pub struct PasswordHashing {
    running: Semaphore,
    /// Checks admitted: running plus waiting.
    admitted: AtomicUsize,
    max_admitted: usize,
}

impl PasswordHashing {
    pub fn new(checks: usize, queue: usize) -> Self {
        let checks = checks.max(1);
        PasswordHashing {
            running: Semaphore::new(checks),
            admitted: AtomicUsize::new(0),
            max_admitted: checks + queue,
        }
    }

    /// Runs `work` (a KDF) when a slot is free, or refuses at once when too many wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::busy_signing_in());
        }
        let _admitted = Admitted(&self.admitted);
        let _slot = self
            .running
            .acquire()
            .await
            .map_err(|_| Error::internal("password hashing closed"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(Error::internal)
    }

    pub async fn verify(&self, password: &str, hash: String) -> Result<bool, Error> {
        let password = password.to_owned();
        self.run(move || common::auth::verify_password(&password, &hash))
            .await
    }

    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.to_owned();
        self.run(move || common::auth::hash_password(&password))
            .await
    }
}

struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn beyond_the_running_and_waiting_checks_sign_ins_are_refused() {
        let hashing = Arc::new(PasswordHashing::new(1, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let mut held = Vec::new();
        for _ in 0..3 {
            let (h, g) = (hashing.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                h.run(move || g.lock().unwrap().recv().unwrap()).await
            }));
        }
        // Three admitted (one running, two waiting): the fourth is refused at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while hashing.admitted.load(Ordering::SeqCst) < 3 {
            assert!(std::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        let refused = hashing.run(|| ()).await.unwrap_err();
        assert_eq!(refused.status.code, 503);
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for h in held {
            assert!(h.await.unwrap().is_ok());
        }
        assert!(hashing.run(|| ()).await.is_ok(), "room again");
    }
}
