//! Our design: Poisson arrivals go round robin to serving workers, which accept each upload
//! at `accept_cost` worker-seconds of CPU (ahead of processing: processors run at a lower
//! priority) into one backlog that every worker's processors take from, oldest first, at
//! `capacity` photos/s of the CPU accepting leaves. An upload is refused only when no worker
//! serves, its worker already holds `queue_limit` uploads waiting to be accepted, its client
//! gave up waiting, or the backlog is at `backlog_limit` (503 with Retry-After).
//!
//! The control plane counts the backlog and what was accepted and processed in the last
//! seconds every `poll`, as the database would tell it, and samples CPU as for the original
//! system. New workers serve after `boot`; a promoted standby (a stopped instance) after
//! `warm_boot`, and the standby is refilled in the background (booted, then stopped: its boot
//! costs instance time, its wait does not). Draining workers finish their accepts and give
//! their photo in progress back to the backlog. After the trace the run goes on without
//! arrivals until the backlog is empty, at most `DRAIN_HORIZON`; what is left then was
//! accepted and never processed.
use std::collections::VecDeque;

use common::autoscale::demand::MEASURE_WINDOW_SECS;
use common::autoscale::{self, DemandSample, Phase, Signals};
use rand::SeedableRng;

use super::{drain_newest, poisson, pool_view, CpuMetric, Model, Modelled, Report, Timing, Trace};

/// How long after the trace the backlog may take to clear.
pub const DRAIN_HORIZON: f64 = 3600.0;

struct Worker {
    ready_at: f64,
    draining: bool,
    /// Uploads waiting for this worker to accept them (their arrival times).
    accepts: VecDeque<f64>,
    accept_left: f64,
    /// The photo this worker processes (its upload time) and the work left on it.
    photo: Option<(f64, f64)>,
    busy_in_period: f64,
}

impl Worker {
    fn new(ready_at: f64) -> Worker {
        Worker {
            ready_at,
            draining: false,
            accepts: VecDeque::new(),
            accept_left: 0.0,
            photo: None,
            busy_in_period: 0.0,
        }
    }
}

impl Modelled for Worker {
    fn ready_at(&self) -> f64 {
        self.ready_at
    }
    fn draining(&self) -> bool {
        self.draining
    }
    fn busy_in_period(&mut self) -> &mut f64 {
        &mut self.busy_in_period
    }
}

pub fn run(trace: &Trace, timing: &Timing, model: &Model, seed: u64) -> Report {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let policy = &timing.policy;
    let mut workers: Vec<Worker> = (0..policy.min_workers).map(|_| Worker::new(0.0)).collect();
    // The deployment starts with its standby in place.
    let mut standby_ready = policy.standby_workers;
    let mut standby_booting: Vec<f64> = Vec::new();
    let mut backlog: VecDeque<f64> = VecDeque::new();
    let mut accepted_at: VecDeque<f64> = VecDeque::new();
    let mut processed_at: VecDeque<f64> = VecDeque::new();
    let mut desired = policy.min_workers;
    let mut phase = Phase::Idle;
    let mut demand: Vec<DemandSample> = Vec::new();
    let mut learned_rate = None;
    let mut cpu_metric = CpuMetric::new();
    let mut next_poll = timing.poll;
    let mut next_second = 0.0;
    let mut rr = 0usize;
    let mut waits: Vec<f64> = Vec::new();
    let mut report = Report::default();
    let end = trace.duration();
    let mut t = 0.0;
    loop {
        let in_flight = workers
            .iter()
            .map(|w| w.accepts.len() + usize::from(w.photo.is_some()))
            .sum::<usize>();
        if t >= end + DRAIN_HORIZON || (t >= end && backlog.is_empty() && in_flight == 0) {
            break;
        }
        let serving: Vec<usize> = (0..workers.len())
            .filter(|&i| workers[i].serves(t))
            .collect();
        let rate = if t < end { trace.rate(t) } else { 0.0 };
        for _ in 0..poisson(&mut rng, rate * model.dt) {
            report.arrived += 1;
            let waiting = backlog.len() + workers.iter().filter(|w| w.photo.is_some()).count();
            if waiting >= model.backlog_limit {
                report.refused += 1;
                report.refused_backlog_full += 1;
                continue;
            }
            if serving.is_empty() {
                report.refused += 1;
                continue;
            }
            let w = &mut workers[serving[rr % serving.len()]];
            rr += 1;
            if w.accepts.len() >= model.queue_limit {
                report.refused += 1;
            } else {
                w.accepts.push_back(t);
            }
        }
        for w in workers.iter_mut().filter(|w| w.ready_at <= t) {
            let mut budget = model.dt;
            // Clients that waited too long for their reply gave up; the one being accepted
            // is nearly done and stays.
            while w.accepts.len() > 1 && t - w.accepts[1] > model.timeout {
                w.accepts.remove(1);
                report.refused += 1;
            }
            while budget > 1e-12 && !w.accepts.is_empty() {
                if w.accept_left <= 0.0 {
                    w.accept_left = model.accept_cost;
                }
                let used = w.accept_left.min(budget);
                w.accept_left -= used;
                budget -= used;
                if w.accept_left <= 1e-12 {
                    w.accept_left = 0.0;
                    let arrived = w.accepts.pop_front().expect("non-empty");
                    backlog.push_back(arrived);
                    accepted_at.push_back(t);
                }
            }
            if w.draining {
                // A draining worker takes no new claims and gives back the one it holds.
                if let Some((arrived, _)) = w.photo.take() {
                    backlog.push_front(arrived);
                }
            } else {
                while budget > 1e-12 {
                    let (arrived, left) = match w.photo.take() {
                        Some(p) => p,
                        None => match backlog.pop_front() {
                            Some(arrived) => (arrived, 1.0 / model.capacity),
                            None => break,
                        },
                    };
                    let used = left.min(budget);
                    budget -= used;
                    if left - used <= 1e-12 {
                        report.processed += 1;
                        waits.push(t - arrived);
                        processed_at.push_back(t);
                    } else {
                        w.photo = Some((arrived, left - used));
                    }
                }
            }
            w.busy_in_period += model.dt - budget;
        }
        workers.retain(|w| !(w.draining && w.accepts.is_empty() && w.photo.is_none()));
        report.instance_minutes += (workers.len() + standby_booting.len()) as f64 * model.dt / 60.0;
        report.peak_workers = report.peak_workers.max(workers.len() as u32);
        t += model.dt;
        let booted = standby_booting.iter().filter(|at| **at <= t).count();
        standby_booting.retain(|at| *at > t);
        standby_ready += booted as u32;

        cpu_metric.tick(t, timing, &mut workers);
        if t >= next_poll {
            next_poll += timing.poll;
            let view = pool_view(&workers, desired, t);
            while accepted_at
                .front()
                .is_some_and(|at| t - at > MEASURE_WINDOW_SECS)
            {
                accepted_at.pop_front();
            }
            while processed_at
                .front()
                .is_some_and(|at| t - at > MEASURE_WINDOW_SECS)
            {
                processed_at.pop_front();
            }
            demand.push(DemandSample {
                at: t,
                queued: backlog.len() as u64,
                processing: workers.iter().filter(|w| w.photo.is_some()).count() as u64,
                arrivals_per_sec: accepted_at.len() as f64 / MEASURE_WINDOW_SECS,
                processed_per_sec: processed_at.len() as f64 / MEASURE_WINDOW_SECS,
                healthy: view.healthy,
            });
            let signals = Signals {
                cpu: &cpu_metric.samples,
                demand: &demand,
                learned_rate,
            };
            let d = autoscale::step(phase, view, &signals, policy, t);
            phase = d.phase;
            learned_rate = d.learned_rate.or(learned_rate);
            if let Some(r) = d.resize {
                report.resizes += 1;
                if r.to > desired {
                    for _ in desired..r.to {
                        let ready_at = if standby_ready > 0 {
                            standby_ready -= 1;
                            t + model.warm_boot
                        } else {
                            t + model.boot
                        };
                        workers.push(Worker::new(ready_at));
                    }
                } else {
                    drain_newest(workers.iter_mut().map(|w| &mut w.draining), desired - r.to);
                }
                desired = r.to;
            }
            let standby = standby_ready as usize + standby_booting.len();
            for _ in standby..policy.standby_workers as usize {
                standby_booting.push(t + model.boot);
            }
            demand.retain(|s| t - s.at <= 1800.0);
        }
        if t >= next_second {
            next_second += 1.0;
            let healthy = pool_view(&workers, desired, t).healthy;
            report.timeline.push((t, desired, healthy, rate));
        }
    }
    report.never_processed = (backlog.len()
        + workers
            .iter()
            .map(|w| w.accepts.len() + usize::from(w.photo.is_some()))
            .sum::<usize>()) as u64;
    report.finish(waits);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        let trace = Trace::Steps(vec![(300.0, 1.0), (300.0, 6.0), (300.0, 0.2)]);
        let a = run(&trace, &Timing::demand(20), &Model::default(), 7);
        let b = run(&trace, &Timing::demand(20), &Model::default(), 7);
        assert_eq!(
            (a.arrived, a.processed, a.resizes),
            (b.arrived, b.processed, b.resizes)
        );
        assert_eq!(a.timeline, b.timeline);
    }

    #[test]
    fn a_flash_crowd_beyond_capacity_is_accepted_and_all_of_it_processed() {
        // 10/s for 5 minutes on a pool of one 2/s worker that may grow to 8.
        let trace = Trace::Steps(vec![(60.0, 0.5), (300.0, 10.0), (600.0, 0.5)]);
        let r = run(&trace, &Timing::demand(8), &Model::default(), 3);
        assert_eq!(r.refused, 0, "{r:?}");
        assert_eq!(r.never_processed, 0);
        assert_eq!(r.processed, r.arrived);
        assert!(
            r.peak_workers >= 5,
            "10/s needs 5 workers at 2/s; peak {}",
            r.peak_workers
        );
    }

    #[test]
    fn accepts_stop_only_at_the_backlog_limit_and_say_so() {
        let trace = Trace::Constant {
            rate: 20.0,
            secs: 300.0,
        };
        let model = Model {
            backlog_limit: 500,
            ..Model::default()
        };
        let one = Timing::demand(1);
        let r = run(&trace, &one, &model, 5);
        // One 2/s worker: the backlog fills to 500 within a minute, then about 18 of every
        // 20 uploads per second are refused, every one of them for the backlog's limit.
        assert!(r.refused > 3000, "{r:?}");
        assert_eq!(r.refused, r.refused_backlog_full);
        assert_eq!(
            r.never_processed, 0,
            "the 500 accepted are processed after the trace"
        );
    }

    #[test]
    fn the_demand_policy_grows_sooner_than_the_cpu_step_policy() {
        let trace = Trace::Steps(vec![(120.0, 0.5), (600.0, 8.0), (600.0, 0.5)]);
        let ours = run(&trace, &Timing::demand(50), &Model::default(), 11);
        let cpu = run(&trace, &Timing::cpu_step(50), &Model::default(), 11);
        assert_eq!(
            (ours.refused, cpu.refused),
            (0, 0),
            "neither design refuses: the backlog takes the crowd"
        );
        assert!(
            ours.p99 < cpu.p99 / 2.0,
            "upload to processed p99: demand {:.0} s, CPU step {:.0} s",
            ours.p99,
            cpu.p99
        );
    }
}
