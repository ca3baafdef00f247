//! Detector parity with the independent reference pipeline (numpy +
//! onnxruntime + OpenCV, SCRFD-2.5G): landmarks of the largest face per
//! photo, YuNet agreeing on where that face is, the whole chain photo →
//! detect → align → embed against the reference embeddings (SCRFD and
//! YuNet), and group photos.

mod common;

use visage_infer::detector::{largest, nms::iou};
use visage_infer::{align_face, load_rgb, DecodeOptions, Detection, Detector, DetectorConfig, Recognizer, RecognizerConfig};

fn detector(name: &str) -> Detector {
    let config = DetectorConfig::load(&common::repo_models_dir().join(format!("{name}.toml"))).unwrap();
    Detector::from_config(&config, &common::shared_data().join("models")).unwrap()
}

fn photo(path: &str) -> image::RgbImage {
    load_rgb(&common::shared_data().join("faces").join(path), &DecodeOptions::default()).unwrap()
}

fn largest_face(detector: &mut Detector, image: &image::RgbImage, path: &str) -> Detection {
    let faces = detector.detect(image).unwrap();
    faces[largest(&faces).unwrap_or_else(|| panic!("{path}: no face"))].clone()
}

#[test]
fn scrfd_landmarks_yunet_boxes_and_embeddings_match_the_reference() {
    let mut scrfd = detector("scrfd_2.5g_bnkps");
    let mut yunet = detector("face_detection_yunet_2023mar");
    let recognizer_config = RecognizerConfig::load(&common::repo_models_dir().join("arcface_mobileface_128d_paddle.toml")).unwrap();
    let mut recognizer = Recognizer::from_config(&recognizer_config, &common::shared_data().join("models")).unwrap();
    let reference = common::reference_embeddings("emb_scrfd_2.5g_bnkps__arcface_mobileface_128d_paddle_RGB.npz");

    let (mut max_err, mut sum_err, mut n_points) = (0.0f32, 0.0f64, 0usize);
    let (mut min_iou, mut min_cos) = ((1.0f32, String::new()), (1.0f32, String::new()));
    let mut compared = 0;
    let mut cosines = Vec::new();
    for face in common::reference_faces() {
        if face.landmarks == [[0.0; 2]; 5] {
            continue; // Tom_Hanks_54745.png: already an aligned crop, no face to detect.
        }
        let image = photo(&face.path);
        let ours = largest_face(&mut scrfd, &image, &face.path);
        for (p, q) in ours.landmarks.iter().zip(&face.landmarks) {
            let err = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
            max_err = max_err.max(err);
            sum_err += f64::from(err);
            n_points += 1;
        }

        let by_yunet = largest_face(&mut yunet, &image, &face.path);
        let overlap = iou(&by_yunet.bbox, &ours.bbox);
        if overlap < min_iou.0 {
            min_iou = (overlap, face.path.clone());
        }

        let row = reference.paths.iter().position(|p| *p == face.path).unwrap_or_else(|| panic!("{}: not in the npz", face.path));
        let crop = align_face(&image, &ours.landmarks).unwrap();
        let embedding = recognizer.embed(&[crop]).unwrap().remove(0);
        let cos: f32 = embedding.embedding.iter().zip(reference.emb.row(row)).map(|(a, b)| a * b).sum();
        cosines.push(cos);
        if cos < min_cos.0 {
            min_cos = (cos, face.path.clone());
        }
        compared += 1;
    }
    let mean_err = sum_err / n_points as f64;
    cosines.sort_by(f32::total_cmp);
    let median_cos = cosines[cosines.len() / 2];
    let above = cosines.iter().filter(|&&c| c >= 0.999).count();
    eprintln!(
        "{compared} photos: SCRFD-2.5G landmark error max {max_err:.3} px, mean {mean_err:.3} px; \
         YuNet vs SCRFD largest-face IoU min {:.3} ({}); chain cosine min {:.5} ({}), median {median_cos:.5}, {above} ≥ 0.999",
        min_iou.0, min_iou.1, min_cos.0, min_cos.1
    );
    assert_eq!(compared, 82);
    // Measured: max 0.81 px (the upscaled 330×512 deepface_id01/img5.jpg), mean 0.09 px.
    assert!(max_err <= 1.0 && mean_err <= 0.15, "landmark error max {max_err} mean {mean_err}");
    assert!(min_iou.0 >= 0.7, "YuNet IoU {min_iou:?}");
    // Measured: min 0.99595 (deepface_id01/img5.jpg, the largest landmark
    // error), median 0.99989, 76 of 82 photos ≥ 0.999 (JPEG decoders differ).
    assert!(min_cos.0 >= 0.995 && above >= 75, "chain cosine {min_cos:?}, median {median_cos}, {above} ≥ 0.999");
}

#[test]
fn group_photos_give_several_faces() {
    let mut scrfd = detector("scrfd_2.5g_bnkps");
    let mut scrfd_500m = detector("scrfd_500m_bnkps");
    let mut yunet = detector("face_detection_yunet_2023mar");
    let mut yunet_2026 = detector("face_detection_yunet_2026may");
    let mut report = Vec::new();
    for (path, expected) in [
        ("_multi/insightface_t1.jpg", 6),
        ("_multi/fr_two_people.jpg", 2),
        ("_multi/fr_obama_and_biden.jpg", 3),
        ("_multi/fr_kit_with_rose.jpg", 2),
        ("_multi/deepface_selfie-many-people.jpg", 6),
    ] {
        let image = photo(path);
        let yunet_faces = yunet.detect(&image).unwrap();
        let later_faces = yunet_2026.detect(&image).unwrap();
        let counts = [scrfd.detect(&image).unwrap().len(), scrfd_500m.detect(&image).unwrap().len(), yunet_faces.len(), later_faces.len()];
        report.push(format!("{path}: {counts:?}"));
        assert!(
            counts.iter().all(|&c| c == expected),
            "{path}: SCRFD-2.5G, SCRFD-500M, YuNet 2023mar, 2026may found {counts:?}, expected {expected}"
        );
        // The dynamic-input 2026may export finds the same faces as 2023mar.
        for face in &later_faces {
            let best = yunet_faces.iter().map(|f| iou(&f.bbox, &face.bbox)).fold(0.0f32, f32::max);
            assert!(best > 0.9, "{path}: a 2026may face overlaps 2023mar's best by IoU {best}");
        }
    }
    eprintln!("faces found (SCRFD-2.5G, SCRFD-500M, YuNet 2023mar, 2026may): {}", report.join("; "));
}

#[test]
fn max_faces_and_min_face_size_filter() {
    let image = photo("_multi/insightface_t1.jpg");
    let mut all = detector("scrfd_2.5g_bnkps");
    let faces = all.detect(&image).unwrap();
    let mut two = detector("scrfd_2.5g_bnkps").with_max_faces(Some(2));
    let kept = two.detect(&image).unwrap();
    assert_eq!(kept.len(), 2);
    let mut areas: Vec<f32> = faces.iter().map(Detection::area).collect();
    areas.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(kept.iter().map(Detection::area).collect::<Vec<_>>(), areas[..2]);
    let widest = faces.iter().map(|d| d.width().min(d.height())).fold(0.0f32, f32::max);
    let mut big_only = detector("scrfd_2.5g_bnkps").with_min_face_size(widest);
    assert_eq!(big_only.detect(&image).unwrap().len(), 1);
}

#[test]
fn yunet_chain_matches_the_yunet_reference_embeddings() {
    let mut yunet = detector("face_detection_yunet_2023mar");
    let config = RecognizerConfig::load(&common::repo_models_dir().join("arcface_mobileface_128d_paddle.toml")).unwrap();
    let mut recognizer = Recognizer::from_config(&config, &common::shared_data().join("models")).unwrap();
    let reference = common::reference_embeddings("emb_yunet__arcface_mobileface_128d_paddle_RGB.npz");
    let mut cosines = Vec::new();
    let mut worst = (1.0f32, String::new());
    for (path, row) in reference.paths.iter().zip(reference.emb.outer_iter()) {
        let image = photo(path);
        let faces = yunet.detect(&image).unwrap();
        let Some(i) = largest(&faces) else { continue };
        let crop = align_face(&image, &faces[i].landmarks).unwrap();
        let embedding = recognizer.embed(&[crop]).unwrap().remove(0);
        let cos: f32 = embedding.embedding.iter().zip(row).map(|(a, b)| a * b).sum();
        if cos < worst.0 {
            worst = (cos, path.clone());
        }
        cosines.push(cos);
    }
    cosines.sort_by(f32::total_cmp);
    let above = cosines.iter().filter(|&&c| c >= 0.999).count();
    let median = cosines[cosines.len() / 2];
    eprintln!(
        "YuNet chain: {} of {} photos, cosine min {:.5} ({}), median {median:.5}, {above} ≥ 0.999",
        cosines.len(),
        reference.paths.len(),
        worst.0,
        worst.1
    );
    // Measured: every photo has a face (YuNet also finds one in the aligned
    // Tom Hanks crop), min 0.942 (Nathalie_Baye_0002, 250×250), median
    // 0.9993, 53 of 83 ≥ 0.999. The reference's YuNet geometry is not
    // reproduced yet: its worst photos are the small upscaled ones (not
    // upscaling raises 53 to 62, so that is not it either).
    assert_eq!(cosines.len(), 83);
    assert!(worst.0 >= 0.93 && median >= 0.999, "YuNet chain cosine min {worst:?}, median {median}");
}
