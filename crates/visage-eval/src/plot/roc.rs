//! ROC chart: TAR against FAR on a log axis, several systems on one chart
//! (the usual face-verification figure, e.g. IJB-C ROC plots).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, err, font::FAMILY, log_label, Chart};
use crate::roc::RocPoint;

/// ROC curves of several systems: TAR (linear) against FAR (log axis).
pub struct RocChart<'a> {
    /// Caption above the chart.
    pub title: String,
    /// `(system name, thinned curve)`.
    pub systems: Vec<(&'a str, &'a [RocPoint])>,
}

impl RocChart<'_> {
    /// Left end of the FAR axis: the decade below the smallest non-zero FAR, at least 1e-8.
    fn min_far(&self) -> f64 {
        let smallest = self.systems.iter().flat_map(|(_, c)| c.iter().map(|p| p.far)).filter(|&f| f > 0.0).fold(1.0f64, f64::min);
        10f64.powf(smallest.log10().floor()).clamp(1e-8, 1e-1)
    }
}

impl Chart for RocChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let min_far = self.min_far();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d((min_far..1.0f64).log_scale(), 0.0f64..1.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("False accept rate (FAR)")
            .y_desc("True accept rate (TAR)")
            .x_label_formatter(&log_label)
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        for (i, (name, curve)) in self.systems.iter().enumerate() {
            let c = colour(i);
            let points = log_axis_points(curve, min_far);
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        }
        super::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// Points to draw on a log-FAR axis. FAR 0 cannot sit on it: the last FAR-0
/// point moves to the axis edge, and the straight ROC segment from it to the
/// first non-zero FAR (a linear segment, curved on a log axis) is sampled so
/// the drawing follows the true curve instead of a misleading diagonal.
fn log_axis_points(curve: &[RocPoint], min_far: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(curve.len() + 32);
    for (i, p) in curve.iter().enumerate() {
        match curve.get(i + 1) {
            Some(next) if p.far == 0.0 && next.far > 0.0 => {
                out.push((min_far, p.tar));
                let steps = 32;
                let (lo, hi) = (min_far.ln(), next.far.ln());
                for s in 1..steps {
                    let far = (lo + (hi - lo) * s as f64 / steps as f64).exp();
                    let frac = far / next.far; // position on the linear segment
                    out.push((far, p.tar + (next.tar - p.tar) * frac));
                }
            }
            _ if p.far == 0.0 => {}
            _ => out.push((p.far, p.tar)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_far_segment_is_sampled_linearly() {
        let curve = [
            RocPoint { threshold: f64::INFINITY, far: 0.0, tar: 0.0 },
            RocPoint { threshold: 0.9, far: 0.0, tar: 0.5 },
            RocPoint { threshold: 0.5, far: 1e-2, tar: 0.7 },
            RocPoint { threshold: 0.1, far: 1.0, tar: 1.0 },
        ];
        let pts = log_axis_points(&curve, 1e-4);
        assert_eq!(pts[0], (1e-4, 0.5));
        // at FAR 1e-3 (a tenth of the way along the linear segment) TAR is 0.52
        let mid = pts.iter().find(|p| (p.0 - 1e-3).abs() < 1e-9).unwrap();
        assert!((mid.1 - 0.52).abs() < 1e-9);
        assert_eq!(pts[pts.len() - 2], (1e-2, 0.7));
        assert_eq!(*pts.last().unwrap(), (1.0, 1.0));
    }
}
