//! Shuffled, sharded, multi-threaded, resumable batches.
//!
//! Order: epoch `e` is a permutation of all samples drawn from (seed, e)
//! (identity when `shuffle` is off); rank `r` of `W` takes positions
//! `r, r + W, r + 2W, …` of it (DistributedSampler's interleaving), so the
//! ranks' shards are disjoint and together cover the epoch. With `drop_last`
//! every rank keeps `⌊N / W⌋` samples and `⌊⌊N / W⌋ / B⌋` full batches, the
//! same count on every rank (a rank with a batch more would wait forever in
//! an all-reduce); without it a rank's last batch may be short.
//!
//! Randomness: each sample's augmentation comes from its own stream seeded by
//! (seed, epoch, sample index), so a batch's pixels do not depend on the
//! thread count, the rank, the world size or where the run was resumed.
//! Starting at (epoch, batch) therefore yields exactly the batches an
//! uninterrupted run yields from there on.
//!
//! Decoding and augmentation of a batch run on a rayon pool of `threads`
//! workers; a producer thread keeps up to `prefetch_batches` finished batches
//! in a bounded channel ahead of the consumer.
//!
//! Size: crops are expected at `image_size` (112); any other size is resized
//! to it (the image crate's `Triangle` filter: bilinear, widened when
//! shrinking so it averages instead of aliasing), ignoring the aspect ratio,
//! since the alignment template is defined for the square crop. Resizing
//! happens before augmentation.
//!
//! A sample that cannot be read or decoded is left out of its batch (which is
//! then shorter), listed in [`Batch::skipped`] and counted in
//! [`Loader::skipped_total`]; a run never stops for one bad record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use image::imageops::FilterType;
use ndarray::{Array4, ArrayViewMut3};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use visage_image::{DecodeOptions, Normalization};

use crate::augment::Augmentation;
use crate::error::{DataError, Result};
use crate::seed::{rng, Stream};
use crate::source::FaceSource;

/// How a [`Loader`] orders, shards, decodes and augments; [`Default`] is
/// insightface arcface_torch's single-GPU setting.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// Samples per batch on this rank (default 128); at least 1.
    pub batch_size: usize,
    /// Seed of the shuffle and of every sample's augmentation (default 2048).
    pub seed: u64,
    /// This process's rank, `0..world_size` (default 0).
    pub rank: usize,
    /// Number of ranks sharing each epoch (default 1); at most the number of samples.
    pub world_size: usize,
    /// Permute the samples each epoch (default true); off, the epoch is in source order.
    pub shuffle: bool,
    /// Drop the samples that do not fill a batch, keeping every rank's batch
    /// count equal (default true); off, a rank's last batch may be short.
    pub drop_last: bool,
    /// Decoding threads (the loader's own rayon pool; default 2, 0 counts as 1).
    pub threads: usize,
    /// Finished batches kept ready ahead of the consumer (default 2, 0 counts as 1).
    pub prefetch_batches: usize,
    /// Side of the square output crop in pixels (default 112).
    pub image_size: u32,
    /// Channel order and mean/std of the model being trained.
    pub normalization: Normalization,
    /// Training augmentation (default: horizontal flip with p = 0.5).
    pub augmentation: Augmentation,
    /// Decoder limits (largest accepted pixel count).
    pub decode: DecodeOptions,
}

impl Default for LoaderConfig {
    /// insightface arcface_torch: batch 128 per GPU, shuffle, drop_last,
    /// flip only, RGB (x − 127.5) / 127.5, 112×112.
    fn default() -> Self {
        Self {
            batch_size: 128,
            seed: 2048,
            rank: 0,
            world_size: 1,
            shuffle: true,
            drop_last: true,
            threads: 2,
            prefetch_batches: 2,
            image_size: 112,
            normalization: Normalization::ARCFACE,
            augmentation: Augmentation::default(),
            decode: DecodeOptions::default(),
        }
    }
}

/// A sample left out of its batch, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSample {
    /// Index of the sample in the source.
    pub sample_index: usize,
    /// The read or decode error, as text.
    pub message: String,
}

/// One batch of this rank: the samples that loaded, in shard order.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The epoch it belongs to.
    pub epoch: u64,
    /// Its position in the epoch, `0..batches_per_epoch()`.
    pub batch_index: usize,
    /// [N, 3, S, S] with S = `image_size`, N = the samples that loaded
    /// (at most `batch_size`), normalised per the config.
    pub images: Array4<f32>,
    /// Class index of each row of `images`.
    pub labels: Vec<u32>,
    /// Source index of each row of `images`.
    pub sample_indices: Vec<usize>,
    /// The batch's samples that could not be loaded, not in `images`.
    pub skipped: Vec<SkippedSample>,
}

struct Shared<S> {
    source: Arc<S>,
    config: LoaderConfig,
    pool: rayon::ThreadPool,
    skipped_total: AtomicU64,
}

/// Batches of a [`FaceSource`] for one rank; see the module docs for order,
/// sharding and determinism. Cloning is cheap and shares the source, the
/// thread pool and the skip counter.
pub struct Loader<S: FaceSource + 'static> {
    shared: Arc<Shared<S>>,
}

impl<S: FaceSource + 'static> Clone for Loader<S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<S: FaceSource + 'static> Loader<S> {
    /// Checks `config` against `source` and starts the decoding pool. Fails
    /// with [`DataError::Config`] when the batch size or image size is 0, the
    /// rank is not below the world size, the augmentation is invalid, there
    /// are fewer samples than ranks, or the epoch would have no batch.
    pub fn new(source: Arc<S>, config: LoaderConfig) -> Result<Self> {
        let bad = |m: String| Err(DataError::Config(format!("loader: {m}")));
        if config.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if config.world_size == 0 || config.rank >= config.world_size {
            return bad(format!("rank {} is not below world_size {}", config.rank, config.world_size));
        }
        if config.image_size == 0 {
            return bad("image_size must be at least 1".into());
        }
        config.augmentation.validate()?;
        if source.len() < config.world_size {
            return bad(format!("{} samples cannot be shared among {} ranks", source.len(), config.world_size));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("visage-data-{i}"))
            .build()
            .map_err(|e| DataError::Config(format!("loader: cannot start {} threads: {e}", config.threads)))?;
        let loader = Self { shared: Arc::new(Shared { source, config, pool, skipped_total: AtomicU64::new(0) }) };
        if loader.batches_per_epoch() == 0 {
            return bad(format!(
                "{} samples over {} ranks give no full batch of {} (lower batch_size or turn drop_last off)",
                loader.shared.source.len(),
                loader.shared.config.world_size,
                loader.shared.config.batch_size
            ));
        }
        Ok(loader)
    }

    /// The settings it was created with.
    pub fn config(&self) -> &LoaderConfig {
        &self.shared.config
    }

    /// The source it reads.
    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// Samples that could not be loaded so far (all epochs, all batches).
    pub fn skipped_total(&self) -> u64 {
        self.shared.skipped_total.load(Ordering::Relaxed)
    }

    /// The whole epoch's order (all ranks).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.shared.source.len()).collect();
        if self.shared.config.shuffle {
            order.shuffle(&mut rng(Stream::Shuffle, &[self.shared.config.seed, epoch]));
        }
        order
    }

    /// This rank's samples for `epoch`, in batch order.
    pub fn shard(&self, epoch: u64) -> Vec<usize> {
        let LoaderConfig { rank, world_size, drop_last, .. } = self.shared.config;
        let mut shard: Vec<usize> = self.epoch_order(epoch).into_iter().skip(rank).step_by(world_size).collect();
        if drop_last {
            shard.truncate(self.shared.source.len() / world_size);
        }
        shard
    }

    /// Batches this rank gets per epoch: `⌊⌊N / W⌋ / B⌋` with `drop_last`,
    /// otherwise its shard length divided by B, rounded up.
    pub fn batches_per_epoch(&self) -> usize {
        let LoaderConfig { rank, world_size, drop_last, batch_size, .. } = self.shared.config;
        let n = self.shared.source.len();
        if drop_last {
            n / world_size / batch_size
        } else {
            let shard_len = n / world_size + usize::from(rank < n % world_size);
            shard_len.div_ceil(batch_size)
        }
    }

    /// Batch `batch_index` of `epoch`, computed on the calling thread (plus the pool).
    pub fn batch(&self, epoch: u64, batch_index: usize) -> Result<Batch> {
        let shard = self.shard(epoch);
        self.check_batch_index(batch_index)?;
        Ok(self.shared.make_batch(&shard, epoch, batch_index))
    }

    /// The batches of `epoch` from `start_batch` to the end, produced ahead
    /// on a background thread. Resume a run with the (epoch, batch) it
    /// stopped before.
    pub fn iter_epoch(&self, epoch: u64, start_batch: usize) -> Result<EpochBatches> {
        let end = self.batches_per_epoch();
        if start_batch > end {
            return Err(DataError::Config(format!("loader: start batch {start_batch} is past the epoch's {end} batches")));
        }
        let (sender, receiver) = sync_channel(self.shared.config.prefetch_batches.max(1));
        let shared = Arc::clone(&self.shared);
        let producer = std::thread::Builder::new()
            .name("visage-data-producer".into())
            .spawn(move || {
                let shard = shared_shard(&shared, epoch);
                for batch_index in start_batch..end {
                    if sender.send(shared.make_batch(&shard, epoch, batch_index)).is_err() {
                        return; // consumer gone
                    }
                }
            })
            .map_err(|e| DataError::Config(format!("loader: cannot start the producer thread: {e}")))?;
        Ok(EpochBatches { receiver, producer: Some(producer) })
    }

    fn check_batch_index(&self, batch_index: usize) -> Result<()> {
        let count = self.batches_per_epoch();
        if batch_index >= count {
            return Err(DataError::Config(format!("loader: batch {batch_index} is past the epoch's {count} batches")));
        }
        Ok(())
    }
}

fn shared_shard<S: FaceSource + 'static>(shared: &Arc<Shared<S>>, epoch: u64) -> Vec<usize> {
    Loader { shared: Arc::clone(shared) }.shard(epoch)
}

/// Iterator over an epoch's batches; dropping it stops the producer.
pub struct EpochBatches {
    receiver: Receiver<Batch>,
    producer: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for EpochBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        match self.receiver.recv() {
            Ok(batch) => Some(batch),
            Err(_) => {
                // The producer is done; if it died (a source that panicked),
                // say so here instead of ending the epoch early in silence.
                if let Some(producer) = self.producer.take() {
                    if let Err(panic) = producer.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
                None
            }
        }
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        // Disconnect first so a producer blocked on a full channel wakes up.
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.receiver, dead));
        if let Some(producer) = self.producer.take() {
            let _ = producer.join();
        }
    }
}

impl<S: FaceSource> Shared<S> {
    fn make_batch(&self, shard: &[usize], epoch: u64, batch_index: usize) -> Batch {
        let size = self.config.image_size as usize;
        let plane = 3 * size * size;
        let start = batch_index * self.config.batch_size;
        let indices = &shard[start..(start + self.config.batch_size).min(shard.len())];
        let samples: Vec<Result<(Vec<f32>, u32)>> = self.pool.install(|| indices.par_iter().map(|&index| self.sample(epoch, index)).collect());
        let mut pixels = Vec::with_capacity(indices.len() * plane);
        let (mut labels, mut sample_indices, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for (&index, sample) in indices.iter().zip(samples) {
            match sample {
                Ok((chw, label)) => {
                    pixels.extend_from_slice(&chw);
                    labels.push(label);
                    sample_indices.push(index);
                }
                Err(e) => skipped.push(SkippedSample { sample_index: index, message: e.to_string() }),
            }
        }
        self.skipped_total.fetch_add(skipped.len() as u64, Ordering::Relaxed);
        let images = Array4::from_shape_vec((labels.len(), 3, size, size), pixels).expect("one plane per sample");
        Batch { epoch, batch_index, images, labels, sample_indices, skipped }
    }

    /// One sample: decode, resize if needed, augment, normalise into CHW.
    fn sample(&self, epoch: u64, index: usize) -> Result<(Vec<f32>, u32)> {
        let loaded = self.source.load(index, &self.config.decode)?;
        let size = self.config.image_size;
        let mut image = loaded.image;
        if image.dimensions() != (size, size) {
            image = image::imageops::resize(&image, size, size, FilterType::Triangle);
        }
        let mut sample_rng = rng(Stream::Augment, &[self.config.seed, epoch, index as u64]);
        let draw = self.config.augmentation.draw(&mut sample_rng);
        let image = self.config.augmentation.apply(&draw, image);
        let side = size as usize;
        let mut chw = vec![0f32; 3 * side * side];
        let view = ArrayViewMut3::from_shape((3, side, side), chw.as_mut_slice()).expect("3 planes");
        self.config.normalization.write_chw(&image, view, draw.mirror);
        Ok((chw, loaded.label))
    }
}
