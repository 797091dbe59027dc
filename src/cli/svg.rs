//! A small hand-written SVG line chart: panels stacked vertically that share the x axis,
//! each with its axes, ticks, labels and legend.

use std::fmt::Write as _;

/// One line of a panel.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Shown in the legend, and as the group's `data-series` attribute.
    pub(crate) name: String,
    /// Stroke colour, as CSS (`#1f77b4`).
    pub(crate) color: &'static str,
    /// `(x, y)`; a `None` y leaves a gap in the line.
    pub(crate) points: Vec<(f64, Option<f64>)>,
}

/// One chart, with its own y axis.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// The y axis label, units included (`goodput (Mbit/s)`).
    pub(crate) y_label: String,
    /// The lines.
    pub(crate) series: Vec<Series>,
}

/// The whole figure.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Top line.
    pub(crate) title: String,
    /// Under the title, smaller (the fixed parameters); wrapped at commas and semicolons
    /// to fit.
    pub(crate) subtitle: String,
    /// The x axis label, units included (`loss (%)`).
    pub(crate) x_label: String,
    /// Panels, top to bottom.
    pub(crate) panels: Vec<Panel>,
}

const WIDTH: f64 = 760.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
/// From the subtitle's last line to the top of the first plot area.
const TOP: f64 = 42.0;
/// Characters of an 11 px subtitle line that fit the width.
const SUBTITLE_CHARS: usize = 110;
const PANEL_HEIGHT: f64 = 200.0;
/// From the bottom of one panel's plot area to the top of the next one's.
const PANEL_GAP: f64 = 90.0;

/// Escape text for XML.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` in lines of at most `width` characters, broken after a `, ` or `; ` where it can
/// be (a longer piece stays whole).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest
            .find(", ")
            .into_iter()
            .chain(rest.find("; "))
            .min()
            .map_or(rest.len(), |i| i + 2);
        let (piece, tail) = rest.split_at(cut);
        if !line.is_empty()
            && line.trim_end().chars().count() + piece.trim_end().chars().count() > width
        {
            lines.push(line.trim_end().to_string());
            line.clear();
        }
        line.push_str(piece);
        rest = tail;
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// Ticks from 0 to at least `max`, about five of them, on a 1-2-2.5-5 step.
pub(crate) fn ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    let n = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// A tick label: no more decimals than the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize;
    format!("{v:.decimals$}")
}

/// Numbers in the SVG: two decimals are plenty for pixels.
fn px(v: f64) -> String {
    super::units::trim((v * 100.0).round() / 100.0)
}

impl Chart {
    /// The figure as an SVG document (it starts with `<svg`).
    pub(crate) fn render(&self) -> String {
        let subtitle = wrap(&self.subtitle, SUBTITLE_CHARS);
        let first_top = 46.0 + 15.0 * subtitle.len() as f64 + TOP - 15.0;
        let n = self.panels.len() as f64;
        let height = first_top + n * PANEL_HEIGHT + (n - 1.0).max(0.0) * PANEL_GAP + 50.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
            w = px(WIDTH),
            h = px(height)
        );
        let _ = writeln!(s, "<title>{}</title>", escape(&self.title));
        let _ = writeln!(
            s,
            r#"<rect x="0" y="0" width="{}" height="{}" fill="white"/>"#,
            px(WIDTH),
            px(height)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="26" text-anchor="middle" font-size="17" font-weight="bold">{}</text>"#,
            px(WIDTH / 2.0),
            escape(&self.title)
        );
        for (i, line) in subtitle.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#555">{}</text>"##,
                px(WIDTH / 2.0),
                px(46.0 + 15.0 * i as f64),
                escape(line)
            );
        }
        let x_max = self
            .panels
            .iter()
            .flat_map(|p| &p.series)
            .flat_map(|s| &s.points)
            .map(|(x, _)| *x)
            .fold(0.0, f64::max);
        let x_ticks = ticks(x_max);
        for (i, panel) in self.panels.iter().enumerate() {
            let top = first_top + i as f64 * (PANEL_HEIGHT + PANEL_GAP);
            self.panel(&mut s, panel, top, &x_ticks);
        }
        s.push_str("</svg>\n");
        s
    }

    fn panel(&self, s: &mut String, panel: &Panel, top: f64, x_ticks: &[f64]) {
        let (left, right, bottom) = (LEFT, WIDTH - RIGHT, top + PANEL_HEIGHT);
        let y_max = panel
            .series
            .iter()
            .flat_map(|s| &s.points)
            .filter_map(|(_, y)| *y)
            .fold(0.0, f64::max);
        let y_ticks = ticks(y_max);
        let x_top = *x_ticks.last().unwrap_or(&1.0);
        let y_top = *y_ticks.last().unwrap_or(&1.0);
        let x_step = x_ticks.get(1).copied().unwrap_or(1.0);
        let y_step = y_ticks.get(1).copied().unwrap_or(1.0);
        let sx = |x: f64| left + x / x_top * (right - left);
        let sy = |y: f64| bottom - y / y_top * PANEL_HEIGHT;

        let _ = writeln!(s, r#"<g class="panel">"#);
        // Grid and ticks.
        for &y in &y_ticks {
            let _ = writeln!(
                s,
                r##"<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#e4e4e4"/><line x1="{l5}" y1="{y}" x2="{l}" y2="{y}" stroke="black"/><text x="{lt}" y="{yt}" text-anchor="end">{label}</text>"##,
                l = px(left),
                l5 = px(left - 5.0),
                lt = px(left - 8.0),
                r = px(right),
                y = px(sy(y)),
                yt = px(sy(y) + 4.0),
                label = tick_label(y, y_step)
            );
        }
        for &x in x_ticks {
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{t}" x2="{x}" y2="{b}" stroke="#e4e4e4"/><line x1="{x}" y1="{b}" x2="{x}" y2="{b5}" stroke="black"/><text x="{x}" y="{bt}" text-anchor="middle">{label}</text>"##,
                x = px(sx(x)),
                t = px(top),
                b = px(bottom),
                b5 = px(bottom + 5.0),
                bt = px(bottom + 19.0),
                label = tick_label(x, x_step)
            );
        }
        // Axes.
        let _ = writeln!(
            s,
            r#"<path d="M{l} {t} V{b} H{r}" fill="none" stroke="black"/>"#,
            l = px(left),
            t = px(top),
            b = px(bottom),
            r = px(right)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            px((left + right) / 2.0),
            px(bottom + 38.0),
            escape(&self.x_label)
        );
        let (yx, yy) = (px(left - 52.0), px(top + PANEL_HEIGHT / 2.0));
        let _ = writeln!(
            s,
            r#"<text x="{yx}" y="{yy}" text-anchor="middle" transform="rotate(-90 {yx} {yy})">{}</text>"#,
            escape(&panel.y_label)
        );
        // Lines, broken where a value is missing, and their markers.
        for series in &panel.series {
            let _ = writeln!(
                s,
                r#"<g class="series" data-series="{}" stroke="{c}" fill="{c}">"#,
                escape(&series.name),
                c = series.color
            );
            let mut run: Vec<String> = Vec::new();
            let flush = |run: &mut Vec<String>, s: &mut String| {
                if run.len() > 1 {
                    let _ = writeln!(
                        s,
                        r#"<polyline points="{}" fill="none" stroke-width="2"/>"#,
                        run.join(" ")
                    );
                }
                run.clear();
            };
            for &(x, y) in &series.points {
                match y {
                    Some(y) => run.push(format!("{},{}", px(sx(x)), px(sy(y)))),
                    None => flush(&mut run, s),
                }
            }
            flush(&mut run, s);
            for &(x, y) in &series.points {
                if let Some(y) = y {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{}" cy="{}" r="3"><title>{}: {} at {}</title></circle>"#,
                        px(sx(x)),
                        px(sy(y)),
                        escape(&series.name),
                        super::units::trim(y),
                        super::units::trim(x)
                    );
                }
            }
            let _ = writeln!(s, "</g>");
        }
        // Legend, in a row above the plot area's right end, clear of the data.
        let widths: Vec<f64> = panel
            .series
            .iter()
            .map(|s| 32.0 + s.name.chars().count() as f64 * 6.8 + 18.0)
            .collect();
        let mut lx = right - widths.iter().sum::<f64>() + 18.0;
        let y = top - 12.0;
        let _ = writeln!(s, r#"<g class="legend">"#);
        for (series, w) in panel.series.iter().zip(&widths) {
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{c}" stroke-width="2"/><circle cx="{}" cy="{y}" r="3" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
                px(lx),
                px(lx + 20.0),
                px(lx + 10.0),
                px(lx + 26.0),
                px(y + 4.0),
                escape(&series.name),
                y = px(y),
                c = series.color
            );
            lx += w;
        }
        let _ = writeln!(s, "</g>\n</g>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(20.0), vec![0.0, 5.0, 10.0, 15.0, 20.0]);
        assert_eq!(ticks(9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(0.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(23.0).last(), Some(&25.0));
        assert_eq!(ticks(11.0), vec![0.0, 2.5, 5.0, 7.5, 10.0, 12.5]);
        assert_eq!(tick_label(2.5, 2.5), "2.5");
        assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(10.0, 5.0), "10");
    }

    #[test]
    fn wraps_at_commas() {
        assert_eq!(wrap("a, b; c", 100), vec!["a, b; c"]);
        assert_eq!(wrap("aaaa, bbbb; cccc", 10), vec!["aaaa, bbbb;", "cccc"]);
        assert_eq!(wrap("aaaaaaaaaaaa, b", 5), vec!["aaaaaaaaaaaa,", "b"]);
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn renders_every_series_escaped() {
        let chart = Chart {
            title: "a <b> & c".into(),
            subtitle: "sub".into(),
            x_label: "loss (%)".into(),
            panels: vec![Panel {
                y_label: "y".into(),
                series: vec![Series {
                    name: "one".into(),
                    color: "#000",
                    points: vec![
                        (0.0, Some(1.0)),
                        (1.0, None),
                        (2.0, Some(3.0)),
                        (3.0, Some(2.0)),
                    ],
                }],
            }],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.contains(r#"data-series="one""#));
        // The gap splits the line: one polyline of two points, three markers + legend.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
