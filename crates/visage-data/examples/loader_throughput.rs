//! Measures pack and load throughput on synthetic 112×112 JPEG crops.
//!
//!     cargo run -p visage-data --example loader_throughput [IMAGES] [THREADS…]
//!
//! Packs IMAGES crops (default 2048, 64 identities) from a temporary folder,
//! then times one epoch of batches of 128 through the loader for each thread
//! count (default 1 2), with the default augmentation (flip) and with every
//! augmentation on. Prints images per second.

use std::sync::Arc;
use std::time::Instant;

use image::{Rgb, RgbImage};
use visage_data::{pack_folder, Augmentation, ImageFolder, Loader, LoaderConfig, PackOptions, RecordDataset};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let images = args.first().copied().unwrap_or(2048);
    let threads: Vec<usize> = if args.len() > 1 { args[1..].to_vec() } else { vec![1, 2] };
    let root = std::env::temp_dir().join(format!("visage-data-throughput-{}", std::process::id()));
    let faces = root.join("faces");
    for i in 0..images {
        let dir = faces.join(format!("id{:03}", i % 64));
        std::fs::create_dir_all(&dir).unwrap();
        // Smooth shading with some texture: about the JPEG size of real
        // aligned faces at quality 95 (insightface's packs: ~6–10 KB).
        let img = RgbImage::from_fn(112, 112, |x, y| {
            let ripple = ((x * 5 + y * 3 + i as u32 * 31) % 17) as u8;
            Rgb([40 + x as u8 + ripple, 60 + y as u8, 200 - (x / 2 + y / 2) as u8 + ripple])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95).encode_image(&img).unwrap();
        std::fs::write(dir.join(format!("{i}.jpg")), jpeg).unwrap();
    }
    let folder = ImageFolder::scan(&faces).unwrap();
    let rec = root.join("train.rec");
    let start = Instant::now();
    let report = pack_folder(&folder, &rec, &PackOptions::default(), |_, _| {}).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let rec_bytes = std::fs::metadata(&rec).unwrap().len();
    println!(
        "pack: {} images ({:.1} KB each) in {seconds:.2} s = {:.0} images/s (decode check + copy, rayon default threads)",
        report.images_written,
        rec_bytes as f64 / report.images_written as f64 / 1024.0,
        report.images_written as f64 / seconds
    );
    let dataset = Arc::new(RecordDataset::open(&rec).unwrap());
    let everything = Augmentation {
        crop_padding_px: 4,
        blur_probability: 0.2,
        color_jitter_probability: 0.2,
        brightness: 0.5,
        contrast: 0.5,
        saturation: 0.5,
        ..Augmentation::default()
    };
    for (name, augmentation) in [("flip", Augmentation::default()), ("flip+crop+blur 0.2+jitter 0.2", everything)] {
        for &thread_count in &threads {
            let config = LoaderConfig { batch_size: 128, threads: thread_count, augmentation: augmentation.clone(), ..LoaderConfig::default() };
            let loader = Loader::new(Arc::clone(&dataset), config).unwrap();
            let start = Instant::now();
            let loaded: usize = loader.iter_epoch(0, 0).unwrap().map(|b| b.labels.len()).sum();
            let seconds = start.elapsed().as_secs_f64();
            println!("load [{name}], {thread_count} threads: {loaded} images in {seconds:.2} s = {:.0} images/s", loaded as f64 / seconds);
        }
    }
    std::fs::remove_dir_all(root).unwrap();
}
