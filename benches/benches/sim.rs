//! The simulator: simulated seconds per wall second, and goodput, for the demo profile at
//! 0 %, 5 % and 20 % loss. `cargo bench -p rotorlink-bench --bench sim`.

#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rotorlink_sim::scenario::{self, Scenario};

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim-demo-profile");
    group.sample_size(10);
    for loss in [0.0, 0.05, 0.20] {
        let mut s = Scenario {
            duration: Duration::from_secs(5),
            ..Scenario::default()
        };
        s.uplink.loss = loss;
        s.downlink.loss = loss;
        let report = scenario::run(&s, &mut |_| {}).expect("valid scenario");
        let c = &report.channels;
        // The simulator knows every count: nothing is unknown.
        let goodput: f64 = [c.video, c.telemetry, c.control, c.storage]
            .iter()
            .filter_map(|ch| ch.goodput_mbps)
            .sum();
        println!(
            "loss {:>4.0} %: goodput {goodput:.2} Mbit/s, video {}/{} frames, control p99 {:.1} ms",
            loss * 100.0,
            report.video_frames.complete,
            report.video_frames.complete + report.video_frames.incomplete.unwrap_or(0),
            report.channels.control.latency.map_or(0.0, |l| l.p99_ms),
        );
        // Throughput in simulated milliseconds: criterion's "elements/s" reads as
        // simulated ms per wall second.
        group.throughput(Throughput::Elements(s.duration.as_millis() as u64));
        group.bench_with_input(
            BenchmarkId::new("5s-flight", format!("{:.0}%", loss * 100.0)),
            &s,
            |b, s| b.iter(|| scenario::run(s, &mut |_| {}).expect("valid scenario")),
        );
    }
    group.finish();
}

criterion_group!(sim, benches);
criterion_main!(sim);
