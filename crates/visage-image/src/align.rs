//! 5-point face alignment: the similarity that best maps the detector's
//! landmarks onto insightface's 112×112 template, then a bilinear warp.
//! Recognisers were trained on crops made this way, so any other geometry
//! (a box crop, another template) costs accuracy.

use image::RgbImage;

use crate::error::Result;
use crate::similarity::Similarity;
use crate::warp::warp_affine_bilinear;

/// Side of the aligned crop, in pixels.
pub const ALIGNED_SIZE: u32 = 112;

/// insightface's ArcFace template for a 112×112 crop: left eye, right eye
/// (as seen in the image), nose tip, left and right mouth corner.
pub const ARCFACE_TEMPLATE_112: [[f64; 2]; 5] = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// Five landmarks in image pixels, in the template's order.
pub type Landmarks = [[f32; 2]; 5];

/// The photo-to-crop similarity for these landmarks (Umeyama, no reflection).
///
/// # Errors
/// [`ImageError::Alignment`](crate::ImageError::Alignment) when all five landmarks coincide.
pub fn alignment_transform(landmarks: &Landmarks) -> Result<Similarity> {
    let src = landmarks.map(|[x, y]| [f64::from(x), f64::from(y)]);
    Similarity::estimate(&src, &ARCFACE_TEMPLATE_112)
}

/// The 112×112 aligned crop of the face with these landmarks; crop pixels that map
/// outside the photo are black, as with OpenCV's `BORDER_CONSTANT`.
///
/// # Errors
/// As [`alignment_transform`].
pub fn align_face(image: &RgbImage, landmarks: &Landmarks) -> Result<RgbImage> {
    let to_crop = alignment_transform(landmarks)?;
    Ok(warp_affine_bilinear(image, &to_crop.inverse().matrix(), ALIGNED_SIZE, ALIGNED_SIZE))
}
