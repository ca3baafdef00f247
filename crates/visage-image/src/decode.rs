//! Photo decoding: any JPEG/PNG/WebP/BMP into upright 8-bit RGB.
//!
//! Detectors and the aligner want one pixel format, so everything is converted
//! here once: grayscale, CMYK JPEGs (converted by the JPEG decoder), 16-bit
//! and alpha images all become `RgbImage` (alpha is dropped, not composited:
//! faces in transparent regions are not a case worth a background colour).
//! Phones store portrait photos sideways with an EXIF orientation tag; faces
//! lying on their side are missed by upright detectors, so the tag is applied.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::{ImageError, Result};

/// Limits applied before any pixel is decoded.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Largest accepted width × height. A few hundred bytes of PNG or JPEG can
    /// declare a gigapixel image (a decompression bomb); the header is read
    /// first and such files are refused before the pixel buffer is allocated.
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    /// 100 megapixels: above any camera photo in common use (a 12000×8000
    /// medium-format frame is 96 Mpx), far below what exhausts memory (300 MB RGB).
    fn default() -> Self {
        Self { max_pixels: 100_000_000 }
    }
}

/// Reads and decodes the image file at `path` into upright 8-bit RGB.
///
/// # Errors
/// [`ImageError::Io`] when the file cannot be read, otherwise as [`decode_rgb`].
pub fn load_rgb(path: &Path, options: &DecodeOptions) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::io(path, e))?;
    decode_rgb(&bytes, path, options)
}

/// Decodes image bytes; `name` is the file the bytes came from, for messages.
///
/// The pixel decoders are third-party code, and fuzzing found a crafted JPEG
/// that makes zune-jpeg 0.5.15 index out of bounds and panic. A photo must
/// never take the process with it, so a panic inside decoding is caught
/// here and becomes a decode error naming the file (and the default panic
/// message for it is not printed: the error is the report).
///
/// # Errors
/// [`ImageError::NotAnImage`], [`ImageError::ImageTooLarge`], [`ImageError::Truncated`]
/// (JPEG only) or [`ImageError::Decode`], each naming `name`.
pub fn decode_rgb(bytes: &[u8], name: &Path, options: &DecodeOptions) -> Result<RgbImage> {
    silence_decoder_panics();
    DECODING.with(|flag| flag.set(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_rgb_unguarded(bytes, name, options)));
    DECODING.with(|flag| flag.set(false));
    outcome.unwrap_or_else(|payload| {
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied()).unwrap_or("no message");
        let error = image::error::DecodingError::new(image::error::ImageFormatHint::Unknown, format!("the decoder failed on this file ({message})"));
        Err(ImageError::Decode { path: name.to_path_buf(), source: image::ImageError::Decoding(error) })
    })
}

thread_local! {
    /// Set while this thread runs a decoder, so its panics stay quiet.
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the process's panic hook once: panics on a thread inside
/// [`decode_rgb`] are caught and reported as errors, so the hook skips them;
/// every other panic reaches the previous hook as before.
fn silence_decoder_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

fn decode_rgb_unguarded(bytes: &[u8], name: &Path, options: &DecodeOptions) -> Result<RgbImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| ImageError::io(name, e))?;
    // The image crate's own allocation cap (512 MiB) would refuse a 16-bit RGBA
    // photo below `max_pixels` with a confusing "limits exceeded"; the pixel
    // count is the limit visage promises, so size the cap from it (8 bytes a
    // pixel is the widest these formats decode to).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(options.max_pixels.saturating_mul(8).max(512 << 20));
    reader.limits(limits);
    match reader.format() {
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => return Err(ImageError::Truncated { path: name.to_path_buf() }),
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp) => {}
        _ => return Err(ImageError::NotAnImage { path: name.to_path_buf() }),
    }
    let decode_error = |source| ImageError::Decode { path: name.to_path_buf(), source };
    let mut decoder = reader.into_decoder().map_err(decode_error)?;

    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > options.max_pixels {
        return Err(ImageError::ImageTooLarge { path: name.to_path_buf(), width, height, pixels, max_pixels: options.max_pixels });
    }

    // A malformed EXIF block must not cost the photo: decode it as stored.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Whether a JPEG's last scan is followed by its end-of-image marker.
///
/// The JPEG decoder fills a truncated scan with grey and reports success, so
/// a half-downloaded photo would silently give a half-grey face. Inside
/// entropy-coded data every 0xFF byte is followed by 0x00 or a restart
/// marker, so the byte pairs FF DA (start of scan) and FF D9 (end of image)
/// only occur as real markers there: a complete file has an FF D9 after its
/// last FF DA, a truncated one does not.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|pair| pair == [0xFF, 0xDA]);
    last_scan.is_some_and(|start| bytes[start..].windows(2).any(|pair| pair == [0xFF, 0xD9]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};
    use std::path::PathBuf;

    fn name() -> PathBuf {
        PathBuf::from("photos/test.img")
    }

    fn encode_png(width: u32, height: u32, color: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes).write_image(data, width, height, color).unwrap();
        bytes
    }

    /// 16×8 JPEG: left half red, right half blue.
    fn two_colour_jpeg() -> Vec<u8> {
        let img = RgbImage::from_fn(16, 8, |x, _| if x < 8 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 100).encode_image(&img).unwrap();
        bytes
    }

    #[test]
    fn grayscale_becomes_equal_channels() {
        let png = encode_png(3, 1, image::ExtendedColorType::L8, &[0, 100, 255]);
        let rgb = decode_rgb(&png, &name(), &DecodeOptions::default()).unwrap();
        assert_eq!(rgb.as_raw(), &[0, 0, 0, 100, 100, 100, 255, 255, 255]);
    }

    #[test]
    fn sixteen_bit_with_alpha_becomes_8_bit_rgb() {
        let samples: [u16; 8] = [0, 257 * 100, 65535, 0, 257 * 7, 257 * 8, 257 * 9, 65535];
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_be_bytes()).collect();
        let png = encode_png(2, 1, image::ExtendedColorType::Rgba16, &data);
        let rgb = decode_rgb(&png, &name(), &DecodeOptions::default()).unwrap();
        assert_eq!(rgb.as_raw(), &[0, 100, 255, 7, 8, 9]);
    }

    #[test]
    fn exif_orientation_is_applied() {
        // APP1 "Exif" with a one-entry big-endian IFD: Orientation (0x0112) = 6,
        // "rotate 90° clockwise to view": the left (red) half ends up on top.
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        let jpeg = two_colour_jpeg();
        let mut with_exif = jpeg[..2].to_vec(); // SOI
        with_exif.extend_from_slice(&[0xFF, 0xE1]);
        with_exif.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        with_exif.extend_from_slice(&exif);
        with_exif.extend_from_slice(&jpeg[2..]);

        let upright = decode_rgb(&with_exif, &name(), &DecodeOptions::default()).unwrap();
        assert_eq!(upright.dimensions(), (8, 16));
        let top = upright.get_pixel(4, 2).0;
        let bottom = upright.get_pixel(4, 13).0;
        assert!(top[0] > 200 && top[2] < 50, "top {top:?} should be red");
        assert!(bottom[2] > 200 && bottom[0] < 50, "bottom {bottom:?} should be blue");

        let stored = decode_rgb(&jpeg, &name(), &DecodeOptions::default()).unwrap();
        assert_eq!(stored.dimensions(), (16, 8));
    }

    #[test]
    fn a_huge_declared_size_is_refused_before_decoding() {
        // Patch the SOF0 frame header of a real JPEG to claim 12000×12000: the
        // scan data cannot fill that, so only a check before decoding sees it.
        let mut jpeg = two_colour_jpeg();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF0");
        jpeg[sof + 5..sof + 7].copy_from_slice(&12000u16.to_be_bytes()); // height
        jpeg[sof + 7..sof + 9].copy_from_slice(&12000u16.to_be_bytes()); // width
        let err = decode_rgb(&jpeg, &name(), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, ImageError::ImageTooLarge { pixels: 144_000_000, .. }), "{err}");
        assert!(err.to_string().starts_with("photos/test.img: 12000×12000"), "{err}");

        let small_limit = DecodeOptions { max_pixels: 100 };
        let err = decode_rgb(&two_colour_jpeg(), &name(), &small_limit).unwrap_err();
        assert!(matches!(err, ImageError::ImageTooLarge { pixels: 128, max_pixels: 100, .. }), "{err}");
    }

    #[test]
    fn text_is_not_an_image_and_truncation_is_a_decode_error() {
        let err = decode_rgb(b"name,identity\nalice,1\n", &name(), &DecodeOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "photos/test.img: not an image (expected JPEG, PNG, WebP or BMP)");

        let png = encode_png(3, 1, image::ExtendedColorType::L8, &[0, 100, 255]);
        let err = decode_rgb(&png[..png.len() / 2], &name(), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, ImageError::Decode { .. }), "{err}");
        assert!(err.to_string().starts_with("photos/test.img: cannot decode"), "{err}");
    }

    #[test]
    fn a_truncated_jpeg_is_refused_not_greyed() {
        let jpeg = two_colour_jpeg();
        assert!(decode_rgb(&jpeg, &name(), &DecodeOptions::default()).is_ok());
        let err = decode_rgb(&jpeg[..jpeg.len() - 40], &name(), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
        assert!(err.to_string().starts_with("photos/test.img: truncated JPEG"), "{err}");
        // Bytes after the end marker (some cameras append data) are fine.
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"trailer");
        assert!(decode_rgb(&trailing, &name(), &DecodeOptions::default()).is_ok());
    }

    #[test]
    fn cmyk_jpeg_becomes_rgb() {
        // Written by Pillow (scripts/reference/infer_fixtures.py): red | blue in CMYK.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cmyk_red_blue.jpg");
        let rgb = load_rgb(&path, &DecodeOptions::default()).unwrap();
        assert_eq!(rgb.dimensions(), (16, 8));
        let (left, right) = (rgb.get_pixel(2, 2).0, rgb.get_pixel(13, 5).0);
        assert!(left[0] > 240 && left[1] < 15 && left[2] < 15, "left {left:?} should be red");
        assert!(right[0] < 15 && right[1] < 15 && right[2] > 240, "right {right:?} should be blue");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_rgb(Path::new("/nonexistent/face.jpg"), &DecodeOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/face.jpg: cannot read"), "{err}");
    }
}
