//! Greedy non-maximum suppression shared by every detector.

use super::Detection;

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Keeps the highest-scoring detection of every group whose boxes overlap by
/// more than `iou_threshold`; the result is sorted by score, best first.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in detections {
        if kept.iter().all(|k| iou(&k.bbox, &d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection { bbox, score, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn suppresses_overlaps_keeps_separate_faces() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]), 50.0 / 150.0);
        let kept = nms(vec![det([0.0, 0.0, 10.0, 10.0], 0.7), det([1.0, 0.0, 11.0, 10.0], 0.9), det([20.0, 0.0, 30.0, 10.0], 0.6)], 0.4);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, [0.9, 0.6]);
    }
}
