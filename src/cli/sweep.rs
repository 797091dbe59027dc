//! `rotorlink sweep`: one flight per grid point, flown in parallel, and its CSV, SVG and
//! summary table.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use rotorlink::wire::body::FragmentHeader;
use rotorlink::ConfigError;
use rotorlink_sim::report::Report;
use rotorlink_sim::scenario::{self, Scenario};
use rotorlink_sim::ChannelConfig;

use super::args::FecPolicy;
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

/// wfb-ng's default code: blocks of 8 data and 4 parity fragments.
pub(crate) const WFB_NG_DATA: u32 = 8;
/// Fragments of a wfb-ng block, data and parity.
pub(crate) const WFB_NG_TOTAL: u32 = 12;

/// One flight of `sweep --fec`: a loss rate under one FEC policy.
#[derive(Debug, Clone)]
pub(crate) struct FecPoint {
    /// The loss rate flown, 0.0 to 1.0.
    pub(crate) loss: f64,
    /// The policy flown.
    pub(crate) policy: FecPolicy,
    /// Its report.
    pub(crate) report: Report,
    /// wfb-ng's real 8-of-12 code on this flight's radio and mean frame, computed (`None`
    /// when no frame was sent).
    pub(crate) wfb_ng: Option<BlockCode>,
}

/// What independent blocks of `data` data fragments in `total` do to a frame, computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BlockCode {
    /// Data fragments of the frame (the flight's mean frame, rounded up).
    pub(crate) fragments: u64,
    /// Frames complete, percent: every block has lost at most `total - data` fragments.
    pub(crate) complete_percent: f64,
    /// Parity fragments per data fragment, percent (a partial last block pays a whole
    /// block's parity).
    pub(crate) overhead_percent: f64,
}

impl FecPoint {
    /// The point of `report`, flown on `scenario` under `policy` at `loss`.
    pub(crate) fn new(loss: f64, policy: FecPolicy, report: Report, scenario: &Scenario) -> Self {
        let fragment = (scenario
            .link
            .max_plaintext()
            .saturating_sub(FragmentHeader::LEN)
            & !1)
            .max(2) as u64;
        let frames = report.channels.video.sent.unwrap_or(0);
        let wfb_ng = report
            .video_fec
            .payload_bytes
            .filter(|_| frames > 0)
            .map(|bytes| {
                let fragments = bytes.div_ceil(frames).div_ceil(fragment).max(1);
                block_code(fragments, WFB_NG_DATA, WFB_NG_TOTAL, &scenario.downlink)
            });
        FecPoint {
            loss,
            policy,
            report,
            wfb_ng,
        }
    }

    /// Frames the camera made: those the link took, and those it refused.
    fn frames(&self) -> Option<u64> {
        let v = &self.report.channels.video;
        v.sent.zip(v.refused).map(|(s, r)| s + r).filter(|&n| n > 0)
    }

    /// Frames delivered whole, percent of the frames the camera made.
    pub(crate) fn complete_percent(&self) -> Option<f64> {
        self.frames()
            .map(|n| self.report.video_frames.complete as f64 * 100.0 / n as f64)
    }

    /// Frames a decoder could show, percent of the frames the camera made.
    pub(crate) fn decodable_percent(&self) -> Option<f64> {
        self.frames()
            .map(|n| self.report.video_frames.decodable as f64 * 100.0 / n as f64)
    }
}

/// A frame of `fragments` data fragments sent as independent blocks of `data` data and
/// `total - data` parity fragments (`ceil(fragments / data)` blocks of `total`, the last
/// one padded, as wfb-ng's), back to back over `radio`: the chance that every block loses
/// at most `total - data` of its fragments. Losses are the radio's: independent ones, its
/// corruption (the AEAD drops a corrupted frame) and its Gilbert-Elliott chain if it has
/// one (stepped before each datagram, from its stationary state). Duplicates are ignored.
pub(crate) fn block_code(
    fragments: u64,
    data: u32,
    total: u32,
    radio: &ChannelConfig,
) -> BlockCode {
    let blocks = fragments.div_ceil(u64::from(data));
    let spare = (total - data) as usize;
    let random = 1.0 - (1.0 - radio.loss) * (1.0 - radio.corrupt);
    let (to_bad, to_good, bad_loss) = radio.burst.map_or((0.0, 1.0, 0.0), |b| {
        (b.good_to_bad, b.bad_to_good, b.bad_loss)
    });
    // Per state (good, bad): the chance a datagram is lost.
    let lose = [random, 1.0 - (1.0 - bad_loss) * (1.0 - random)];
    let step = [[1.0 - to_bad, to_bad], [to_good, 1.0 - to_good]];
    let bad = if to_bad + to_good > 0.0 {
        to_bad / (to_bad + to_good)
    } else {
        0.0
    };
    // The chance that every block so far was whole, by the chain's state after it.
    let mut whole = [1.0 - bad, bad];
    for _ in 0..blocks {
        // dp[state][lost so far in this block], lost at most `spare`.
        let mut dp = vec![[0.0; 2]; spare + 1];
        dp[0] = whole;
        for _ in 0..total {
            let mut next = vec![[0.0; 2]; spare + 1];
            for (lost, by_state) in dp.iter().enumerate() {
                for (from, &p) in by_state.iter().enumerate() {
                    for to in 0..2 {
                        let q = p * step[from][to];
                        next[lost][to] += q * (1.0 - lose[to]);
                        if lost < spare {
                            next[lost + 1][to] += q * lose[to];
                        }
                    }
                }
            }
            dp = next;
        }
        whole = dp
            .iter()
            .fold([0.0, 0.0], |acc, s| [acc[0] + s[0], acc[1] + s[1]]);
    }
    BlockCode {
        fragments,
        complete_percent: (whole[0] + whole[1]) * 100.0,
        overhead_percent: (blocks * u64::from(total - data)) as f64 * 100.0 / fragments as f64,
    }
}

/// The CSV of a FEC sweep: a header, then one row per loss rate and policy.
pub(crate) fn fec_csv(points: &[FecPoint]) -> String {
    let mut s = String::from(
        "loss_percent,policy,seed,duration_s,paired,\
         frames,complete,decodable,complete_percent,decodable_percent,\
         parity_fragments,parity_bytes,video_payload_bytes,parity_overhead_percent,\
         frames_recovered,fragments_recovered,key_frame_requests,frame_p99_ms,\
         mean_frame_fragments,wfb_ng_8_12_complete_percent,wfb_ng_8_12_overhead_percent\n",
    );
    for p in points {
        let r = &p.report;
        let f = &r.video_fec;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            trim(p.loss * 100.0),
            p.policy.name(),
            r.seed,
            trim(r.duration_s),
            r.paired,
            count(p.frames()),
            r.video_frames.complete,
            r.video_frames.decodable,
            opt(p.complete_percent(), 3),
            opt(p.decodable_percent(), 3),
            count(f.parity_sent),
            count(f.parity_bytes),
            count(f.payload_bytes),
            opt(f.overhead_percent, 3),
            f.frames_recovered,
            f.fragments_recovered,
            r.video_frames.key_frame_requests.sent,
            opt(r.channels.video.latency.map(|l| l.p99_ms), 3),
            count(p.wfb_ng.map(|w| w.fragments)),
            opt(p.wfb_ng.map(|w| w.complete_percent), 3),
            opt(p.wfb_ng.map(|w| w.overhead_percent), 3),
        );
    }
    s
}

/// The summary table of a FEC sweep for people: one row per loss rate and policy.
pub(crate) fn fec_table(points: &[FecPoint]) -> String {
    let mut s = String::new();
    let row = |s: &mut String, cells: [&str; 10]| {
        let _ = writeln!(
            s,
            "{:>6}  {:<11} {:>9} {:>9} {:>10} {:>9} {:>9} {:>8} {:>12} {:>9}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            cells[7],
            cells[8],
            cells[9]
        );
    };
    row(
        &mut s,
        [
            "loss",
            "policy",
            "complete",
            "decodable",
            "frames",
            "parity",
            "recovered",
            "key req",
            "wfb-ng 8/12",
            "wfb-ng",
        ],
    );
    row(
        &mut s,
        [
            "%",
            "",
            "%",
            "%",
            "whole/sent",
            "overhead",
            "frames",
            "",
            "complete",
            "overhead",
        ],
    );
    let pct = |v: Option<f64>, d: usize| v.map_or_else(|| "?".into(), |v| format!("{v:.d$}%"));
    for p in points {
        let r = &p.report;
        let frames = format!(
            "{}/{}",
            r.video_frames.complete,
            p.frames().map_or_else(|| "?".into(), |n| n.to_string())
        );
        row(
            &mut s,
            [
                &trim(p.loss * 100.0),
                &p.policy.name(),
                &pct(p.complete_percent(), 2),
                &pct(p.decodable_percent(), 2),
                &frames,
                &pct(r.video_fec.overhead_percent, 1),
                &r.video_fec.frames_recovered.to_string(),
                &r.video_frames.key_frame_requests.sent.to_string(),
                &pct(p.wfb_ng.map(|w| w.complete_percent), 2),
                &pct(p.wfb_ng.map(|w| w.overhead_percent), 1),
            ],
        );
    }
    s
}

/// Colours of the policies, in the order flown.
const POLICY_COLORS: [&str; 6] = [
    "#1f77b4", "#7f7f7f", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
];

/// The plot of a FEC sweep: frames complete, not complete (close up, policies with parity
/// only) and decodable, and the parity overhead, against loss: one line per policy, and
/// one for wfb-ng's 8-of-12 blocks, computed.
pub(crate) fn fec_chart(points: &[FecPoint], subtitle: String) -> Chart {
    let mut policies: Vec<FecPolicy> = Vec::new();
    for p in points {
        if !policies.contains(&p.policy) {
            policies.push(p.policy);
        }
    }
    let per_policy = |f: &dyn Fn(&FecPoint) -> Option<f64>, skip_off: bool| -> Vec<Series> {
        policies
            .iter()
            .enumerate()
            .filter(|(_, &policy)| !(skip_off && policy == FecPolicy::Off))
            .map(|(i, &policy)| Series {
                name: policy.name(),
                color: POLICY_COLORS[i % POLICY_COLORS.len()],
                points: points
                    .iter()
                    .filter(|p| p.policy == policy)
                    .map(|p| (p.loss * 100.0, f(p)))
                    .collect(),
            })
            .collect()
    };
    // The computed wfb-ng figures, from the flights of the first policy.
    let wfb_ng = |f: &dyn Fn(&BlockCode) -> f64| Series {
        name: "wfb-ng 8/12 blocks (computed)".into(),
        color: "#2ca02c",
        points: points
            .iter()
            .filter(|p| Some(p.policy) == policies.first().copied())
            .map(|p| (p.loss * 100.0, p.wfb_ng.as_ref().map(f)))
            .collect(),
    };
    let with = |mut series: Vec<Series>, extra: Series| {
        series.push(extra);
        series
    };
    Chart {
        title: "rotorlink: video frames against loss, by FEC policy".into(),
        subtitle,
        x_label: "loss (%)".into(),
        panels: vec![
            Panel {
                y_label: "frames complete (%)".into(),
                series: with(
                    per_policy(&|p| p.complete_percent(), false),
                    wfb_ng(&|w| w.complete_percent),
                ),
            },
            // The policies with parity, close up (wfb-ng's blocks and no FEC are off its
            // scale: see the first panel).
            Panel {
                y_label: "frames not complete (%), with FEC".into(),
                series: per_policy(&|p| p.complete_percent().map(|c| 100.0 - c), true),
            },
            Panel {
                y_label: "frames decodable (%)".into(),
                series: per_policy(&|p| p.decodable_percent(), false),
            },
            Panel {
                y_label: "parity overhead (%)".into(),
                series: with(
                    per_policy(&|p| p.report.video_fec.overhead_percent, false),
                    wfb_ng(&|w| w.overhead_percent),
                ),
            },
        ],
    }
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

    /// A FEC sweep point: `complete` and `decodable` of 600 frames, `parity` bytes for
    /// 1 MB of payload, at `loss` under `policy`, on the demo's scenario.
    fn fec_point(loss: f64, policy: FecPolicy, complete: u64, decodable: u64) -> FecPoint {
        let mut report = point(loss, true).report;
        report.channels.video.sent = Some(600);
        report.channels.video.refused = Some(0);
        report.video_frames.complete = complete;
        report.video_frames.decodable = decodable;
        report.video_fec.payload_bytes = Some(600 * 83_000);
        report.video_fec.parity_sent = Some(1000);
        report.video_fec.parity_bytes = Some(1_000_000);
        report.video_fec.overhead_percent = Some(2.0);
        let mut scenario = Scenario::default();
        scenario.downlink.loss = loss;
        FecPoint::new(loss, policy, report, &scenario)
    }

    fn fec_points() -> Vec<FecPoint> {
        let fixed = FecPolicy::Fixed { data: 8, total: 12 };
        vec![
            fec_point(0.0, FecPolicy::Adaptive, 600, 600),
            fec_point(0.0, FecPolicy::Off, 560, 520),
            fec_point(0.0, fixed, 600, 600),
            fec_point(0.05, FecPolicy::Adaptive, 597, 594),
            fec_point(0.05, FecPolicy::Off, 30, 6),
            fec_point(0.05, fixed, 599, 599),
        ]
    }

    #[test]
    fn fec_points_measure_frames_and_compute_wfb_ng() {
        let p = fec_point(0.05, FecPolicy::Adaptive, 597, 594);
        assert_eq!(p.complete_percent(), Some(99.5));
        assert_eq!(p.decodable_percent(), Some(99.0));
        // 83 000-byte frames at MTU 1400: 62 fragments of 1346 bytes, 8 blocks.
        let w = p.wfb_ng.expect("frames were sent");
        assert_eq!(w.fragments, 62);
        assert!((w.overhead_percent - 32.0 * 100.0 / 62.0).abs() < 1e-9);
        // The demo's radio at 5 %: independent losses and 0.1 % corruption, binomial.
        assert!((w.complete_percent - 99.839_359_796).abs() < 1e-6, "{w:?}");
        // No frame sent: nothing to say.
        let mut none = p.clone().report;
        none.channels.video.sent = Some(0);
        let none = FecPoint::new(0.05, FecPolicy::Off, none, &Scenario::default());
        assert_eq!((none.complete_percent(), none.wfb_ng), (None, None));
    }

    #[test]
    fn block_codes_lose_a_frame_when_a_block_loses_more_than_its_parity() {
        let radio = |loss| ChannelConfig {
            loss,
            ..ChannelConfig::default()
        };
        let clean = block_code(62, 8, 12, &radio(0.0));
        assert_eq!(clean.complete_percent, 100.0);
        // P(Bin(12, 0.1) <= 4), then squared for two blocks (a partial one pays in full).
        let one = block_code(8, 8, 12, &radio(0.1));
        assert!(
            (one.complete_percent - 99.567_065_673).abs() < 1e-6,
            "{one:?}"
        );
        assert_eq!(one.overhead_percent, 50.0);
        let two = block_code(9, 8, 12, &radio(0.1));
        assert!(
            (two.complete_percent - 99.136_005_667).abs() < 1e-6,
            "{two:?}"
        );
        assert!((two.overhead_percent - 800.0 / 9.0).abs() < 1e-9);
        // The same average loss in bursts of 8 is much worse for 12-fragment blocks.
        let bursty = ChannelConfig {
            burst: Some(rotorlink_sim::channel::Burst::mean_length(8.0, 0.05)),
            ..ChannelConfig::default()
        };
        let random = block_code(62, 8, 12, &radio(0.05)).complete_percent;
        let burst = block_code(62, 8, 12, &bursty).complete_percent;
        assert!(burst < random - 10.0, "{burst} vs {random}");
        assert!(burst > 0.0);
    }

    #[test]
    fn fec_csv_table_and_chart_show_every_policy() {
        let points = fec_points();
        let text = fec_csv(&points);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        let width = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == width),
            "{text}"
        );
        assert!(
            lines[0].starts_with("loss_percent,policy,seed,duration_s,paired,frames,complete,decodable,complete_percent,decodable_percent,"),
            "{}",
            lines[0]
        );
        assert!(
            lines[4].starts_with(
                "5,adaptive,7,10,true,600,597,594,99.500,99.000,1000,1000000,49800000,2.000,"
            ),
            "{}",
            lines[4]
        );
        assert!(lines[3].starts_with("0,fixed-8-12,"), "{}", lines[3]);
        assert!(lines[4].ends_with(",62,99.839,51.613"), "{}", lines[4]);

        let table = fec_table(&points);
        assert_eq!(table.lines().count(), 8, "{table}");
        let row: Vec<_> = table.lines().nth(5).unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            ["5", "adaptive", "99.50%", "99.00%", "597/600", "2.0%", "0", "0", "99.84%", "51.6%"],
            "{table}"
        );

        let svg = fec_chart(&points, "sub".into()).render();
        for name in [
            "adaptive",
            "off",
            "fixed-8-12",
            "wfb-ng 8/12 blocks (computed)",
            "frames complete (%)",
            "frames decodable (%)",
            "parity overhead (%)",
        ] {
            assert!(svg.contains(name), "{name} missing");
        }
        // The close-up of frames not complete leaves out no FEC.
        let panels = svg.matches(r#"data-series="off""#).count();
        assert_eq!(panels, 3, "off in three panels of four");
        assert_eq!(svg.matches(r#"data-series="adaptive""#).count(), 4);
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
