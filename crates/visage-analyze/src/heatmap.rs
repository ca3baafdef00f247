//! The face-by-face cosine similarity matrix as a picture: faces ordered by
//! person, so each person is a bright block on the diagonal, a wrongly split
//! person shows as a bright off-diagonal block, and a wrongly merged one as a
//! dark stripe inside a block. Thumbnails of the faces run along the top and
//! the left edge when the cells are large enough to show them.

use image::{imageops::FilterType, Rgb, RgbImage};

/// Cosine similarity mapped to the darkest colour; anything lower is drawn as it.
pub const SCALE_LOW: f32 = -0.2;
/// Cosine similarity mapped to the brightest colour (identical directions).
pub const SCALE_HIGH: f32 = 1.0;
/// Largest side of the matrix part of the picture, in pixels.
const MAX_SIDE: u32 = 900;
/// Cells at least this large get face thumbnails along the edges.
const MIN_THUMB: u32 = 16;

/// Viridis (matplotlib's perceptually uniform map) at five stops.
const VIRIDIS: [[f32; 3]; 5] = [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];

/// The colour of one similarity value: viridis, linear between [`SCALE_LOW`] and
/// [`SCALE_HIGH`], clamped outside.
pub fn colour(similarity: f32) -> Rgb<u8> {
    let t = ((similarity - SCALE_LOW) / (SCALE_HIGH - SCALE_LOW)).clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f32;
    let mix = |c: usize| (VIRIDIS[i][c] * (1.0 - f) + VIRIDIS[i + 1][c] * f).round() as u8;
    Rgb([mix(0), mix(1), mix(2)])
}

/// CSS `linear-gradient` stops of the same map, for a legend in HTML.
pub fn css_gradient() -> String {
    let stops: Vec<String> = VIRIDIS.iter().map(|[r, g, b]| format!("rgb({r},{g},{b})")).collect();
    format!("linear-gradient(to right,{})", stops.join(","))
}

/// Draws the matrix of `embeddings` (unit rows, already in display order);
/// `boundaries` are the indices where a new person starts (drawn as white
/// lines); `thumbnails`, one per face, are shown along the edges.
///
/// Each cell is a square of `900 / n` pixels, between 1 and 48; thumbnails appear only
/// when a cell is at least 16 pixels, in a margin one cell wide. The picture is square.
pub fn similarity_heatmap(embeddings: &[&[f32]], boundaries: &[usize], thumbnails: Option<&[&RgbImage]>) -> RgbImage {
    let n = embeddings.len().max(1) as u32;
    let cell = (MAX_SIDE / n).clamp(1, 48);
    let margin = if thumbnails.is_some() && cell >= MIN_THUMB { cell } else { 0 };
    let side = margin + n * cell;
    let mut canvas = RgbImage::from_pixel(side, side, Rgb([255, 255, 255]));
    for (i, a) in embeddings.iter().enumerate() {
        for (j, b) in embeddings.iter().enumerate() {
            let similarity: f32 = a.iter().zip(*b).map(|(x, y)| x * y).sum();
            let c = colour(similarity);
            let (x0, y0) = (margin + j as u32 * cell, margin + i as u32 * cell);
            for y in y0..y0 + cell {
                for x in x0..x0 + cell {
                    canvas.put_pixel(x, y, c);
                }
            }
        }
    }
    for &start in boundaries.iter().filter(|&&b| b > 0 && b < embeddings.len()) {
        let at = margin + start as u32 * cell;
        for k in margin..side {
            canvas.put_pixel(at, k, Rgb([255, 255, 255]));
            canvas.put_pixel(k, at, Rgb([255, 255, 255]));
        }
    }
    if let (Some(thumbnails), true) = (thumbnails, margin > 0) {
        for (i, thumb) in thumbnails.iter().enumerate() {
            let small = image::imageops::resize(*thumb, cell, cell, FilterType::Triangle);
            let at = i64::from(margin + i as u32 * cell);
            image::imageops::replace(&mut canvas, &small, at, 0);
            image::imageops::replace(&mut canvas, &small, 0, at);
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_map_ends_and_middle() {
        assert_eq!(colour(SCALE_LOW).0, [68, 1, 84]);
        assert_eq!(colour(-5.0).0, [68, 1, 84]);
        assert_eq!(colour(SCALE_HIGH).0, [253, 231, 37]);
        // Halfway (0.4) is the middle stop exactly.
        assert_eq!(colour(0.4).0, [33, 145, 140]);
    }

    #[test]
    fn cells_and_boundaries() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let rows: Vec<&[f32]> = vec![&a, &a, &b];
        let map = similarity_heatmap(&rows, &[2], None);
        let cell = 48; // 900 / 3 capped at 48 px
        assert_eq!(map.dimensions(), (3 * cell, 3 * cell));
        assert_eq!(map.get_pixel(cell + 5, 5).0, colour(1.0).0); // faces 0 and 1: same vector
        assert_eq!(map.get_pixel(2 * cell + 5, 5).0, colour(0.0).0); // face 0 vs 2: orthogonal
        assert_eq!(map.get_pixel(2 * cell, 5).0, [255, 255, 255]); // the boundary before face 2
    }
}
