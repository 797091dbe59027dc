//! Video at the application's level, over the simulator in virtual time (issue 14): which
//! frames a decoder can show, the key frames the remote asks for when the picture breaks,
//! and how long a frame takes from the aircraft to the remote.
//!
//! The radios lose video in bursts (a Gilbert–Elliott chain), which no per-frame repair
//! recovers every time, so frames and key frames are lost for good; the uplink that carries
//! the requests is clean, so that the time to honour one is the radio's and the encoder's,
//! not a lost stick command's (each costs one stick period, 10 ms).

use std::time::Duration;

use rotorlink::handshake::KsfParams;
use rotorlink::{Config, Timestamp};
use rotorlink_sim::aircraft::{AircraftConfig, AircraftStats};
use rotorlink_sim::remote::{RemoteStats, ANSWER_SLACK};
use rotorlink_sim::report::Report;
use rotorlink_sim::scenario::{self, Scenario};
use rotorlink_sim::video::FrameKind;
use rotorlink_sim::{Burst, ChannelConfig};

/// One way, before jitter.
const DELAY: Duration = Duration::from_millis(5);
const JITTER: Duration = Duration::from_millis(2);
const FPS: u32 = 30;

/// The report and both applications' counters at the end of the flight.
struct Flown {
    report: Report,
    aircraft: AircraftStats,
    remote: RemoteStats,
}

fn fly(s: &Scenario) -> Flown {
    let end = Timestamp::ZERO + s.duration;
    let mut last = None;
    let report = scenario::run_watched(s, &mut |m| {
        if m.now >= end {
            last = Some((m.aircraft.stats.clone(), m.remote.stats.clone()));
        }
    })
    .unwrap();
    let (aircraft, remote) = last.expect("the watcher sees the end of the flight");
    Flown {
        report,
        aircraft,
        remote,
    }
}

/// A radio of `DELAY` and `JITTER` that loses `burst` (if any).
fn radio(burst: Option<Burst>) -> ChannelConfig {
    far_radio(DELAY, burst)
}

/// A radio of `delay` and `JITTER` that loses `burst` (if any).
fn far_radio(delay: Duration, burst: Option<Burst>) -> ChannelConfig {
    ChannelConfig {
        delay,
        jitter: JITTER,
        burst,
        ..ChannelConfig::default()
    }
}

/// `secs` of 4 Mbit/s video at [`FPS`], a key frame every second, over `downlink`,
/// without forward error correction: these tests are about the frames it could not repair
/// (its own tests: tests/video_fec.rs in link/, `channel::video`, and BENCHMARKS.md).
fn flight(secs: u64, downlink: ChannelConfig) -> Scenario {
    Scenario {
        seed: 14,
        duration: Duration::from_secs(secs),
        uplink: radio(None),
        downlink,
        aircraft: AircraftConfig {
            video_bitrate: 4_000_000,
            video_fps: FPS,
            key_frame_interval: FPS,
            initial_log_len: 64 << 10,
            ..AircraftConfig::default()
        },
        link: Config {
            ksf: KsfParams::INSECURE_FAST,
            max_video_parity: 0,
            ..Config::default()
        },
        ..Scenario::default()
    }
}

/// Bursts of 30 datagrams on average, 3 % of the downlink overall.
fn lossy() -> ChannelConfig {
    radio(Some(Burst::mean_length(30.0, 0.03)))
}

fn frame_interval() -> Duration {
    Duration::from_secs(1) / FPS
}

/// The longest round trip the radios make: both ways' delay and jitter.
fn round_trip() -> Duration {
    2 * (DELAY + JITTER)
}

/// (a) Every key-frame request is honoured within a round trip plus a frame interval of
/// being sent: the request reaches the aircraft within one way, and its encoder makes the
/// next frame a key frame. The key frame then arrives (when it is not lost too) within a
/// round trip, a frame interval and its transmission; the frames delivered in between are
/// the ones already on their way, none of them decodable. One request is outstanding at a
/// time: the next waits for the answer, or for a round trip plus [`ANSWER_SLACK`].
#[test]
fn a_broken_picture_gets_a_key_frame_within_a_round_trip_and_a_frame() {
    let f = fly(&flight(20, lossy()));
    let (a, r) = (&f.aircraft, &f.remote);
    let report = &f.report;
    assert!(report.paired, "{report}");
    let requests = &r.key_requests;
    assert!(requests.len() >= 5, "{} requests\n{report}", requests.len());
    let lost = report.video_frames.incomplete.unwrap();
    assert!(
        (requests.len() as u64) < lost,
        "{} requests for {lost} frames lost: one per broken group, not one per frame\n{report}",
        requests.len()
    );

    let bound = round_trip() + frame_interval();
    let end = Timestamp::ZERO + Duration::from_secs(20);
    let mut failures = Vec::new();
    for (i, &sent) in requests.iter().enumerate() {
        let id = i as u32 + 1;
        let honoured = a
            .key_requests_honoured
            .iter()
            .find(|&&(h, _)| h == id)
            .map(|&(_, at)| at);
        match honoured {
            Some(at) if at.saturating_since(sent) <= bound => {}
            None if sent + bound > end => {}
            other => failures.push(format!(
                "request {id} sent at {sent:?} honoured at {other:?}"
            )),
        }
    }
    failures.extend(rate_limit_broken(r, DELAY));
    assert_eq!(
        report.video_frames.key_frame_requests.honoured,
        Some(a.key_requests_honoured.len() as u64)
    );
    // After each request, the first key frame that answers it arrives within the round
    // trip, a frame interval and the key frame's transmission (generously, a second frame
    // interval at this bitrate), unless it was lost.
    for (i, &sent) in requests.iter().enumerate() {
        let id = i as u32 + 1;
        if let Some(x) = r
            .video_arrivals
            .iter()
            .find(|x| x.kind == FrameKind::Key && x.request >= id && x.at >= sent)
        {
            let took = x.at.saturating_since(sent);
            if x.request == id && took > bound + frame_interval() {
                failures.push(format!("request {id}'s key frame took {took:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
    let k = &report.video_frames.key_frame_requests;
    assert_eq!(k.sent, requests.len() as u64);
    let p50 = k.wait_p50_ms.expect("key frames followed requests");
    assert!(
        p50 <= (bound + frame_interval()).as_secs_f64() * 1e3,
        "{report}"
    );
}

/// Where the remote asked again while its last request was outstanding: neither answered
/// (no frame made after the aircraft honoured it had arrived) nor older than the shortest
/// round trip over radios of `delay` each way plus [`ANSWER_SLACK`].
fn rate_limit_broken(r: &RemoteStats, delay: Duration) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, pair) in r.key_requests.windows(2).enumerate() {
        let (sent, next) = (pair[0], pair[1]);
        let id = i as u32 + 1;
        let answered = r
            .video_arrivals
            .iter()
            .any(|x| x.request >= id && x.at <= next);
        let waited = next.saturating_since(sent);
        if !answered && waited < 2 * delay + ANSWER_SLACK {
            failures.push(format!(
                "request {} {waited:?} after request {id}, which was not answered",
                id + 1
            ));
        }
    }
    failures
}

/// One request per broken group of pictures, even when the round trip spans several
/// frames: over radios of 50 ms each way, the frames already on their way when the remote
/// asks arrive undecodable too, and do not each ask again.
#[test]
fn frames_in_flight_during_a_request_do_not_ask_again() {
    let delay = Duration::from_millis(50);
    let mut s = flight(20, far_radio(delay, Some(Burst::mean_length(30.0, 0.03))));
    s.uplink = far_radio(delay, None);
    let f = fly(&s);
    let r = &f.remote;
    let undecodable = r.video_arrivals.iter().filter(|x| !x.decodable).count();
    let requests = r.key_requests.len();
    assert!(requests >= 3, "{}", f.report);
    assert!(
        requests * 2 <= undecodable,
        "{requests} requests for {undecodable} undecodable frames\n{}",
        f.report
    );
    let failures = rate_limit_broken(r, delay);
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), f.report);
    // All honoured, but perhaps one sent too late in the flight to be.
    let honoured = f.report.video_frames.key_frame_requests.honoured.unwrap();
    assert!(
        honoured + 1 >= requests as u64 && honoured <= requests as u64,
        "{}",
        f.report
    );
}

/// (b) Decodable frames are never more than complete ones; on a clean radio every frame
/// sent arrives and decodes, and nothing is asked for.
#[test]
fn decodable_is_at_most_complete_and_all_of_them_on_a_clean_radio() {
    let clean = fly(&flight(5, radio(None)));
    let (report, v) = (&clean.report, &clean.report.video_frames);
    let sent = clean.aircraft.video_frames_sent;
    assert!(sent >= 140, "{report}");
    // The last frames may still be on their way when the flight ends.
    let in_flight = report.channels.video.lost.unwrap();
    assert!(in_flight <= 1, "{report}");
    assert_eq!(v.complete + in_flight, sent, "{report}");
    assert_eq!(v.decodable, v.complete, "{report}");
    assert_eq!(v.incomplete, Some(in_flight));
    assert_eq!(v.key_frame_requests.sent, 0, "{report}");
    assert_eq!(v.key_frame_requests.honoured, Some(0), "{report}");
    assert!(clean.remote.video_arrivals.iter().all(|x| x.decodable));

    let lossy = fly(&flight(10, lossy()));
    let v = &lossy.report.video_frames;
    assert!(v.decodable <= v.complete, "{}", lossy.report);
    assert!(
        v.decodable < v.complete,
        "frames lost, so some that arrived cannot be decoded:\n{}",
        lossy.report
    );
    assert_eq!(
        v.decodable,
        lossy
            .remote
            .video_arrivals
            .iter()
            .filter(|x| x.decodable)
            .count() as u64
    );
}

/// (c) When a key frame is lost, the delta frames of its group that do arrive cannot be
/// decoded, and nothing is until the next key frame arrives.
#[test]
fn a_lost_key_frame_leaves_the_deltas_after_it_undecodable_until_the_next_key_frame() {
    // A key frame every third of a second, and bursts of loss three times as frequent as
    // `lossy`'s: more key frames to lose (about eight expected, rather than two).
    let mut s = flight(20, radio(Some(Burst::mean_length(30.0, 0.1))));
    s.aircraft.key_frame_interval = FPS / 3;
    let f = fly(&s);
    let arrivals = &f.remote.video_arrivals;
    let delivered = |n: u32| arrivals.iter().any(|x| x.number == n);
    let mut lost_keys = 0;
    for (i, x) in arrivals.iter().enumerate() {
        if x.kind != FrameKind::Delta || delivered(x.key) {
            continue;
        }
        // A delta frame whose key frame never arrived.
        assert!(!x.decodable, "{x:?} decoded without its key frame");
        if i == 0 || arrivals[i - 1].key != x.key {
            lost_keys += 1;
            // Nothing decodes until the next key frame (none, if the flight ended first).
            if let Some(next) = arrivals[i..].iter().find(|y| y.decodable) {
                assert_eq!(next.kind, FrameKind::Key, "{next:?} after {x:?}");
            }
        }
    }
    assert!(
        lost_keys >= 2,
        "only {lost_keys} groups lost their key frame\n{}",
        f.report
    );
}

/// (d) Frame latency is reported, and no frame arrives faster than the radio's one-way
/// delay.
#[test]
fn frame_latency_is_reported_and_never_below_the_one_way_delay() {
    for downlink in [radio(None), lossy()] {
        let f = fly(&flight(5, downlink));
        let latency = f.report.channels.video.latency.expect("frames arrived");
        let delay_ms = DELAY.as_secs_f64() * 1e3;
        assert!(latency.p50_ms >= delay_ms, "{}", f.report);
        assert!(latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.max_ms);
        let fastest = f.remote.video_latencies.iter().min().unwrap();
        assert!(*fastest >= DELAY, "{fastest:?}");
        assert_eq!(
            f.remote.video_latencies.len() as u64,
            f.report.video_frames.complete
        );
        let json = serde_json::to_value(&f.report).unwrap();
        for key in ["p50_ms", "p99_ms", "max_ms"] {
            assert!(
                json["channels"]["video"]["latency"][key]
                    .as_f64()
                    .is_some_and(|ms| ms >= delay_ms),
                "{key}: {json}"
            );
        }
        let row = f.report.to_string();
        let video = row.lines().find(|l| l.starts_with("video ")).unwrap();
        assert_eq!(video.split_whitespace().count(), 10, "{row}");
    }
}

/// (e) With forward error correction (the default), 20 Mbit/s of video over a radio that
/// loses 5 % of datagrams at random: at least 99.5 % of the frames arrive complete, and
/// their latency stays within one way, the jitter and a frame interval at the 99th
/// percentile: parity adds no frame of latency.
#[test]
fn with_parity_frames_survive_random_loss_without_waiting_a_frame() {
    let mut s = flight(
        10,
        ChannelConfig {
            loss: 0.05,
            ..radio(None)
        },
    );
    s.link.max_video_parity = Config::default().max_video_parity;
    s.aircraft.video_bitrate = 20_000_000;
    let f = fly(&s);
    let v = &f.report.video_frames;
    let sent = f.report.channels.video.sent.unwrap();
    assert!(sent >= 290, "{}", f.report);
    // The last frame may be in flight when the flight ends.
    assert!(
        v.complete as f64 >= 0.995 * (sent - 1) as f64,
        "{} of {sent} complete\n{}",
        v.complete,
        f.report
    );
    let p99 = f.report.channels.video.latency.unwrap().p99_ms;
    let bound = (DELAY + JITTER + frame_interval()).as_secs_f64() * 1e3;
    assert!(p99 <= bound, "p99 {p99} ms > {bound} ms\n{}", f.report);
}
