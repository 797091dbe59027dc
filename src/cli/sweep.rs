//! `rotorlink sweep`: one flight per grid point, flown in parallel, and its CSV, SVG and
//! summary table.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use rotorlink::ConfigError;
use rotorlink_sim::report::Report;
use rotorlink_sim::scenario::{self, Scenario};

use super::progress::Progress;
use super::svg::{Chart, Panel, Series};
use super::units::trim;

/// One grid point and what its flight measured.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    /// The loss rate flown, 0.0 to 1.0.
    pub(crate) loss: f64,
    /// Its report.
    pub(crate) report: Report,
}

impl Point {
    /// Goodput of all four channels, in Mbit/s, if every one is known.
    pub(crate) fn total_mbps(&self) -> Option<f64> {
        let c = &self.report.channels;
        [c.control, c.telemetry, c.video, c.storage]
            .iter()
            .try_fold(0.0, |sum, ch| Some(sum + ch.goodput_mbps?))
    }

    /// The control channel's 99th-percentile latency, if any stick command arrived.
    pub(crate) fn control_p99_ms(&self) -> Option<f64> {
        let c = &self.report.channels.control;
        c.latency
            .filter(|_| c.delivered.is_some_and(|d| d > 0))
            .map(|l| l.p99_ms)
    }

    /// The control channel's median latency, if any stick command arrived.
    pub(crate) fn control_p50_ms(&self) -> Option<f64> {
        let c = &self.report.channels.control;
        c.latency
            .filter(|_| c.delivered.is_some_and(|d| d > 0))
            .map(|l| l.p50_ms)
    }
}

/// Fly every scenario, in parallel over the available cores, and return the results in
/// the order of `scenarios` (each run is deterministic, so the order of completion does
/// not matter).
///
/// # Panics
/// If a run panics, the same panic, once every thread has stopped.
pub(crate) fn run_all(
    scenarios: &[Scenario],
    progress: &Progress,
) -> Vec<Result<Report, ConfigError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, scenarios.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Report, ConfigError>>> = vec![None; scenarios.len()];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(s) = scenarios.get(i) else { break };
                        let mut callback = progress.run_callback();
                        mine.push((i, scenario::run(s, &mut callback)));
                    }
                    mine
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(mine) => {
                    for (i, r) in mine {
                        results[i] = Some(r);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every grid point was flown"))
        .collect()
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(String::new, |v| format!("{v:.decimals$}"))
}

/// A count for the CSV: empty when unknown.
fn count(v: Option<u64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// The CSV: a header, then one row per point.
pub(crate) fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "loss_percent,seed,duration_s,paired,handshake_ms,\
         total_mbps,control_mbps,telemetry_mbps,video_mbps,storage_mbps,\
         control_p50_ms,control_p99_ms,control_max_ms,telemetry_p50_ms,telemetry_p99_ms,\
         control_sent,control_delivered,telemetry_sent,telemetry_delivered,\
         video_complete,video_incomplete,\
         download_bytes,download_verified,download_resumes,download_mbps,\
         rekeys,reconnects,failsafe_events,\
         rejected_auth,rejected_replay,rejected_malformed,rejected_other,\
         radio_sent,radio_lost\n",
    );
    for p in points {
        let r = &p.report;
        let c = &r.channels;
        let arrived = |ch: &rotorlink_sim::report::ChannelReport| {
            ch.latency.filter(|_| ch.delivered.is_some_and(|d| d > 0))
        };
        let telemetry = arrived(&c.telemetry);
        let control_max = arrived(&c.control);
        let rj = r.rejected;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            trim(p.loss * 100.0),
            r.seed,
            trim(r.duration_s),
            r.paired,
            opt(r.handshake_ms, 3),
            opt(p.total_mbps(), 4),
            opt(c.control.goodput_mbps, 4),
            opt(c.telemetry.goodput_mbps, 4),
            opt(c.video.goodput_mbps, 4),
            opt(c.storage.goodput_mbps, 4),
            opt(p.control_p50_ms(), 3),
            opt(p.control_p99_ms(), 3),
            opt(control_max.map(|l| l.max_ms), 3),
            opt(telemetry.map(|l| l.p50_ms), 3),
            opt(telemetry.map(|l| l.p99_ms), 3),
            count(c.control.sent),
            count(c.control.delivered),
            count(c.telemetry.sent),
            count(c.telemetry.delivered),
            r.video_frames.complete,
            count(r.video_frames.incomplete),
            r.download.received,
            r.download.verified,
            r.download.resumes,
            opt(r.download.goodput_mbps, 4),
            count(r.rekeys),
            r.reconnects,
            count(r.failsafe_events),
            count(rj.map(|j| j.auth)),
            count(rj.map(|j| j.replay)),
            count(rj.map(|j| j.malformed)),
            count(rj.map(|j| j.other)),
            count(r.radio_sent),
            count(r.radio_lost),
        );
    }
    s
}

/// The plot: goodput (total and video) and control p99 latency against loss.
pub(crate) fn chart(points: &[Point], subtitle: String) -> Chart {
    let series = |name: &str, color, f: &dyn Fn(&Point) -> Option<f64>| Series {
        name: name.into(),
        color,
        points: points.iter().map(|p| (p.loss * 100.0, f(p))).collect(),
    };
    Chart {
        title: "rotorlink: goodput and control latency against loss".into(),
        subtitle,
        x_label: "loss (%)".into(),
        panels: vec![
            Panel {
                y_label: "goodput (Mbit/s)".into(),
                series: vec![
                    series("total goodput", "#1f77b4", &|p| p.total_mbps()),
                    series("video goodput", "#ff7f0e", &|p| {
                        p.report.channels.video.goodput_mbps
                    }),
                ],
            },
            Panel {
                y_label: "control latency (ms)".into(),
                series: vec![
                    series("control p99", "#d62728", &|p| p.control_p99_ms()),
                    series("control p50", "#2ca02c", &|p| p.control_p50_ms()),
                ],
            },
        ],
    }
}

/// The summary table for people.
pub(crate) fn table(points: &[Point]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>6}  {:<6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>13} {:>10} {:>9} {:>8}",
        "loss",
        "paired",
        "hs ms",
        "total",
        "video",
        "ctl p50",
        "ctl p99",
        "video frames",
        "download",
        "failsafes",
        "rejected"
    );
    let _ = writeln!(
        s,
        "{:>6}  {:<6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>13} {:>10} {:>9} {:>8}",
        "%", "", "", "Mbit/s", "Mbit/s", "ms", "ms", "whole/sent", "", "", ""
    );
    for p in points {
        let r = &p.report;
        let unknown = || "?".to_string();
        let frames = r
            .video_frames
            .incomplete
            .map_or_else(unknown, |incomplete| {
                (r.video_frames.complete + incomplete).to_string()
            });
        let download = if r.download.verified {
            "verified".to_string()
        } else {
            format!("{} KiB", r.download.received / 1024)
        };
        let _ = writeln!(
            s,
            "{:>6}  {:<6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>13} {:>10} {:>9} {:>8}",
            trim(p.loss * 100.0),
            if r.paired { "yes" } else { "NO" },
            opt(r.handshake_ms, 1),
            p.total_mbps().map_or_else(unknown, |t| format!("{t:.3}")),
            r.channels
                .video
                .goodput_mbps
                .map_or_else(unknown, |v| format!("{v:.3}")),
            opt(p.control_p50_ms(), 1),
            opt(p.control_p99_ms(), 1),
            format!("{}/{frames}", r.video_frames.complete),
            download,
            r.failsafe_events.map_or_else(unknown, |f| f.to_string()),
            r.rejected.map_or_else(unknown, |j| {
                (j.auth + j.replay + j.malformed + j.other).to_string()
            }),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotorlink_sim::report::{ChannelReport, Latency};

    fn point(loss: f64, paired: bool) -> Point {
        let mut report = Report {
            seed: 7,
            duration_s: 10.0,
            paired,
            handshake_ms: paired.then_some(31.5),
            ..Report::default()
        };
        if paired {
            let goodput = |g| ChannelReport {
                goodput_mbps: Some(g),
                ..ChannelReport::default()
            };
            report.channels.control = ChannelReport {
                sent: Some(100),
                delivered: Some(99),
                latency: Some(Latency {
                    p50_ms: 6.0,
                    p99_ms: 9.5,
                    max_ms: 12.0,
                }),
                ..goodput(0.01)
            };
            report.channels.telemetry = goodput(0.0);
            report.channels.video = goodput(1.5);
            report.channels.storage = goodput(0.0);
        }
        Point { loss, report }
    }

    #[test]
    fn csv_has_a_header_and_a_row_per_point_of_equal_width() {
        let points = [point(0.0, true), point(0.05, true), point(0.2, false)];
        let text = csv(&points);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let width = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == width),
            "{text}"
        );
        assert!(
            lines[1].starts_with("0,7,10,true,31.500,1.5100,"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("5,7,"));
        // Unpaired: no handshake time, no latency; unknown counts are empty, not zeros.
        assert!(
            lines[3].starts_with("20,7,10,false,,,,,,,,,,,,,,,,0,,0,false,0,,,0,"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn chart_has_both_panels_and_skips_missing_latency() {
        let points = [point(0.0, true), point(0.2, false)];
        let svg = chart(&points, "sub".into()).render();
        for name in ["total goodput", "video goodput", "control p99"] {
            assert!(svg.contains(name), "{name} missing");
        }
        assert!(svg.contains("loss (%)") && svg.contains("goodput (Mbit/s)"));
        // The unpaired point has no control latency: one marker, no line.
        let p99 = svg
            .split(r#"data-series="control p99""#)
            .nth(1)
            .and_then(|rest| rest.split("</g>").next())
            .expect("the control p99 series");
        assert_eq!(p99.matches("<circle").count(), 1, "{p99}");
        assert_eq!(p99.matches("<polyline").count(), 0, "{p99}");
    }

    #[test]
    fn table_has_a_row_per_point() {
        let t = table(&[point(0.0, true), point(0.1, false)]);
        assert_eq!(t.lines().count(), 4);
        assert!(t.contains("NO"));
    }

    #[test]
    fn runs_come_back_in_grid_order() {
        let base = Scenario {
            duration: std::time::Duration::from_millis(300),
            ..Scenario::default()
        };
        let scenarios: Vec<_> = (0..3)
            .map(|seed| Scenario {
                seed,
                ..base.clone()
            })
            .collect();
        let progress = Progress::new(scenarios.len(), "test", true);
        let reports = run_all(&scenarios, &progress);
        let seeds: Vec<_> = reports.iter().map(|r| r.as_ref().unwrap().seed).collect();
        assert_eq!(seeds, vec![0, 1, 2]);
    }
}
