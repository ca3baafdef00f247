//! Histograms as normalised densities, several series overlaid with
//! transparency: genuine vs impostor scores, or feature magnitudes.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, err, font::FAMILY, Chart};

/// Densities of one series over shared bins.
pub struct Density {
    /// Legend entry: the series name and its count of finite values, `name (n = N)`.
    pub name: String,
    /// Density per bin (count / (n · bin width)), so the bars have unit area;
    /// all zero for a series without finite values.
    pub counts: Vec<f64>,
}

/// Overlaid density histograms of several series on shared bins.
pub struct HistogramChart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis (the y axis is "Density").
    pub x_desc: String,
    /// Left edge of the first bin: the smallest finite value of any series.
    pub lo: f64,
    /// Right edge of the last bin: the largest finite value (`lo + 1` when all are equal).
    pub hi: f64,
    /// The series, in legend and colour order.
    pub series: Vec<Density>,
}

impl HistogramChart {
    /// Bins `[lo, hi]` (from all series) into `bins` equal bins; each series
    /// normalised to unit area. Non-finite values are left out; with none
    /// finite at all the range is [0, 1]. `bins` must be at least 1.
    pub fn new(title: &str, x_desc: &str, series: &[(&str, &[f64])], bins: usize) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (_, values) in series {
            for &v in values.iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        let width = (hi - lo) / bins as f64;
        let series = series
            .iter()
            .map(|(name, values)| {
                let mut counts = vec![0.0f64; bins];
                let mut n = 0usize;
                for &v in values.iter().filter(|v| v.is_finite()) {
                    let b = (((v - lo) / width) as usize).min(bins - 1);
                    counts[b] += 1.0;
                    n += 1;
                }
                let scale = if n > 0 { 1.0 / (n as f64 * width) } else { 0.0 };
                counts.iter_mut().for_each(|c| *c *= scale);
                Density { name: format!("{name} (n = {n})"), counts }
            })
            .collect();
        HistogramChart { title: title.into(), x_desc: x_desc.into(), lo, hi, series }
    }
}

impl Chart for HistogramChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let top = self.series.iter().flat_map(|s| s.counts.iter().copied()).fold(0.0f64, f64::max).max(1e-12) * 1.08;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(self.lo..self.hi, 0.0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc("Density")
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        for (i, s) in self.series.iter().enumerate() {
            let c = colour(i);
            let bins = s.counts.len();
            let width = (self.hi - self.lo) / bins as f64;
            chart
                .draw_series(s.counts.iter().enumerate().map(|(b, &h)| {
                    let x0 = self.lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, h)], c.mix(0.35).filled())
                }))
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], c.mix(0.6).filled()));
            let outline = s.counts.iter().enumerate().flat_map(|(b, &h)| {
                let x0 = self.lo + b as f64 * width;
                [(x0, h), (x0 + width, h)]
            });
            chart.draw_series(LineSeries::new(outline, c.stroke_width(2))).map_err(err)?;
        }
        super::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
