//! Interchangeable values lent to one job at a time — ONNX Runtime sessions, whose runs need
//! `&mut` — made on demand up to a limit and kept for reuse, so a worker running N photos at
//! once runs N detections at once instead of queueing them behind one session.
use std::sync::{Condvar, Mutex};

pub struct Pool<T> {
    state: Mutex<State<T>>,
    returned: Condvar,
    limit: usize,
}

struct State<T> {
    idle: Vec<T>,
    made: usize,
}

impl<T> Pool<T> {
    /// A pool holding `first`, that makes at most `limit` values in all.
    pub fn new(first: T, limit: usize) -> Self {
        Pool {
            state: Mutex::new(State {
                idle: vec![first],
                made: 1,
            }),
            returned: Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// Runs `f` with an idle value; makes one with `make` when none is idle and fewer than
    /// the limit exist, else waits for one to come back.
    pub fn with<R, E>(
        &self,
        make: impl FnOnce() -> Result<T, E>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, E> {
        let idle = {
            let mut state = self.state.lock().unwrap();
            loop {
                if let Some(value) = state.idle.pop() {
                    break Some(value);
                }
                if state.made < self.limit {
                    state.made += 1;
                    break None;
                }
                state = self.returned.wait(state).unwrap();
            }
        };
        // Made outside the lock: a new session takes a while and others may come back meanwhile.
        let value = match idle {
            Some(value) => value,
            None => make().inspect_err(|_| {
                self.state.lock().unwrap().made -= 1;
                self.returned.notify_one();
            })?,
        };
        let mut lent = Lent {
            pool: self,
            value: Some(value),
        };
        Ok(f(lent.value.as_mut().expect("held until dropped")))
    }

    /// How many values exist (idle or lent).
    #[cfg(test)]
    fn made(&self) -> usize {
        self.state.lock().unwrap().made
    }
}

/// Gives the value back when the job is done, also when it panicked.
struct Lent<'a, T> {
    pool: &'a Pool<T>,
    value: Option<T>,
}

impl<T> Drop for Lent<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            if let Ok(mut state) = self.pool.state.lock() {
                state.idle.push(value);
            }
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;

    #[test]
    fn reuses_an_idle_value_instead_of_making_one() {
        let pool = Pool::new(7, 4);
        for _ in 0..3 {
            let seen = pool
                .with(
                    || Err::<i32, &str>("nothing is busy, so nothing should be made"),
                    |v| *v,
                )
                .unwrap();
            assert_eq!(seen, 7);
        }
        assert_eq!(pool.made(), 1);
    }

    /// A job on another thread that holds a value until released; returns the value it got.
    fn hold(
        pool: &Arc<Pool<i32>>,
        new_value: i32,
    ) -> (std::thread::JoinHandle<i32>, mpsc::Sender<()>) {
        let (entered, inside) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let pool = pool.clone();
        let job = std::thread::spawn(move || {
            pool.with(
                || Ok::<i32, ()>(new_value),
                |v| {
                    entered.send(()).unwrap();
                    released.recv().unwrap();
                    *v
                },
            )
            .unwrap()
        });
        inside.recv().unwrap();
        (job, release)
    }

    #[test]
    fn overlapping_jobs_get_values_of_their_own_up_to_the_limit_then_wait() {
        let pool = Arc::new(Pool::new(0, 2));
        let (a, release_a) = hold(&pool, 1);
        // While A holds the first value, B gets one made for it.
        let (b, release_b) = hold(&pool, 1);
        assert_eq!(pool.made(), 2);
        // Both are out and the limit is reached: C waits (making a third would fail it).
        let (got, c_got) = mpsc::channel();
        let c = {
            let pool = pool.clone();
            std::thread::spawn(move || got.send(pool.with(|| Err::<i32, ()>(()), |v| *v)).unwrap())
        };
        assert!(
            c_got
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "C should wait while both values are lent"
        );
        release_a.send(()).unwrap();
        let a_value = a.join().unwrap();
        assert_eq!(
            c_got.recv().unwrap(),
            Ok(a_value),
            "C gets the value A gave back"
        );
        c.join().unwrap();
        release_b.send(()).unwrap();
        assert_eq!((a_value, b.join().unwrap()), (0, 1));
        assert_eq!(pool.made(), 2);
    }

    #[test]
    fn a_failed_make_does_not_use_up_the_limit() {
        let pool = Arc::new(Pool::new(0, 2));
        let (holder, release) = hold(&pool, 9);
        assert_eq!(
            pool.with(|| Err::<i32, &str>("no memory"), |v| *v),
            Err("no memory")
        );
        assert_eq!(pool.made(), 1);
        assert_eq!(pool.with(|| Ok::<i32, &str>(5), |v| *v), Ok(5));
        assert_eq!(pool.made(), 2);
        release.send(()).unwrap();
        holder.join().unwrap();
    }
}
