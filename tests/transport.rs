//! The link at the radio's capacity, over the simulator in virtual time: the aircraft's
//! capacity estimate follows the radio, the video encoder follows the estimate, and
//! stick commands and telemetry never wait behind video or a download (issue 13).
//!
//! Each flight is sampled every 100 ms through [`scenario::run_watched`], and the figures
//! are checked over windows that start 2 s after the flight starts or the capacity changes:
//! the time the issue gives the link to adapt.

use std::time::Duration;

use rotorlink::handshake::KsfParams;
use rotorlink::wire::body::FragmentHeader;
use rotorlink::{Channel, Config};
use rotorlink_sim::aircraft::AircraftConfig;
use rotorlink_sim::report::Report;
use rotorlink_sim::scenario::{self, Moment, Scenario};
use rotorlink_sim::{ChannelConfig, Pair, RateStep};

const MBIT: u64 = 1_000_000;
/// How often the flights are sampled.
const EVERY: Duration = Duration::from_millis(100);
/// How long the link has to adapt to a start or a change of capacity.
const ADAPT: Duration = Duration::from_secs(2);

/// The flight at one moment: what the aircraft knew and what the remote had received.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the start of the run.
    at: Duration,
    /// The aircraft's estimate of the downlink's bottleneck, bit/s.
    capacity_bps: u64,
    /// The encoder's bitrate for the next frame, bit/s.
    encoder_bps: u64,
    /// Parity the aircraft sent for video so far (forward error correction), bytes: it
    /// rides inside the video budget, beside the encoder's bits.
    parity_bytes: u64,
    /// Video fragments (data and parity) that reached the remote so far, payload bytes:
    /// what video carried, whole frames or not. Whole frames alone swing a second's share
    /// by a tenth when a key frame (three times a delta frame) is still arriving at its end.
    video_carried: u64,
    /// Telemetry payload delivered to the remote so far, bytes.
    telemetry_bytes: u64,
    /// Bytes of the download received so far.
    download_bytes: u64,
    /// Storage segments that reached the remote so far: the download's progress on the
    /// radio (its bytes count whole 64 KiB chunks, which on a narrow radio shared with
    /// video take more than a second each).
    download_segments: u64,
}

impl Sample {
    fn of(m: &Moment<'_>) -> Sample {
        let delivered = |c: Channel| m.pair.remote.stats().channel(c).bytes_delivered;
        Sample {
            at: m.now.saturating_since(rotorlink::Timestamp::ZERO),
            capacity_bps: m.pair.aircraft.path_estimate().bottleneck_bps,
            encoder_bps: m.aircraft.video_bitrate(),
            parity_bytes: m.pair.aircraft.stats().video_parity_bytes,
            video_carried: {
                let v = m.pair.remote.stats().channel(Channel::Video);
                v.bytes_received - v.frames_received * FragmentHeader::LEN as u64
            },
            telemetry_bytes: delivered(Channel::Telemetry),
            download_bytes: m.remote.stats.download.received,
            download_segments: m
                .pair
                .remote
                .stats()
                .channel(Channel::Storage)
                .frames_received,
        }
    }
}

/// Fly `s`, sampling it every [`EVERY`]; `also` watches every step.
fn fly(s: &Scenario, mut also: impl FnMut(&Moment<'_>)) -> (Report, Vec<Sample>) {
    let mut samples: Vec<Sample> = Vec::new();
    let report = scenario::run_watched(s, &mut |m| {
        let due = samples.last().map_or(Duration::ZERO, |l| l.at + EVERY);
        if m.now.saturating_since(rotorlink::Timestamp::ZERO) >= due {
            samples.push(Sample::of(m));
        }
        also(m);
    })
    .unwrap();
    (report, samples)
}

/// The samples from `from` to `to`.
fn between(samples: &[Sample], from: Duration, to: Duration) -> &[Sample] {
    let start = samples.partition_point(|s| s.at < from);
    let end = samples.partition_point(|s| s.at < to);
    &samples[start..end]
}

/// Bits per second of a byte counter between the first and last of `window`.
fn rate(window: &[Sample], bytes: fn(&Sample) -> u64) -> f64 {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return 0.0;
    };
    let seconds = (last.at - first.at).as_secs_f64().max(1e-9);
    (bytes(last) - bytes(first)) as f64 * 8.0 / seconds
}

/// A radio of `rate_bps` (changing as `steps` say), 5 ms one way with `jitter`.
fn radio(rate_bps: u64, steps: &[(u64, u64)], loss: f64, jitter: Duration) -> ChannelConfig {
    ChannelConfig {
        loss,
        delay: Duration::from_millis(5),
        jitter,
        rate_bps: Some(rate_bps),
        rate_steps: steps
            .iter()
            .map(|&(secs, bps)| RateStep {
                at: Duration::from_secs(secs),
                bps,
            })
            .collect(),
        ..ChannelConfig::default()
    }
}

/// A flight of `secs` with the camera asking 20 Mbit/s, over `uplink` and `downlink`.
fn flight(secs: u64, uplink: ChannelConfig, downlink: ChannelConfig) -> Scenario {
    Scenario {
        seed: 13,
        duration: Duration::from_secs(secs),
        uplink,
        downlink,
        aircraft: AircraftConfig {
            video_bitrate: 20 * MBIT,
            ..AircraftConfig::default()
        },
        link: Config {
            ksf: KsfParams::INSECURE_FAST,
            ..Config::default()
        },
        ..Scenario::default()
    }
}

fn mbit(bps: f64) -> String {
    format!("{:.2} Mbit/s", bps / 1e6)
}

/// The downlink drops from 20 to 8 Mbit/s at 3 s and comes back to 20 at 6 s, with 1 %
/// random loss (which is not congestion). Once the small flight log is fetched (in the
/// first second), video is the aircraft's only bulk traffic, and the encoder sends only
/// what the budget allows: the link must find the capacity again when the radio recovers,
/// not only when it falls. Within 2 s of each change the aircraft's estimate is within 20 %
/// of the radio's rate, and stays there until the next change; the encoder's bitrate
/// follows: with the parity that protects its frames, at least 80 % of the capacity
/// telemetry leaves, and never above the radio's rate.
#[test]
fn the_capacity_estimate_and_the_encoder_follow_a_step_down_and_up() {
    let steps = [(3, 8 * MBIT), (6, 20 * MBIT)];
    let jitter = Duration::from_millis(1);
    let mut s = flight(
        9,
        radio(20 * MBIT, &[], 0.01, jitter),
        radio(20 * MBIT, &steps, 0.01, jitter),
    );
    s.aircraft.initial_log_len = 16 << 10;
    let (report, samples) = fly(&s, |_| {});
    assert!(report.paired && report.download.verified, "{report}");
    let fetched = samples
        .iter()
        .find(|x| Some(x.download_bytes) == report.download.size);
    assert!(
        fetched.is_some_and(|x| x.at < Duration::from_secs(1)),
        "{report}"
    );
    let segments = [
        (Duration::ZERO, 20 * MBIT),
        (Duration::from_secs(3), 8 * MBIT),
        (Duration::from_secs(6), 20 * MBIT),
    ];
    let mut failures = Vec::new();
    for (i, &(from, radio_bps)) in segments.iter().enumerate() {
        let to = segments.get(i + 1).map_or(s.duration, |next| next.0);
        let window = between(&samples, from + ADAPT, to);
        assert!(window.len() >= 9, "{window:?}");
        let want = radio_bps as f64;
        let left = want - rate(window, |x| x.telemetry_bytes);
        // The video channel takes the encoder's bits and the parity protecting them.
        let parity = rate(window, |x| x.parity_bytes);
        for sample in window {
            let capacity = sample.capacity_bps as f64;
            let encoder = sample.encoder_bps as f64 + parity;
            if (capacity - want).abs() > 0.2 * want {
                failures.push(format!(
                    "at {:?} the estimate is {} on a radio of {}",
                    sample.at,
                    mbit(capacity),
                    mbit(want)
                ));
            }
            if encoder < 0.8 * left || encoder > want {
                failures.push(format!(
                    "at {:?} the encoder and parity run at {} on a radio of {} ({} left by \
                     telemetry)",
                    sample.at,
                    mbit(encoder),
                    mbit(want),
                    mbit(left)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// The seeds the saturated flights are judged over: a figure that holds on one seed only
/// is luck (the video share once held on seed 13 alone; BENCHMARKS.md, issue 13).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=13;

/// Fly a saturated downlink (the radio's draws from `seed`): a radio of 10 Mbit/s each way
/// (the downlink changing as `steps` say, in seconds and bit/s), no random loss, 5 ms one
/// way with 2 ms of jitter, the camera asking 20 Mbit/s and the flight log downloading.
/// What falls short of the targets, one line each, and the report:
///
/// - stick commands and telemetry arrive within the one-way delay and jitter plus 15 ms
///   (p99 over the whole flight, changes included);
/// - not one stick command is refused by the link, superseded in its queue by the next (one
///   frame per command) or dropped by the radio's queue (asserted outright);
/// - video (its frames and the parity protecting them) carries at least 80 % of the
///   capacity telemetry leaves, in every second from 2 s after the start or a change of
///   capacity;
/// - the download makes progress (its segments reach the remote) at least every
///   [`DOWNLOAD_MAX_STALL`] from 2 s after the start until it is complete.
fn saturated(seed: u64, secs: u64, steps: &[(u64, u64)]) -> (Vec<String>, Report) {
    let jitter = Duration::from_millis(2);
    let capacity = 10 * MBIT;
    let s = Scenario {
        seed,
        ..flight(
            secs,
            radio(capacity, &[], 0.0, jitter),
            radio(capacity, steps, 0.0, jitter),
        )
    };
    let mut uplink_dropped = 0;
    let mut control = (0, 0);
    let (report, samples) = fly(&s, |m| {
        uplink_dropped = m.pair.uplink.stats().dropped_queue;
        let c = m.pair.remote.stats().channel(Channel::Control);
        control = (c.messages_sent, c.frames_sent);
    });
    assert!(report.paired && report.storage_unlocked, "{report}");
    let c = &report.channels;
    assert_eq!(c.control.refused, Some(0), "{report}");
    assert_eq!(control.0, control.1, "stick commands sent, frames sent");
    assert_eq!(uplink_dropped, 0, "{report}");
    assert!(
        report.download.progress.is_some_and(|p| p > 0.0),
        "{report}"
    );

    let mut failures = Vec::new();
    let bound_ms = (5 + 2 + 15) as f64;
    for (name, latency) in [
        ("telemetry", c.telemetry.latency),
        ("control", c.control.latency),
    ] {
        let p99 = latency.unwrap().p99_ms;
        if p99 > bound_ms {
            failures.push(format!("{name} p99 {p99:.1} ms > {bound_ms} ms"));
        }
    }
    let start = samples
        .iter()
        .find(|x| x.telemetry_bytes > 0)
        .expect("telemetry flows")
        .at;
    let mut segments = vec![(start, capacity)];
    segments.extend(
        steps
            .iter()
            .map(|&(at, bps)| (Duration::from_secs(at), bps)),
    );
    for (i, &(changed, radio_bps)) in segments.iter().enumerate() {
        let until = segments.get(i + 1).map_or(s.duration, |next| next.0);
        let mut from = changed + ADAPT;
        while from + Duration::from_secs(1) <= until {
            let window = between(&samples, from, from + Duration::from_secs(1) + EVERY);
            let left = radio_bps as f64 - rate(window, |x| x.telemetry_bytes);
            let video = rate(window, |x| x.video_carried);
            if video < 0.8 * left {
                failures.push(format!(
                    "{from:?} + 1 s: video and its parity {} of the {} telemetry leaves",
                    mbit(video),
                    mbit(left)
                ));
            }
            from += Duration::from_secs(1);
        }
    }
    let stalled = longest_without_progress(&samples, start + ADAPT, report.download.size);
    if stalled > DOWNLOAD_MAX_STALL {
        failures.push(format!("the download made no progress for {stalled:?}"));
    }
    (failures, report)
}

/// The longest a saturated flight's download may go without a segment reaching the remote:
/// video goes first, but storage gets a segment at least every 100 ms (and the samples are
/// 100 ms apart). Before that floor, up to 1.5 s on these flights' seeds.
const DOWNLOAD_MAX_STALL: Duration = Duration::from_millis(300);

/// The longest span of `samples` after `from` in which no storage segment reached the
/// remote, until the download (of `size` bytes) was complete.
fn longest_without_progress(samples: &[Sample], from: Duration, size: Option<u64>) -> Duration {
    let mut progressed_at = from;
    let mut longest = Duration::ZERO;
    for pair in samples.windows(2).filter(|pair| pair[1].at > from) {
        let (before, after) = (pair[0], pair[1]);
        if size == Some(before.download_bytes) {
            break;
        }
        if after.download_segments > before.download_segments {
            progressed_at = after.at;
        }
        longest = longest.max(after.at.saturating_sub(progressed_at));
    }
    longest
}

/// The downlink saturated at a steady 10 Mbit/s (see [`saturated`] for what is checked), on
/// every one of [`SEEDS`].
#[test]
fn a_saturated_radio_keeps_control_and_telemetry_fast_and_shares_the_rest() {
    for seed in SEEDS {
        let (failures, report) = saturated(seed, 7, &[]);
        assert!(
            failures.is_empty(),
            "seed {seed}:\n{}\n{report}",
            failures.join("\n")
        );
    }
}

/// The saturated downlink halves to 5 Mbit/s at 4 s and comes back to 10 at 7 s.
const HALVES: [(u64, u64); 2] = [(4, 5 * MBIT), (7, 10 * MBIT)];

/// Through the changes of [`HALVES`], control is never refused, video takes what telemetry
/// leaves within 2 s of each change and the download goes on (see [`saturated`]), on every
/// one of [`SEEDS`]; the latency bound is the next test's.
#[test]
fn a_saturated_radio_that_halves_and_recovers_keeps_video_and_the_download_going() {
    for seed in SEEDS {
        let (failures, report) = saturated(seed, 10, &HALVES);
        let failures: Vec<_> = failures
            .into_iter()
            .filter(|f| !f.starts_with("telemetry p99") && !f.starts_with("control p99"))
            .collect();
        assert!(
            failures.is_empty(),
            "seed {seed}:\n{}\n{report}",
            failures.join("\n")
        );
    }
}

/// The same flight, with the latency bound through the changes too, on every one of
/// [`SEEDS`] (telemetry p99 17.1 to 21.6 ms at 4454de5 and the rule that finds a much
/// slower radio before a whole sample).
#[test]
fn a_saturated_radio_that_halves_and_recovers_keeps_telemetry_fast() {
    let failures: Vec<String> = SEEDS
        .flat_map(|seed| {
            let (failures, _) = saturated(seed, 10, &HALVES);
            failures
                .into_iter()
                .map(move |f| format!("seed {seed}: {f}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A saturated downlink on a long path: the demo's radio (2 % loss, 2 ms of jitter, a few
/// duplicates and corrupted datagrams) at 10 Mbit/s each way, 40 and 75 ms one way (an
/// aircraft kilometres out, or a relay), the camera asking 20 Mbit/s and the flight log
/// downloading, for 30 s (the demo's flight; `rotorlink sim --seed N --rate 10mbit --delay
/// D`). Stick commands and telemetry arrive within the one-way delay and jitter plus 15 ms
/// (p99 over the whole flight, its startup included), on three seeds. Seed 3 at 75 ms was
/// 106 ms while Startup skipped an idle sender's samples in its queue check.
///
/// Before 2026-12-06 a probe went up for a whole round trip (a quarter of it queued where
/// the radio had no room), and a queue under a quarter of the round trip counted as none
/// for ending startup and for finding a slower radio: telemetry p99 68 and 131 ms on seed 1
/// of `rotorlink sim` at these delays. Startup's queue is what is left: a round trip passes
/// before a queue shows, and on a 150 ms round trip the rate grows by half of it meanwhile
/// (telemetry up to 158 ms at 75 ms one way, once, 0.6 s into the flight: over a 10 s
/// flight, more than its p99).
#[test]
fn a_saturated_long_path_keeps_control_and_telemetry_within_its_delay() {
    let demo = Scenario::default().downlink;
    for delay_ms in [40, 75] {
        let delay = Duration::from_millis(delay_ms);
        let long = ChannelConfig {
            delay,
            rate_bps: Some(10 * MBIT),
            ..demo.clone()
        };
        let bound_ms = (delay + demo.jitter).as_secs_f64() * 1e3 + 15.0;
        for seed in 1..=3 {
            let s = Scenario {
                seed,
                ..flight(30, long.clone(), long.clone())
            };
            let (report, _) = fly(&s, |_| {});
            let c = &report.channels;
            for (name, latency) in [
                ("telemetry", c.telemetry.latency),
                ("control", c.control.latency),
            ] {
                let p99 = latency.expect("messages arrived").p99_ms;
                assert!(
                    p99 <= bound_ms,
                    "{delay_ms} ms one way, seed {seed}: {name} p99 {p99:.1} ms > {bound_ms} ms\n{report}"
                );
            }
        }
    }
}

/// A download alone (no video) on a 20 Mbit/s radio 75 ms away, with a drop-tail queue of
/// two bandwidth-delay products (the transport bench's radio): the aircraft's telemetry p99
/// stays within the one-way delay and 15 ms. Startup's train reads the radio at the first
/// round trip and the estimate takes half of it; the samples of the spans that hold the
/// train's frames read it whole, and taken they paced the next round trip at 2.9 times the
/// radio: telemetry p99 104 ms, and 212 at most behind the full queue.
#[test]
fn a_download_on_a_long_path_keeps_telemetry_within_its_delay() {
    let delay = Duration::from_millis(75);
    let rate = 20 * MBIT;
    let long = ChannelConfig {
        delay,
        jitter: Duration::ZERO,
        rate_bps: Some(rate),
        queue_bytes: (rate as f64 / 8.0 * 2.0 * delay.as_secs_f64()) as usize,
        ..ChannelConfig::default()
    };
    let bound_ms = delay.as_secs_f64() * 1e3 + 15.0;
    for (seed, loss) in [(1, 0.0), (2, 0.01)] {
        let radio = ChannelConfig {
            loss,
            ..long.clone()
        };
        let mut s = Scenario {
            seed,
            download: "clip".into(),
            ..flight(20, radio.clone(), radio)
        };
        s.aircraft.video_bitrate = 0;
        let (report, _) = fly(&s, |_| {});
        let latency = report
            .channels
            .telemetry
            .latency
            .expect("telemetry arrived");
        assert!(
            latency.p99_ms <= bound_ms,
            "seed {seed}, {loss} loss: telemetry p99 {:.1} ms > {bound_ms} ms\n{report}",
            latency.p99_ms
        );
        assert_eq!(report.download.progress, Some(1.0), "{report}");
    }
}

/// A fast radio whose 3 ms of jitter reorders frames by more than an eighth of the round
/// trip, with 5 % random loss: a 64 MiB download runs for 6 s beside the video. Frames that
/// are only late must not be resent as lost (RACK's reordering window adapts), and the
/// aircraft's loss estimate must read the radio's loss, not the reordering.
#[test]
fn reordering_by_jitter_is_neither_resent_nor_counted_as_loss() {
    let loss = 0.05;
    let downlink = radio(100 * MBIT, &[], loss, Duration::from_millis(3));
    let uplink = radio(100 * MBIT, &[], loss, Duration::from_millis(3));
    let mut s = flight(6, uplink, downlink);
    s.aircraft.clip_size = 64 << 20;
    s.download = "clip".into();
    let mut measured_loss = Vec::new();
    let mut end = None;
    let (report, _) = fly(&s, |m| {
        if m.now.saturating_since(rotorlink::Timestamp::ZERO) >= ADAPT {
            measured_loss.push(m.pair.aircraft.path_estimate().loss);
        }
        end = Some((
            m.pair.aircraft.stats().storage_retransmits,
            m.pair.remote.stats().storage_duplicates,
            m.remote.stats.download.received,
        ));
    });
    let (retransmits, duplicates, received) = end.unwrap();
    // Segments of about 1360 bytes: what was received, and the share of them resent.
    let segments = received / 1360;
    assert!(
        segments > 20_000,
        "download too slow: {received} bytes\n{report}"
    );
    assert!(
        retransmits as f64 <= 2.0 * loss * segments as f64,
        "{retransmits} retransmissions for {segments} segments at {loss} loss\n{report}"
    );
    assert!(
        duplicates * 10 <= retransmits,
        "{duplicates} of {retransmits} retransmissions were spurious\n{report}"
    );
    let mean = measured_loss.iter().sum::<f64>() / measured_loss.len() as f64;
    assert!(
        (mean - loss).abs() <= 0.3 * loss,
        "loss estimate {mean:.3} on a radio losing {loss}\n{report}"
    );
}

/// On a long path the aircraft measures the downlink as soon as the link is up (PROTOCOL.md
/// 34.3): a download or video asked for later starts near the radio's rate instead of
/// spending round trips climbing to it from the pacer's initial 4 Mbit/s. From a round trip
/// of 40 ms, a train of 24 frames of padding. On a shorter path a scout first, 8 frames of
/// padding in two halves between three probes: it measures a radio up to about 45 Mbit/s
/// with a third of the train's queue (which telemetry waits behind: 58 ms at 5 Mbit/s); a
/// faster one gets the train too. A radio no faster than Startup's next round trip would
/// pace at is the estimate; a faster one starts Startup from half of it. The remote, whose
/// uplink carries the sticks, sends neither. Only telemetry and stick commands go here.
#[test]
fn the_aircraft_measures_a_long_path_before_it_has_anything_to_send() {
    let cases = [(10, 75), (40, 75), (5, 15), (40, 15), (150, 15)];
    for (rate, one_way_ms) in cases.map(|(rate, ms)| (rate * MBIT, ms)) {
        let path = ChannelConfig {
            delay: Duration::from_millis(one_way_ms),
            rate_bps: Some(rate),
            ..ChannelConfig::default()
        };
        let mut pair: Pair = Pair::new(Config::default(), path.clone(), path, 5).unwrap();
        for _ in 0..100 {
            pair.aircraft.send(Channel::Telemetry, &[1; 40]).unwrap();
            pair.remote.send(Channel::Control, &[2; 40]).unwrap();
            pair.run_for(Duration::from_millis(10));
        }
        let estimate = pair.aircraft.path_estimate().bottleneck_bps as f64;
        let padding = pair.aircraft.stats().padding_sent;
        let rate = rate as f64;
        let case = format!("{} radio {one_way_ms} ms away", mbit(rate));
        // The scout or train measured a radio Startup's first round trip would fill as it
        // is.
        let least = if rate < 11.5e6 { 0.9 } else { 0.45 };
        assert!(
            estimate >= least * rate && estimate <= 1.1 * rate,
            "{case}: the aircraft's estimate {} after 1 s",
            mbit(estimate)
        );
        if one_way_ms >= 20 {
            assert!((24..32).contains(&padding), "{case}: the train, {padding}");
        } else if rate > 50e6 {
            assert!(
                padding >= 8 + 24,
                "{case}: the scout and the train, {padding}"
            );
        } else {
            assert_eq!(padding, 8, "{case}: the scout's padding alone");
        }
        assert_eq!(pair.remote.stats().padding_sent, 0);
    }
}
