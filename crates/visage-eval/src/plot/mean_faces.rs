//! MagFace's mean-face row: one averaged aligned face per magnitude bin, its
//! range above it and its count and mean magnitude below (the paper's IJB-C
//! figure). Drawn onto an image like [`super::montage`], captions in the
//! bundled font.

use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::{ensure_registered, FAMILY};
use super::montage::MontageError;

/// One tile of the row.
pub struct MeanFaceTile<'a> {
    /// The picture (a bin's mean face, or a blank tile for an empty bin).
    pub face: &'a RgbImage,
    /// The line above the face (the bin's range, e.g. `< 24`).
    pub heading: String,
    /// The lines below the face (e.g. `n = 12`, `‖x‖ 25.31`).
    pub lines: Vec<String>,
}

/// Pixels between tiles and around the figure.
const GAP: u32 = 8;
/// Height of one line of text.
const LINE: u32 = 18;

/// The tiles in rows of `columns` (0 counts as 1): each cell is as wide as
/// the widest face, the heading above it, the lines below.
///
/// # Errors
/// [`MontageError`] when the text cannot be drawn.
pub fn mean_face_row(tiles: &[MeanFaceTile<'_>], columns: usize) -> Result<RgbImage, MontageError> {
    let columns = columns.clamp(1, tiles.len().max(1)) as u32;
    let rows = (tiles.len() as u32).div_ceil(columns).max(1);
    let below = tiles.iter().map(|t| t.lines.len() as u32).max().unwrap_or(0);
    let face_w = tiles.iter().map(|t| t.face.width()).max().unwrap_or(112);
    let face_h = tiles.iter().map(|t| t.face.height()).max().unwrap_or(112);
    let cell_w = face_w.max(96);
    let cell_h = LINE + face_h + below * LINE;
    let mut canvas = RgbImage::from_pixel(GAP + columns * (cell_w + GAP), GAP + rows * (cell_h + GAP), Rgb([255, 255, 255]));
    let origin = |i: usize| (GAP + (i as u32 % columns) * (cell_w + GAP), GAP + (i as u32 / columns) * (cell_h + GAP));
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        let left = x + (cell_w - tile.face.width()) / 2;
        image::imageops::replace(&mut canvas, tile.face, i64::from(left), i64::from(y + LINE));
    }
    ensure_registered();
    let size = canvas.dimensions();
    let fail = |e: &dyn std::fmt::Debug| MontageError(format!("{e:?}"));
    let root = BitMapBackend::with_buffer(canvas.as_mut(), size).into_drawing_area();
    let style = TextStyle::from((FAMILY, 14).into_font()).color(&RGBColor(30, 30, 30)).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        let centre = (x + cell_w / 2) as i32;
        root.draw_text(&tile.heading, &style, (centre, (y + LINE) as i32 - 3)).map_err(|e| fail(&e))?;
        for (k, line) in tile.lines.iter().enumerate() {
            let bottom = y + LINE + face_h + (k as u32 + 1) * LINE - 3;
            root.draw_text(line, &style, (centre, bottom as i32)).map_err(|e| fail(&e))?;
        }
    }
    root.present().map_err(|e| fail(&e))?;
    drop(root);
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_sit_in_a_row_with_text_above_and_below() {
        let dark = RgbImage::from_pixel(112, 112, Rgb([20, 40, 60]));
        let light = RgbImage::from_pixel(112, 112, Rgb([200, 180, 160]));
        let tiles = [
            MeanFaceTile { face: &dark, heading: "< 24".into(), lines: vec!["n = 3".into(), "‖x‖ 21.50".into()] },
            MeanFaceTile { face: &light, heading: "≥ 24".into(), lines: vec!["n = 5".into(), "‖x‖ 27.25".into()] },
        ];
        let row = mean_face_row(&tiles, 8).unwrap();
        // 2 cells of 112 px and 3 gaps; 18 px heading + 112 px face + 2 × 18 px lines and 2 gaps.
        assert_eq!(row.dimensions(), (8 + 2 * 120, 8 + 166 + 8));
        assert_eq!(row.get_pixel(8 + 50, 8 + 18 + 50).0, [20, 40, 60]);
        assert_eq!(row.get_pixel(128 + 50, 8 + 18 + 50).0, [200, 180, 160]);
        let inked =
            |x0: u32, y0: u32, y1: u32| (x0..x0 + 112).flat_map(|x| (y0..y1).map(move |y| (x, y))).any(|(x, y)| row.get_pixel(x, y).0[0] < 128);
        assert!(inked(8, 8, 8 + 18), "heading drawn");
        assert!(inked(8, 8 + 130, 8 + 166), "count and mean drawn");
    }
}
