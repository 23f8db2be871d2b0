//! The scale benchmark's plot: what one idle node pays per second as the
//! mesh grows (TCP segments and CPU), against the line that linear
//! growth from the smallest mesh would follow.

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

/// One per-node figure of the saved lines: its title and JSON field.
const PANELS: [(&str, &str); 2] = [
    ("TCP data segments sent + received per second, per node", "segments_per_s"),
    ("CPU per node (% of one core)", "cpu_pct"),
];

/// Draws the saved JSON lines of `from` into the SVG `to`.
pub fn draw(from: &Path, to: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("parsing the saved lines")?;
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
