//! The detector's second looks and fitted input, on real photos,
//! against an independent reference: the landmarks an independent Python
//! pipeline (SCRFD-2.5G, OpenCV) found on shared/data/faces.

mod common;

use visage_infer::detector::largest;
use visage_infer::{load_rgb, DecodeOptions, Detection, Detector, DetectorConfig};

fn detector(name: &str) -> Detector {
    let config = DetectorConfig::load(&common::repo_models_dir().join(format!("{name}.toml"))).unwrap();
    Detector::from_config(&config, &common::repo_models_dir()).unwrap()
}

fn largest_face(detector: &mut Detector, image: &image::RgbImage) -> Option<Detection> {
    let faces = detector.detect(image).unwrap();
    largest(&faces).map(|i| faces[i].clone())
}

/// Mean landmark distance to the reference, in units of the reference's eye distance.
fn error(found: &Detection, reference: &[[f32; 2]; 5]) -> f64 {
    let eyes = f64::from((reference[0][0] - reference[1][0]).hypot(reference[0][1] - reference[1][1]));
    let sum: f64 = found.landmarks.iter().zip(reference).map(|(p, q)| f64::from((p[0] - q[0]).hypot(p[1] - q[1]))).sum();
    sum / 5.0 / eyes
}

/// On the labelled portraits larger than 1000 px (faces the first pass
/// sees large): the fitted input gives the fixed-input detector's answer,
/// and refinement, which only re-reads faces seen small, leaves the
/// landmarks' agreement with the reference as it was.
#[test]
fn fitted_input_and_refinement_keep_portrait_landmarks() {
    let mut plain = detector("face_detection_yunet_2023mar_dynamic").with_refine_landmarks(false).with_pad_retry(0.0);
    let mut refined = detector("face_detection_yunet_2023mar_dynamic");
    assert_eq!(refined.second_looks(), (true, 0.25), "the default detector config turns both second looks on");
    let mut fixed = detector("face_detection_yunet_2023mar");
    let (mut before, mut after, mut n) = (0.0, 0.0, 0);
    for face in common::reference_faces() {
        if face.landmarks == [[0.0; 2]; 5] {
            continue; // an aligned crop: nothing to detect
        }
        let image = load_rgb(&common::shared_data().join("faces").join(&face.path), &DecodeOptions::default()).unwrap();
        if image.width().max(image.height()) <= 1000 {
            continue;
        }
        let first = largest_face(&mut plain, &image).unwrap_or_else(|| panic!("{}: no face", face.path));
        let second = largest_face(&mut refined, &image).unwrap();
        // Scaled down to 640 either way: fitted and letterboxed inputs hold
        // the same photo pixels and differ only in how much zero padding
        // follows (to the next multiple of 32, or to 640), which the
        // network's border cells see: the landmarks agree to within a pixel.
        let letterboxed = largest_face(&mut fixed, &image).unwrap();
        for (p, q) in first.landmarks.iter().zip(&letterboxed.landmarks) {
            assert!((p[0] - q[0]).abs() < 1.0 && (p[1] - q[1]).abs() < 1.0, "{}: {p:?} vs {q:?}", face.path);
        }
        before += error(&first, &face.landmarks);
        after += error(&second, &face.landmarks);
        n += 1;
    }
    let n = f64::from(n);
    let (before, after) = (before / n, after / n);
    eprintln!("{n} portraits above 1000 px: error to the reference {before:.4} → {after:.4} eye distances");
    assert!(n >= 30.0, "{n} photos above 1000 px");
    assert!(after <= 1.02 * before, "refinement moved portrait landmarks away from the reference: {before:.4} → {after:.4}");
}

/// Faces seen small, as in a crowd photo, with known landmarks: each
/// labelled photo is placed in the corner of a canvas 4 times its size, so
/// the first pass sees its face at a few dozen pixels; refinement re-reads it
/// at full resolution and must bring the landmarks closer to the reference's.
#[test]
fn refinement_brings_small_faces_closer_to_the_reference() {
    let mut plain = detector("face_detection_yunet_2023mar_dynamic").with_refine_landmarks(false).with_pad_retry(0.0);
    let mut refined = detector("face_detection_yunet_2023mar_dynamic").with_pad_retry(0.0);
    let (mut before, mut after, mut n, mut missed) = (0.0, 0.0, 0, 0);
    for face in common::reference_faces() {
        if face.landmarks == [[0.0; 2]; 5] {
            continue;
        }
        let full = load_rgb(&common::shared_data().join("faces").join(&face.path), &DecodeOptions::default()).unwrap();
        // At most 640 px on the long side (a 4× canvas stays small), reference landmarks scaled alike.
        let to_small = (640.0 / full.width().max(full.height()) as f32).min(1.0);
        let (w, h) = ((full.width() as f32 * to_small).round() as u32, (full.height() as f32 * to_small).round() as u32);
        let photo = image::imageops::resize(&full, w, h, image::imageops::FilterType::Triangle);
        let to_small = w as f32 / full.width() as f32;
        let reference = face.landmarks.map(|[x, y]| [x * to_small, y * to_small]);
        let mut canvas = image::RgbImage::new(photo.width() * 4, photo.height() * 4);
        image::imageops::replace(&mut canvas, &photo, 0, 0);
        let near = |list: Vec<Detection>| {
            list.into_iter().find(|d| {
                d.bbox[0] <= reference[2][0] && reference[2][0] <= d.bbox[2] && d.bbox[1] <= reference[2][1] && reference[2][1] <= d.bbox[3]
            })
        };
        let (Some(first), Some(second)) = (near(plain.detect(&canvas).unwrap()), near(refined.detect(&canvas).unwrap())) else {
            missed += 1;
            continue;
        };
        before += error(&first, &reference);
        after += error(&second, &reference);
        n += 1;
    }
    let n = f64::from(n);
    let (before, after) = (before / n, after / n);
    eprintln!("{n} faces seen small ({missed} not found at that size): error to the reference {before:.4} → {after:.4} eye distances");
    assert!(n >= 40.0, "only {n} faces found at a quarter of their size");
    assert!(after < before, "refinement did not bring small faces closer to the reference: {before:.4} → {after:.4}");
}

/// A crop so tight the face fills it gives no face to the fixed 640×640
/// letterbox; the padded retry finds it, where the full photo says it is.
#[test]
fn the_padded_retry_finds_a_face_in_a_tight_crop() {
    let mut fixed = detector("face_detection_yunet_2023mar").with_refine_landmarks(false);
    let mut retry = detector("face_detection_yunet_2023mar").with_refine_landmarks(false).with_pad_retry(0.25);
    let mut tested = 0;
    for face in common::reference_faces().iter().filter(|f| f.landmarks != [[0.0; 2]; 5]) {
        let image = load_rgb(&common::shared_data().join("faces").join(&face.path), &DecodeOptions::default()).unwrap();
        let Some(whole) = largest_face(&mut fixed, &image) else { continue };
        // The face's box, shrunk by 15 % on each side: the face fills the frame.
        let [x1, y1, x2, y2] = whole.bbox;
        let (w, h) = (x2 - x1, y2 - y1);
        let (cx, cy) = ((x1 + 0.15 * w).max(0.0) as u32, (y1 + 0.15 * h).max(0.0) as u32);
        let (cw, ch) = ((0.7 * w) as u32, (0.7 * h) as u32);
        if cx + cw > image.width() || cy + ch > image.height() || cw < 100 {
            continue;
        }
        let crop = image::imageops::crop_imm(&image, cx, cy, cw, ch).to_image();
        if largest_face(&mut fixed, &crop).is_some() {
            continue; // found without help: not the case under test
        }
        let found = largest_face(&mut retry, &crop).unwrap_or_else(|| panic!("{}: the padded retry found nothing", face.path));
        assert_eq!(retry.take_second_looks().0, 1, "one extra pass");
        // Back in the photo's pixels, the landmarks agree with the whole
        // photo's to 20 % of the eye distance (the crop has lost the face's
        // outline, so some drift is expected; a wrong offset or scale in the
        // mapping back would be off by hundreds of pixels).
        let eyes = (whole.landmarks[0][0] - whole.landmarks[1][0]).hypot(whole.landmarks[0][1] - whole.landmarks[1][1]);
        for (p, q) in found.landmarks.iter().zip(&whole.landmarks) {
            let d = (p[0] + cx as f32 - q[0]).hypot(p[1] + cy as f32 - q[1]);
            assert!(d < 0.2 * eyes, "{}: landmark {p:?} (+{cx},{cy}) vs {q:?}", face.path);
        }
        tested += 1;
    }
    eprintln!("{tested} tight crops recovered by the padded retry");
    assert!(tested >= 5, "only {tested} tight crops were missed without padding");
}
