//! The tokio driver over the simulated radio: the same `Connection`, driver and flight loops
//! that `rotorlink aircraft` / `rotorlink remote` run over UDP, here over [`SimNet`] in
//! tokio's paused (virtual) clock.

use std::time::Duration;

use rotorlink::handshake::{AircraftIdentity, KsfParams, MemoryAttemptStore};
use rotorlink::tokio::{Aircraft, ConnectError, LinkEvent, Remote};
use rotorlink::{Config, Event, Role};
use rotorlink_sim::aircraft::{AircraftApp, AircraftConfig};
use rotorlink_sim::flight::{fly_aircraft, fly_remote, RemoteFlight};
use rotorlink_sim::net::SimNet;
use rotorlink_sim::remote::RemoteApp;
use rotorlink_sim::scenario::Scenario;
use rotorlink_sim::{addr, ChannelConfig};

const LINK_ID: [u8; 16] = *b"tokio-sim-flight";
const CODE: &[u8] = b"246813";

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
    let identity =
        AircraftIdentity::provision(LINK_ID, CODE, config().ksf, &mut rand_core::OsRng).unwrap();
    let mut aircraft = Aircraft::listen(
        air_end,
        identity,
        Box::new(MemoryAttemptStore::new()),
        config(),
    )
    .unwrap();
    let app_config = AircraftConfig {
        video_bitrate: 4_000_000,
        initial_log_len: 2 << 20,
        ..AircraftConfig::default()
    };
    let aircraft_task = tokio::spawn(async move {
        let mut app = AircraftApp::new(app_config, 1);
        let mut events = Vec::new();
        let flight = fly_aircraft(&mut aircraft, &mut app, std::future::pending(), &mut |e| {
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
    let flight = RemoteFlight {
        seed: 11,
        duration: Duration::from_secs(10),
        until_downloaded: false,
    };
    let report = fly_remote(
        &mut remote,
        &mut app,
        &flight,
        std::future::pending(),
        &mut |_| {},
    )
    .await;
    remote.close().await;
    let (aircraft_flight, aircraft_events) = aircraft_task.await.unwrap();

    // Virtual time: ten seconds of flight (plus the end-of-flight exchange).
    let flown = started.elapsed();
    assert!(
        flown >= Duration::from_secs(10) && flown < Duration::from_secs(13),
        "{flown:?}"
    );
    assert!(report.paired && report.storage_unlocked, "{report}");
    assert!(report.flight_log_complete, "{report}");
    assert!(report.storage_bytes >= 2 << 20);
    // Every stick command and telemetry message arrived byte for byte as sent.
    let c = &report.channels;
    for ch in [c.control, c.telemetry, c.video, c.storage] {
        assert_eq!(ch.corrupted, 0, "{report}");
    }
    assert_eq!(report.corrupted_payloads, 0);
    // The radio's impairments reached the links: duplicates and corrupted frames dropped.
    assert!(
        report.rejected.auth > 0 && report.rejected.replay > 0,
        "{report}"
    );
    // Sticks at 100 Hz for 10 s, most of them delivered over 2 % loss.
    let control = report.channels.control;
    assert!(
        control.sent >= 990 && control.delivered as f64 > 0.95 * control.sent as f64,
        "{report}"
    );
    let latency = control.latency.unwrap();
    assert!(latency.p50_ms >= 5.0 && latency.p50_ms <= 8.0, "{report}");
    // The aircraft printed the same report, sent over the link.
    let mut expected = report.clone();
    expected.real_time = true;
    assert_eq!(aircraft_flight.report, Some(expected));
    assert!(aircraft_flight.connected);
    assert!(aircraft_events.contains(&LinkEvent::Link(Event::Bonded)));
    // The radio carried what the links sent.
    let radio_sent = remote_end.channel_stats().sent + remote_end.outgoing_channel_stats().sent;
    assert!(radio_sent > 0 && report.radio_sent <= radio_sent + 10);
}

#[tokio::test(start_paused = true)]
async fn pairing_over_a_dead_radio_times_out_in_virtual_time() {
    let dead = ChannelConfig {
        loss: 1.0,
        ..ChannelConfig::default()
    };
    let (air_end, remote_end) = SimNet::pair(dead.clone(), dead, 1);
    let identity =
        AircraftIdentity::provision(LINK_ID, CODE, config().ksf, &mut rand_core::OsRng).unwrap();
    let _aircraft = Aircraft::listen(
        air_end,
        identity,
        Box::new(MemoryAttemptStore::new()),
        config(),
    )
    .unwrap();
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
    let identity =
        AircraftIdentity::provision(LINK_ID, CODE, config().ksf, &mut rand_core::OsRng).unwrap();
    let mut aircraft = Aircraft::listen(
        net.end(Role::Aircraft),
        identity,
        Box::new(MemoryAttemptStore::new()),
        config(),
    )
    .unwrap();
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
        let flight = fly_aircraft(&mut aircraft, &mut app, std::future::pending(), &mut |e| {
            events.push(e.clone());
        })
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
    let flight = RemoteFlight {
        seed: 5,
        duration: Duration::from_secs(10),
        until_downloaded: false,
    };
    let report = fly_remote(
        &mut remote,
        &mut app,
        &flight,
        std::future::pending(),
        &mut |_| {},
    )
    .await;
    remote.close().await;
    outage.await.unwrap();
    let (aircraft_flight, events, raised) = aircraft_task.await.unwrap();

    let count = |wanted: &LinkEvent| events.iter().filter(|e| *e == wanted).count();
    assert_eq!(count(&LinkEvent::Failsafe), 1, "{events:?}");
    assert_eq!(count(&LinkEvent::FailsafeCleared), 1, "{events:?}");
    assert!(!raised, "cleared at the end");
    assert_eq!(aircraft_flight.summary.failsafe_events, 1);
    assert_eq!(report.failsafe_events, 1, "{report}");
    assert!(report.reconnects >= 1, "{report}");
}
