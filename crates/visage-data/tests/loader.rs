//! The loader's promises: same seed → same order, ranks disjoint and
//! covering, pixels independent of the thread count, resuming at (epoch,
//! batch) gives the uninterrupted run's batches, the flip and the
//! normalisations give hand-computed values.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use image::{Rgb, RgbImage};
use visage_data::{Augmentation, Batch, DataError, DecodeOptions, FaceSource, LabelledImage, Loader, LoaderConfig, Normalization};

/// In-memory source: sample i is a small picture unique to i, label i % 7.
struct Synthetic {
    count: usize,
    side: u32,
}

impl FaceSource for Synthetic {
    fn len(&self) -> usize {
        self.count
    }

    fn num_classes(&self) -> Option<usize> {
        Some(7)
    }

    fn load(&self, index: usize, _: &DecodeOptions) -> visage_data::Result<LabelledImage> {
        Ok(LabelledImage { image: common::gradient(self.side, self.side, index as u32), label: (index % 7) as u32 })
    }
}

fn all_augmentations() -> Augmentation {
    Augmentation {
        horizontal_flip_probability: 0.5,
        crop_padding_px: 2,
        blur_probability: 0.5,
        blur_sigma_px: (0.1, 2.0),
        color_jitter_probability: 0.5,
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
    }
}

fn config(batch_size: usize) -> LoaderConfig {
    LoaderConfig { batch_size, image_size: 16, augmentation: all_augmentations(), ..LoaderConfig::default() }
}

fn loader(count: usize, config: LoaderConfig) -> Loader<Synthetic> {
    Loader::new(Arc::new(Synthetic { count, side: 16 }), config).unwrap()
}

fn same(a: &[Batch], b: &[Batch]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.batch_index == y.batch_index && x.sample_indices == y.sample_indices && x.labels == y.labels && x.images == y.images)
}

#[test]
fn same_seed_same_order_other_seed_or_epoch_other_order() {
    let a = loader(50, config(8));
    let b = loader(50, config(8));
    let c = loader(50, LoaderConfig { seed: 7, ..config(8) });
    assert_eq!(a.epoch_order(0), b.epoch_order(0));
    assert_ne!(a.epoch_order(0), c.epoch_order(0));
    assert_ne!(a.epoch_order(0), a.epoch_order(1));
    let mut sorted = a.epoch_order(1);
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>(), "a permutation");
    let unshuffled = loader(50, LoaderConfig { shuffle: false, ..config(8) });
    assert_eq!(unshuffled.epoch_order(3), (0..50).collect::<Vec<_>>());
}

#[test]
fn ranks_are_disjoint_and_cover_the_epoch() {
    let world_size = 3;
    let shards: Vec<Vec<usize>> =
        (0..world_size).map(|rank| loader(50, LoaderConfig { rank, world_size, drop_last: false, ..config(8) }).shard(2)).collect();
    assert_eq!(shards.iter().map(Vec::len).collect::<Vec<_>>(), [17, 17, 16]);
    let union: BTreeSet<usize> = shards.iter().flatten().copied().collect();
    assert_eq!(union.len(), 50, "disjoint and covering");
    // Interleaved positions of the one epoch order.
    let order = loader(50, config(8)).epoch_order(2);
    assert_eq!(shards[1][..3], [order[1], order[4], order[7]]);

    // drop_last: every rank the same number of full batches, ⌊⌊50/3⌋/8⌋ = 2.
    for rank in 0..world_size {
        let l = loader(50, LoaderConfig { rank, world_size, ..config(8) });
        assert_eq!(l.batches_per_epoch(), 2);
        let batches: Vec<Batch> = l.iter_epoch(0, 0).unwrap().collect();
        assert!(batches.iter().all(|b| b.labels.len() == 8));
    }
    // Without drop_last rank 0 (17 samples) ends on a short batch.
    let first = loader(50, LoaderConfig { rank: 0, world_size, drop_last: false, ..config(8) });
    let sizes: Vec<usize> = first.iter_epoch(0, 0).unwrap().map(|b| b.labels.len()).collect();
    assert_eq!(sizes, [8, 8, 1]);
}

#[test]
fn pixels_do_not_depend_on_thread_count_or_prefetch() {
    let one: Vec<Batch> = loader(40, LoaderConfig { threads: 1, prefetch_batches: 1, ..config(8) }).iter_epoch(4, 0).unwrap().collect();
    let three: Vec<Batch> = loader(40, LoaderConfig { threads: 3, prefetch_batches: 4, ..config(8) }).iter_epoch(4, 0).unwrap().collect();
    assert_eq!(one.len(), 5);
    assert!(same(&one, &three));
    // …and augmentation really happened: epoch 5 differs from epoch 4 for the same samples.
    let other_epoch = loader(40, config(40)).batch(5, 0).unwrap();
    let this_epoch = loader(40, config(40)).batch(4, 0).unwrap();
    let row = |b: &Batch, sample: usize| {
        let i = b.sample_indices.iter().position(|&s| s == sample).unwrap();
        b.images.index_axis(ndarray::Axis(0), i).to_owned()
    };
    let differing = (0..40).filter(|&s| row(&other_epoch, s) != row(&this_epoch, s)).count();
    assert!(differing > 30, "only {differing} of 40 samples changed between epochs");
}

#[test]
fn resuming_at_a_batch_gives_the_uninterrupted_batches() {
    let l = loader(60, LoaderConfig { threads: 2, ..config(7) });
    let full: Vec<Batch> = l.iter_epoch(9, 0).unwrap().collect();
    assert_eq!(full.len(), 8);
    // A fresh loader (a restarted process) starting at batch 5 of epoch 9.
    let resumed: Vec<Batch> = loader(60, LoaderConfig { threads: 1, ..config(7) }).iter_epoch(9, 5).unwrap().collect();
    assert_eq!(resumed.first().map(|b| b.batch_index), Some(5));
    assert!(same(&full[5..], &resumed));
    assert!(same(&full[3..4], &[l.batch(9, 3).unwrap()]));
    // Stopping early (dropping the iterator) does not hang the producer.
    let mut partial = l.iter_epoch(9, 0).unwrap();
    assert!(partial.next().is_some());
    drop(partial);
    let err = l.iter_epoch(9, 9).err().unwrap().to_string();
    assert_eq!(err, "loader: start batch 9 is past the epoch's 8 batches");
}

/// 112×112, pixel (x, y) = (x, y, 255 − x): a left-right flip shows in R and B.
fn known_face() -> RgbImage {
    RgbImage::from_fn(112, 112, |x, y| Rgb([x as u8, y as u8, 255 - x as u8]))
}

struct OneFace;

impl FaceSource for OneFace {
    fn len(&self) -> usize {
        2
    }

    fn num_classes(&self) -> Option<usize> {
        Some(1)
    }

    fn load(&self, _: usize, _: &DecodeOptions) -> visage_data::Result<LabelledImage> {
        Ok(LabelledImage { image: known_face(), label: 0 })
    }
}

#[test]
fn flip_and_normalisations_give_hand_computed_values() {
    let flip_always = Augmentation { horizontal_flip_probability: 1.0, ..Augmentation::none() };
    let base = LoaderConfig { batch_size: 1, shuffle: false, augmentation: flip_always, ..LoaderConfig::default() };

    // insightface: RGB, (x − 127.5) / 127.5. Output column 0 holds source column 111.
    let arcface = Loader::new(Arc::new(OneFace), base.clone()).unwrap().batch(0, 0).unwrap();
    let t = &arcface.images;
    assert_eq!(t.shape(), [1, 3, 112, 112]);
    assert_eq!(t[[0, 0, 5, 0]], (111.0 - 127.5) / 127.5); // R = source x = 111
    assert_eq!(t[[0, 0, 5, 111]], -1.0); // R = 0
    assert_eq!(t[[0, 1, 5, 0]], (5.0 - 127.5) / 127.5); // G = y, unchanged by the flip
    assert_eq!(t[[0, 2, 7, 0]], (144.0 - 127.5) / 127.5); // B = 255 − 111
    assert_eq!(t[[0, 2, 7, 111]], 1.0); // B = 255

    // MagFace: BGR, x / 255 — channel 0 is blue.
    let magface = Loader::new(Arc::new(OneFace), LoaderConfig { normalization: Normalization::MAGFACE, ..base.clone() }).unwrap();
    let t = magface.batch(0, 0).unwrap().images;
    assert_eq!(t[[0, 0, 0, 0]], 144.0 / 255.0);
    assert_eq!(t[[0, 2, 0, 0]], 111.0 / 255.0);

    // AdaFace: BGR, (x / 255 − 0.5) / 0.5 = (x − 127.5) / 127.5.
    let adaface = Loader::new(Arc::new(OneFace), LoaderConfig { normalization: Normalization::ADAFACE, ..base.clone() }).unwrap();
    let t = adaface.batch(0, 0).unwrap().images;
    assert_eq!(t[[0, 0, 0, 10]], (255.0 - 101.0 - 127.5) / 127.5);

    // No flip: column 0 is source column 0.
    let none = Loader::new(Arc::new(OneFace), LoaderConfig { augmentation: Augmentation::none(), ..base }).unwrap();
    assert_eq!(none.batch(0, 0).unwrap().images[[0, 0, 5, 0]], -1.0);
}

#[test]
fn the_default_flip_mirrors_about_half_the_samples() {
    let l = Loader::new(
        Arc::new(Synthetic { count: 400, side: 16 }),
        LoaderConfig {
            batch_size: 400,
            image_size: 16,
            augmentation: Augmentation::default(),
            normalization: Normalization::MAGFACE,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let batch = l.batch(0, 0).unwrap();
    // Red = 30 + 9x + 17i rises left to right unless mirrored.
    let mirrored = (0..400).filter(|&i| batch.images[[i, 2, 0, 0]] > batch.images[[i, 2, 0, 15]]).count();
    // Binomial(400, 0.5): 4 standard deviations = 40.
    assert!((160..=240).contains(&mirrored), "{mirrored} of 400 mirrored");
}

#[test]
fn other_sizes_are_resized_to_the_crop_size() {
    struct Flat;
    impl FaceSource for Flat {
        fn len(&self) -> usize {
            1
        }
        fn num_classes(&self) -> Option<usize> {
            None
        }
        fn load(&self, _: usize, _: &DecodeOptions) -> visage_data::Result<LabelledImage> {
            Ok(LabelledImage { image: RgbImage::from_pixel(96, 80, Rgb([255, 51, 0])), label: 3 })
        }
    }
    let config = LoaderConfig { batch_size: 1, normalization: Normalization::MAGFACE, augmentation: Augmentation::none(), ..LoaderConfig::default() };
    let batch = Loader::new(Arc::new(Flat), config).unwrap().batch(0, 0).unwrap();
    assert_eq!(batch.images.shape(), [1, 3, 112, 112]);
    assert!(batch.images.index_axis(ndarray::Axis(1), 1).iter().all(|&v| v == 0.2), "green 51/255 everywhere");
    assert_eq!(batch.labels, [3]);
}

#[test]
fn bad_settings_are_refused_with_the_reason() {
    let source = Arc::new(Synthetic { count: 10, side: 16 });
    let err = |config: LoaderConfig| Loader::new(Arc::clone(&source), config).err().unwrap().to_string();
    assert_eq!(err(LoaderConfig { rank: 2, world_size: 2, ..config(2) }), "loader: rank 2 is not below world_size 2");
    assert_eq!(err(config(20)), "loader: 10 samples over 1 ranks give no full batch of 20 (lower batch_size or turn drop_last off)");
    assert!(matches!(
        Loader::new(Arc::clone(&source), LoaderConfig { augmentation: Augmentation { brightness: 2.0, ..Augmentation::default() }, ..config(2) }),
        Err(DataError::Config(_))
    ));
}

#[test]
#[should_panic(expected = "source bug at sample 5")]
fn a_panicking_source_is_not_a_silently_short_epoch() {
    struct Buggy;
    impl FaceSource for Buggy {
        fn len(&self) -> usize {
            8
        }
        fn num_classes(&self) -> Option<usize> {
            None
        }
        fn load(&self, index: usize, _: &DecodeOptions) -> visage_data::Result<LabelledImage> {
            assert!(index != 5, "source bug at sample {index}");
            Ok(LabelledImage { image: RgbImage::new(4, 4), label: 0 })
        }
    }
    let config = LoaderConfig { batch_size: 2, shuffle: false, image_size: 4, ..LoaderConfig::default() };
    let batches: Vec<Batch> = Loader::new(Arc::new(Buggy), config).unwrap().iter_epoch(0, 0).unwrap().collect();
    unreachable!("the epoch ended after {} batches without the panic", batches.len());
}
