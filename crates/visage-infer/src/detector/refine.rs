//! Second looks at a photo, for what one letterboxed pass gets wrong.
//!
//! - **Padding** ([`padded`]): a photo cropped tight around a face (the face
//!   fills the frame) often gives no detection at all, since the detectors
//!   were trained on faces with context around them. When the first pass
//!   finds nothing, the photo is placed in the middle of a larger canvas and
//!   detected again.
//! - **Landmark refinement** ([`Refinement`]): a landmark from one pass is
//!   one noisy estimate, and at the letterbox's scale a face in a large photo
//!   may be a few dozen input pixels wide. Each face is cut out again from the
//!   full-resolution photo as a square around its box, at two scales and
//!   mirrored, and the crops are tiled into one detector input (a 640×640
//!   YuNet input holds 16 cells of 160 px, so four faces per pass). The
//!   refined landmark is the per-coordinate median of the first pass and
//!   every cell's estimate mapped back to the photo. A mirrored cell's points
//!   are unmirrored and their left/right labels swapped.

use image::RgbImage;

use super::Detection;
use crate::align::Landmarks;
use crate::warp::warp_affine_bilinear;

/// The photo in the middle of a larger canvas: `fraction` of its longer
/// side is added on every side, filled with the photo's mean colour.
/// Returns the canvas and the photo's top-left corner in it.
pub fn padded(image: &RgbImage, fraction: f32) -> (RgbImage, (u32, u32)) {
    let (w, h) = image.dimensions();
    let border = (w.max(h) as f32 * fraction).round().max(1.0) as u32;
    let n = f64::from(w) * f64::from(h);
    let mut sum = [0f64; 3];
    for p in image.pixels() {
        for c in 0..3 {
            sum[c] += f64::from(p.0[c]);
        }
    }
    let mean = image::Rgb(sum.map(|s| (s / n.max(1.0)).round() as u8));
    let mut canvas = RgbImage::from_pixel(w + 2 * border, h + 2 * border, mean);
    image::imageops::replace(&mut canvas, image, i64::from(border), i64::from(border));
    (canvas, (border, border))
}

/// Moves detections found on a padded canvas back to the photo's pixels.
pub fn unpad(detections: Vec<Detection>, offset: (u32, u32)) -> Vec<Detection> {
    let (dx, dy) = (offset.0 as f32, offset.1 as f32);
    detections
        .into_iter()
        .map(|d| Detection {
            bbox: [d.bbox[0] - dx, d.bbox[1] - dy, d.bbox[2] - dx, d.bbox[3] - dy],
            score: d.score,
            landmarks: d.landmarks.map(|[x, y]| [x - dx, y - dy]),
        })
        .collect()
}

/// Crop sides per face, as multiples of the box's longer side: the face
/// fills half and 40 % of its cell.
pub const REFINE_SCALES: [f32; 2] = [2.0, 2.5];

/// Cell side in detector-input pixels.
pub const CELL: u32 = 160;

/// Only faces the first pass saw smaller than this (box side in detector
/// pixels) are refined: a cell shows a face at 64–80 px, so a face the
/// first pass already saw larger would only lose detail. Measured on the
/// shared portraits (tests/second_looks.rs): refining every face of a
/// scaled-down photo moved landmarks away from the reference and made them
/// less steady; in crowd photos, where faces are a few dozen pixels at
/// 640 px, the second look is the larger one.
pub const REFINE_BELOW: f32 = 64.0;

/// Mirroring swaps left and right: eyes and mouth corners trade places.
const MIRROR_ORDER: [usize; 5] = [1, 0, 2, 4, 3];

/// One cell of a refinement canvas: which face, and how cell pixels map to the photo.
struct Cell {
    face: usize,
    /// Top-left corner in the canvas.
    origin: (u32, u32),
    /// Cell pixel → photo pixel: `photo = offset + scale · cell` per axis
    /// (after unmirroring).
    scale: f64,
    offset: (f64, f64),
    mirrored: bool,
}

/// The tiled canvases for a photo's faces, and how to read them back.
pub struct Refinement {
    cells: Vec<Cell>,
    columns: u32,
    rows: u32,
    /// Canvases only as large as their cells need (a model with free dims).
    fit: bool,
}

impl Refinement {
    /// Plans the cells for `faces` in canvases of at most `input_size`
    /// (exactly that unless `fit`); None when it holds fewer than 2×2 cells.
    pub fn plan(faces: &[Detection], input_size: (u32, u32), fit: bool) -> Option<Self> {
        let (columns, rows) = (input_size.0 / CELL, input_size.1 / CELL);
        if columns * rows < 4 {
            return None;
        }
        let mut cells = Vec::new();
        for (face, d) in faces.iter().enumerate() {
            let side = d.width().max(d.height());
            if !(side.is_finite() && side > 1.0) {
                continue;
            }
            let (cx, cy) = (f64::from(d.bbox[0] + d.bbox[2]) / 2.0, f64::from(d.bbox[1] + d.bbox[3]) / 2.0);
            for k in REFINE_SCALES {
                let crop = f64::from(side * k);
                let scale = crop / f64::from(CELL);
                // Cell pixel centres (u = 0 … CELL−1) spread evenly over the crop around the box centre.
                let offset = (cx - crop / 2.0 + scale / 2.0 - 0.5, cy - crop / 2.0 + scale / 2.0 - 0.5);
                for mirrored in [false, true] {
                    cells.push(Cell { face, origin: (0, 0), scale, offset, mirrored });
                }
            }
        }
        let per_canvas = (columns * rows) as usize;
        for (i, cell) in cells.iter_mut().enumerate() {
            let slot = (i % per_canvas) as u32;
            cell.origin = ((slot % columns) * CELL, (slot / columns) * CELL);
        }
        Some(Self { cells, columns, rows, fit })
    }

    /// How many detector passes the plan takes.
    pub fn canvases(&self) -> usize {
        self.cells.len().div_ceil((self.columns * self.rows) as usize)
    }

    /// The size of canvas `index`: the whole input, or with `fit` just the rows and columns its cells use.
    pub fn canvas_size(&self, index: usize) -> (u32, u32) {
        if !self.fit {
            return (self.columns * CELL, self.rows * CELL);
        }
        let used = self.canvas_cells(index).count() as u32;
        let columns = used.min(self.columns);
        (columns * CELL, used.div_ceil(self.columns.max(1)) * CELL)
    }

    /// Canvas `index`, its cells filled from `image`.
    pub fn canvas(&self, index: usize, image: &RgbImage) -> RgbImage {
        let (width, height) = self.canvas_size(index);
        let mut canvas = RgbImage::new(width, height);
        for cell in self.canvas_cells(index) {
            let map = [[cell.scale, 0.0, cell.offset.0], [0.0, cell.scale, cell.offset.1]];
            let mut tile = warp_affine_bilinear(image, &map, CELL, CELL);
            if cell.mirrored {
                image::imageops::flip_horizontal_in_place(&mut tile);
            }
            image::imageops::replace(&mut canvas, &tile, i64::from(cell.origin.0), i64::from(cell.origin.1));
        }
        canvas
    }

    fn canvas_cells(&self, index: usize) -> impl Iterator<Item = &Cell> {
        let per_canvas = (self.columns * self.rows) as usize;
        self.cells.iter().skip(index * per_canvas).take(per_canvas)
    }

    /// Reads canvas `index`'s detections (input pixels) into `estimates`:
    /// per face, the landmark sets its cells found, in photo pixels.
    pub fn collect(&self, index: usize, found: &[Detection], estimates: &mut [Vec<Landmarks>]) {
        let cell_side = CELL as f32;
        for cell in self.canvas_cells(index) {
            let (x0, y0) = (cell.origin.0 as f32, cell.origin.1 as f32);
            let centre = (x0 + cell_side / 2.0, y0 + cell_side / 2.0);
            // The detection centred in this cell and of the planned size (the face fills 40–50 % of it).
            let best = found
                .iter()
                .filter(|d| {
                    let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
                    let side = d.width().max(d.height());
                    (cx - centre.0).abs() < cell_side / 4.0
                        && (cy - centre.1).abs() < cell_side / 4.0
                        && side > cell_side * 0.2
                        && side < cell_side * 0.9
                })
                .min_by(|a, b| distance(a, centre).total_cmp(&distance(b, centre)));
            let Some(d) = best else { continue };
            let mut points: Landmarks = [[0.0; 2]; 5];
            for (i, [x, y]) in d.landmarks.iter().enumerate() {
                let (mut u, v) = (f64::from(x - x0), f64::from(y - y0));
                let target = if cell.mirrored {
                    u = f64::from(CELL) - 1.0 - u;
                    MIRROR_ORDER[i]
                } else {
                    i
                };
                points[target] = [(cell.offset.0 + cell.scale * u) as f32, (cell.offset.1 + cell.scale * v) as f32];
            }
            if let Some(slot) = estimates.get_mut(cell.face) {
                slot.push(points);
            }
        }
    }
}

fn distance(d: &Detection, centre: (f32, f32)) -> f32 {
    let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
    (cx - centre.0).hypot(cy - centre.1)
}

/// Per-coordinate median of landmark sets (the mean of the two middle values for an even count).
pub fn median_landmarks(sets: &[Landmarks]) -> Option<Landmarks> {
    if sets.is_empty() {
        return None;
    }
    let mut out: Landmarks = [[0.0; 2]; 5];
    let mut values = Vec::with_capacity(sets.len());
    for point in 0..5 {
        for axis in 0..2 {
            values.clear();
            values.extend(sets.iter().map(|s| s[point][axis]));
            values.sort_by(f32::total_cmp);
            let n = values.len();
            out[point][axis] = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], landmarks: Landmarks) -> Detection {
        Detection { bbox, score: 0.9, landmarks }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let a: Landmarks = [[1.0, 1.0]; 5];
        let b: Landmarks = [[3.0, 5.0]; 5];
        let c: Landmarks = [[2.0, 100.0]; 5];
        assert_eq!(median_landmarks(&[a, b, c]).unwrap()[0], [2.0, 5.0]);
        assert_eq!(median_landmarks(&[a, b]).unwrap()[4], [2.0, 3.0]);
        assert!(median_landmarks(&[]).is_none());
    }

    #[test]
    fn padding_centres_the_photo_and_unpad_moves_points_back() {
        let photo = RgbImage::from_pixel(40, 20, image::Rgb([10, 20, 30]));
        let (canvas, offset) = padded(&photo, 0.25);
        assert_eq!(offset, (10, 10));
        assert_eq!(canvas.dimensions(), (60, 40));
        assert_eq!(canvas.get_pixel(0, 0).0, [10, 20, 30], "the border has the photo's mean colour");
        let moved = unpad(vec![face([15.0, 12.0, 35.0, 30.0], [[20.0, 20.0]; 5])], offset);
        assert_eq!(moved[0].bbox, [5.0, 2.0, 25.0, 20.0]);
        assert_eq!(moved[0].landmarks[2], [10.0, 10.0]);
    }

    /// A detector that finds, in every cell, exactly the face the cell was
    /// cut around (its landmarks mapped through the cell's geometry, and
    /// mirrored where the cell is) must give back the photo's landmarks.
    #[test]
    fn cells_map_back_to_the_photo_through_mirror_and_scale() {
        let truth: Landmarks = [[110.0, 120.0], [150.0, 118.0], [131.0, 140.0], [115.0, 162.0], [148.0, 161.0]];
        let faces = vec![face([100.0, 100.0, 160.0, 180.0], truth)];
        let plan = Refinement::plan(&faces, (640, 640), false).unwrap();
        assert_eq!(plan.cells.len(), 4);
        assert_eq!(plan.canvas_size(0), (640, 640));
        assert_eq!(Refinement::plan(&faces, (640, 640), true).unwrap().canvas_size(0), (640, 160), "fit: one row of four cells");
        assert!(Refinement::plan(&faces, (320, 160), false).is_none(), "fewer than 2×2 cells");
        assert_eq!(plan.canvases(), 1);
        // What an exact detector would report in each cell.
        let found: Vec<Detection> = plan
            .cells
            .iter()
            .map(|cell| {
                let to_cell = |[x, y]: [f32; 2]| {
                    let u = (f64::from(x) - cell.offset.0) / cell.scale;
                    let v = (f64::from(y) - cell.offset.1) / cell.scale;
                    let u = if cell.mirrored { f64::from(CELL) - 1.0 - u } else { u };
                    [(u + f64::from(cell.origin.0)) as f32, (v + f64::from(cell.origin.1)) as f32]
                };
                let mut points = truth.map(to_cell);
                if cell.mirrored {
                    points = MIRROR_ORDER.map(|i| points[i]);
                }
                let (x0, y0) = (cell.origin.0 as f32, cell.origin.1 as f32);
                face([x0 + 50.0, y0 + 45.0, x0 + 110.0, y0 + 115.0], points)
            })
            .collect();
        let mut estimates = vec![Vec::new()];
        plan.collect(0, &found, &mut estimates);
        assert_eq!(estimates[0].len(), 4);
        for estimate in &estimates[0] {
            for (p, t) in estimate.iter().zip(&truth) {
                assert!((p[0] - t[0]).abs() < 1e-3 && (p[1] - t[1]).abs() < 1e-3, "{estimate:?} vs {truth:?}");
            }
        }
    }

    /// The canvas really holds the photo's pixels where the plan says: a
    /// cell at scale s samples the photo at offset + s·u.
    #[test]
    fn canvas_cells_sample_the_photo() {
        let photo = RgbImage::from_fn(400, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 0]));
        let faces = vec![face([150.0, 100.0, 190.0, 140.0], [[160.0, 110.0]; 5])];
        let plan = Refinement::plan(&faces, (640, 640), false).unwrap();
        let canvas = plan.canvas(0, &photo);
        let cell = &plan.cells[0];
        let (u, v) = (40u32, 70u32);
        let px = canvas.get_pixel(cell.origin.0 + u, cell.origin.1 + v).0;
        let expect_x = cell.offset.0 + cell.scale * f64::from(u);
        let expect_y = cell.offset.1 + cell.scale * f64::from(v);
        assert!((f64::from(px[0]) - expect_x).abs() <= 1.0 && (f64::from(px[1]) - expect_y).abs() <= 1.0, "{px:?} vs {expect_x},{expect_y}");
    }
}
