//! Alignment parity with the independent reference pipeline (Umeyama estimate +
//! `cv2.warpAffine`, bilinear, constant-0 border): every photo of
//! `reference/landmarks_scrfd_2.5g_bnkps.csv` is aligned from the original in
//! `faces/` with the reference landmarks and compared with the reference crop.

mod common;

use visage_infer::{align_face, alignment_transform, load_rgb, DecodeOptions, ARCFACE_TEMPLATE_112};

#[test]
fn aligned_crops_match_the_opencv_reference() {
    let faces = common::reference_faces();
    assert_eq!(faces.len(), 83);
    let data = common::shared_data();
    let (mut total_diff, mut total_values, mut worst_max, mut worst_mean) = (0u64, 0u64, 0u8, (0.0f64, String::new()));
    for face in &faces {
        let photo = load_rgb(&data.join("faces").join(&face.path), &DecodeOptions::default()).unwrap();
        let reference = image::open(common::aligned_reference_path(&face.path)).unwrap().to_rgb8();
        assert_eq!(reference.dimensions(), (112, 112));
        if face.landmarks == [[0.0; 2]; 5] {
            // No detection: the photo is already an aligned crop (Tom_Hanks_54745.png)
            // and the reference passed it through unchanged.
            assert_eq!(photo, reference, "{}", face.path);
            continue;
        }
        let ours = align_face(&photo, &face.landmarks).unwrap();

        let diffs: Vec<u8> = ours.as_raw().iter().zip(reference.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
        let sum: u64 = diffs.iter().map(|&d| u64::from(d)).sum();
        if !face.path.ends_with(".jpg") {
            // Lossless input: both sides decode the same pixels, so this isolates
            // the warp. Only OpenCV's 1/32-pixel fixed-point rounding remains
            // (measured: max 1, mean ≤ 0.02); the JPEG photos add decoder
            // differences (libjpeg-turbo vs zune-jpeg).
            let max = *diffs.iter().max().unwrap();
            assert!(max <= 1, "{}: lossless input, warp differs by {max} grey levels", face.path);
        }
        let mean = sum as f64 / diffs.len() as f64;
        worst_max = worst_max.max(*diffs.iter().max().unwrap());
        if mean > worst_mean.0 {
            worst_mean = (mean, face.path.clone());
        }
        total_diff += sum;
        total_values += diffs.len() as u64;

        // The transform maps the landmarks near the template (a least-squares
        // fit: residuals are the face's deviation from the template shape).
        let t = alignment_transform(&face.landmarks).unwrap();
        let rms = (face.landmarks.iter().zip(ARCFACE_TEMPLATE_112))
            .map(|(p, q)| {
                let m = t.apply([f64::from(p[0]), f64::from(p[1])]);
                (m[0] - q[0]).powi(2) + (m[1] - q[1]).powi(2)
            })
            .sum::<f64>()
            / 5.0;
        assert!(rms.sqrt() < 10.0, "{}: landmark rms {:.2} px after alignment", face.path, rms.sqrt());
    }
    let mean = total_diff as f64 / total_values as f64;
    eprintln!(
        "alignment vs reference over {} crops: mean |Δ| = {mean:.4} grey levels, max |Δ| = {worst_max}, worst crop mean {:.4} ({})",
        faces.len(),
        worst_mean.0,
        worst_mean.1
    );
    assert!(mean <= 0.25, "mean grey-level difference {mean:.3} > 0.25 (measured 0.12)");
    assert!(worst_max <= 8, "largest grey-level difference {worst_max} > 8 (measured 4)");
    assert!(worst_mean.0 <= 0.5, "{}: mean grey-level difference {:.3} > 0.5 (measured 0.37)", worst_mean.1, worst_mean.0);
}
