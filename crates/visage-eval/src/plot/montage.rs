//! Face crops in a captioned grid, as one picture: a person's faces best to
//! worst, or a whole collection ranked by quality. Flagged faces get a red
//! frame so they stand out at a glance.

use super::font::{ensure_registered, FAMILY};
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Drawing a caption failed (the font or the bitmap backend refused).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a montage: {0}")]
pub struct MontageError(pub String);

/// One tile: a face crop and the line of text under it.
pub struct Tile<'a> {
    /// The face crop, drawn at its own size in the top-left of its cell.
    pub crop: &'a RgbImage,
    /// Text under the crop, shortened with `…` to the cell's width.
    pub caption: String,
    /// Red frame and red caption (e.g. a low-quality or dropped face).
    pub flagged: bool,
}

/// Pixels between tiles and around the grid.
const GAP: u32 = 6;
/// Height of the caption strip under each crop.
const CAPTION_HEIGHT: u32 = 18;
const FLAG_COLOUR: Rgb<u8> = Rgb([214, 39, 40]);

/// Lays out `tiles` row by row, `columns` per row (crops keep their size;
/// the widest decides the cell).
pub fn montage(tiles: &[Tile<'_>], columns: usize) -> Result<RgbImage, MontageError> {
    let columns = columns.clamp(1, tiles.len().max(1)) as u32;
    let rows = (tiles.len() as u32).div_ceil(columns).max(1);
    let cell_w = tiles.iter().map(|t| t.crop.width()).max().unwrap_or(112);
    let cell_h = tiles.iter().map(|t| t.crop.height()).max().unwrap_or(112) + CAPTION_HEIGHT;
    let width = GAP + columns * (cell_w + GAP);
    let height = GAP + rows * (cell_h + GAP);
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let origin = |i: usize| {
        let (row, column) = (i as u32 / columns, i as u32 % columns);
        (GAP + column * (cell_w + GAP), GAP + row * (cell_h + GAP))
    };
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        if tile.flagged {
            frame(&mut canvas, x, y, tile.crop.width(), tile.crop.height());
        }
        image::imageops::replace(&mut canvas, tile.crop, i64::from(x), i64::from(y));
    }
    draw_captions(&mut canvas, tiles, origin, cell_w, cell_h)?;
    Ok(canvas)
}

/// A 3-pixel red frame just outside the crop at `(x, y)`.
fn frame(canvas: &mut RgbImage, x: u32, y: u32, w: u32, h: u32) {
    let (x0, y0) = (x.saturating_sub(3), y.saturating_sub(3));
    let (x1, y1) = ((x + w + 3).min(canvas.width()), (y + h + 3).min(canvas.height()));
    for py in y0..y1 {
        for px in x0..x1 {
            canvas.put_pixel(px, py, FLAG_COLOUR);
        }
    }
}

fn draw_captions(
    canvas: &mut RgbImage,
    tiles: &[Tile<'_>],
    origin: impl Fn(usize) -> (u32, u32),
    cell_w: u32,
    cell_h: u32,
) -> Result<(), MontageError> {
    ensure_registered();
    let size = canvas.dimensions();
    let fail = |e: &dyn std::fmt::Debug| MontageError(format!("{e:?}"));
    let root = BitMapBackend::with_buffer(canvas.as_mut(), size).into_drawing_area();
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        let colour = if tile.flagged { RGBColor(FLAG_COLOUR[0], FLAG_COLOUR[1], FLAG_COLOUR[2]) } else { RGBColor(30, 30, 30) };
        let style = TextStyle::from((FAMILY, 13).into_font()).color(&colour).pos(Pos::new(HPos::Center, VPos::Bottom));
        let centre = (x + cell_w / 2) as i32;
        root.draw_text(&fit(&tile.caption, cell_w), &style, (centre, (y + cell_h) as i32 - 2)).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// Shortens a caption to what fits under a crop (about 7 px a character at 13 px).
fn fit(caption: &str, width: u32) -> String {
    let max_chars = (width / 7).max(4) as usize;
    if caption.chars().count() <= max_chars {
        caption.to_string()
    } else {
        let kept: String = caption.chars().take(max_chars - 1).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_geometry_frames_and_captions() {
        let red = RgbImage::from_pixel(20, 10, Rgb([200, 0, 0]));
        let blue = RgbImage::from_pixel(20, 10, Rgb([0, 0, 200]));
        let tiles = [
            Tile { crop: &red, caption: "a".into(), flagged: false },
            Tile { crop: &blue, caption: "b".into(), flagged: true },
            Tile { crop: &red, caption: "c".into(), flagged: false },
        ];
        let image = montage(&tiles, 2).unwrap();
        // 2 columns of 20 px, 2 rows of 10 + 18 px, 6 px gaps.
        assert_eq!(image.dimensions(), (6 + 2 * 26, 6 + 2 * 34));
        assert_eq!(image.get_pixel(6 + 5, 6 + 5).0, [200, 0, 0]); // tile 0
        assert_eq!(image.get_pixel(32 + 5, 6 + 5).0, [0, 0, 200]); // tile 1
        assert_eq!(image.get_pixel(32 - 2, 6 + 5).0, FLAG_COLOUR.0); // tile 1's frame
        assert_eq!(image.get_pixel(6 - 2, 6 + 5).0, [255, 255, 255]); // tile 0 unframed
        assert_eq!(image.get_pixel(6 + 5, 40 + 5).0, [200, 0, 0]); // tile 2, second row
                                                                   // Some caption ink under tile 0 (dark pixels in its caption strip).
        let inked = (6..26).flat_map(|x| (16..34).map(move |y| (x, y))).any(|(x, y)| image.get_pixel(x, y).0[0] < 128);
        assert!(inked, "caption drawn");
    }

    #[test]
    fn long_captions_are_shortened() {
        assert_eq!(fit("abcdefghijklmnopqrstuvwxyz", 70), "abcdefghi…");
        assert_eq!(fit("short", 112), "short");
    }
}
