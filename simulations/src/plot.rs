//! `--plot FILE.svg`: node utilization over time (lowest, median, mean and
//! highest across nodes, per sample interval) above the jobs' completion
//! curve (pieces done over time).

use crate::error::SimError;
use crate::report::{RunReport, Sample};
use plotters::prelude::*;
use std::path::Path;

/// A line of the utilization chart: its name, its value, its colour.
type Series = (&'static str, fn(&Sample) -> f64, RGBColor);

/// Draws the two charts of `report` into `path`.
pub(crate) fn draw(path: &Path, report: &RunReport) -> Result<(), SimError> {
    let fail = |e: &dyn std::fmt::Display| SimError::Plot { path: path.to_path_buf(), message: e.to_string() };
    let samples = &report.samples;
    let t_max = samples.last().map_or(1.0, |s| s.t_s).max(1e-3);
    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (top, bottom) = root.split_vertically(400);

    let title = format!(
        "{} nodes, {} pieces, policy {}, seed {}: utilization per node",
        report.nodes, report.pieces, report.policy, report.seed
    );
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..t_max, 0f64..1.05f64)
        .map_err(|e| fail(&e))?;
    chart.configure_mesh().x_desc("virtual time (s)").y_desc("busy share of slots").draw().map_err(|e| fail(&e))?;
    let lines: [Series; 4] = [
        ("max", |s| s.util_max, RED),
        ("mean", |s| s.util_mean, BLACK),
        ("median", |s| s.util_median, BLUE),
        ("min", |s| s.util_min, GREEN),
    ];
    // The first sample is at t = 0 and covers no time.
    for (name, value, color) in lines {
        let points = samples.iter().skip(1).map(|s| (s.t_s, value(s)));
        chart
            .draw_series(LineSeries::new(points, &color))
            .map_err(|e| fail(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;

    let total = report.pieces.max(1) as f64;
    let mut chart = ChartBuilder::on(&bottom)
        .caption("pieces done", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..t_max, 0f64..total * 1.05)
        .map_err(|e| fail(&e))?;
    chart.configure_mesh().x_desc("virtual time (s)").y_desc("pieces").draw().map_err(|e| fail(&e))?;
    chart.draw_series(LineSeries::new(samples.iter().map(|s| (s.t_s, s.done as f64)), &BLUE)).map_err(|e| fail(&e))?;
    if let Some(m) = report.makespan_s {
        let ideal = report.ideal_s;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (ideal, total)], &BLACK.mix(0.4)))
            .map_err(|e| fail(&e))?
            .label(format!("ideal ({ideal:.2}s)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
        chart
            .draw_series(LineSeries::new([(m, 0.0), (m, total)], &RED))
            .map_err(|e| fail(&e))?
            .label(format!("makespan ({m:.2}s)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}
