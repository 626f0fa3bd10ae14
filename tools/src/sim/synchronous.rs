//! The original system's design: Poisson arrivals at the trace's rate go round robin to
//! healthy workers; each worker processes its FIFO queue at `capacity` uploads/s (one at a
//! time) inside the requests; a request finding its worker's queue full, or waiting longer
//! than `timeout`, is lost. CPU of a worker is its busy fraction. The control plane sees CPU
//! only as the mean over `metric_period` seconds, `metric_delay` seconds late, and runs the
//! autoscaler every `poll` seconds. New workers serve after `boot` seconds; removed ones
//! finish their queue (drain) and then stop.
use std::collections::VecDeque;

use common::autoscale::{self, Phase, Signals};
use rand::SeedableRng;

use super::{drain_newest, poisson, pool_view, CpuMetric, Model, Modelled, Report, Timing, Trace};

struct Worker {
    ready_at: f64,
    draining: bool,
    queue: VecDeque<f64>,
    /// Service time left for the request at the head of the queue.
    left: f64,
    busy_in_period: f64,
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
    // Metric points as measured (time, mean CPU of serving workers), visible after the delay.
    let mut cpu_metric = CpuMetric::new();
    let mut next_poll = timing.poll;
    let mut next_second = 0.0;
    let mut rr = 0usize;
    let mut waits: Vec<f64> = Vec::new();
    let mut report = Report::default();
    let end = trace.duration();
    let mut t = 0.0;
    while t < end {
        let serving: Vec<usize> = (0..workers.len())
            .filter(|&i| workers[i].serves(t))
            .collect();
        for _ in 0..poisson(&mut rng, trace.rate(t) * model.dt) {
            report.arrived += 1;
            if serving.is_empty() {
                report.refused += 1;
                continue;
            }
            let w = &mut workers[serving[rr % serving.len()]];
            rr += 1;
            if w.queue.len() >= model.queue_limit {
                report.refused += 1;
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
                report.refused += 1;
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
                    report.processed += 1;
                    w.left = 1.0 / model.capacity;
                }
            }
        }
        // Drained workers leave; every live worker costs, booting and draining included.
        workers.retain(|w| !(w.draining && w.queue.is_empty()));
        report.instance_minutes += workers.len() as f64 * model.dt / 60.0;
        report.peak_workers = report.peak_workers.max(workers.len() as u32);
        t += model.dt;

        cpu_metric.tick(t, timing, &mut workers);
        if t >= next_poll {
            next_poll += timing.poll;
            let view = pool_view(&workers, desired, t);
            let signals = Signals {
                cpu: &cpu_metric.samples,
                ..Signals::default()
            };
            let d = autoscale::step(phase, view, &signals, policy, t);
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
                    drain_newest(workers.iter_mut().map(|w| &mut w.draining), desired - r.to);
                }
                desired = r.to;
            }
        }
        if t >= next_second {
            next_second += 1.0;
            let healthy = pool_view(&workers, desired, t).healthy;
            report.timeline.push((t, desired, healthy, trace.rate(t)));
        }
    }
    // What is still queued at the end is not lost; it is served after the trace.
    report.finish(waits);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::autoscale::{Policy, PolicyKind};

    /// The CPU step policy with our windows, on 5 s samples read at once.
    fn cpu_fast(max_workers: u32) -> Timing {
        let policy = Policy {
            kind: PolicyKind::Cpu,
            standby_workers: 0,
            max_workers,
            ..Policy::default()
        };
        Timing {
            name: "CPU step, 5 s samples",
            policy,
            metric_period: 5.0,
            metric_delay: 0.0,
            poll: 5.0,
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let trace = Trace::Steps(vec![(300.0, 1.0), (300.0, 6.0), (300.0, 0.2)]);
        let a = run(&trace, &cpu_fast(20), &Model::default(), 7);
        let b = run(&trace, &cpu_fast(20), &Model::default(), 7);
        assert_eq!(
            (a.arrived, a.refused, a.resizes),
            (b.arrived, b.refused, b.resizes)
        );
        assert_eq!(a.timeline, b.timeline);
    }

    #[test]
    fn a_pool_with_room_loses_nothing_and_never_resizes_on_light_load() {
        let trace = Trace::Constant {
            rate: 0.5,
            secs: 600.0,
        };
        let r = run(&trace, &cpu_fast(10), &Model::default(), 1);
        // 0.5/s on one 2/s worker is 25 % CPU: inside the band, so no resize.
        assert_eq!((r.refused, r.resizes), (0, 0));
        assert!(r.arrived > 250 && r.processed >= r.arrived - 2);
    }

    #[test]
    fn overload_grows_the_pool_and_it_shrinks_after() {
        let trace = Trace::Steps(vec![(900.0, 8.0), (900.0, 0.0)]);
        let r = run(&trace, &cpu_fast(20), &Model::default(), 3);
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
        let stuck = cpu_fast(1);
        let r = run(&trace, &stuck, &Model::default(), 5);
        // One worker serves 2/s of the 10/s: about 80 % is lost.
        let lost = r.refused as f64 / r.arrived as f64;
        assert!((0.7..0.9).contains(&lost), "{lost}");
    }
}
