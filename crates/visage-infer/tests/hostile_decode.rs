//! Image decoding on photos nobody on the project took: extreme aspect
//! ratios, headers that declare gigapixels in each format, malformed EXIF,
//! truncations, and a few thousand seeded random mutations of a valid file
//! per format. Every one ends in upright RGB or an error naming the file —
//! never a panic, and never an allocation the bytes cannot back.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use visage_image::ImageError;
use visage_infer::detector::letterbox::Letterbox;
use visage_infer::{decode_rgb, DecodeOptions, InferError};

fn name() -> PathBuf {
    PathBuf::from("upload/photo.img")
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x + y) % 256) as u8]))
}

fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8).unwrap();
    out
}

fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(image).unwrap();
    out
}

fn webp(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn bmp(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut out).write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8).unwrap();
    out
}

/// CRC-32 (ISO-HDLC, the one PNG chunks carry), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG whose IHDR declares `width × height` (CRC fixed so only the size lies).
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(&gradient(4, 4));
    // Signature (8), IHDR length (4), "IHDR" at 12, width at 16, height at 20, CRC at 29.
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Decodes without letting a panic escape: a panic is the test's failure,
/// reported with the input that caused it.
fn decode_no_panic(bytes: &[u8], what: &str) -> Result<RgbImage, InferError> {
    match catch_unwind(AssertUnwindSafe(|| decode_rgb(bytes, &name(), &DecodeOptions::default()))) {
        Ok(result) => result,
        Err(_) => panic!("decoding panicked on {what}: {} bytes, first 64: {:02x?}", bytes.len(), &bytes[..bytes.len().min(64)]),
    }
}

#[test]
fn twenty_thousand_by_one_and_one_by_twenty_thousand_decode_and_letterbox() {
    for (width, height) in [(20_000, 1), (1, 20_000)] {
        let image = gradient(width, height);
        for (format, bytes) in [("png", png(&image)), ("bmp", bmp(&image))] {
            let decoded = decode_no_panic(&bytes, format).unwrap();
            assert_eq!(decoded, image, "{format} {width}×{height} is lossless");
        }
        // WebP's sides stop at 16384 (and image-webp refuses exactly 16384
        // as "inconsistent image sizes", an error, not a crash).
        let narrow = gradient(width.min(16_383), height.min(16_383));
        assert_eq!(decode_no_panic(&webp(&narrow), "webp").unwrap(), narrow, "webp is lossless");
        let decoded = decode_no_panic(&jpeg(&image), "jpeg").unwrap();
        assert_eq!(decoded.dimensions(), (width, height));
        // The detector's fit into 640×640 keeps at least one pixel per side.
        let fitted = Letterbox::new(&decoded, 640, 640);
        assert_eq!(fitted.canvas.dimensions(), (640, 640));
        assert_eq!(fitted.scale, 640.0 / 20_000.0);
    }
}

#[test]
fn gigapixel_headers_are_refused_before_decoding_in_every_format() {
    let too_large = |err: &InferError| matches!(err, InferError::Image(ImageError::ImageTooLarge { .. }));
    for (width, height) in [(100_000u32, 100_000u32), (u32::MAX, 1), (1, 0x7fff_ffff)] {
        // Not timed: ImageTooLarge is raised only by the check of the
        // header's size, which comes before any decoding or allocation (the
        // message below says so); a side above 2^31 − 1 can only be a
        // Decode error of the header itself (had the header been read, its
        // 4·10⁹ pixels would be ImageTooLarge).
        let err = decode_no_panic(&png_declaring(width, height), "png").unwrap_err();
        // PNG caps each side at 2^31 − 1: a larger one is a header error.
        assert!(too_large(&err) || (width > 0x7fff_ffff && matches!(err, InferError::Image(ImageError::Decode { .. }))), "{width}×{height}: {err}");
        assert!(err.to_string().starts_with("upload/photo.img: "), "{err}");
    }
    let err = decode_no_panic(&png_declaring(100_000, 100_000), "png").unwrap_err();
    assert_eq!(
        err.to_string(),
        "upload/photo.img: 100000×100000 = 10000000000 pixels is above the limit of 100000000 (refused before decoding; raise DecodeOptions::max_pixels to accept it)"
    );

    // BMP: BITMAPINFOHEADER width at byte 18, height at byte 22 (signed, little-endian).
    let mut bytes = bmp(&gradient(4, 4));
    bytes[18..22].copy_from_slice(&60_000i32.to_le_bytes());
    bytes[22..26].copy_from_slice(&(-60_000i32).to_le_bytes());
    let err = decode_no_panic(&bytes, "bmp").unwrap_err();
    assert!(too_large(&err) || matches!(err, InferError::Image(ImageError::Decode { .. })), "{err}");
    assert!(err.to_string().starts_with("upload/photo.img: "), "{err}");

    // WebP lossless: 14-bit (width − 1) and (height − 1) after the 0x2f signature at byte 20.
    let mut bytes = webp(&gradient(4, 4));
    assert_eq!(&bytes[12..16], b"VP8L");
    let packed = u32::from_le_bytes(bytes[21..25].try_into().unwrap());
    let declared = (packed & !((1 << 28) - 1)) | 16_382 | (16_382 << 14);
    bytes[21..25].copy_from_slice(&declared.to_le_bytes());
    let err = decode_no_panic(&bytes, "webp").unwrap_err();
    assert!(matches!(err, InferError::Image(ImageError::ImageTooLarge { width: 16_383, height: 16_383, .. })), "{err}");

    // JPEG: SOF0 declaring 65535×65535.
    let mut bytes = jpeg(&gradient(16, 8));
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let err = decode_no_panic(&bytes, "jpeg").unwrap_err();
    assert!(matches!(err, InferError::Image(ImageError::ImageTooLarge { width: 65_535, height: 65_535, .. })), "{err}");
}

/// A JPEG with an APP1 Exif block holding `tiff` (from the byte-order mark on).
fn jpeg_with_exif(tiff: &[u8]) -> Vec<u8> {
    let plain = jpeg(&gradient(16, 8));
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(tiff);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn malformed_exif_orientation_leaves_the_photo_as_stored() {
    let orientation_ifd = |value: u16, field_type: u16, count: u32| {
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x12]);
        tiff.extend_from_slice(&field_type.to_be_bytes());
        tiff.extend_from_slice(&count.to_be_bytes());
        tiff.extend_from_slice(&value.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        tiff
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("orientation 0", orientation_ifd(0, 3, 1)),
        ("orientation 9", orientation_ifd(9, 3, 1)),
        ("orientation 65535", orientation_ifd(65_535, 3, 1)),
        ("orientation as ASCII", orientation_ifd(6, 2, 1)),
        ("count 2^32 − 1", orientation_ifd(6, 3, u32::MAX)),
        ("IFD offset past the end", b"MM\0\x2a\xff\xff\xff\xf0".to_vec()),
        ("65535 entries announced", b"MM\0\x2a\0\0\0\x08\xff\xff\x01\x12".to_vec()),
        ("no byte-order mark", b"XX\0\x2a\0\0\0\x08".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, tiff) in cases {
        let decoded = decode_no_panic(&jpeg_with_exif(&tiff), what).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(decoded.dimensions(), (16, 8), "{what}: orientation must not be applied");
    }
    // A well-formed tag still rotates (the control).
    assert_eq!(decode_no_panic(&jpeg_with_exif(&orientation_ifd(6, 3, 1)), "orientation 6").unwrap().dimensions(), (8, 16));
}

#[test]
fn every_truncation_of_every_format_is_an_error_or_a_full_image() {
    let image = gradient(24, 16);
    for (format, bytes) in [("png", png(&image)), ("jpeg", jpeg(&image)), ("webp", webp(&image)), ("bmp", bmp(&image))] {
        for cut in 0..bytes.len() {
            match decode_no_panic(&bytes[..cut], &format!("{format} cut at {cut}")) {
                // Only trailing bytes that carry no pixels may go (e.g. PNG's IEND).
                Ok(decoded) => assert_eq!(decoded.dimensions(), (24, 16), "{format} cut at {cut}"),
                Err(err) => assert!(err.to_string().starts_with("upload/photo.img: "), "{format} cut at {cut}: {err}"),
            }
        }
    }
}

/// xorshift64*: a fixed, dependency-free stream of mutations.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut bytes = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(bytes.len());
            match self.below(5) {
                0 => bytes[at] ^= 1 << self.below(8),
                1 => bytes[at] = self.next() as u8,
                2 => {
                    let extreme: [u8; 4] = [[0xFF; 4], [0x7F, 0xFF, 0xFF, 0xFF], [0; 4], [0, 1, 0, 0]][self.below(4)];
                    let end = (at + 4).min(bytes.len());
                    bytes[at..end].copy_from_slice(&extreme[..end - at]);
                }
                3 => bytes.truncate(at.max(1)),
                _ => {
                    let insert: Vec<u8> = (0..1 + self.below(16)).map(|_| self.next() as u8).collect();
                    bytes.splice(at..at, insert);
                }
            }
        }
        bytes
    }
}

#[test]
fn seeded_mutations_of_each_format_never_panic_or_stall() {
    const ROUNDS: usize = 4000;
    let image = gradient(24, 16);
    let exif = jpeg_with_exif(b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0");
    let seeds = [("png", png(&image)), ("jpeg", jpeg(&image)), ("jpeg+exif", exif), ("webp", webp(&image)), ("bmp", bmp(&image))];
    let mut mutator = Mutator(0x5eed_1234_abcd_ef01);
    let mut outcomes = [0usize; 2];
    for (format, seed) in &seeds {
        for round in 0..ROUNDS {
            let bytes = mutator.mutate(seed);
            // Not timed: a stall would keep the test from ending (CI's
            // timeout fails it), and the pixel bound below caps the work of
            // any decode that succeeds.
            let result = decode_no_panic(&bytes, &format!("{format} mutation {round}"));
            match result {
                Ok(decoded) => {
                    assert!(u64::from(decoded.width()) * u64::from(decoded.height()) <= 100_000_000);
                    outcomes[0] += 1;
                }
                Err(err) => {
                    assert!(err.to_string().starts_with("upload/photo.img: "), "{err}");
                    outcomes[1] += 1;
                }
            }
        }
    }
    eprintln!("{} mutations: {} decoded, {} refused", ROUNDS * seeds.len(), outcomes[0], outcomes[1]);
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "the mutations exercise both paths: {outcomes:?}");
}

#[test]
fn a_missing_file_and_a_directory_name_the_path() {
    let err = visage_infer::load_rgb(Path::new("/nonexistent/photo.png"), &DecodeOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/photo.png: cannot read"), "{err}");
    let err = visage_infer::load_rgb(&std::env::temp_dir(), &DecodeOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with(&format!("{}: ", std::env::temp_dir().display())), "{err}");
}

/// Inputs the fuzzer found that make the JPEG decoder (zune-jpeg 0.5.15)
/// panic inside its IDCT: each is a decode error naming the file, and the
/// next photo on the same thread decodes as usual.
#[test]
fn decoder_panics_found_by_fuzzing_become_errors_naming_the_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/image_decode");
    let mut crashes: Vec<_> = std::fs::read_dir(&dir).expect("fuzz/regressions/image_decode").map(|e| e.unwrap().path()).collect();
    crashes.sort();
    assert!(crashes.len() >= 5, "the committed crash inputs are missing: {crashes:?}");
    for path in &crashes {
        let bytes = std::fs::read(path).unwrap();
        let error = visage_infer::decode_rgb(&bytes, path, &visage_infer::DecodeOptions::default()).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with(&path.display().to_string()) && message.contains("cannot decode"), "{message}");
    }
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos/biden_1.jpg");
    let image = visage_infer::load_rgb(&photo, &visage_infer::DecodeOptions::default()).unwrap();
    assert!(image.width() > 100 && image.height() > 100);
}
