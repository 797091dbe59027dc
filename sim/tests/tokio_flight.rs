//! The tokio driver over the simulated radio: the same `Connection`, driver and flight loops
//! that `rotorlink aircraft` / `rotorlink remote` run over UDP, here over [`SimNet`] in
//! tokio's paused (virtual) clock.

use std::time::Duration;

use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore};
use rotorlink::tokio::{Aircraft, ConnectError, LinkEvent, Remote};
use rotorlink::{Config, Event, Role};
use rotorlink_sim::aircraft::{AircraftApp, AircraftConfig};
use rotorlink_sim::flight::{fly_aircraft, fly_remote, RemoteFlight, RemoteOutcome};
use rotorlink_sim::net::SimNet;
use rotorlink_sim::remote::RemoteApp;
use rotorlink_sim::scenario::Scenario;
use rotorlink_sim::{addr, ChannelConfig};

const LINK_ID: [u8; 16] = *b"tokio-sim-flight";
const CODE: &[u8] = b"246813";

/// An aircraft provisioned with `CODE`, listening on `end` with `config`, its pairing window
/// open.
fn listen(end: rotorlink_sim::net::SimTransport, config: Config) -> rotorlink::tokio::Connection {
    let identity =
        AircraftIdentity::provision(LINK_ID, CODE, config.ksf, &mut rand_core::OsRng).unwrap();
    let aircraft =
        Aircraft::listen(end, identity, Box::new(MemoryAttemptStore::new()), config).unwrap();
    aircraft
        .open_pairing_window(rotorlink_sim::PAIRING_WINDOW)
        .unwrap();
    aircraft
}

/// Fly `app` on `remote` for `duration` (or until its download is complete, if
/// `until_downloaded`), with no other stop and no event printed.
async fn fly_remote_for(
    remote: &mut rotorlink::tokio::Connection,
    app: &mut RemoteApp,
    seed: u64,
    duration: Duration,
    until_downloaded: bool,
) -> RemoteOutcome {
    let flight = RemoteFlight {
        seed,
        duration,
        until_downloaded,
    };
    fly_remote(remote, app, &flight, std::future::pending(), &mut |_| {}).await
}

fn config() -> Config {
    Config {
        ksf: KsfParams::INSECURE_FAST,
        ..Config::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_whole_flight_runs_through_the_tokio_driver_over_the_simulated_radio() {
    let radio = Scenario::default().uplink; // 2 % loss, 5 ms +- 2 ms, duplicates, corruption
    let (air_end, remote_end) = SimNet::pair(radio.clone(), radio, 11);
    let mut aircraft = listen(air_end, config());
    let app_config = AircraftConfig {
        video_bitrate: 4_000_000,
        initial_log_len: 2 << 20,
        ..AircraftConfig::default()
    };
    // The aircraft flies until the remote's close arrives, or, should the radio lose that
    // one frame, until two seconds after the remote closed (its link would only call the
    // link lost: an aircraft keeps listening for a remote).
    let (closed, remote_closed) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = remote_closed.await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let aircraft_task = tokio::spawn(async move {
        let mut app = AircraftApp::new(app_config, 1);
        let mut events = Vec::new();
        let flight = fly_aircraft(&mut aircraft, &mut app, stop, &mut |e, _| {
            events.push(e.clone());
        })
        .await;
        (flight, events)
    });

    let started = tokio::time::Instant::now();
    let mut remote = Remote::connect(
        remote_end.clone(),
        addr(Role::Aircraft),
        LINK_ID,
        CODE,
        config(),
    )
    .await
    .unwrap();
    let mut app = RemoteApp::new(CODE);
    let outcome = fly_remote_for(&mut remote, &mut app, 11, Duration::from_secs(10), false).await;
    let report = outcome.report;
    remote.close().await;
    // Virtual time: ten seconds of flight (plus the end-of-flight exchange).
    let flown = started.elapsed();
    let _ = closed.send(());
    let (aircraft_flight, aircraft_events) = aircraft_task.await.unwrap();

    assert!(
        flown >= Duration::from_secs(10) && flown < Duration::from_secs(13),
        "{flown:?}"
    );
    assert!(report.paired && report.storage_unlocked, "{report}");
    assert!(report.download.verified, "{report}");
    assert!(report.download.received >= 2 << 20);
    // Every stick command and telemetry message arrived byte for byte as sent.
    let c = &report.channels;
    for ch in [c.control, c.telemetry, c.video, c.storage] {
        assert_eq!(ch.corrupted, Some(0), "{report}");
    }
    assert_eq!(report.corrupted_payloads, Some(0));
    // The radio's impairments reached the links: duplicates and corrupted frames dropped.
    let rejected = report.rejected.unwrap();
    assert!(rejected.auth > 0 && rejected.replay > 0, "{report}");
    // Sticks at 100 Hz for 10 s, most of them delivered over 2 % loss.
    let control = report.channels.control;
    let (sent, delivered) = (control.sent.unwrap(), control.delivered.unwrap());
    assert!(
        sent >= 990 && delivered as f64 > 0.95 * sent as f64,
        "{report}"
    );
    let latency = control.latency.unwrap();
    assert!(latency.p50_ms >= 5.0 && latency.p50_ms <= 8.0, "{report}");
    // The aircraft's estimate of the downlink and its encoder's bitrates came in its
    // summary (the radio has no rate cap: the estimate is whatever the link measured).
    let estimate = report.downlink_estimate;
    assert!(estimate.capacity_mbps.is_some_and(|c| c > 0.0), "{report}");
    assert!(estimate.min_rtt_ms.is_some_and(|r| r >= 10.0), "{report}");
    let bitrate = report.video_bitrate;
    assert_eq!(bitrate.camera_mbps, Some(4.0));
    assert!(
        bitrate.mean_mbps.is_some_and(|m| m > 0.0 && m <= 4.0),
        "{report}"
    );
    assert!(report.video_dropped_at_sender.is_some(), "{report}");
    // The aircraft printed the same report, sent over the link.
    assert!(outcome.report_delivered);
    assert_eq!(report.missing_summary, None);
    let mut expected = report.clone();
    expected.real_time = true;
    assert_eq!(aircraft_flight.report, Some(expected));
    assert!(aircraft_flight.connected);
    assert!(aircraft_events.contains(&LinkEvent::Link(Event::Bonded)));
    // The radio carried what the links sent.
    let radio_sent = remote_end.channel_stats().sent + remote_end.outgoing_channel_stats().sent;
    assert!(radio_sent > 0 && report.radio_sent.unwrap() <= radio_sent + 10);
}

#[tokio::test(start_paused = true)]
async fn pairing_over_a_dead_radio_times_out_in_virtual_time() {
    let dead = ChannelConfig {
        loss: 1.0,
        ..ChannelConfig::default()
    };
    let (air_end, remote_end) = SimNet::pair(dead.clone(), dead, 1);
    let _aircraft = listen(air_end, config());
    let started = tokio::time::Instant::now();
    let err = Remote::connect(remote_end, addr(Role::Aircraft), LINK_ID, CODE, config())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Failed(_)), "{err}");
    assert_eq!(started.elapsed(), config().handshake.timeout);
}

/// Over the tokio driver the aircraft follows the link's failsafe: a radio cut of three
/// seconds raises it once, as the driver reports it, and the sticks that come back clear it.
#[tokio::test(start_paused = true)]
async fn over_the_tokio_driver_the_aircraft_follows_the_links_failsafe() {
    let radio = ChannelConfig::default();
    let net = SimNet::new(radio.clone(), radio, 5);
    let mut aircraft = listen(net.end(Role::Aircraft), config());
    let app_config = AircraftConfig {
        video_bitrate: 1_000_000,
        initial_log_len: 64 * 1024,
        // Its own watch would not raise in a 3 s cut: the driver's 1.5 s one does.
        failsafe_after: Duration::from_secs(60),
        ..AircraftConfig::default()
    };
    let aircraft_task = tokio::spawn(async move {
        let mut app = AircraftApp::new(app_config, 5);
        let mut events = Vec::new();
        let flight = fly_aircraft(
            &mut aircraft,
            &mut app,
            std::future::pending(),
            &mut |e, _| {
                events.push(e.clone());
            },
        )
        .await;
        (flight, events, app.failsafe())
    });
    let mut remote = Remote::connect(
        net.end(Role::Remote),
        addr(Role::Aircraft),
        LINK_ID,
        CODE,
        config(),
    )
    .await
    .unwrap();
    let cut = net.clone();
    let outage = tokio::spawn(async move {
        let set_loss = |loss| {
            cut.with_uplink(|c| c.config_mut().loss = loss);
            cut.with_downlink(|c| c.config_mut().loss = loss);
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        set_loss(1.0);
        tokio::time::sleep(Duration::from_secs(3)).await;
        set_loss(0.0);
    });
    let mut app = RemoteApp::new(CODE);
    let outcome = fly_remote_for(&mut remote, &mut app, 5, Duration::from_secs(10), false).await;
    let report = outcome.report;
    remote.close().await;
    outage.await.unwrap();
    let (aircraft_flight, events, raised) = aircraft_task.await.unwrap();

    let count = |wanted: &LinkEvent| events.iter().filter(|e| *e == wanted).count();
    assert_eq!(count(&LinkEvent::Failsafe), 1, "{events:?}");
    assert_eq!(count(&LinkEvent::FailsafeCleared), 1, "{events:?}");
    assert!(!raised, "cleared at the end");
    assert_eq!(aircraft_flight.summary.failsafe_events, 1);
    assert_eq!(report.failsafe_events, Some(1), "{report}");
    assert!(report.reconnects >= 1, "{report}");
}

/// Over the tokio driver too, the aircraft sends file data until the storage queue is full
/// and then waits for `LinkEvent::Link(Event::Writable)`: a clip of many times what its
/// queue holds arrives whole and verified, every chunk sent once.
#[tokio::test(start_paused = true)]
async fn over_the_tokio_driver_a_clip_larger_than_the_send_queue_arrives_whole() {
    let config = Config {
        send_queue_len: 4,
        ..config()
    };
    let radio = ChannelConfig::default();
    let (air_end, remote_end) = SimNet::pair(radio.clone(), radio, 12);
    let mut aircraft = listen(air_end, config.clone());
    let size = 3 << 20;
    let app_config = AircraftConfig {
        video_bitrate: 1_000_000,
        initial_log_len: 4096,
        photos: 1,
        photo_size: 1000,
        clip_size: size,
        ..AircraftConfig::default()
    };
    let aircraft_task = tokio::spawn(async move {
        let mut app = AircraftApp::new(app_config, 12);
        let flight = fly_aircraft(
            &mut aircraft,
            &mut app,
            std::future::pending(),
            &mut |_, _| {},
        )
        .await;
        (flight, app.stats)
    });
    let mut remote = Remote::connect(remote_end, addr(Role::Aircraft), LINK_ID, CODE, config)
        .await
        .unwrap();
    let mut app = RemoteApp::new(CODE).downloading("clip");
    let outcome = fly_remote_for(&mut remote, &mut app, 12, Duration::from_secs(60), true).await;
    let report = outcome.report;
    remote.close().await;
    let (aircraft_flight, stats) = aircraft_task.await.unwrap();

    let d = &report.download;
    assert!(d.verified, "{report}");
    assert_eq!(
        (d.file.as_str(), d.size, d.received),
        ("clip.mp4", Some(size), size)
    );
    assert!(report.duration_s < 30.0, "ended once downloaded: {report}");
    assert!(stats.storage_waits > 10, "the queue filled up: {stats:?}");
    assert_eq!(stats.storage_bytes_sent, size, "each byte sent once");
    assert_eq!(stats.storage_refused, 0);
    assert_eq!(report.channels.storage.lost, Some(0), "{report}");
    assert!(aircraft_flight.summary_refused.is_none());
    assert!(aircraft_flight.report.is_some());
}

/// The radio dies at the end of the flight, before the end-of-flight exchange: the
/// aircraft's summary never arrives, and the remote's report says so. What only the
/// aircraft counted is `null` in the JSON and `?` in the table (never 0: "control
/// delivered 0" would be a lie), what the remote counted itself is still there.
#[tokio::test(start_paused = true)]
async fn a_summary_that_never_arrives_leaves_the_aircrafts_counters_unknown() {
    let radio = ChannelConfig::default();
    let net = SimNet::new(radio.clone(), radio, 13);
    let mut aircraft = listen(net.end(Role::Aircraft), config());
    let app_config = AircraftConfig {
        video_bitrate: 1_000_000,
        initial_log_len: 64 * 1024,
        photos: 0,
        clip_size: 0,
        ..AircraftConfig::default()
    };
    let aircraft_task = tokio::spawn(async move {
        let mut app = AircraftApp::new(app_config, 13);
        let stop = tokio::time::sleep(Duration::from_secs(20));
        fly_aircraft(&mut aircraft, &mut app, stop, &mut |_, _| {}).await
    });
    let mut remote = Remote::connect(
        net.end(Role::Remote),
        addr(Role::Aircraft),
        LINK_ID,
        CODE,
        config(),
    )
    .await
    .unwrap();
    let cut = net.clone();
    let outage = tokio::spawn(async move {
        // Just before the remote's flight ends (3 s after pairing), for good.
        tokio::time::sleep(Duration::from_millis(2900)).await;
        cut.with_uplink(|c| c.config_mut().loss = 1.0);
        cut.with_downlink(|c| c.config_mut().loss = 1.0);
    });
    let mut app = RemoteApp::new(CODE);
    let started = tokio::time::Instant::now();
    let outcome = fly_remote_for(&mut remote, &mut app, 13, Duration::from_secs(3), false).await;
    let report = outcome.report;
    // It waited for the summary, in vain.
    assert!(started.elapsed() >= Duration::from_secs(3) + rotorlink_sim::flight::SUMMARY_WAIT);
    remote.close().await;
    outage.await.unwrap();
    let aircraft_flight = aircraft_task.await.unwrap();
    assert_eq!(aircraft_flight.report, None, "the report never reached it");
    assert!(!outcome.report_delivered);
    assert_eq!(
        report.missing_summary.as_deref(),
        Some("no answer within 5 s"),
        "{report}"
    );

    // What the remote knows by itself.
    assert!(report.paired && report.download.verified, "{report}");
    let c = &report.channels;
    assert!(c.control.sent.unwrap() > 250, "{report}");
    assert!(c.telemetry.delivered.unwrap() > 100, "{report}");
    assert!(c.telemetry.latency.is_some());
    // What only the aircraft knows.
    assert_eq!(c.control.delivered, None, "{report}");
    assert_eq!(c.control.latency, None);
    assert_eq!(c.telemetry.sent, None);
    assert_eq!(report.failsafe_events, None);
    assert_eq!(report.rejected, None);
    assert_eq!(report.radio_sent, None);
    assert_eq!(report.downlink_estimate.capacity_mbps, None);
    assert_eq!(report.video_bitrate.mean_mbps, None);
    assert_eq!(report.video_dropped_at_sender, None);

    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json["channels"]["control"]["delivered"].is_null(),
        "{json:#}"
    );
    assert!(json["channels"]["control"]["lost"].is_null());
    assert!(json["channels"]["telemetry"]["sent"].is_null());
    assert!(json["channels"]["video"]["refused"].is_null());
    assert!(json["channels"]["storage"]["sent"].is_null());
    assert!(json["video_frames"]["incomplete"].is_null());
    for (object, key) in [
        ("downlink_estimate", "capacity_mbps"),
        ("downlink_estimate", "loss"),
        ("downlink_estimate", "min_rtt_ms"),
        ("video_bitrate", "mean_mbps"),
        ("video_bitrate", "last_mbps"),
    ] {
        assert!(json[object][key].is_null(), "{object}.{key}: {json:#}");
    }
    // The download is the remote's own: its progress is known.
    assert_eq!(json["download"]["progress"], 1.0);
    for key in [
        "corrupted_payloads",
        "rekeys",
        "rejected",
        "failsafe_events",
        "storage_retransmits",
        "storage_repairs",
        "storage_repaired",
        "radio_sent",
        "radio_lost",
        "video_dropped_at_sender",
    ] {
        assert!(
            json.get(key).is_some_and(|v| v.is_null()),
            "{key}: {json:#}"
        );
    }
    assert!(json["channels"]["control"]["sent"].as_u64().unwrap() > 250);

    let table = report.to_string();
    let control: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("control"))
        .unwrap()
        .split_whitespace()
        .collect();
    // sent, delivered, lost, corrupt, refused, Mbit/s, p50, p99, max
    assert_eq!(control[2..5], ["?", "?", "?"], "{table}");
    assert_eq!(control[6..], ["?", "?", "?", "?"], "{table}");
    assert!(table.contains("failsafes ?"), "{table}");
    assert!(table.contains("capacity ? Mbit/s"), "{table}");
    assert!(table.contains("mean ? Mbit/s, last ? Mbit/s"), "{table}");
    assert!(table.contains("? frames dropped at the sender"), "{table}");
    assert!(table.contains("rejected frames  ?"), "{table}");
    assert!(table.contains("? datagrams, ? lost"), "{table}");
    assert!(
        table.contains("? = unknown: the aircraft's end-of-flight summary did not arrive (no answer within 5 s)"),
        "{table}"
    );
}

/// The flight ends in the middle of a large download on a narrow radio, with the aircraft's
/// storage queue full of the clip's chunks (256 of 64 KiB: 16 MiB, half a minute of this
/// radio). The aircraft withdraws the chunks not begun before it answers the remote's
/// summary request, so the answer comes at once and the report is whole (it came after the
/// 5 s the remote waits, and showed the aircraft's counters as unknown, before).
#[tokio::test(start_paused = true)]
async fn a_flight_that_ends_mid_download_still_gets_the_aircrafts_summary() {
    let radio = ChannelConfig {
        rate_bps: Some(4_000_000),
        ..ChannelConfig::default()
    };
    let (air_end, remote_end) = SimNet::pair(radio.clone(), radio, 14);
    let mut aircraft = listen(air_end, config());
    let app_config = AircraftConfig {
        video_bitrate: 0,
        initial_log_len: 4096,
        clip_size: 64 << 20,
        ..AircraftConfig::default()
    };
    let aircraft_task = tokio::spawn(async move {
        let mut app = AircraftApp::new(app_config, 14);
        fly_aircraft(
            &mut aircraft,
            &mut app,
            std::future::pending(),
            &mut |_, _| {},
        )
        .await
    });
    let mut remote = Remote::connect(remote_end, addr(Role::Aircraft), LINK_ID, CODE, config())
        .await
        .unwrap();
    let mut app = RemoteApp::new(CODE).downloading("clip");
    let started = tokio::time::Instant::now();
    let outcome = fly_remote_for(&mut remote, &mut app, 14, Duration::from_secs(4), false).await;
    let ended = started.elapsed();
    let report = outcome.report;
    remote.close().await;
    let aircraft_flight = aircraft_task.await.unwrap();

    let d = &report.download;
    assert!(
        d.received > 0 && d.received < 64 << 20,
        "mid-download: {report}"
    );
    assert_eq!(report.missing_summary, None, "{report}");
    assert!(report.channels.control.latency.is_some(), "{report}");
    // The answer came behind what was in flight, not behind the queue.
    assert!(
        ended < Duration::from_secs(4) + Duration::from_secs(1),
        "{ended:?}"
    );
    assert!(outcome.report_delivered);
    assert!(aircraft_flight.summary_refused.is_none());
    assert!(aircraft_flight.report.is_some());
}
