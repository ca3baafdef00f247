//! Line charts: y against x for a few named series (training curves, a
//! quantity against degradation severity), and a grid of them on one canvas.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, err, font::FAMILY, Chart};

/// Legend corners, for [`LineChart::with_legend`].
pub use plotters::chart::SeriesLabelPosition;

/// One named series of `(x, y)` points, drawn in order.
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points; non-finite ones are skipped when drawing.
    pub points: Vec<(f64, f64)>,
}

/// Lines on linear axes fitted to the finite data (y padded by 5 %).
#[derive(Clone, Debug)]
pub struct LineChart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_desc: String,
    /// Label of the y axis.
    pub y_desc: String,
    /// The series, in legend and colour order.
    pub lines: Vec<Line>,
    /// Draw a dot at every point (for a few points per line, e.g. severity levels).
    pub markers: bool,
    /// Where the legend goes (shown when there are two lines or more).
    pub legend: SeriesLabelPosition,
}

impl LineChart {
    /// A chart without markers, its legend (when shown) in the upper right corner.
    pub fn new(title: impl Into<String>, x_desc: impl Into<String>, y_desc: impl Into<String>, lines: Vec<Line>) -> Self {
        Self { title: title.into(), x_desc: x_desc.into(), y_desc: y_desc.into(), lines, markers: false, legend: SeriesLabelPosition::UpperRight }
    }

    /// Draw a dot at every point as well.
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }

    /// Put the legend where the lines are not (e.g. lower left for falling lines).
    pub fn with_legend(mut self, position: SeriesLabelPosition) -> Self {
        self.legend = position;
        self
    }

    /// The finite data range, padded by 5 % of the y span (a flat line gets ±1 %, at least ±1e-9).
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let finite = self.lines.iter().flat_map(|l| l.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in finite {
            (x_lo, x_hi, y_lo, y_hi) = (x_lo.min(x), x_hi.max(x), y_lo.min(y), y_hi.max(y));
        }
        if !x_lo.is_finite() {
            return ((0.0, 1.0), (0.0, 1.0));
        }
        if x_hi <= x_lo {
            x_hi = x_lo + 1.0;
        }
        let pad = if y_hi > y_lo { 0.05 * (y_hi - y_lo) } else { (0.01 * y_hi.abs()).max(1e-9) };
        ((x_lo, x_hi), (y_lo - pad, y_hi + pad))
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let ((x_lo, x_hi), (y_lo, y_hi)) = self.ranges();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 24))
            .margin(16)
            .x_label_area_size(46)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&|v| tick_label(*v, x_hi - x_lo))
            .y_label_formatter(&|v| tick_label(*v, y_hi - y_lo))
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .draw()
            .map_err(err)?;
        for (i, line) in self.lines.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(f64, f64)> = line.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(line.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
            if self.markers {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(err)?;
            }
        }
        if self.lines.len() > 1 {
            super::draw_legend(&mut chart, self.legend.clone())?;
        }
        Ok(())
    }
}

/// A tick value with as many decimals as the axis span needs (two
/// significant digits of the span): `120` on a 0–220 axis, `0.25` on 0–1.
fn tick_label(value: f64, span: f64) -> String {
    let decimals = if span > 0.0 { (1.0 - span.log10().floor()).clamp(0.0, 6.0) as usize } else { 3 };
    format!("{value:.decimals$}")
}

/// Several line charts on one canvas, `columns` per row (e.g. loss, accuracy,
/// learning rate and feature norm of a run as one PNG).
pub struct ChartGrid {
    /// The charts, row by row; the canvas is split evenly among the cells.
    pub charts: Vec<LineChart>,
    /// Charts per row (0 counts as 1).
    pub columns: usize,
}

impl Chart for ChartGrid {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let columns = self.columns.max(1);
        let rows = self.charts.len().div_ceil(columns).max(1);
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(&self.charts) {
            chart.draw(area)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_pad_y_and_skip_non_finite_points() {
        let chart = LineChart::new("t", "x", "y", vec![Line { name: "a".into(), points: vec![(0.0, 1.0), (2.0, 3.0), (f64::NAN, 100.0)] }]);
        assert_eq!(chart.ranges(), ((0.0, 2.0), (0.9, 3.1)));
        let flat = LineChart::new("t", "x", "y", vec![Line { name: "a".into(), points: vec![(1.0, 5.0)] }]);
        assert_eq!(flat.ranges(), ((1.0, 2.0), (4.95, 5.05)));
    }

    #[test]
    fn tick_labels_carry_the_decimals_the_span_needs() {
        assert_eq!(tick_label(120.0, 219.0), "120");
        assert_eq!(tick_label(0.25, 1.0), "0.2"); // span 1 → one decimal (round-half-even of the binary value)
        assert_eq!(tick_label(8.05, 0.45), "8.05");
        assert_eq!(tick_label(0.0001, 0.0), "0.000");
    }

    #[test]
    fn draws_lines_and_a_grid_as_svg() {
        let line = |name: &str, k: f64| Line { name: name.into(), points: (0..5).map(|i| (i as f64, k * i as f64)).collect() };
        let chart = LineChart::new("Two lines", "step", "value", vec![line("up", 1.0), line("down", -1.0)]).with_markers();
        let svg = super::super::to_svg_string(&chart).unwrap();
        assert!(svg.contains("Two lines") && svg.contains("up") && svg.contains("down"));
        assert_eq!(svg.matches("<circle").count(), 10);
        let grid = ChartGrid { charts: vec![chart.clone(), chart.clone(), chart], columns: 2 };
        let svg = super::super::to_svg_string(&grid).unwrap();
        assert_eq!(svg.matches("Two lines").count(), 3);
    }
}
