//! Partial FC (An et al., CVPR 2022): each step uses every positive class centre
//! of the batch plus a random sample of the others, `max(#positives, ⌈r·C⌉)`
//! centres in all, so a head over millions of identities costs a fraction of the
//! full softmax. Centres may be split into shards on several devices; sampling
//! is done per shard, and the softmax over shards needs only an all-reduced max
//! and sum (see [`MarginHead::forward_sharded`]).
//!
//! Sampling is a pure function of `(seed, step, shard)`, so an interrupted run
//! resumed at the same step samples exactly the same classes.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::{rngs::StdRng, seq::index::sample, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::head::{CentreShard, MarginHead, ShardedOutput, SplitOutput, SplitRank};

/// Partial FC's parameters; missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartialFcConfig {
    /// Fraction `r` of each shard's classes kept per step, in (0, 1] (default 0.1); 1 is the full head.
    pub sample_rate: f64,
    /// Seed of the negative sampling (default 0); with the step and shard index it fixes the sample.
    pub seed: u64,
    /// Split the class centres across the processes of a run, each holding
    /// one contiguous slice and sampling it as shard `rank`, with the batch's
    /// features gathered from every process (arcface_torch's `PartialFC_V2`,
    /// [`PartialFc::forward_split`]). Default false: every process holds
    /// every centre. Left out of the serialised form when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub model_parallel: bool,
}

impl Default for PartialFcConfig {
    fn default() -> Self {
        Self { sample_rate: 0.1, seed: 0, model_parallel: false }
    }
}

/// One process's result of [`PartialFc::forward_split`].
#[derive(Debug, Clone)]
pub struct SplitPartialFcOutput<B: Backend> {
    /// Loss, surrogate and the logits over this process's kept classes.
    pub output: SplitOutput<B>,
    /// The classes this process kept (its shard index is its rank).
    pub sampled: SampledClasses,
}

/// The classes one step keeps from one shard (global class ids, ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct SampledClasses {
    /// Index of the shard in the slice given to [`PartialFc::forward`].
    pub shard: usize,
    /// Kept class ids (global, ascending); column `i` of the shard's logits is class `classes[i]`.
    pub classes: Vec<usize>,
}

/// Output of one Partial FC step: the loss, the logits over the kept classes of
/// each shard, and which classes those columns are.
#[derive(Debug, Clone)]
pub struct PartialFcOutput<B: Backend> {
    /// Loss and logits; each shard's logits are `B × kept classes` of that shard.
    pub output: ShardedOutput<B>,
    /// Which classes each shard kept, one entry per shard in shard order.
    pub sampled: Vec<SampledClasses>,
}

/// A validated Partial FC sampler; it holds no state besides its config, so a step
/// is reproducible from `(seed, step)` alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialFc {
    config: PartialFcConfig,
}

impl PartialFc {
    /// Checks the config.
    ///
    /// # Errors
    /// [`HeadError::InvalidParameter`] (head `"partial_fc"`) unless `sample_rate ∈ (0, 1]`.
    pub fn new(config: PartialFcConfig) -> Result<Self, HeadError> {
        let r = config.sample_rate;
        if !(r.is_finite() && r > 0.0 && r <= 1.0) {
            return Err(HeadError::InvalidParameter {
                head: "partial_fc",
                param: "sample_rate",
                value: r,
                reason: "the sample rate must lie in (0, 1]".into(),
            });
        }
        Ok(Self { config })
    }

    /// The parameters the sampler was built with.
    pub fn config(&self) -> &PartialFcConfig {
        &self.config
    }

    /// Classes kept from a shard holding classes `first_class .. first_class + classes`:
    /// its positives, topped up with distinct random negatives to `max(#pos, ⌈r·classes⌉)`.
    /// Returns global class ids, ascending; a pure function of its arguments and the seed.
    pub fn sample_shard(&self, shard: usize, first_class: usize, classes: usize, labels: &[usize], step: u64) -> Vec<usize> {
        let range = first_class..first_class + classes;
        let mut positive = vec![false; classes];
        for &label in labels.iter().filter(|label| range.contains(label)) {
            positive[label - first_class] = true;
        }
        let positives = positive.iter().filter(|&&p| p).count();
        let wanted = ((self.config.sample_rate * classes as f64).ceil() as usize).clamp(positives, classes);
        if wanted == classes {
            return range.collect();
        }
        let negatives: Vec<usize> = (0..classes).filter(|&c| !positive[c]).collect();
        let mut rng = StdRng::seed_from_u64(mix_seed(self.config.seed, step, shard as u64));
        let mut kept: Vec<usize> = sample(&mut rng, negatives.len(), wanted - positives)
            .into_iter()
            .map(|i| negatives[i])
            .chain((0..classes).filter(|&c| positive[c]))
            .map(|c| c + first_class)
            .collect();
        kept.sort_unstable();
        kept
    }

    /// One training step of `head` over the sampled centres. Gradients reach only
    /// the kept rows of each shard's centres (through `select`). `step` seeds the sampling,
    /// so pass the global training step to make a resumed run sample the same classes.
    ///
    /// # Errors
    /// [`HeadError::LabelOutOfRange`] for a label beyond the last shard, and every error of
    /// [`MarginHead::forward_sharded`] (run on the sampled centres, so row numbers in
    /// [`HeadError::ZeroNorm`] count sampled rows).
    pub fn forward<B: Backend>(
        &self,
        head: &mut MarginHead,
        features: Tensor<B, 2>,
        shards: &[CentreShard<B>],
        labels: &[usize],
        step: u64,
    ) -> Result<PartialFcOutput<B>, HeadError> {
        let per_class = head.config().centres_per_class();
        let kept = shards
            .iter()
            .enumerate()
            .map(|(index, shard)| self.sample_shard(index, shard.first_class, shard.centres.dims()[0] / per_class, labels, step))
            .collect();
        Self::forward_with_classes(head, features, shards, labels, kept)
    }

    /// This process's part of a step whose class centres are split across
    /// processes ([`MarginHead::forward_split`]): `shard` holds classes
    /// `shard.first_class ..` of `classes` in all, `features` and `labels`
    /// are the whole batch, gathered from every process. The shard is sampled
    /// as shard `split.rank` ([`sample_shard`](Self::sample_shard)), so what a
    /// process keeps is a pure function of (seed, step, rank) and the batch's
    /// labels; every positive class in the shard is kept.
    ///
    /// # Errors
    /// [`HeadError::LabelOutOfRange`] for a label beyond `classes`,
    /// [`HeadError::Shape`] for a shard beyond `classes`, and those of
    /// [`MarginHead::forward_split`].
    #[allow(clippy::too_many_arguments)]
    pub fn forward_split<B: Backend, E: From<HeadError>>(
        &self,
        head: &mut MarginHead,
        features: Tensor<B, 2>,
        shard: &CentreShard<B>,
        classes: usize,
        labels: &[usize],
        step: u64,
        split: SplitRank,
        all_reduce: impl FnMut(Tensor<B, 2>) -> Result<Tensor<B, 2>, E>,
    ) -> Result<SplitPartialFcOutput<B>, E> {
        let per_class = head.config().centres_per_class();
        let shard_classes = shard.centres.dims()[0] / per_class;
        if shard.first_class + shard_classes > classes {
            return Err(HeadError::Shape {
                what: format!("the shard holds classes {}..{} but there are {classes}", shard.first_class, shard.first_class + shard_classes),
            }
            .into());
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &label)| label >= classes) {
            return Err(HeadError::LabelOutOfRange { index, label: label as i64, classes }.into());
        }
        let kept = self.sample_shard(split.rank, shard.first_class, shard_classes, labels, step);
        let centres = if kept.len() == shard_classes {
            shard.centres.clone()
        } else {
            let rows: Vec<i64> = kept.iter().flat_map(|&c| (0..per_class).map(move |j| ((c - shard.first_class) * per_class + j) as i64)).collect();
            let count = rows.len();
            let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [count]), &shard.centres.device());
            shard.centres.clone().select(0, rows)
        };
        let local_labels: Vec<Option<usize>> = labels.iter().map(|label| kept.binary_search(label).ok()).collect();
        let sampled_shard = CentreShard { centres, first_class: 0 };
        let output = head.forward_split(features, &sampled_shard, &local_labels, split, all_reduce)?;
        Ok(SplitPartialFcOutput { output, sampled: SampledClasses { shard: split.rank, classes: kept } })
    }

    /// [`forward`](Self::forward) over classes chosen by the caller instead of
    /// sampled: `kept[i]` holds the global ids of the classes kept from shard
    /// `i`, ascending, within the shard, and together they must hold every
    /// label. `visage heads eval` uses it to evaluate a case whose sampled
    /// classes are given, so an independent reference can check it.
    ///
    /// # Errors
    /// [`HeadError::Shape`] when `kept` does not have one ascending, in-range
    /// list per shard, [`HeadError::LabelOutOfRange`] for a label that no
    /// shard holds or none keeps, and every error of [`MarginHead::forward_sharded`].
    pub fn forward_with_classes<B: Backend>(
        head: &mut MarginHead,
        features: Tensor<B, 2>,
        shards: &[CentreShard<B>],
        labels: &[usize],
        kept: Vec<Vec<usize>>,
    ) -> Result<PartialFcOutput<B>, HeadError> {
        let per_class = head.config().centres_per_class();
        if kept.len() != shards.len() {
            return Err(HeadError::Shape { what: format!("{} lists of kept classes for {} shards", kept.len(), shards.len()) });
        }
        let mut sampled = Vec::with_capacity(shards.len());
        let mut sampled_shards = Vec::with_capacity(shards.len());
        // Class id → its column in the concatenation of the kept classes.
        let mut compact_label: std::collections::HashMap<usize, usize> = Default::default();
        let mut kept_so_far = 0;
        let mut total_classes = 0;
        for (index, (shard, kept)) in shards.iter().zip(kept).enumerate() {
            let [rows, _] = shard.centres.dims();
            let classes = rows / per_class;
            total_classes += classes;
            let range = shard.first_class..shard.first_class + classes;
            if kept.is_empty() || !kept.windows(2).all(|w| w[0] < w[1]) || !kept.iter().all(|c| range.contains(c)) {
                return Err(HeadError::Shape {
                    what: format!("the kept classes of shard {index} must be ascending, distinct and within {}..{}", range.start, range.end),
                });
            }
            let centres = if kept.len() == classes {
                shard.centres.clone()
            } else {
                let rows: Vec<i64> =
                    kept.iter().flat_map(|&c| (0..per_class).map(move |j| ((c - shard.first_class) * per_class + j) as i64)).collect();
                let count = rows.len();
                let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [count]), &shard.centres.device());
                shard.centres.clone().select(0, rows)
            };
            for (position, &class) in kept.iter().enumerate() {
                compact_label.insert(class, kept_so_far + position);
            }
            sampled_shards.push(CentreShard { centres, first_class: kept_so_far });
            kept_so_far += kept.len();
            sampled.push(SampledClasses { shard: index, classes: kept });
        }
        let mut compact_labels = Vec::with_capacity(labels.len());
        for (index, &label) in labels.iter().enumerate() {
            match compact_label.get(&label) {
                Some(&column) => compact_labels.push(column),
                None => {
                    return Err(HeadError::LabelOutOfRange { index, label: label as i64, classes: total_classes });
                }
            }
        }
        let output = head.forward_sharded(features, &sampled_shards, &compact_labels)?;
        Ok(PartialFcOutput { output, sampled })
    }
}

/// SplitMix-style mixing so nearby (seed, step, shard) triples give unrelated streams.
fn mix_seed(seed: u64, step: u64, shard: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ shard.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
