//! ERC chart: FNMR against the fraction of rejected (lowest-quality) genuine
//! pairs, one line per quality measure (MagFace, Fig. 5 style).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, err, font::FAMILY, Chart};
use crate::erc::ErcCurve;

/// The ERC chart of several quality measures (x: reject fraction, y: FNMR).
pub struct ErcChart<'a> {
    /// Caption above the chart.
    pub title: String,
    /// One line each, in the legend's order.
    pub curves: &'a [ErcCurve],
}

impl Chart for ErcChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let top = self.curves.iter().flat_map(|c| c.fnmr.iter().copied()).fold(0.0f64, f64::max).max(1e-3) * 1.08;
        let right = self.curves.iter().flat_map(|c| c.fractions.last().copied()).fold(0.0f64, f64::max).max(0.05);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0f64..right, 0.0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("Fraction of genuine pairs rejected (lowest quality first)")
            .y_desc("FNMR at fixed threshold")
            .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .label_style((FAMILY, 16))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(err)?;
        for (i, curve) in self.curves.iter().enumerate() {
            let c = colour(i);
            let label = format!("{} (area {:.4})", curve.name, curve.area);
            chart
                .draw_series(LineSeries::new(curve.fractions.iter().copied().zip(curve.fnmr.iter().copied()), c.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        }
        super::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
