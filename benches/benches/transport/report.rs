//! The results: a markdown table, the notes on anything odd, and an SVG bar chart of
//! goodput / ((1 - p) C), one panel per loss model.

use std::fmt::Write as _;

use super::grid::{Loss, Outcome, Point, System};

/// One finished run.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) point: Point,
    pub(crate) system: System,
    pub(crate) outcome: Outcome,
}

impl Run {
    /// Goodput over the ceiling `(1 - p) C`.
    pub(crate) fn ratio(&self) -> Option<f64> {
        Some(self.outcome.goodput_bps()? / self.point.ceiling_bps())
    }

    /// `12.34` Mbit/s and `0.62`, with `*` when the run did not finish.
    fn cells(&self) -> (String, String) {
        let star = if self.outcome.complete { "" } else { "*" };
        match (self.outcome.goodput_bps(), self.ratio()) {
            (Some(g), Some(r)) => (format!("{:.2}{star}", g / 1e6), format!("{r:.2}{star}")),
            _ => (format!("0{star}"), format!("0{star}")),
        }
    }

    /// What is worth a line in the notes, if anything.
    fn notes(&self) -> Option<String> {
        let o = &self.outcome;
        let mut notes = o.notes.clone();
        if !o.complete {
            notes.push(format!(
                "{:.0} % of {} delivered",
                o.delivered as f64 * 100.0 / self.point.transfer as f64,
                mib(self.point.transfer)
            ));
        }
        // A gap of a second or more is a stall at every point of the grid (the longest
        // round trip is 150 ms).
        if o.longest_gap.as_secs_f64() >= 1.0 {
            notes.push(format!(
                "longest gap between deliveries {:.2} s",
                o.longest_gap.as_secs_f64()
            ));
        }
        (!notes.is_empty()).then(|| {
            format!(
                "- {} {}: {}",
                self.point.label(),
                self.system.name(),
                notes.join("; ")
            )
        })
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / f64::from(1 << 20))
}

fn find<'a>(runs: &'a [Run], point: &Point, system: System) -> Option<&'a Run> {
    runs.iter()
        .find(|r| r.point == *point && r.system == system)
}

/// The points that have runs, in grid order.
fn points(runs: &[Run]) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    for r in runs {
        if !points.contains(&r.point) {
            points.push(r.point);
        }
    }
    points
}

/// The main table: goodput and ratio per system per point, then the notes.
pub(crate) fn table(runs: &[Run], systems: &[System]) -> String {
    let mut s = String::from("| capacity | delay | loss | transfer |");
    for sys in systems {
        let _ = write!(s, " {0} Mbit/s | {0} ratio |", sys.name());
    }
    s.push_str("\n|---:|---:|---:|---:|");
    for _ in systems {
        s.push_str("---:|---:|");
    }
    s.push('\n');
    for p in points(runs) {
        let _ = write!(
            s,
            "| {} Mbit/s | {} ms | {} | {} |",
            p.rate_bps / 1_000_000,
            p.delay.as_millis(),
            p.loss.label(),
            mib(p.transfer)
        );
        for sys in systems {
            let (g, r) = find(runs, &p, *sys).map_or(("-".into(), "-".into()), Run::cells);
            let _ = write!(s, " {g} | {r} |");
        }
        s.push('\n');
    }
    for sys in systems {
        let ratios: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.system == *sys)
            .map(|r| (r.ratio().unwrap_or(0.0), r.point.target()))
            .collect();
        let met = ratios.iter().filter(|(r, t)| r >= t).count();
        let sum: f64 = ratios.iter().map(|(r, _)| r).sum();
        let _ = write!(
            s,
            "\n{}: at the target (0.95, 0.90 above 10 % loss) at {met} of {} points; sum of \
             the ratios {sum:.3}",
            sys.name(),
            ratios.len()
        );
    }
    // The issue's other target: rotorlink's goodput at or above quinn-BBR's at each point.
    if systems.contains(&System::Rotorlink) && systems.contains(&System::QuinnBbr) {
        let pairs: Vec<(f64, f64)> = points(runs)
            .iter()
            .filter_map(|p| {
                let goodput = |sys| find(runs, p, sys)?.outcome.goodput_bps();
                Some((goodput(System::Rotorlink)?, goodput(System::QuinnBbr)?))
            })
            .collect();
        let at_or_above = pairs.iter().filter(|(ours, bbr)| ours >= bbr).count();
        let _ = write!(
            s,
            "\nrotorlink: goodput at or above quinn-bbr's at {at_or_above} of {} points",
            pairs.len()
        );
    }
    s.push('\n');
    let notes: Vec<String> = runs.iter().filter_map(Run::notes).collect();
    if !notes.is_empty() {
        s.push_str("\n`*`: did not finish; goodput counts the time to the cap.\n\nNotes:\n");
        for n in notes {
            s.push_str(&n);
            s.push('\n');
        }
    }
    s
}

/// Per-run counters, for the markdown file.
pub(crate) fn details(runs: &[Run]) -> String {
    let mut s = String::from(
        "| point | system | goodput Mbit/s | ratio | datagrams sent | retransmitted | radio queue drops | radio losses | longest gap (s) | wall (s) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let o = &r.outcome;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {} | {} | {} | {} | {:.2} | {:.2} |",
            r.point.label(),
            r.system.name(),
            r.cells().0,
            r.ratio().unwrap_or(0.0),
            o.datagrams_sent,
            o.retransmits,
            o.downlink.dropped_queue,
            o.downlink.lost,
            o.longest_gap.as_secs_f64(),
            o.wall.as_secs_f64()
        );
    }
    s
}

fn color(system: System) -> &'static str {
    match system {
        System::Rotorlink => "#d62728",
        System::QuinnBbr => "#1f77b4",
        System::QuinnCubic => "#2ca02c",
    }
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL: f64 = 170.0;
/// From one plot area's bottom to the next one's top: room for the category labels and the
/// next panel's title.
const GAP: f64 = 80.0;
const TOP: f64 = 90.0;

/// Escape text for XML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One panel per loss model (top to bottom), each with the grid's capacity x delay points
/// along x and one bar per system; a run that did not finish is drawn pale, with a `*`.
pub(crate) fn svg(runs: &[Run], systems: &[System], subtitle: &str) -> String {
    let all = points(runs);
    let mut losses: Vec<Loss> = Vec::new();
    for p in &all {
        if !losses.contains(&p.loss) {
            losses.push(p.loss);
        }
    }
    let height = TOP + losses.len() as f64 * (PANEL + GAP);
    let y_max = runs
        .iter()
        .filter_map(Run::ratio)
        .fold(1.0, f64::max)
        .min(2.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let title = "Bulk download goodput / ((1 - p) C) over the simulated radio";
    let _ = writeln!(s, "<title>{title}</title>");
    let _ = writeln!(
        s,
        r##"<rect width="{WIDTH}" height="{height}" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{title}</text><text x="{}" y="42" text-anchor="middle" font-size="11" fill="#555">{}</text>"##,
        WIDTH / 2.0,
        WIDTH / 2.0,
        escape(subtitle)
    );
    // Legend.
    let mut lx = LEFT;
    for sys in systems {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="56" width="14" height="10" fill="{}"/><text x="{}" y="65">{}</text>"#,
            color(*sys),
            lx + 18.0,
            sys.name()
        );
        lx += 30.0 + 7.0 * sys.name().len() as f64;
    }
    let _ = writeln!(
        s,
        r##"<text x="{lx}" y="65" fill="#555">pale with *: did not finish by the cap</text>"##
    );
    for (i, loss) in losses.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP) + 20.0;
        let bottom = top + PANEL;
        let points: Vec<&Point> = all.iter().filter(|p| p.loss == *loss).collect();
        let _ = writeln!(
            s,
            r#"<g class="panel" data-loss="{}"><text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
            escape(&loss.label()),
            top - 8.0,
            escape(&loss.describe())
        );
        let sy = |v: f64| bottom - v.min(y_max) / y_max * PANEL;
        for k in 0..=4 {
            let v = y_max * f64::from(k) / 4.0;
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y}" x2="{r}" y2="{y}" stroke="#e4e4e4"/><text x="{}" y="{}" text-anchor="end">{v:.2}</text>"##,
                LEFT - 6.0,
                sy(v) + 4.0,
                y = sy(v),
                r = WIDTH - RIGHT
            );
        }
        let _ = writeln!(
            s,
            r#"<path d="M{LEFT} {top} V{bottom} H{}" fill="none" stroke="black"/>"#,
            WIDTH - RIGHT
        );
        let (yx, yy) = (LEFT - 48.0, top + PANEL / 2.0);
        let _ = writeln!(
            s,
            r#"<text x="{yx}" y="{yy}" text-anchor="middle" transform="rotate(-90 {yx} {yy})">goodput / ((1 - p) C)</text>"#
        );
        let slot = (WIDTH - LEFT - RIGHT) / points.len().max(1) as f64;
        let bar = slot * 0.8 / systems.len().max(1) as f64;
        for (j, p) in points.iter().enumerate() {
            let x0 = LEFT + j as f64 * slot + slot * 0.1;
            for (k, sys) in systems.iter().enumerate() {
                let Some(run) = find(runs, p, *sys) else {
                    continue;
                };
                let ratio = run.ratio().unwrap_or(0.0);
                let x = x0 + k as f64 * bar;
                let (opacity, star) = if run.outcome.complete {
                    ("1", "")
                } else {
                    ("0.35", "*")
                };
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="{opacity}"><title>{} {}: {ratio:.2}{star}</title></rect>"#,
                    sy(ratio),
                    bar - 1.0,
                    bottom - sy(ratio),
                    color(*sys),
                    escape(&p.label()),
                    sys.name()
                );
                if !star.is_empty() {
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">*</text>"#,
                        x + bar / 2.0,
                        sy(ratio) - 2.0
                    );
                }
            }
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{} Mbit/s<tspan x="{x:.1}" dy="14">{} ms</tspan></text>"#,
                bottom + 16.0,
                p.rate_bps / 1_000_000,
                p.delay.as_millis(),
                x = x0 + slot * 0.4
            );
        }
        let _ = writeln!(s, "</g>");
    }
    s.push_str("</svg>\n");
    s
}
