//! A modelled worker pool driven by the real autoscaler (`common::autoscale::step`), to
//! compare policies and timings at rates we cannot afford to run. Deterministic per seed.
//!
//! Model, stepped every `dt` seconds: Poisson arrivals at the trace's rate go round robin to
//! healthy workers; each worker serves its FIFO queue at `capacity` uploads/s (one at a
//! time); a request finding its worker's queue full, or waiting longer than `timeout`, is
//! lost. CPU of a worker is its busy fraction. The control plane sees CPU only as the mean
//! over `metric_period` seconds, `metric_delay` seconds late, and runs the autoscaler every
//! `poll` seconds. New workers serve after `boot` seconds; removed ones finish their queue
//! (drain) and then stop.
use std::collections::VecDeque;

use common::autoscale::{self, Phase, Policy, PoolView, Sample};
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct Timing {
    pub name: &'static str,
    pub policy: Policy,
    pub metric_period: f64,
    pub metric_delay: f64,
    pub poll: f64,
}

impl Timing {
    /// The seed system: CloudWatch 1-minute CPU, polled every 10 s, ×1.5 / ×0.5, 60 s
    /// cooldown, 150 s resize timeout, no scale-in window or tolerance.
    pub fn seed(max_workers: u32) -> Timing {
        Timing {
            name: "seed",
            policy: Policy {
                tolerance: 0.0,
                grow_window_secs: 0.0,
                scale_in_window_secs: 0.0,
                max_sample_age_secs: 180.0,
                max_workers,
                ..Policy::default()
            },
            metric_period: 60.0,
            metric_delay: 60.0,
            poll: 10.0,
        }
    }

    /// Ours: 5 s samples read at once, decided at every sample, with the default policy.
    pub fn ours(max_workers: u32) -> Timing {
        Timing {
            name: "ours",
            policy: Policy {
                max_workers,
                ..Policy::default()
            },
            metric_period: 5.0,
            metric_delay: 0.0,
            poll: 5.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    /// Uploads per second one worker completes at 100 % CPU.
    pub capacity: f64,
    pub boot: f64,
    pub queue_limit: usize,
    pub timeout: f64,
    pub dt: f64,
}

impl Default for Model {
    fn default() -> Self {
        // A 2-core worker does about 2 uploads/s of 1–2 MP photos; EC2 boots in about a minute.
        Model {
            capacity: 2.0,
            boot: 60.0,
            queue_limit: 18,
            timeout: 60.0,
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

struct Worker {
    ready_at: f64,
    draining: bool,
    queue: VecDeque<f64>,
    /// Service time left for the request at the head of the queue.
    left: f64,
    busy_in_period: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub arrived: u64,
    pub served: u64,
    pub lost: u64,
    pub p99_wait: f64,
    pub instance_minutes: f64,
    pub resizes: u32,
    pub peak_workers: u32,
    /// (time, desired, healthy, arrival rate) once a second.
    pub timeline: Vec<(f64, u32, u32, f64)>,
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

pub fn run(trace: &Trace, timing: &Timing, model: &Model, seed: u64) -> Report {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let policy = &timing.policy;
    let mut workers: Vec<Worker> = (0..policy.min_workers)
        .map(|_| Worker {
            ready_at: 0.0,
            draining: false,
            queue: VecDeque::new(),
            left: 0.0,
            busy_in_period: 0.0,
        })
        .collect();
    let mut desired = policy.min_workers;
    let mut phase = Phase::Idle;
    let mut samples: Vec<Sample> = Vec::new();
    // Metric points as measured (time, mean CPU of serving workers), visible after the delay.
    let mut measured: VecDeque<(f64, f64)> = VecDeque::new();
    let mut period_start = 0.0;
    let mut next_poll = timing.poll;
    let mut next_second = 0.0;
    let mut rr = 0usize;
    let mut waits: Vec<f64> = Vec::new();
    let mut report = Report::default();
    let end = trace.duration();
    let mut t = 0.0;
    while t < end {
        let serving: Vec<usize> = (0..workers.len())
            .filter(|&i| !workers[i].draining && workers[i].ready_at <= t)
            .collect();
        for _ in 0..poisson(&mut rng, trace.rate(t) * model.dt) {
            report.arrived += 1;
            if serving.is_empty() {
                report.lost += 1;
                continue;
            }
            let w = &mut workers[serving[rr % serving.len()]];
            rr += 1;
            if w.queue.len() >= model.queue_limit {
                report.lost += 1;
            } else {
                if w.queue.is_empty() {
                    w.left = 1.0 / model.capacity;
                }
                w.queue.push_back(t);
            }
        }
        for w in workers.iter_mut().filter(|w| w.ready_at <= t) {
            // Requests that waited too long have been given up by their clients.
            while w.queue.len() > 1 && t - w.queue[1] > model.timeout {
                w.queue.remove(1);
                report.lost += 1;
            }
            let mut budget = model.dt;
            while budget > 0.0 && !w.queue.is_empty() {
                let used = w.left.min(budget);
                w.left -= used;
                budget -= used;
                w.busy_in_period += used;
                if w.left <= 1e-12 {
                    let arrived = w.queue.pop_front().expect("non-empty");
                    waits.push(t - arrived);
                    report.served += 1;
                    w.left = 1.0 / model.capacity;
                }
            }
        }
        // Drained workers leave; every live worker costs, booting and draining included.
        workers.retain(|w| !(w.draining && w.queue.is_empty()));
        report.instance_minutes += workers.len() as f64 * model.dt / 60.0;
        report.peak_workers = report.peak_workers.max(workers.len() as u32);
        t += model.dt;

        if t - period_start >= timing.metric_period - 1e-9 {
            let span = t - period_start;
            let busy: Vec<f64> = workers
                .iter_mut()
                .filter(|w| !w.draining && w.ready_at <= period_start)
                .map(|w| w.busy_in_period / span)
                .collect();
            for w in workers.iter_mut() {
                w.busy_in_period = 0.0;
            }
            if !busy.is_empty() {
                measured.push_back((t, busy.iter().sum::<f64>() / busy.len() as f64));
            }
            period_start = t;
        }
        while measured
            .front()
            .is_some_and(|(at, _)| *at + timing.metric_delay <= t)
        {
            let (at, cpu) = measured.pop_front().expect("checked");
            // The autoscaler sees the point when it is published.
            samples.push(Sample {
                at: at + timing.metric_delay,
                cpu,
            });
        }
        if t >= next_poll {
            next_poll += timing.poll;
            let healthy = workers
                .iter()
                .filter(|w| !w.draining && w.ready_at <= t)
                .count() as u32;
            let starting = workers
                .iter()
                .filter(|w| !w.draining && w.ready_at > t)
                .count() as u32;
            let d = autoscale::step(
                phase,
                PoolView {
                    desired,
                    healthy,
                    starting,
                },
                &samples,
                policy,
                t,
            );
            phase = d.phase;
            if let Some(r) = d.resize {
                report.resizes += 1;
                if r.to > desired {
                    for _ in desired..r.to {
                        workers.push(Worker {
                            ready_at: t + model.boot,
                            draining: false,
                            queue: VecDeque::new(),
                            left: 0.0,
                            busy_in_period: 0.0,
                        });
                    }
                } else {
                    // Newest (possibly still booting) workers leave first.
                    let mut remove = (desired - r.to) as usize;
                    for w in workers.iter_mut().rev().filter(|w| !w.draining) {
                        if remove == 0 {
                            break;
                        }
                        w.draining = true;
                        remove -= 1;
                    }
                }
                desired = r.to;
            }
            samples.retain(|s| t - s.at <= 1800.0);
        }
        if t >= next_second {
            next_second += 1.0;
            let healthy = workers
                .iter()
                .filter(|w| !w.draining && w.ready_at <= t)
                .count() as u32;
            report.timeline.push((t, desired, healthy, trace.rate(t)));
        }
    }
    // What is still queued at the end is not lost; it is served after the trace.
    waits.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    report.p99_wait = waits
        .get(((waits.len() as f64) * 0.99) as usize)
        .copied()
        .unwrap_or(0.0);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let trace = Trace::Steps(vec![(300.0, 1.0), (300.0, 6.0), (300.0, 0.2)]);
        let a = run(&trace, &Timing::ours(20), &Model::default(), 7);
        let b = run(&trace, &Timing::ours(20), &Model::default(), 7);
        assert_eq!(
            (a.arrived, a.lost, a.resizes),
            (b.arrived, b.lost, b.resizes)
        );
        assert_eq!(a.timeline, b.timeline);
    }

    #[test]
    fn a_pool_with_room_loses_nothing_and_never_resizes_on_light_load() {
        let trace = Trace::Constant {
            rate: 0.5,
            secs: 600.0,
        };
        let r = run(&trace, &Timing::ours(10), &Model::default(), 1);
        // 0.5/s on one 2/s worker is 25 % CPU: inside the band, so no resize.
        assert_eq!((r.lost, r.resizes), (0, 0));
        assert!(r.arrived > 250 && r.served >= r.arrived - 2);
    }

    #[test]
    fn overload_grows_the_pool_and_it_shrinks_after() {
        let trace = Trace::Steps(vec![(900.0, 8.0), (900.0, 0.0)]);
        let r = run(&trace, &Timing::ours(20), &Model::default(), 3);
        let peak = r.timeline.iter().map(|p| p.1).max().unwrap();
        assert!(
            peak >= 5,
            "8/s needs at least 4 workers at 2/s; peak {peak}"
        );
        assert_eq!(
            r.timeline.last().unwrap().1,
            1,
            "back to the minimum after the load"
        );
    }

    #[test]
    fn without_capacity_requests_are_lost_and_counted() {
        let trace = Trace::Constant {
            rate: 10.0,
            secs: 300.0,
        };
        let stuck = Timing {
            policy: Policy {
                max_workers: 1,
                ..Policy::default()
            },
            ..Timing::ours(1)
        };
        let r = run(&trace, &stuck, &Model::default(), 5);
        // One worker serves 2/s of the 10/s: about 80 % is lost.
        let lost = r.lost as f64 / r.arrived as f64;
        assert!((0.7..0.9).contains(&lost), "{lost}");
    }
}
