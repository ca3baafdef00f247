//! Scatter charts: one dot per item, a few named series in different
//! colours (a face's magnitude against how central it sits in its cluster),
//! and several charts side by side on one canvas.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::line::Line;
use super::{colour, err, font::FAMILY, Chart};

/// Dots on linear axes fitted to the finite data (padded by 5 % each way).
#[derive(Clone, Debug)]
pub struct ScatterChart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_desc: String,
    /// Label of the y axis.
    pub y_desc: String,
    /// The series, in legend and colour order; non-finite points are skipped.
    pub series: Vec<Line>,
}

impl ScatterChart {
    /// The finite data range, padded by 5 % of each span (a zero span gets ±1 %, at least ±1e-9).
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let finite: Vec<(f64, f64)> =
            self.series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        if finite.is_empty() {
            return ((0.0, 1.0), (0.0, 1.0));
        }
        let padded = |values: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let pad = if hi > lo { 0.05 * (hi - lo) } else { (0.01 * hi.abs()).max(1e-9) };
            (lo - pad, hi + pad)
        };
        (padded(&mut finite.iter().map(|p| p.0)), padded(&mut finite.iter().map(|p| p.1)))
    }
}

impl Chart for ScatterChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let ((x_lo, x_hi), (y_lo, y_hi)) = self.ranges();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(err)?;
        for (i, series) in self.series.iter().enumerate() {
            let c = colour(i);
            let points = series.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite());
            chart
                .draw_series(points.map(|p| Circle::new(p, 4, c.mix(0.75).filled())))
                .map_err(err)?
                .label(series.name.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
        }
        if self.series.len() > 1 {
            super::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    }
}

/// Several charts on one canvas, `columns` per row, the canvas split evenly.
pub struct Panels<'a, C: Chart> {
    /// The charts, row by row.
    pub charts: &'a [C],
    /// Charts per row (0 counts as 1).
    pub columns: usize,
}

impl<C: Chart> Chart for Panels<'_, C> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let columns = self.columns.max(1);
        let rows = self.charts.len().div_ceil(columns).max(1);
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(self.charts) {
            chart.draw(area)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_pad_both_axes_and_skip_non_finite_points() {
        let chart = ScatterChart {
            title: "t".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            series: vec![Line { name: "a".into(), points: vec![(10.0, 0.5), (20.0, 1.5), (f64::NAN, 9.0), (15.0, f64::INFINITY)] }],
        };
        assert_eq!(chart.ranges(), ((9.5, 20.5), (0.45, 1.55)));
    }

    #[test]
    fn one_dot_per_finite_point_in_every_panel() {
        let chart = ScatterChart {
            title: "Dots".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            series: vec![
                Line { name: "first".into(), points: vec![(1.0, 2.0), (2.0, 3.0), (f64::NAN, 1.0)] },
                Line { name: "second".into(), points: vec![(3.0, 1.0)] },
            ],
        };
        let svg = super::super::to_svg_string(&chart).unwrap();
        // three data dots and two legend dots
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("first") && svg.contains("second"));
        let svg = super::super::to_svg_string(&Panels { charts: &[chart.clone(), chart], columns: 2 }).unwrap();
        assert_eq!(svg.matches("Dots").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 10);
    }
}
