//! The font of every chart: DejaVu Sans, shipped in `assets/fonts` (Debian
//! package fonts-dejavu-core; Bitstream Vera licence, see
//! `assets/fonts/DejaVuSans.LICENSE`). Compiled into the binary so PNGs
//! render text on machines without system fonts.

use std::sync::Once;

use plotters::style::FontStyle;

/// The family name the bundled font is registered under; charts ask plotters for it.
pub const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the font once per process (idempotent).
pub fn ensure_registered() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FAMILY, style, DEJAVU_SANS).is_err() {
                panic!("bundled DejaVu Sans is not a valid font");
            }
        }
    });
}
