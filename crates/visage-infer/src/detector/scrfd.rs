//! SCRFD (insightface, "Sample and Computation Redistribution for Efficient
//! Face Detection"): per stride 8/16/32 a score, a box as distances from the
//! anchor centre and 5 keypoints as offsets from it, all in stride units,
//! for `A` anchors per feature-map cell (2 in the released models).

use super::{as_matrices, group_by_stride, Detection};

/// Feature-map strides of the three output levels, in input pixels per cell.
pub const STRIDES: [u32; 3] = [8, 16, 32];

/// Decodes the 9 outputs into input-pixel detections scoring ≥ `threshold`.
/// Anchor centre of cell (row, col) = (col·s, row·s); box = centre ∓
/// distance·s; keypoint = centre + offset·s.
pub fn decode(outputs: &[ndarray::ArrayD<f32>], width: u32, height: u32, threshold: f32) -> Result<Vec<Detection>, String> {
    if outputs.len() != 9 {
        return Err(format!("SCRFD with keypoints has 9 outputs, this model has {}", outputs.len()));
    }
    let groups = group_by_stride(as_matrices(outputs)?, &[1, 4, 10], &STRIDES)?;
    let mut detections = Vec::new();
    for group in groups {
        let s = group.stride;
        let (cols, rows) = (width.div_ceil(s) as usize, height.div_ceil(s) as usize);
        let [scores, boxes, kps] = &group.tensors[..] else { unreachable!() };
        let n = scores.nrows();
        if n % (cols * rows) != 0 || boxes.nrows() != n || kps.nrows() != n {
            return Err(format!("stride {s}: {n} scores for a {cols}×{rows} grid"));
        }
        let anchors = n / (cols * rows);
        let sf = s as f32;
        for i in 0..n {
            let score = scores[[i, 0]];
            if score < threshold {
                continue;
            }
            let cell = i / anchors;
            let (cx, cy) = ((cell % cols) as f32 * sf, (cell / cols) as f32 * sf);
            let b = boxes.row(i);
            let k = kps.row(i);
            detections.push(Detection {
                bbox: [cx - b[0] * sf, cy - b[1] * sf, cx + b[2] * sf, cy + b[3] * sf],
                score,
                landmarks: std::array::from_fn(|j| [cx + k[2 * j] * sf, cy + k[2 * j + 1] * sf]),
            });
        }
    }
    Ok(detections)
}
