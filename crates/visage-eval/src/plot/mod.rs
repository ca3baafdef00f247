//! Charts (plotters): ROC with log-FAR axis, ERC, genuine/impostor score
//! histograms, magnitude histograms — as SVG, PNG or an SVG string for the
//! HTML report. Every chart implements [`Chart`] once, generic over the
//! drawing backend, and [`render`] picks the backend from the target.

pub mod erc;
pub mod font;
pub mod histogram;
pub mod line;
pub mod mean_faces;
pub mod montage;
pub mod roc;
pub mod scatter;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::EvalError;
use crate::plot::font::FAMILY;

/// Width of every chart, in pixels (PNG) or SVG user units.
pub const WIDTH: u32 = 900;
/// Height of every chart, in the same units.
pub const HEIGHT: u32 = 620;

/// Line colours: distinguishable, dark enough on white.
pub const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// The colour of series `i`, cycling through [`COLOURS`].
pub fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// A chart that can draw itself on any plotters backend.
pub trait Chart {
    /// Draws the whole chart on `root` (white background included); the
    /// error is the backend's message.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// The legend every chart draws: framed, on a translucent white box, at `position`.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Where a chart goes.
pub enum Target<'a> {
    /// An SVG file, created or truncated.
    Svg(&'a Path),
    /// An RGB PNG file, created or truncated.
    Png(&'a Path),
    /// An SVG document written into the string (for inlining in HTML).
    SvgString(&'a mut String),
}

impl<'a> Target<'a> {
    /// `.svg` or `.png` by extension.
    pub fn from_path(path: &'a Path) -> Result<Self, EvalError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(Target::Svg(path)),
            Some("png") => Ok(Target::Png(path)),
            _ => Err(EvalError::Invalid(format!("{}: expected a .svg or .png file name for a chart", path.display()))),
        }
    }
}

/// Draws `chart` into `target`.
pub fn render(chart: &impl Chart, target: Target<'_>) -> Result<(), EvalError> {
    font::ensure_registered();
    let fail = |path: &Path, e: String| EvalError::Invalid(format!("{}: cannot draw chart: {e}", path.display()));
    match target {
        Target::Svg(path) => {
            let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            chart.draw(&root).and_then(|_| root.present().map_err(err)).map_err(|e| fail(path, e))
        }
        Target::Png(path) => {
            let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            chart.draw(&root).and_then(|_| root.present().map_err(err)).map_err(|e| fail(path, e))
        }
        Target::SvgString(buffer) => {
            let root = SVGBackend::with_string(buffer, (WIDTH, HEIGHT)).into_drawing_area();
            let r = chart.draw(&root).and_then(|_| root.present().map_err(err));
            r.map_err(|e| fail(&PathBuf::from("<report>"), e))
        }
    }
}

/// The chart as an SVG document (for the HTML report).
pub fn to_svg_string(chart: &impl Chart) -> Result<String, EvalError> {
    let mut s = String::new();
    render(chart, Target::SvgString(&mut s))?;
    Ok(s)
}

/// Saves to a `.svg` / `.png` path.
pub fn save(chart: &impl Chart, path: &Path) -> Result<(), EvalError> {
    render(chart, Target::from_path(path)?)
}

/// Tick labels for log axes: 1e-6 … 1e0 as powers of ten.
pub(crate) fn log_label(v: &f64) -> String {
    let e = v.log10();
    if (e - e.round()).abs() < 1e-6 {
        format!("1e{}", e.round() as i64)
    } else {
        String::new()
    }
}
