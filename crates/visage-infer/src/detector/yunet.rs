//! YuNet (OpenCV's face detector, opencv_zoo 2023mar): per stride 8/16/32 a
//! class score, an objectness score, a box and 5 keypoints, one anchor per
//! feature-map cell; the output order is cls, obj, bbox, kps (3 strides each).

use super::{as_matrices, group_by_stride, Detection};

/// Feature-map strides of the three output levels, in input pixels per cell.
pub const STRIDES: [u32; 3] = [8, 16, 32];

/// Decodes the 12 outputs into input-pixel detections scoring ≥ `threshold`.
/// score = √(clip(cls)·clip(obj)); centre = ((col + b0)·s, (row + b1)·s),
/// size = (e^b2·s, e^b3·s); landmark = ((col + k)·s, (row + k')·s).
pub fn decode(outputs: &[ndarray::ArrayD<f32>], width: u32, height: u32, threshold: f32) -> Result<Vec<Detection>, String> {
    if outputs.len() != 12 {
        return Err(format!("YuNet has 12 outputs (cls, obj, bbox, kps × 3 strides), this model has {}", outputs.len()));
    }
    let groups = group_by_stride(as_matrices(outputs)?, &[1, 1, 4, 10], &STRIDES)?;
    let mut detections = Vec::new();
    for group in groups {
        let s = group.stride;
        let cols = width.div_ceil(s) as usize;
        let rows = height.div_ceil(s) as usize;
        let [cls, obj, boxes, kps] = &group.tensors[..] else { unreachable!() };
        let n = cls.nrows();
        if n != cols * rows || obj.nrows() != n || boxes.nrows() != n || kps.nrows() != n {
            return Err(format!("stride {s}: {n} rows for a {cols}×{rows} grid (1 anchor per cell)"));
        }
        let sf = s as f32;
        for i in 0..n {
            let score = (cls[[i, 0]].clamp(0.0, 1.0) * obj[[i, 0]].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let (col, row) = ((i % cols) as f32, (i / cols) as f32);
            let b = boxes.row(i);
            let k = kps.row(i);
            let (cx, cy) = ((col + b[0]) * sf, (row + b[1]) * sf);
            let (w, h) = (b[2].exp() * sf, b[3].exp() * sf);
            detections.push(Detection {
                bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                score,
                landmarks: std::array::from_fn(|j| [(col + k[2 * j]) * sf, (row + k[2 * j + 1]) * sf]),
            });
        }
    }
    Ok(detections)
}
