//! ROC chart: TAR against FAR on a log axis, several systems on one chart
//! (the usual face-verification figure, e.g. IJB-C ROC plots).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, err, font::FAMILY, log_label, Chart};
use crate::roc::RocPoint;

pub struct RocChart<'a> {
    pub title: String,
    /// `(system name, thinned curve)`.
    pub systems: Vec<(&'a str, &'a [RocPoint])>,
}

impl RocChart<'_> {
    /// Left end of the FAR axis: the decade below the smallest non-zero FAR, at least 1e-8.
    fn min_far(&self) -> f64 {
        let smallest = self
            .systems
            .iter()
            .flat_map(|(_, c)| c.iter().map(|p| p.far))
            .filter(|&f| f > 0.0)
            .fold(1.0f64, f64::min);
        10f64.powf(smallest.log10().floor()).max(1e-8).min(1e-1)
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
            // FAR 0 cannot sit on a log axis: those points start at the axis edge
            let points = curve.iter().map(|p| (p.far.max(min_far), p.tar));
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}
