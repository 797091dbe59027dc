//! Whole flights over the simulated radio: what the link delivers, and what it refuses.

use std::time::Duration;

use rotorlink::handshake::KsfParams;
use rotorlink::Config;
use rotorlink_sim::aircraft::AircraftConfig;
use rotorlink_sim::report::Report;
use rotorlink_sim::scenario::{self, Scenario};
use rotorlink_sim::ChannelConfig;

/// A short flight that runs quickly in a debug build.
fn flight(radio: ChannelConfig) -> Scenario {
    Scenario {
        seed: 7,
        duration: Duration::from_secs(4),
        uplink: radio.clone(),
        downlink: radio,
        aircraft: AircraftConfig {
            video_bitrate: 2_000_000,
            initial_log_len: 300_000,
            ..AircraftConfig::default()
        },
        link: Config {
            ksf: KsfParams::INSECURE_FAST,
            ..Config::default()
        },
        ..Scenario::default()
    }
}

/// Fly `s`. Whatever the radio did, every message delivered is byte for byte what its
/// sender generated (each stick command and telemetry message is checked whole): the link
/// drops corrupted frames rather than deliver them.
fn fly(s: &Scenario) -> Report {
    let r = scenario::run(s, &mut |_| {}).unwrap();
    assert_intact(&r);
    r
}

fn assert_intact(r: &Report) {
    let c = &r.channels;
    for (name, ch) in [
        ("control", c.control),
        ("telemetry", c.telemetry),
        ("video", c.video),
        ("storage", c.storage),
    ] {
        assert_eq!(ch.corrupted, Some(0), "{name}: {r}");
    }
    assert_eq!(r.corrupted_payloads, Some(0), "{r}");
}

fn clean() -> ChannelConfig {
    ChannelConfig::default()
}

#[test]
fn a_clean_channel_delivers_everything() {
    let r = fly(&flight(clean()));
    assert!(r.paired && r.storage_unlocked, "{r}");
    let c = &r.channels;
    for (name, ch) in [
        ("control", c.control),
        ("telemetry", c.telemetry),
        ("video", c.video),
    ] {
        assert!(ch.sent.unwrap() > 0, "{name}: {r}");
        // Whatever was still in flight when the flight ended may be missing: one tick.
        assert!(ch.lost.unwrap() <= 2, "{name}: {r}");
        // Nothing the aircraft or the remote made was refused by a full queue.
        assert_eq!(ch.refused, Some(0), "{name}: {r}");
    }
    assert_eq!(r.video_frames.incomplete, c.video.lost);
    assert!(r.download.verified, "{r}");
    let rejected = r.rejected.unwrap();
    assert_eq!(
        rejected.auth + rejected.replay + rejected.malformed,
        0,
        "{r}"
    );
    assert_eq!(r.failsafe_events, Some(0));
}

/// The report carries what the aircraft learnt of the radio and how its encoder followed:
/// on a 10 Mbit/s radio with the camera asking 20, the estimate is near 10 Mbit/s, the
/// encoder settled below the radio's rate, and the download's progress is known.
#[test]
fn the_report_shows_the_estimated_capacity_and_the_bitrate_chosen() {
    let mut s = flight(ChannelConfig {
        rate_bps: Some(10_000_000),
        ..clean()
    });
    s.aircraft.video_bitrate = 20_000_000;
    let r = fly(&s);
    assert!(r.paired, "{r}");
    let e = r.downlink_estimate;
    assert!(
        e.capacity_mbps.is_some_and(|c| (8.0..=12.0).contains(&c)),
        "{r}"
    );
    assert!(e.min_rtt_ms.is_some_and(|rtt| rtt >= 10.0), "{r}");
    assert!(e.loss.is_some_and(|l| l < 0.05), "a clean radio: {r}");
    assert!(
        e.slowdowns.is_some(),
        "carried by the aircraft's summary: {r}"
    );
    let b = r.video_bitrate;
    assert_eq!(b.camera_mbps, Some(20.0));
    assert!(b.last_mbps.is_some_and(|l| l <= 10.0), "{r}");
    assert!(b.mean_mbps.is_some_and(|m| m < 20.0), "{r}");
    assert!(r.video_dropped_at_sender.is_some(), "{r}");
    assert!(
        r.download.progress.is_some_and(|p| p > 0.0 && p <= 1.0),
        "{r}"
    );
    let table = r.to_string();
    assert!(table.contains("(camera 20 Mbit/s)"), "{table}");
    assert!(
        !table.contains('?'),
        "everything is known in the simulator: {table}"
    );
}

#[test]
fn ten_percent_loss_still_delivers_the_whole_log_and_keeps_control_fast() {
    let mut s = flight(ChannelConfig {
        loss: 0.10,
        ..clean()
    });
    s.duration = Duration::from_secs(8);
    let r = fly(&s);
    assert!(r.paired, "{r}");
    assert!(r.download.verified, "every storage byte, in order: {r}");
    let control = r.channels.control;
    // About a tenth of the stick commands are lost, never late: latest wins, no retries.
    let lost = control.lost.unwrap() as f64 / control.sent.unwrap() as f64;
    assert!((0.05..0.16).contains(&lost), "{r}");
    let latency = control.latency.unwrap();
    // Channel delay 5 ms; a few frame times of margin.
    assert!(latency.p99_ms <= 5.0 + 3.0, "{r}");
    assert!(r.storage_retransmits.unwrap() > 0);
    // The downloads' tails were repaired by parity, and what was rebuilt is in the
    // verified bytes.
    assert!(r.storage_repairs.unwrap() > 0, "{r}");
    assert!(r.storage_repaired.unwrap() > 0, "{r}");
}

#[test]
fn reorder_and_duplication_deliver_each_message_exactly_once() {
    let r = fly(&flight(ChannelConfig {
        jitter: Duration::from_millis(8),
        duplicate: 0.05,
        ..clean()
    }));
    assert!(r.paired, "{r}");
    let c = &r.channels;
    // Duplicates are refused as replays; nothing is delivered twice.
    assert!(r.rejected.unwrap().replay > 0, "{r}");
    for ch in [c.control, c.telemetry, c.video] {
        assert!(ch.delivered.unwrap() <= ch.sent.unwrap(), "{r}");
    }
    assert!(r.download.verified, "{r}");
    assert!(c.telemetry.lost.unwrap() <= 2, "{r}");
}

#[test]
fn corruption_never_delivers_a_corrupted_payload() {
    let r = fly(&flight(ChannelConfig {
        corrupt: 0.05,
        ..clean()
    }));
    assert!(r.paired, "{r}");
    let rejected = r.rejected.unwrap();
    assert!(rejected.auth + rejected.malformed > 50, "{r}");
    // Every byte of every stick command and telemetry message that arrived was checked.
    let c = &r.channels;
    assert!(
        c.control.delivered.unwrap() > 300 && c.telemetry.delivered.unwrap() > 150,
        "{r}"
    );
    assert_eq!(
        (c.control.corrupted, c.telemetry.corrupted),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r.corrupted_payloads, Some(0), "{r}");
    assert!(r.download.verified, "the log's SHA-256 matched: {r}");
}

/// Everything at once, the worst radio of these tests: still nothing delivered corrupted.
#[test]
fn a_lossy_reordering_duplicating_corrupting_radio_delivers_nothing_corrupted() {
    let r = fly(&flight(ChannelConfig {
        loss: 0.05,
        burst: Some(rotorlink_sim::Burst::mean_length(4.0, 0.02)),
        jitter: Duration::from_millis(6),
        reorder: 0.05,
        duplicate: 0.05,
        corrupt: 0.05,
        ..clean()
    }));
    assert!(r.paired, "{r}");
    let rejected = r.rejected.unwrap();
    assert!(rejected.auth > 0 && rejected.replay > 0, "{r}");
    let c = &r.channels;
    assert!(
        c.control.delivered.unwrap() > 200 && c.telemetry.delivered.unwrap() > 100,
        "{r}"
    );
    assert_eq!(r.corrupted_payloads, Some(0), "{r}");
}

#[test]
fn a_link_cut_raises_the_failsafe_and_the_link_recovers() {
    let mut s = flight(clean());
    s.duration = Duration::from_secs(10);
    s.outages = vec![(Duration::from_secs(3), Duration::from_secs(6))];
    let r = fly(&s);
    assert!(r.paired, "{r}");
    assert_eq!(r.failsafe_events, Some(1), "{r}");
    assert!(r.reconnects >= 1, "the remote resumed the session: {r}");
    // Sticks flow again after the outage: three seconds of 100 Hz were lost, not more.
    let control = r.channels.control;
    assert!(control.lost.unwrap() < 400, "{r}");
    assert!(r.download.verified, "{r}");
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let s = flight(ChannelConfig {
        loss: 0.05,
        jitter: Duration::from_millis(3),
        duplicate: 0.01,
        corrupt: 0.01,
        ..clean()
    });
    let a = fly(&s);
    assert_eq!(fly(&s), a);
    let b = fly(&Scenario { seed: 8, ..s });
    assert_ne!(a, b);
}

#[test]
fn a_wrong_code_never_pairs() {
    let mut s = Scenario {
        password: b"000000".to_vec(),
        ..flight(clean())
    };
    // The remote says "wrong code" only when its attempt times out (a failed `Response`
    // may be a forgery): a short timeout, so the 4 s flight sees it.
    s.link.handshake.timeout = Duration::from_secs(1);
    let r = fly(&s);
    assert!(!r.paired && !r.storage_unlocked, "{r}");
    assert_eq!(r.channels.control.delivered, Some(0));
    assert!(
        r.refusal
            .as_deref()
            .unwrap_or("")
            .contains("rejected the code"),
        "{r}"
    );
}

#[test]
fn burst_loss_still_delivers_the_whole_log() {
    let mut s = flight(ChannelConfig {
        burst: Some(rotorlink_sim::Burst::mean_length(8.0, 0.05)),
        ..clean()
    });
    s.duration = Duration::from_secs(8);
    let r = fly(&s);
    assert!(r.paired, "{r}");
    assert!(r.download.verified, "{r}");
    let control = r.channels.control;
    let lost = control.lost.unwrap() as f64 / control.sent.unwrap() as f64;
    assert!(
        (0.01..0.12).contains(&lost),
        "about 5 % lost, in bursts: {r}"
    );
    // Bursts of about 8 frames are shorter than the failsafe delay: no failsafe.
    assert_eq!(r.failsafe_events, Some(0), "{r}");
}

/// The link is lost in the middle of a clip's download for longer than the aircraft keeps
/// a session for a resume, so the remote comes back with a new session: the storage channel
/// starts afresh (what was queued or in flight is gone) and must be unlocked again. The
/// remote asks for the clip again from the bytes it holds, not from the start, and the
/// whole clip verifies against the SHA-256 of the aircraft's list.
#[test]
fn a_download_cut_by_a_lost_link_resumes_from_its_offset_and_verifies() {
    // A 40 Mbit/s radio: the clip takes seconds, so the cut lands mid-file (over an
    // unlimited radio the link fetches all 16 MiB before it).
    let mut s = flight(ChannelConfig {
        rate_bps: Some(40_000_000),
        ..clean()
    });
    s.duration = Duration::from_secs(10);
    let size: u64 = 16 << 20;
    s.aircraft.clip_size = size;
    s.aircraft.photos = 0;
    s.download = "clip".into();
    s.outages = vec![(Duration::from_millis(800), Duration::from_millis(3800))];
    // Shorter than the outage: the resume is refused and a full session takes over.
    s.link.handshake.resume_lifetime = Duration::from_secs(1);
    let r = fly(&s);
    assert!(r.paired, "{r}");
    let d = &r.download;
    assert_eq!((d.file.as_str(), d.size), ("clip.mp4", Some(size)), "{r}");
    assert!(d.verified, "{r}");
    assert_eq!(d.received, size);
    assert_eq!(d.resumes, 1, "{r}");
    let at = d.resumed_at[0];
    assert!(
        at > size / 8 && at < size / 2,
        "resumed mid-file, at {at}: {r}"
    );
    assert_eq!(at % (64 << 10), 0, "at a chunk boundary: {r}");
    assert!(r.reconnects >= 1, "{r}");
    // The bytes before the resume point were not sent again: the storage channel delivered
    // the clip once, plus the requests and the list.
    let storage = r.channels.storage.bytes.unwrap();
    assert!(storage >= size && storage < size + 4096, "{storage}: {r}");
    let table = r.to_string();
    assert!(
        table.contains("clip.mp4: 16.0 MiB of 16.0 MiB (100%), SHA-256 verified, resumed once"),
        "{table}"
    );
}
