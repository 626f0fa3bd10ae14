//! The CPU step policy, as the original system ran it: above the grow threshold, size ×
//! expand ratio (rounded up); below the shrink threshold, size × shrink ratio (rounded
//! down); wait for the resize to finish or time out, then cool down. What production
//! scalers added and we keep: workers still starting are left out of the average (the
//! caller passes only healthy workers' CPU), a tolerance band around the thresholds, and
//! scale-in only when every sample of a whole stabilisation window agrees.
use super::policy::Policy;
use super::signals::{Decision, Phase, PoolView, Resize, Sample};

/// One tick of the CPU step policy. `samples` are oldest first.
pub fn step(
    phase: Phase,
    pool: PoolView,
    samples: &[Sample],
    policy: &Policy,
    now: f64,
) -> Decision {
    let stay = Decision::stay;
    match phase {
        Phase::Resizing { target, since } => {
            let done = pool.healthy == target && pool.starting == 0;
            if done || now - since >= policy.resize_timeout_secs {
                return stay(Phase::Cooldown {
                    until: now + policy.cooldown_secs,
                });
            }
            stay(phase)
        }
        Phase::Cooldown { until } if now < until => stay(phase),
        Phase::Cooldown { .. } | Phase::Idle => decide(pool, samples, policy, now),
    }
}

fn decide(pool: PoolView, samples: &[Sample], policy: &Policy, now: f64) -> Decision {
    let size = pool.desired;
    let resize = |to: u32, reason: String| Decision {
        phase: Phase::Resizing {
            target: to,
            since: now,
        },
        resize: Some(Resize {
            from: size,
            to,
            reason,
        }),
        learned_rate: None,
    };
    let bounded = policy.clamp(size);
    if bounded != size {
        return resize(
            bounded,
            format!(
                "keep within {}–{} workers",
                policy.min_workers, policy.max_workers
            ),
        );
    }
    let Some(latest) = samples
        .last()
        .filter(|s| now - s.at <= policy.max_sample_age_secs)
    else {
        return Decision::stay(Phase::Idle);
    };
    let recent: Vec<f64> = samples
        .iter()
        .filter(|s| s.at >= latest.at - policy.grow_window_secs)
        .map(|s| s.cpu)
        .collect();
    let grow_cpu = recent.iter().sum::<f64>() / recent.len() as f64;
    if grow_cpu > policy.grow_cpu + policy.tolerance {
        let to = policy.clamp((size as f64 * policy.expand_ratio).ceil() as u32);
        if to > size {
            return resize(
                to,
                format!(
                    "CPU {:.0}% above {:.0}%",
                    grow_cpu * 100.0,
                    policy.grow_cpu * 100.0
                ),
            );
        }
    } else if latest.cpu < policy.shrink_cpu - policy.tolerance {
        let window_start = now - policy.scale_in_window_secs;
        let covers_window = samples.first().is_some_and(|s| s.at <= window_start);
        let all_low = samples
            .iter()
            .filter(|s| s.at >= window_start)
            .all(|s| s.cpu < policy.shrink_cpu - policy.tolerance);
        if covers_window && all_low {
            let to = policy.clamp((size as f64 * policy.shrink_ratio).floor() as u32);
            if to < size {
                return resize(
                    to,
                    format!(
                        "CPU below {:.0}% for {:.0} s",
                        policy.shrink_cpu * 100.0,
                        policy.scale_in_window_secs
                    ),
                );
            }
        }
    }
    Decision::stay(Phase::Idle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pool(n: u32) -> PoolView {
        PoolView {
            desired: n,
            healthy: n,
            starting: 0,
        }
    }

    fn flat(cpu: f64, from: f64, to: f64) -> Vec<Sample> {
        let mut v = Vec::new();
        let mut t = from;
        while t <= to {
            v.push(Sample { at: t, cpu });
            t += 5.0;
        }
        v
    }

    #[test]
    fn grows_by_the_expand_ratio_rounded_up() {
        let p = Policy::default();
        let d = step(Phase::Idle, pool(3), &flat(0.9, 0.0, 100.0), &p, 100.0);
        assert_eq!(d.resize.as_ref().map(|r| (r.from, r.to)), Some((3, 5)));
        assert_eq!(
            d.phase,
            Phase::Resizing {
                target: 5,
                since: 100.0
            }
        );
        let d = step(Phase::Idle, pool(1), &flat(0.9, 0.0, 100.0), &p, 100.0);
        assert_eq!(d.resize.unwrap().to, 2);
    }

    #[test]
    fn one_busy_sample_is_not_a_trend() {
        let p = Policy::default();
        let mut samples = flat(0.3, 0.0, 100.0);
        samples.last_mut().unwrap().cpu = 0.95;
        assert_eq!(step(Phase::Idle, pool(2), &samples, &p, 100.0).resize, None);
        let busy = flat(0.9, 0.0, 100.0);
        assert!(step(Phase::Idle, pool(2), &busy, &p, 100.0)
            .resize
            .is_some());
        let eager = Policy {
            grow_window_secs: 0.0,
            ..p
        };
        assert!(step(Phase::Idle, pool(2), &samples, &eager, 100.0)
            .resize
            .is_some());
    }

    #[test]
    fn never_beyond_max() {
        let p = Policy {
            max_workers: 4,
            ..Policy::default()
        };
        assert_eq!(
            step(Phase::Idle, pool(3), &flat(1.0, 0.0, 100.0), &p, 100.0)
                .resize
                .unwrap()
                .to,
            4
        );
        assert_eq!(
            step(Phase::Idle, pool(4), &flat(1.0, 0.0, 100.0), &p, 100.0).resize,
            None
        );
    }

    #[test]
    fn shrinks_only_after_a_whole_quiet_window() {
        let p = Policy::default();
        let mut samples = flat(0.01, 0.0, 100.0);
        assert_eq!(
            step(Phase::Idle, pool(4), &samples, &p, 100.0)
                .resize
                .unwrap()
                .to,
            2
        );
        // One busy sample inside the window vetoes scale-in.
        samples[15].cpu = 0.5;
        assert_eq!(step(Phase::Idle, pool(4), &samples, &p, 100.0).resize, None);
        // Too little history to cover the window: wait.
        assert_eq!(
            step(Phase::Idle, pool(4), &flat(0.01, 70.0, 100.0), &p, 100.0).resize,
            None
        );
    }

    #[test]
    fn tolerance_band_and_stale_samples_hold_still() {
        let p = Policy::default();
        assert_eq!(
            step(Phase::Idle, pool(2), &flat(0.61, 0.0, 100.0), &p, 100.0).resize,
            None
        );
        assert_eq!(
            step(Phase::Idle, pool(2), &flat(0.95, 0.0, 50.0), &p, 100.0).resize,
            None,
            "stale"
        );
        assert_eq!(step(Phase::Idle, pool(2), &[], &p, 100.0).resize, None);
    }

    #[test]
    fn resizing_waits_for_completion_or_timeout_then_cools_down() {
        let p = Policy::default();
        let resizing = Phase::Resizing {
            target: 4,
            since: 0.0,
        };
        let busy = flat(0.99, 0.0, 100.0);
        let partial = PoolView {
            desired: 4,
            healthy: 3,
            starting: 1,
        };
        assert_eq!(
            step(resizing, partial, &busy, &p, 10.0),
            Decision::stay(resizing)
        );
        assert_eq!(
            step(resizing, pool(4), &busy, &p, 10.0).phase,
            Phase::Cooldown { until: 70.0 }
        );
        assert_eq!(
            step(resizing, partial, &busy, &p, 150.0).phase,
            Phase::Cooldown { until: 210.0 }
        );
        assert_eq!(
            step(Phase::Cooldown { until: 70.0 }, pool(4), &busy, &p, 69.0).resize,
            None
        );
        assert_eq!(
            step(
                Phase::Cooldown { until: 70.0 },
                pool(4),
                &flat(0.99, 0.0, 70.0),
                &p,
                70.0
            )
            .resize
            .unwrap()
            .to,
            6
        );
    }

    #[test]
    fn out_of_bounds_pool_is_brought_back() {
        let p = Policy {
            min_workers: 2,
            ..Policy::default()
        };
        assert_eq!(
            step(Phase::Idle, pool(1), &[], &p, 0.0).resize.unwrap().to,
            2
        );
    }

    #[test]
    fn validation_explains() {
        assert!(Policy::default().validate().is_ok());
        let bad = |p: Policy, needle: &str| {
            let e = p.validate().unwrap_err();
            assert!(e.contains(needle), "{e}");
        };
        bad(
            Policy {
                expand_ratio: 1.0,
                ..Policy::default()
            },
            "expand ratio",
        );
        bad(
            Policy {
                shrink_ratio: 1.0,
                ..Policy::default()
            },
            "shrink ratio",
        );
        bad(
            Policy {
                shrink_ratio: 0.0,
                ..Policy::default()
            },
            "shrink ratio",
        );
        bad(
            Policy {
                grow_cpu: 0.1,
                shrink_cpu: 0.2,
                ..Policy::default()
            },
            "above the shrink",
        );
        bad(
            Policy {
                min_workers: 5,
                max_workers: 2,
                ..Policy::default()
            },
            "min",
        );
        bad(
            Policy {
                cooldown_secs: -1.0,
                ..Policy::default()
            },
            "cooldown",
        );
    }

    /// A modelled pool: `load` workers' worth of CPU spread over the healthy workers, which
    /// become healthy `boot` seconds after launch; samples every 5 s.
    fn simulate(
        policy: &Policy,
        loads: &[f64],
        boot: f64,
    ) -> Vec<(f64, Phase, Option<Resize>, PoolView)> {
        let mut phase = Phase::Idle;
        let mut desired = policy.min_workers;
        let mut healthy = desired;
        let mut launched_at: Vec<f64> = Vec::new();
        let mut samples = Vec::new();
        let mut out = Vec::new();
        for (i, load) in loads.iter().enumerate() {
            let now = i as f64 * 5.0;
            let ready = launched_at.iter().filter(|t| now - **t >= boot).count() as u32;
            launched_at.retain(|t| now - *t < boot);
            healthy = (healthy + ready).min(desired);
            let starting = launched_at.len() as u32;
            samples.push(Sample {
                at: now,
                cpu: (load / healthy.max(1) as f64).min(1.0),
            });
            let view = PoolView {
                desired,
                healthy,
                starting,
            };
            let d = step(phase, view, &samples, policy, now);
            if let Some(r) = &d.resize {
                if r.to > desired {
                    launched_at.extend(std::iter::repeat_n(now, (r.to - desired) as usize));
                } else {
                    healthy = healthy.min(r.to);
                }
                desired = r.to;
            }
            out.push((now, phase, d.resize.clone(), view));
            phase = d.phase;
        }
        out
    }

    fn policy_strategy() -> impl Strategy<Value = Policy> {
        (
            0.3f64..0.9,
            0.02f64..0.25,
            1.1f64..4.0,
            0.2f64..0.9,
            1u32..4,
            4u32..20,
            0.0f64..90.0,
            0.0f64..120.0,
        )
            .prop_map(
                |(grow, shrink, expand, shrink_ratio, min, max, cooldown, window)| Policy {
                    grow_cpu: grow,
                    shrink_cpu: shrink,
                    expand_ratio: expand,
                    shrink_ratio,
                    min_workers: min,
                    max_workers: max,
                    cooldown_secs: cooldown,
                    grow_window_secs: 10.0,
                    scale_in_window_secs: window,
                    resize_timeout_secs: 60.0,
                    tolerance: 0.0,
                    max_sample_age_secs: 30.0,
                    ..Policy::cpu_step()
                },
            )
            .prop_filter("valid", |p| p.validate().is_ok())
    }

    proptest! {
        #[test]
        fn never_outside_bounds_and_never_resizes_unless_idle(
            policy in policy_strategy(),
            loads in prop::collection::vec(0.0f64..25.0, 1..300),
            boot in 0.0f64..40.0,
        ) {
            for (_, phase, resize, _) in simulate(&policy, &loads, boot) {
                if let Some(r) = resize {
                    prop_assert!(r.to >= policy.min_workers && r.to <= policy.max_workers, "{r:?}");
                    prop_assert!(!matches!(phase, Phase::Resizing { .. }), "resized while resizing");
                }
            }
        }

        #[test]
        fn converges_on_a_steady_load(
            policy in policy_strategy(),
            load in 0.0f64..30.0,
            boot in 0.0f64..40.0,
        ) {
            // The seed's band (grow well above shrink) leaves room for a stable size.
            prop_assume!(policy.grow_cpu / policy.shrink_cpu > policy.expand_ratio.max(1.0 / policy.shrink_ratio) * 1.2);
            let steps = simulate(&policy, &vec![load; 600], boot);
            let late = &steps[400..];
            prop_assert!(late.iter().all(|s| s.2.is_none()), "still resizing after 2000 s: {:?}",
                late.iter().filter_map(|s| s.2.clone()).collect::<Vec<_>>());
        }

        #[test]
        fn cooldown_is_respected(
            policy in policy_strategy(),
            loads in prop::collection::vec(0.0f64..25.0, 1..300),
        ) {
            let steps = simulate(&policy, &loads, 10.0);
            for (now, phase, resize, _) in &steps {
                if let (Phase::Cooldown { until }, Some(_)) = (phase, resize) {
                    prop_assert!(now >= until, "resized at {now} during cooldown until {until}");
                }
            }
        }
    }
}
