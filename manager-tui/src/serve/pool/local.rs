//! The local provider: `gallery-server` child processes on free loopback ports, actively
//! health-checked, sampled for CPU (from /proc) and requests (from their /metrics), and
//! drained before they are stopped. Warm standby workers are started with `GALLERY_STANDBY`:
//! they load their models and pass health checks but stay out of the balancer and do not
//! process until promoted with SIGUSR1, which costs no boot.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::{WorkerState, WorkerStatus};
use common::clock::now;
use common::config::{ManagerConfig, ProviderKind};
use common::metrics::{process_cpu_seconds, total_requests, Series, SERIES_AGE};

use super::{drain_order, mean_healthy_cpu, overdue, Provider};
use crate::serve::balancer::{Target, Targets};

struct Worker {
    id: String,
    addr: SocketAddr,
    pid: u32,
    state: WorkerState,
    started_at: f64,
    /// When it last changed state (for start and unhealthy timeouts).
    since: f64,
    passes: u32,
    fails: u32,
    in_flight: Arc<AtomicU64>,
    exited: Arc<AtomicBool>,
    cpu: Series,
    requests: Series,
    last_cpu: Option<(f64, f64)>,
    last_requests: Option<(f64, f64)>,
}

pub struct LocalPool {
    workers: Mutex<BTreeMap<u64, Worker>>,
    next_id: AtomicU64,
    config: Arc<ManagerConfig>,
    worker_bin: PathBuf,
    http: reqwest::Client,
    cores: f64,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl LocalPool {
    pub fn new(config: Arc<ManagerConfig>) -> anyhow::Result<Self> {
        let worker_bin = match &config.worker_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?.with_file_name("gallery-server"),
        };
        anyhow::ensure!(
            worker_bin.exists(),
            "worker binary {} not found (set worker_bin)",
            worker_bin.display()
        );
        Ok(LocalPool {
            workers: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            config,
            worker_bin,
            // No idle keep-alive connections: a worker told to stop waits out its whole
            // shutdown grace while any connection to it is open.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .pool_max_idle_per_host(0)
                .build()?,
            cores: std::thread::available_parallelism()
                .map(|n| n.get() as f64)
                .unwrap_or(1.0),
        })
    }
}

impl Targets for LocalPool {
    fn targets(&self) -> Vec<Target> {
        self.workers
            .lock()
            .unwrap()
            .values()
            .filter(|w| w.state == WorkerState::Healthy)
            .map(|w| Target {
                id: w.id.clone(),
                addr: w.addr,
                in_flight: w.in_flight.clone(),
            })
            .collect()
    }

    /// A request to this worker could not even connect: take it out of rotation now rather
    /// than waiting for the next health checks.
    fn report_unreachable(&self, id: &str) {
        let mut workers = self.workers.lock().unwrap();
        if let Some(w) = workers
            .values_mut()
            .find(|w| w.id == id && w.state == WorkerState::Healthy)
        {
            tracing::warn!(worker = %id, "worker refused or dropped a connection; out of rotation until it passes health checks");
            w.state = WorkerState::Unhealthy;
            w.since = now();
            w.passes = 0;
        }
    }
}

/// Whether this machine has room for one more worker: `available` bytes of memory (the
/// kernel's MemAvailable; unknown: yes) against `need`. The reason when not, for the
/// operator: the autoscaler may want more workers than one machine holds.
pub fn room_for_a_worker(available: Option<u64>, need: u64) -> Result<(), String> {
    match available {
        Some(available) if available < need => Err(format!(
            "this machine has {} MiB of memory available and a worker may need {} MiB: no more workers fit here (local_worker_memory_mib)",
            available >> 20,
            need >> 20
        )),
        _ => Ok(()),
    }
}

/// The kernel's estimate of memory available for new processes without swapping.
fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(common::metrics::proc_kib(&meminfo, "MemAvailable")? * 1024)
}

impl LocalPool {
    /// Starts one worker process, in service or as warm standby, if the machine has room.
    fn spawn(&self, standby: bool) -> anyhow::Result<String> {
        room_for_a_worker(
            memory_available(),
            self.config.local_worker_memory_mib << 20,
        )
        .map_err(anyhow::Error::msg)?;
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("local-{n}");
        let port = free_port()?;
        let logs = self.config.data_dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{id}.log")))?;
        let mut command = tokio::process::Command::new(&self.worker_bin);
        // SAFETY: prctl is async-signal-safe; it makes the kernel stop the worker if the
        // control plane dies, so no orphan keeps serving outside any pool.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command
            .arg("serve")
            .env("GALLERY_ADDRESS", "127.0.0.1")
            .env("GALLERY_PORT", port.to_string())
            .env("GALLERY_DATA_DIR", &self.config.data_dir)
            .env("GALLERY_DATABASE_URL", &self.config.database_url)
            .env("GALLERY_STANDBY", if standby { "true" } else { "false" })
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let exited = Arc::new(AtomicBool::new(false));
        let flag = exited.clone();
        let wid = id.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            flag.store(true, Ordering::SeqCst);
            tracing::info!(worker = %wid, ?status, "worker process exited");
        });
        let t = now();
        self.workers.lock().unwrap().insert(
            n,
            Worker {
                id: id.clone(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                pid,
                state: if standby {
                    WorkerState::Warming
                } else {
                    WorkerState::Starting
                },
                started_at: t,
                since: t,
                passes: 0,
                fails: 0,
                in_flight: Arc::new(AtomicU64::new(0)),
                exited,
                cpu: Series::new(SERIES_AGE),
                requests: Series::new(SERIES_AGE),
                last_cpu: None,
                last_requests: None,
            },
        );
        tracing::info!(worker = %id, %port, pid, standby, "launched worker");
        Ok(id)
    }

    fn with_worker<T>(&self, id: &str, f: impl FnOnce(&mut Worker) -> T) -> Option<T> {
        self.workers
            .lock()
            .unwrap()
            .values_mut()
            .find(|w| w.id == id)
            .map(f)
    }
}

#[async_trait::async_trait]
impl Provider for LocalPool {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    /// Starts one worker process; it joins the rotation once it passes health checks.
    async fn launch(&self) -> anyhow::Result<String> {
        self.spawn(false)
    }

    fn has_standby(&self) -> bool {
        true
    }

    async fn launch_standby(&self) -> anyhow::Result<String> {
        self.spawn(true)
    }

    async fn promote_standby(&self) -> Option<String> {
        let mut workers = self.workers.lock().unwrap();
        // The longest-ready standby: its models have been loaded longest.
        let w = workers
            .values_mut()
            .filter(|w| w.state == WorkerState::Standby)
            .min_by(|a, b| a.since.total_cmp(&b.since))?;
        // Its processors start on SIGUSR1; it already passes health checks, so it serves now.
        signal(w.pid, libc::SIGUSR1);
        w.state = WorkerState::Healthy;
        w.since = now();
        tracing::info!(worker = %w.id, "standby worker promoted");
        Some(w.id.clone())
    }

    async fn retire_standby(&self, n: u32) {
        let mut workers = self.workers.lock().unwrap();
        let mut standby: Vec<(u8, u64)> = workers
            .iter()
            .filter(|(_, w)| w.state.is_standby())
            .map(|(k, w)| (u8::from(w.state == WorkerState::Standby), *k))
            .collect();
        standby.sort();
        for (_, k) in standby.into_iter().take(n as usize) {
            if let Some(w) = workers.remove(&k) {
                // It serves nobody and holds no claims: no drain.
                signal(w.pid, libc::SIGTERM);
                tracing::info!(worker = %w.id, "standby worker stopped");
            }
        }
    }

    /// Marks `n` workers as draining (starting ones first, then unhealthy, then the newest
    /// healthy) and returns their ids. The balancer stops using them at once.
    async fn mark_draining(&self, n: u32) -> Vec<String> {
        let mut workers = self.workers.lock().unwrap();
        let chosen = drain_order(workers.iter().map(|(k, w)| (*k, w.state, w.started_at)), n);
        let t = now();
        chosen
            .into_iter()
            .map(|k| {
                let w = workers.get_mut(&k).expect("present");
                w.state = WorkerState::Draining;
                w.since = t;
                w.id.clone()
            })
            .collect()
    }

    /// Waits for a draining worker's requests to finish (up to the drain timeout), then
    /// asks it to stop (SIGTERM, graceful) and waits for it to exit.
    async fn drain_and_stop(&self, id: &str) {
        let Some((pid, in_flight, exited)) =
            self.with_worker(id, |w| (w.pid, w.in_flight.clone(), w.exited.clone()))
        else {
            return;
        };
        let deadline = now() + self.config.drain_timeout_secs;
        while in_flight.load(Ordering::SeqCst) > 0
            && now() < deadline
            && !exited.load(Ordering::SeqCst)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal(pid, libc::SIGTERM);
        // The worker's own shutdown grace is 25 s plus 5 s of mercy.
        let deadline = now() + 35.0;
        while !exited.load(Ordering::SeqCst) && now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !exited.load(Ordering::SeqCst) {
            tracing::warn!(worker = %id, "worker ignored SIGTERM; killing it");
            signal(pid, libc::SIGKILL);
        }
        self.workers.lock().unwrap().retain(|_, w| w.id != id);
        tracing::info!(worker = %id, "worker drained and stopped");
    }

    /// One round of active health checks; also notices dead processes and workers that
    /// never came up or stayed unhealthy, and removes them (the reconciler replaces them).
    async fn check_health(&self) {
        let checks: Vec<(u64, SocketAddr)> = self
            .workers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, w)| w.state.is_active() || w.state.is_standby())
            .map(|(k, w)| (*k, w.addr))
            .collect();
        let results = futures_join(checks.iter().map(|(k, addr)| {
            let url = format!("http://{addr}/healthz");
            let http = self.http.clone();
            let k = *k;
            async move {
                let ok = matches!(http.get(url).send().await, Ok(r) if r.status().is_success());
                (k, ok)
            }
        }))
        .await;
        let t = now();
        let mut workers = self.workers.lock().unwrap();
        for (k, ok) in results {
            let Some(w) = workers.get_mut(&k) else {
                continue;
            };
            if ok {
                w.passes += 1;
                w.fails = 0;
            } else {
                w.fails += 1;
                w.passes = 0;
            }
            let next = match w.state {
                WorkerState::Starting if w.passes >= self.config.healthy_threshold => {
                    WorkerState::Healthy
                }
                WorkerState::Unhealthy if w.passes >= self.config.healthy_threshold => {
                    WorkerState::Healthy
                }
                WorkerState::Healthy if w.fails >= self.config.unhealthy_threshold => {
                    WorkerState::Unhealthy
                }
                WorkerState::Warming if w.passes >= self.config.healthy_threshold => {
                    WorkerState::Standby
                }
                // A standby that stops answering is of no use: back to warming, replaced if
                // it does not recover within the start timeout.
                WorkerState::Standby if w.fails >= self.config.unhealthy_threshold => {
                    WorkerState::Warming
                }
                s => s,
            };
            if next != w.state {
                tracing::info!(worker = %w.id, from = w.state.as_str(), to = next.as_str(), "health changed");
                w.state = next;
                w.since = t;
            }
        }
        let mut gone = Vec::new();
        for (k, w) in workers.iter_mut() {
            let dead = w.exited.load(Ordering::SeqCst) && w.state != WorkerState::Draining;
            let late = overdue(w.state, w.since, t, self.config.start_timeout_secs);
            if dead || late {
                tracing::warn!(worker = %w.id, state = w.state.as_str(), dead, "replacing worker");
                signal(w.pid, libc::SIGKILL);
                gone.push(*k);
            }
        }
        for k in gone {
            workers.remove(&k);
        }
    }

    /// Samples every live worker's CPU and request rate; returns the mean CPU of the
    /// healthy ones (starting workers are left out: booting skews the average).
    async fn sample(&self) -> Option<f64> {
        let targets: Vec<(u64, u32, SocketAddr)> = self
            .workers
            .lock()
            .unwrap()
            .iter()
            .map(|(k, w)| (*k, w.pid, w.addr))
            .collect();
        let totals = futures_join(targets.iter().map(|(k, _, addr)| {
            let http = self.http.clone();
            let url = format!("http://{addr}/metrics");
            let k = *k;
            async move {
                let text = match http.get(url).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.ok(),
                    _ => None,
                };
                (k, text.as_deref().and_then(total_requests))
            }
        }))
        .await;
        let t = now();
        let mut workers = self.workers.lock().unwrap();
        for (k, pid, _) in &targets {
            let Some(w) = workers.get_mut(k) else {
                continue;
            };
            if let Some(cpu_secs) = process_cpu_seconds(*pid) {
                if let Some((t0, c0)) = w.last_cpu {
                    if t > t0 {
                        w.cpu
                            .push(t, ((cpu_secs - c0) / (t - t0) / self.cores).clamp(0.0, 1.0));
                    }
                }
                w.last_cpu = Some((t, cpu_secs));
            }
        }
        for (k, total) in totals {
            let (Some(w), Some(total)) = (workers.get_mut(&k), total) else {
                continue;
            };
            if let Some((t0, n0)) = w.last_requests {
                if t > t0 && total >= n0 {
                    w.requests.push(t, (total - n0) / (t - t0));
                }
            }
            w.last_requests = Some((t, total));
        }
        // Only points of this sample: a worker whose CPU could not be read now is left out.
        mean_healthy_cpu(workers.values().map(|w| (w.state, &w.cpu)), t, 0.0)
    }

    async fn status(&self) -> Vec<WorkerStatus> {
        self.workers
            .lock()
            .unwrap()
            .values()
            .map(|w| {
                let address = w.addr.to_string();
                let in_flight = w.in_flight.load(Ordering::Relaxed);
                WorkerStatus::from_series(
                    &w.id,
                    &address,
                    Some(w.pid),
                    w.state,
                    w.started_at,
                    &w.cpu,
                    &w.requests,
                    in_flight,
                )
            })
            .collect()
    }

    fn kill_all(&self) {
        for w in self.workers.lock().unwrap().values() {
            signal(w.pid, libc::SIGKILL);
        }
    }
}

fn signal(pid: u32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) on a pid we spawned; a stale pid at worst gets ESRCH.
        unsafe { libc::kill(pid as i32, sig) };
    }
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("health/metrics probe panicked"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_starts_only_where_the_memory_it_may_need_is_available() {
        let mib = |n: u64| n << 20;
        assert!(room_for_a_worker(Some(mib(600)), mib(512)).is_ok());
        let full = room_for_a_worker(Some(mib(300)), mib(512)).unwrap_err();
        assert!(
            full.contains("300 MiB") && full.contains("512 MiB"),
            "{full}"
        );
        assert!(room_for_a_worker(None, mib(512)).is_ok(), "unknown: tried");
        assert!(
            memory_available().is_some_and(|b| b > 0),
            "read from /proc/meminfo"
        );
    }
}
