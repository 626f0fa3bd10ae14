//! Modelled worker pools driven by the real autoscaler (`common::autoscale::step`), to compare
//! designs and policies at rates we cannot afford to run. Deterministic per seed.
//!
//! Two designs: [`synchronous`], the original system (each upload processed inside its
//! request, so a request finding its worker busy for too long is lost), and [`backlog`], ours
//! (an upload is accepted in milliseconds and processed from a shared backlog). Either runs
//! under the CPU step policy with the original system's timing (CloudWatch minutes, published
//! late, polled every 10 s) or under our demand policy (the database counted every 2 s).
pub mod backlog;
pub mod synchronous;

use std::collections::VecDeque;

use common::autoscale::{Policy, PoolView, Sample};
use rand::Rng;

#[derive(Debug, Clone)]
pub struct Timing {
    pub name: &'static str,
    pub policy: Policy,
    pub metric_period: f64,
    pub metric_delay: f64,
    pub poll: f64,
}

impl Timing {
    /// The original system: CloudWatch 1-minute CPU, polled every 10 s, ×1.5 / ×0.5, 60 s
    /// cooldown, 150 s resize timeout, no scale-in window or tolerance.
    pub fn cpu_step(max_workers: u32) -> Timing {
        Timing {
            name: "CPU step",
            policy: Policy {
                max_sample_age_secs: 180.0,
                max_workers,
                ..Policy::cpu_step()
            },
            metric_period: 60.0,
            metric_delay: 60.0,
            poll: 10.0,
        }
    }

    /// Ours: the demand policy with its defaults, deciding every 2 s on counts read at once.
    pub fn demand(max_workers: u32) -> Timing {
        Timing {
            name: "demand",
            policy: Policy {
                max_workers,
                ..Policy::default()
            },
            metric_period: 5.0,
            metric_delay: 0.0,
            poll: 2.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Uploads per second one worker processes at 100 % CPU.
    pub capacity: f64,
    /// Worker-seconds of CPU one accept costs (HTTP, multipart, password check from the
    /// verified-credentials cache, decode check, store, insert).
    pub accept_cost: f64,
    /// Seconds from launch to serving.
    pub boot: f64,
    /// Seconds from promoting a standby worker to serving (starting a stopped instance).
    pub warm_boot: f64,
    /// Requests one worker holds (synchronous: waiting for processing; backlog: waiting to
    /// be accepted) before it refuses more.
    pub queue_limit: usize,
    /// Seconds a client waits for its reply before giving up.
    pub timeout: f64,
    /// Photos accepted and not processed beyond which accepts are refused (503 Retry-After).
    pub backlog_limit: usize,
    pub dt: f64,
}

impl Default for Model {
    fn default() -> Self {
        // A 2-core worker processes about 2 uploads/s of 1–2 MP photos; accepting one costs
        // about 1/50 of processing it; EC2 boots in about a minute, a stopped instance in 30 s.
        Model {
            capacity: 2.0,
            accept_cost: 0.01,
            boot: 60.0,
            warm_boot: 30.0,
            queue_limit: 18,
            timeout: 60.0,
            backlog_limit: 10_000,
            dt: 0.1,
        }
    }
}

/// Arrival rate (uploads/s) over time.
#[derive(Debug, Clone)]
pub enum Trace {
    Constant {
        rate: f64,
        secs: f64,
    },
    /// Steps of (duration, rate).
    Steps(Vec<(f64, f64)>),
    /// A day compressed into `secs`: from `low` at night to `high` at midday.
    Diurnal {
        low: f64,
        high: f64,
        secs: f64,
    },
}

impl Trace {
    pub fn duration(&self) -> f64 {
        match self {
            Trace::Constant { secs, .. } | Trace::Diurnal { secs, .. } => *secs,
            Trace::Steps(steps) => steps.iter().map(|s| s.0).sum(),
        }
    }

    pub fn rate(&self, t: f64) -> f64 {
        match self {
            Trace::Constant { rate, .. } => *rate,
            Trace::Steps(steps) => {
                let mut start = 0.0;
                for (secs, rate) in steps {
                    if t < start + secs {
                        return *rate;
                    }
                    start += secs;
                }
                0.0
            }
            Trace::Diurnal { low, high, secs } => {
                let phase = (t / secs) * std::f64::consts::TAU;
                low + (high - low) * (1.0 - phase.cos()) / 2.0
            }
        }
    }

    pub fn scaled(&self, k: f64) -> Trace {
        match self {
            Trace::Constant { rate, secs } => Trace::Constant {
                rate: rate * k,
                secs: *secs,
            },
            Trace::Steps(steps) => Trace::Steps(steps.iter().map(|(s, r)| (*s, r * k)).collect()),
            Trace::Diurnal { low, high, secs } => Trace::Diurnal {
                low: low * k,
                high: high * k,
                secs: *secs,
            },
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub arrived: u64,
    /// Uploads processed (synchronous: answered; backlog: made ready).
    pub processed: u64,
    /// Uploads refused or given up by their clients: never stored.
    pub refused: u64,
    /// Of those, refused with `Retry-After` because the backlog was at its limit.
    pub refused_backlog_full: u64,
    /// Accepted and still not processed when the run ended (a lost photo, if the run's end
    /// stands for the user's patience).
    pub never_processed: u64,
    /// Seconds from upload to processed.
    pub p50: f64,
    pub p99: f64,
    /// Every live worker's time, booting and draining included; standby instances stopped
    /// cost nothing.
    pub instance_minutes: f64,
    pub resizes: u32,
    pub peak_workers: u32,
    /// (time, desired, healthy, arrival rate) once a second.
    pub timeline: Vec<(f64, u32, u32, f64)>,
}

impl Report {
    pub fn refused_pct(&self) -> f64 {
        100.0 * self.refused as f64 / self.arrived.max(1) as f64
    }

    fn finish(&mut self, mut waits: Vec<f64>) {
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| {
            waits
                .get(((waits.len() as f64) * q) as usize)
                .or(waits.last())
                .copied()
                .unwrap_or(0.0)
        };
        self.p50 = at(0.5);
        self.p99 = at(0.99);
    }
}

fn poisson(rng: &mut impl Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        // Normal approximation for large means keeps the step cheap.
        let z: f64 = (0..12).map(|_| rng.gen::<f64>()).sum::<f64>() - 6.0;
        return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.gen::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

/// CPU as the control plane sees it: the mean busy fraction of the workers that served a
/// whole `metric_period`, published `metric_delay` seconds after the period ends.
struct CpuMetric {
    period_start: f64,
    measured: VecDeque<(f64, f64)>,
    /// What the autoscaler has seen, oldest first.
    samples: Vec<Sample>,
}

/// What the control plane sees of a modelled worker, in either design.
trait Modelled {
    /// When it serves from (booted).
    fn ready_at(&self) -> f64;
    fn draining(&self) -> bool;
    /// Seconds of this metric period it was busy.
    fn busy_in_period(&mut self) -> &mut f64;

    /// In rotation at `t`: booted and not leaving.
    fn serves(&self, t: f64) -> bool {
        !self.draining() && self.ready_at() <= t
    }
}

/// The pool as the autoscaler sees it at `t`.
fn pool_view<W: Modelled>(workers: &[W], desired: u32, t: f64) -> PoolView {
    let staying = || workers.iter().filter(|w| !w.draining());
    PoolView {
        desired,
        healthy: staying().filter(|w| w.ready_at() <= t).count() as u32,
        starting: staying().filter(|w| w.ready_at() > t).count() as u32,
    }
}

impl CpuMetric {
    fn new() -> CpuMetric {
        CpuMetric {
            period_start: 0.0,
            measured: VecDeque::new(),
            samples: Vec::new(),
        }
    }

    /// At `t`: ends the period if it is due (and starts the workers' next one), and
    /// publishes the points whose delay has passed.
    fn tick<W: Modelled>(&mut self, t: f64, timing: &Timing, workers: &mut [W]) {
        if t - self.period_start >= timing.metric_period - 1e-9 {
            let span = t - self.period_start;
            let mut busy = Vec::new();
            for w in workers.iter_mut() {
                if w.serves(self.period_start) {
                    busy.push(*w.busy_in_period() / span);
                }
                *w.busy_in_period() = 0.0;
            }
            if !busy.is_empty() {
                self.measured
                    .push_back((t, busy.iter().sum::<f64>() / busy.len() as f64));
            }
            self.period_start = t;
        }
        while self
            .measured
            .front()
            .is_some_and(|(at, _)| *at + timing.metric_delay <= t)
        {
            let (at, cpu) = self.measured.pop_front().expect("checked");
            // The autoscaler sees the point when it is published.
            self.samples.push(Sample {
                at: at + timing.metric_delay,
                cpu,
            });
        }
        self.samples.retain(|s| t - s.at <= 1800.0);
    }
}

/// Starts draining the newest `n` workers not draining yet (still booting ones are newest).
fn drain_newest<'a>(draining: impl DoubleEndedIterator<Item = &'a mut bool>, n: u32) {
    for flag in draining.rev().filter(|d| !**d).take(n as usize) {
        *flag = true;
    }
}
