//! The scale benchmark's figures from its saved JSON lines: the plot of
//! what one idle node pays per second as the mesh grows (TCP segments and
//! CPU), against the line that linear growth from the smallest mesh would
//! follow, and the table docs/benchmarks.md shows.

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

/// One per-node figure of the saved lines: its title and JSON field.
const PANELS: [(&str, &str); 2] = [
    ("TCP data segments sent + received per second, per node", "segments_per_s"),
    ("CPU per node (% of one core)", "cpu_pct"),
];

/// The saved JSON lines of `from`.
pub fn load(from: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("parsing the saved lines")
}

/// One markdown row per saved line, every run included (a run that did not
/// hold says so in the "held" column).
pub fn table(rows: &[Value]) -> String {
    let num = |r: &Value, k: &str, nd: usize| r[k].as_f64().map_or("—".into(), |v| format!("{v:.nd$}"));
    let mut out = String::from(
        "| nodes | held | forming s | CPU % per node | RSS MB per node | TCP segments/s per node | bytes/s per node \
         | new node seen by all, s | killed node seen down by all, s | false downs (while forming) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let rss_mb = r["rss_kib"].as_f64().map_or("—".into(), |k| format!("{:.1}", k / 1024.0));
        out += &format!(
            "| {} | {} | {} | {} | {rss_mb} | {} | {} | {} | {} | {} ({}) |\n",
            r["nodes"],
            if r["ok"] == true { "yes" } else { "**no**" },
            num(r, "form_s", 1),
            num(r, "cpu_pct", 2),
            num(r, "segments_per_s", 0),
            num(r, "bytes_per_s", 0),
            num(r, "join_s", 2),
            num(r, "kill_s", 2),
            r["false_downs"],
            r["forming_downs"],
        );
    }
    out
}

/// Draws `rows` into the SVG `to`.
pub fn draw(rows: &[Value], to: &Path) -> anyhow::Result<()> {
    let point = |r: &Value, field: &str| Some((r["nodes"].as_f64()?, r[field].as_f64()?));
    let root = SVGBackend::new(to, (900, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    for (area, (title, field)) in root.split_evenly((2, 1)).iter().zip(PANELS) {
        let mut points: Vec<(f64, f64)> = rows.iter().filter_map(|r| point(r, field)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(&(n0, y0)) = points.first() else { continue };
        let x_max = points.iter().map(|p| p.0).fold(n0, f64::max) * 1.05;
        let linear: Vec<(f64, f64)> = points.iter().map(|(n, _)| (*n, y0 * n / n0)).collect();
        let y_max = points.iter().chain(&linear).map(|p| p.1).fold(0.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max.max(1e-9))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart.configure_mesh().x_desc("nodes in the mesh").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("measured (median node)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(linear, BLACK.mix(0.4)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(format!("linear growth from {n0} nodes"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))
}
