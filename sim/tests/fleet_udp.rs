//! A small fleet over real UDP on loopback, in real time (`rotorlink fleet` flies a
//! thousand; BENCHMARKS.md): every stick and telemetry message arrives, at the right link,
//! and a flood of pairing `Init`s from unknown remotes is dropped by the fleet without
//! reaching a link.

use std::time::Duration;

use rotorlink_sim::fleet::{run, FleetRun};

#[test]
fn a_fleet_on_one_socket_delivers_every_message_and_drops_a_flood() {
    check(false);
}

/// The same, with the ground side on the tokio adapter's `GroundStation`.
#[test]
fn a_tokio_ground_station_delivers_every_message_and_drops_a_flood() {
    check(true);
}

fn check(ground_station: bool) {
    let report = run(&FleetRun {
        aircraft: 50,
        duration: Duration::from_millis(1500),
        flood_per_second: 2000,
        ground_station,
        ..FleetRun::default()
    })
    .unwrap();
    assert_eq!(report.ground_station, ground_station);
    // 50 links, 100 Hz and 50 Hz, 1.5 s: about 7500 sticks and 3750 telemetry messages.
    assert!(report.sticks_sent > 6000, "{report}");
    assert!(report.telemetry_sent > 3000, "{report}");
    // Loopback does not lose datagrams (the socket buffers hold the bursts); a message
    // measured at one end and not the other sits at the edges of the measured time.
    let within = |got: u64, sent: u64| got + 10 >= sent && got <= sent + 10;
    assert!(
        within(report.sticks_delivered, report.sticks_sent),
        "{report}"
    );
    assert!(
        within(report.telemetry_delivered, report.telemetry_sent),
        "{report}"
    );
    assert!(report.stick_latency.count > 0 && report.stick_latency.p50_us > 0);
    // Every Init of the flood was dropped by the fleet, after its header: none reached a
    // link (they name no receiver).
    assert!(report.flood_sent > 2500, "{report}");
    assert!(
        report.unknown_receiver.abs_diff(report.flood_sent) < 100,
        "{report}"
    );
    assert_eq!(
        report.malformed, 0,
        "genuine Inits are well formed: {report}"
    );
}
