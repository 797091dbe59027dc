use super::*;

fn ms(n: u64) -> Timestamp {
    Timestamp::from_millis(n)
}

/// Send `n` datagrams numbered 0.. every `gap`, each `len` bytes (at least 4: the number,
/// then a fill), and receive everything: (arrival, bytes) in arrival order, and the stats.
fn run(
    config: &ChannelConfig,
    seed: u64,
    n: u32,
    gap: Duration,
    len: usize,
) -> (Vec<(Timestamp, Vec<u8>)>, RadioStats) {
    let mut c = RadioChannel::new(config.clone(), seed);
    let mut out = Vec::new();
    let mut now = Timestamp::ZERO;
    let drain = |c: &mut RadioChannel, out: &mut Vec<_>, until: Timestamp| {
        while let Some(t) = c.next_arrival().filter(|t| *t <= until) {
            let bytes = c.receive(t).unwrap();
            out.push((t, bytes));
        }
    };
    for i in 0..n {
        drain(&mut c, &mut out, now);
        let mut d = i.to_be_bytes().to_vec();
        d.resize(len.max(4), (i % 251) as u8);
        c.send(now, &d);
        now = now + gap;
    }
    drain(&mut c, &mut out, Timestamp::from_micros(u64::MAX));
    assert_eq!(c.in_flight(), 0);
    (out, c.stats())
}

fn number(d: &[u8]) -> u32 {
    u32::from_be_bytes(d[..4].try_into().unwrap())
}

fn everything() -> ChannelConfig {
    ChannelConfig {
        loss: 0.05,
        burst: Some(Burst::mean_length(4.0, 0.05)),
        delay: Duration::from_millis(7),
        jitter: Duration::from_millis(3),
        reorder: 0.05,
        reorder_delay: Duration::from_millis(20),
        duplicate: 0.05,
        corrupt: 0.05,
        rate_bps: Some(2_000_000),
        rate_steps: vec![RateStep {
            at: Duration::from_secs(2),
            bps: 1_000_000,
        }],
        queue_bytes: 8_000,
        mtu: Some(1_100),
        distance: Some(DistanceProfile::out_and_back(
            2_000.0,
            Duration::from_secs(4),
            800.0,
            1_600.0,
        )),
    }
}

#[test]
fn the_same_seed_gives_the_same_run_byte_for_byte() {
    let cfg = everything();
    cfg.validate().unwrap();
    // Datagram sizes vary so the MTU and the queue both bite.
    let go = |seed| {
        let mut c = RadioChannel::new(cfg.clone(), seed);
        let mut out = Vec::new();
        for i in 0..5_000u32 {
            let now = Timestamp::from_micros(u64::from(i) * 900);
            while let Some(b) = c.receive(now) {
                out.push((now, b));
            }
            let len = 40 + (i as usize * 37) % 1_200;
            c.send(now, &vec![i as u8; len]);
        }
        while let Some(t) = c.next_arrival() {
            out.push((t, c.receive(t).unwrap()));
        }
        (out, c.stats())
    };
    let (a, stats) = go(7);
    assert_eq!((a.clone(), stats), go(7));
    assert_ne!(a, go(8).0);
    // Every stage did something.
    for (name, n) in [
        ("lost_random", stats.lost_random),
        ("lost_burst", stats.lost_burst),
        ("lost_distance", stats.lost_distance),
        ("dropped_queue", stats.dropped_queue),
        ("dropped_mtu", stats.dropped_mtu),
        ("duplicated", stats.duplicated),
        ("corrupted", stats.corrupted),
        ("reordered", stats.reordered),
    ] {
        assert!(n > 0, "{name}: {stats:?}");
    }
    assert_eq!(
        stats.lost,
        stats.lost_random + stats.lost_burst + stats.lost_distance
    );
    assert_eq!(
        stats.delivered,
        stats.sent - stats.dropped() + stats.duplicated,
        "{stats:?}"
    );
    assert_eq!(
        stats.bytes_delivered,
        a.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
}

#[test]
fn nothing_arrives_before_its_delay_and_equal_times_stay_in_order() {
    let mut c = RadioChannel::new(ChannelConfig::default(), 0);
    for d in [b"a", b"b", b"c"] {
        c.send(Timestamp::ZERO, d);
    }
    assert_eq!(c.next_arrival(), Some(ms(5)));
    assert_eq!(c.receive(ms(4)), None);
    for d in [b"a", b"b", b"c"] {
        assert_eq!(c.receive(ms(5)), Some(d.to_vec()));
    }
    assert_eq!(c.receive(ms(5)), None);
    assert_eq!(c.stats().delivered, 3);
    assert_eq!(c.stats().bytes_delivered, 3);
}

#[test]
fn random_loss_is_within_statistical_bounds() {
    let cfg = ChannelConfig {
        loss: 0.1,
        ..ChannelConfig::default()
    };
    let n = 20_000;
    let (out, stats) = run(&cfg, 3, n, Duration::from_millis(1), 8);
    // Mean 2000, standard deviation 42: five of them either side.
    assert!((1_788..=2_212).contains(&stats.lost_random), "{stats:?}");
    assert_eq!(stats.lost, stats.lost_random);
    assert_eq!(out.len() as u64, u64::from(n) - stats.lost);
    // Independent losses come one at a time, mostly.
    let runs = loss_runs(&out, n);
    let mean = runs.iter().sum::<u32>() as f64 / runs.len() as f64;
    assert!(mean < 1.2, "{mean}");
}

/// Lengths of the runs of consecutive missing numbers among `0..n`.
fn loss_runs(out: &[(Timestamp, Vec<u8>)], n: u32) -> Vec<u32> {
    let mut got = vec![false; n as usize];
    for (_, d) in out {
        got[number(d) as usize] = true;
    }
    let mut runs = Vec::new();
    let mut run = 0;
    for g in got {
        if g {
            if run > 0 {
                runs.push(run);
            }
            run = 0;
        } else {
            run += 1;
        }
    }
    if run > 0 {
        runs.push(run);
    }
    runs
}

#[test]
fn gilbert_elliott_loses_in_bursts_of_the_configured_length() {
    let burst = Burst::mean_length(5.0, 0.1);
    assert!((burst.mean_burst_length() - 5.0).abs() < 1e-9);
    assert!((burst.average_loss() - 0.1).abs() < 1e-9);
    let cfg = ChannelConfig {
        burst: Some(burst),
        ..ChannelConfig::default()
    };
    let n = 200_000;
    let (out, stats) = run(&cfg, 11, n, Duration::from_micros(100), 4);
    assert_eq!(stats.lost, stats.lost_burst);
    let loss = stats.lost as f64 / f64::from(n);
    assert!((loss - 0.1).abs() < 0.01, "{loss}");
    let runs = loss_runs(&out, n);
    let mean = runs.iter().sum::<u32>() as f64 / runs.len() as f64;
    assert!((mean - 5.0).abs() < 0.5, "{mean}");
    assert!(runs.iter().any(|r| *r >= 15), "long bursts happen too");
}

#[test]
fn burst_chains_that_cannot_exist_fail_validation() {
    assert_eq!(
        Burst::mean_length(0.5, 0.1).validate(),
        Err(ChannelConfigError::BurstBadToGood)
    );
    // 90 % loss in bursts of 2 would need to enter the bad state more than always.
    assert_eq!(
        Burst::mean_length(2.0, 0.9).validate(),
        Err(ChannelConfigError::BurstGoodToBad)
    );
    assert_eq!(
        Burst::mean_length(3.0, f64::NAN).validate(),
        Err(ChannelConfigError::BurstGoodToBad)
    );
    assert_eq!(Burst::mean_length(1.0, 0.5).validate(), Ok(()));
    assert_eq!(Burst::mean_length(4.0, 0.0).average_loss(), 0.0);
}

#[test]
fn the_bottleneck_never_exceeds_its_rate_and_drops_the_tail() {
    let rate = 1_000_000;
    let cfg = ChannelConfig {
        rate_bps: Some(rate),
        queue_bytes: 10_000,
        ..ChannelConfig::default()
    };
    // 1000 bytes every millisecond: 8 Mbit/s offered to a 1 Mbit/s radio.
    let n = 1_000;
    let (out, stats) = run(&cfg, 1, n, Duration::from_millis(1), 1_000);
    assert!(stats.dropped_queue > 800, "{stats:?}");
    assert_eq!(stats.delivered + stats.dropped_queue, u64::from(n));
    // No window between two arrivals carries more than the rate allows (1 µs of rounding).
    for i in 0..out.len() {
        let mut bytes = 0u64;
        for j in i + 1..out.len() {
            bytes += out[j].1.len() as u64;
            let window_us = (out[j].0.as_micros() - out[i].0.as_micros()) + 1;
            assert!(bytes * 8 * 1_000_000 <= rate * window_us, "{i}..{j}");
        }
    }
    // ... yet the radio is kept busy: about 1 Mbit/s for the whole second.
    let span = out.last().unwrap().0.as_micros() - out[0].0.as_micros();
    let achieved = (stats.bytes_delivered - 1_000) as f64 * 8.0 / (span as f64 / 1e6);
    assert!((achieved - 1e6).abs() < 1e3, "{achieved}");
    // Drop-tail: number 0 is transmitted from 0 to 8 ms while 1 to 7 wait; 1 starts at
    // 8 ms, so 8 to 11 still fit behind it (2 to 11: 10 000 bytes); 12 finds the queue full.
    let numbers: Vec<u32> = out.iter().map(|(_, d)| number(d)).collect();
    assert_eq!(numbers[..12], (0..12).collect::<Vec<_>>()[..]);
    assert_eq!(
        numbers[12], 16,
        "1 ms after 2 starts (at 16 ms), there is room again"
    );
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "FIFO");
    // Queueing delay is bounded by the queue: 11 datagrams' worth, plus the 5 ms.
    for (t, d) in &out {
        let sent = u64::from(number(d)) * 1_000;
        assert!(
            t.as_micros() - sent <= 5_000 + 11 * 8_000,
            "{t:?} {}",
            number(d)
        );
    }
}

#[test]
fn under_its_rate_the_bottleneck_only_adds_serialization() {
    let cfg = ChannelConfig {
        rate_bps: Some(10_000_000),
        queue_bytes: 0,
        ..ChannelConfig::default()
    };
    let (out, stats) = run(&cfg, 1, 100, Duration::from_millis(1), 1_000);
    assert_eq!(stats.dropped_queue, 0);
    for (t, d) in &out {
        // 8000 bits at 10 Mbit/s: 800 µs.
        assert_eq!(t.as_micros(), u64::from(number(d)) * 1_000 + 5_800);
    }
    // With no queue, a datagram that finds the radio busy is dropped.
    let (_, stats) = run(&cfg, 1, 100, Duration::from_micros(500), 1_000);
    assert_eq!(stats.dropped_queue, 50, "{stats:?}");
}

/// The bottleneck carries the rate of the step in force: 8 Mbit/s offered to a radio of
/// 2 Mbit/s, then 4 Mbit/s from 1 s, then 1 Mbit/s from 2 s.
#[test]
fn rate_steps_change_the_bottleneck_mid_run() {
    let cfg = ChannelConfig {
        rate_bps: Some(2_000_000),
        rate_steps: vec![
            RateStep {
                at: Duration::from_secs(1),
                bps: 4_000_000,
            },
            RateStep {
                at: Duration::from_secs(2),
                bps: 1_000_000,
            },
        ],
        queue_bytes: 4_000,
        ..ChannelConfig::default()
    };
    assert_eq!(cfg.rate_at(ms(999)), Some(2_000_000));
    assert_eq!(cfg.rate_at(ms(1_000)), Some(4_000_000));
    assert_eq!(cfg.rate_at(ms(60_000)), Some(1_000_000));
    let (out, _) = run(&cfg, 1, 3_000, Duration::from_millis(1), 1_000);
    // Mbit/s delivered between two arrival times (in ms), away from the steps.
    let carried = |from: u64, to: u64| {
        let bytes: usize = out
            .iter()
            .filter(|(t, _)| (ms(from)..ms(to)).contains(t))
            .map(|(_, d)| d.len())
            .sum();
        bytes as f64 * 8.0 / ((to - from) as f64 / 1e3) / 1e6
    };
    for (from, to, want) in [(200, 900, 2.0), (1_200, 1_900, 4.0), (2_200, 2_900, 1.0)] {
        let got = carried(from, to);
        assert!((got - want).abs() < 0.05 * want, "{from}..{to} ms: {got}");
    }
    // Without steps, the rate is `rate_bps` all along.
    let plain = ChannelConfig {
        rate_steps: Vec::new(),
        ..cfg
    };
    assert_eq!(plain.rate_at(ms(60_000)), Some(2_000_000));
}

#[test]
fn datagrams_over_the_mtu_are_dropped() {
    let mut c = RadioChannel::new(
        ChannelConfig {
            mtu: Some(100),
            ..ChannelConfig::default()
        },
        0,
    );
    c.send(Timestamp::ZERO, &[1; 100]);
    c.send(Timestamp::ZERO, &[2; 101]);
    c.send(Timestamp::ZERO, &[]);
    assert_eq!(c.receive(ms(5)), Some(vec![1; 100]));
    assert_eq!(c.receive(ms(5)), Some(vec![]));
    assert_eq!(c.receive(ms(100)), None);
    let s = c.stats();
    assert_eq!((s.sent, s.dropped_mtu, s.delivered), (3, 1, 2));
}

#[test]
fn reordering_holds_some_back_and_later_ones_overtake_them() {
    let gap = Duration::from_millis(1);
    let (plain, _) = run(&ChannelConfig::default(), 5, 1_000, gap, 4);
    let order: Vec<u32> = plain.iter().map(|(_, d)| number(d)).collect();
    assert_eq!(order, (0..1_000).collect::<Vec<_>>());

    let cfg = ChannelConfig {
        reorder: 0.1,
        reorder_delay: Duration::from_millis(20),
        ..ChannelConfig::default()
    };
    let (out, stats) = run(&cfg, 5, 1_000, gap, 4);
    assert_eq!(out.len(), 1_000);
    assert!((60..=140).contains(&stats.reordered), "{stats:?}");
    let order: Vec<u32> = out.iter().map(|(_, d)| number(d)).collect();
    let overtaken = order.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(overtaken > 50, "{overtaken}");
    // Only held-back datagrams arrive late: at most `reorder_delay` after their time.
    let late = out
        .iter()
        .filter(|(t, d)| t.as_micros() > u64::from(number(d)) * 1_000 + 5_000)
        .count();
    assert_eq!(late as u64, stats.reordered);
    assert!(out
        .iter()
        .all(|(t, d)| t.as_micros() <= u64::from(number(d)) * 1_000 + 25_000));
}

#[test]
fn duplicates_and_corruption_are_counted() {
    let cfg = ChannelConfig {
        duplicate: 0.1,
        corrupt: 0.1,
        ..ChannelConfig::default()
    };
    let n = 5_000;
    let (out, stats) = run(&cfg, 9, n, Duration::from_millis(1), 32);
    assert!((400..=600).contains(&stats.duplicated), "{stats:?}");
    assert_eq!(out.len() as u64, u64::from(n) + stats.duplicated);
    // (Corruption may hit the number itself, so check against every original's content.)
    let mut flipped = 0;
    for (_, d) in &out {
        let best = (0..n)
            .filter(|i| (i % 251) as u8 == d[4] || (i % 251) as u8 == d[5])
            .map(|i| {
                let mut o = i.to_be_bytes().to_vec();
                o.resize(32, (i % 251) as u8);
                o.iter()
                    .zip(d)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum::<u32>()
            })
            .min()
            .unwrap();
        assert!(best <= 1);
        flipped += best;
    }
    assert_eq!(u64::from(flipped), stats.corrupted);
    assert!((400..=700).contains(&stats.corrupted), "{stats:?}");
}

#[test]
fn distance_loss_grows_on_the_way_out_and_recovers_on_the_way_back() {
    let profile = DistanceProfile::out_and_back(2_000.0, Duration::from_secs(100), 500.0, 1_500.0);
    profile.validate().unwrap();
    for (s, d) in [
        (0, 0.0),
        (25, 1_000.0),
        (50, 2_000.0),
        (75, 1_000.0),
        (100, 0.0),
    ] {
        assert!((profile.distance_m(ms(s * 1_000)) - d).abs() < 1e-6, "{s}");
    }
    for (d, loss) in [
        (0.0, 0.0),
        (500.0, 0.0),
        (750.0, 0.15625),
        (1_000.0, 0.5),
        (1_500.0, 1.0),
        (9_000.0, 1.0),
    ] {
        assert!((profile.loss_at_distance(d) - loss).abs() < 1e-9, "{d}");
    }

    let cfg = ChannelConfig {
        distance: Some(profile),
        ..ChannelConfig::default()
    };
    // One datagram every 10 ms for one out-and-back flight.
    let n = 10_000;
    let (out, stats) = run(&cfg, 2, n, Duration::from_millis(10), 4);
    assert_eq!(stats.lost, stats.lost_distance);
    let mut got = vec![0u32; 10];
    for (_, d) in &out {
        got[number(d) as usize / 1_000] += 1;
    }
    // Tenths of the flight: 0-400 m, 400-800 m, ..., 1600-2000 m, 2000-1600 m, ..., 400-0 m.
    assert_eq!(got[0], 1_000, "{got:?}");
    assert!(
        got[0] > got[1] && got[1] > got[2] && got[2] > got[3],
        "{got:?}"
    );
    assert!(got[2] > 100, "{got:?}");
    assert_eq!(got[4], 0, "{got:?}");
    assert_eq!(got[5], 0, "{got:?}");
    assert!(
        got[6] < got[7] && got[7] < got[8] && got[8] < got[9],
        "{got:?}"
    );
    assert_eq!(got[9], 1_000);
}

#[test]
fn validation_names_the_field() {
    let ok = ChannelConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(everything().validate(), Ok(()));
    let cases: Vec<(ChannelConfig, ChannelConfigError, &str)> = vec![
        (
            ChannelConfig {
                loss: 1.5,
                ..ok.clone()
            },
            ChannelConfigError::Loss,
            "loss",
        ),
        (
            ChannelConfig {
                loss: f64::NAN,
                ..ok.clone()
            },
            ChannelConfigError::Loss,
            "loss",
        ),
        (
            ChannelConfig {
                reorder: -0.1,
                ..ok.clone()
            },
            ChannelConfigError::Reorder,
            "reorder",
        ),
        (
            ChannelConfig {
                reorder: 0.1,
                reorder_delay: Duration::ZERO,
                ..ok.clone()
            },
            ChannelConfigError::ReorderDelay,
            "reorder_delay",
        ),
        (
            ChannelConfig {
                duplicate: 2.0,
                ..ok.clone()
            },
            ChannelConfigError::Duplicate,
            "duplicate",
        ),
        (
            ChannelConfig {
                corrupt: -1.0,
                ..ok.clone()
            },
            ChannelConfigError::Corrupt,
            "corrupt",
        ),
        (
            ChannelConfig {
                rate_bps: Some(0),
                ..ok.clone()
            },
            ChannelConfigError::RateBps,
            "rate_bps",
        ),
        (
            ChannelConfig {
                mtu: Some(0),
                ..ok.clone()
            },
            ChannelConfigError::Mtu,
            "mtu",
        ),
        (
            ChannelConfig {
                rate_steps: vec![RateStep {
                    at: Duration::from_secs(1),
                    bps: 0,
                }],
                ..ok.clone()
            },
            ChannelConfigError::RateSteps,
            "rate_steps",
        ),
        (
            ChannelConfig {
                rate_steps: [2, 1]
                    .map(|s| RateStep {
                        at: Duration::from_secs(s),
                        bps: 1_000,
                    })
                    .to_vec(),
                ..ok.clone()
            },
            ChannelConfigError::RateSteps,
            "rate_steps",
        ),
        (
            ChannelConfig {
                burst: Some(Burst {
                    good_to_bad: 0.1,
                    bad_to_good: 0.1,
                    bad_loss: 1.1,
                }),
                ..ok.clone()
            },
            ChannelConfigError::BurstLoss,
            "burst.bad_loss",
        ),
        (
            ChannelConfig {
                distance: Some(DistanceProfile::out_and_back(
                    -1.0,
                    Duration::from_secs(1),
                    1.0,
                    2.0,
                )),
                ..ok.clone()
            },
            ChannelConfigError::DistanceMax,
            "distance.max_m",
        ),
        (
            ChannelConfig {
                distance: Some(DistanceProfile::out_and_back(1.0, Duration::ZERO, 1.0, 2.0)),
                ..ok.clone()
            },
            ChannelConfigError::DistancePeriod,
            "distance.period",
        ),
        (
            ChannelConfig {
                distance: Some(DistanceProfile::out_and_back(
                    1.0,
                    Duration::from_secs(1),
                    2.0,
                    2.0,
                )),
                ..ok.clone()
            },
            ChannelConfigError::DistanceRange,
            "distance.range_m",
        ),
    ];
    for (cfg, err, field) in cases {
        assert_eq!(cfg.validate(), Err(err), "{cfg:?}");
        assert_eq!(err.field(), field);
        assert!(err.to_string().contains(field));
        let link_err: rotorlink::ConfigError = err.into();
        assert_eq!(link_err.0, err.message());
    }
}

#[test]
#[should_panic(expected = "loss")]
fn a_channel_refuses_an_invalid_configuration() {
    let _ = RadioChannel::new(
        ChannelConfig {
            loss: 2.0,
            ..ChannelConfig::default()
        },
        0,
    );
}
