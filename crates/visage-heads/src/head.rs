//! The head at training time: a [`HeadConfig`] plus the state some heads carry
//! (AdaFace's running norm statistics), turning features, class centres and
//! labels into logits and the batch-mean loss.
//!
//! The forward pass is written once for class centres split into shards
//! (Partial FC's model parallelism): every shard computes its own logits on its
//! own device, and the softmax needs only an all-reduced row maximum and
//! row sum of exponentials. The ordinary full head is the one-shard case.

use burn::tensor::{backend::Backend, Bool, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::angular::row_norms;
use crate::config::HeadConfig;
use crate::error::HeadError;
use crate::heads::adaface::AdaFaceState;

/// Loss and logits of one batch.
#[derive(Debug, Clone)]
pub struct HeadOutput<B: Backend> {
    /// Batch-mean loss (a 1-element tensor), including MagFace's regulariser.
    pub loss: Tensor<B, 1>,
    /// `B×C` logits, the target column with its margin applied.
    pub logits: Tensor<B, 2>,
}

/// A contiguous block of classes `first_class ..` whose centres live on one device.
#[derive(Debug, Clone)]
pub struct CentreShard<B: Backend> {
    /// `classes·K × D` centres, row `c·K + j` = sub-centre `j` of class `first_class + c`.
    pub centres: Tensor<B, 2>,
    /// Global id of the shard's first class; shards must be given in order, each
    /// starting where the previous one ends (the first at 0).
    pub first_class: usize,
}

/// Loss and per-shard logits of one batch (each on its shard's device).
#[derive(Debug, Clone)]
pub struct ShardedOutput<B: Backend> {
    /// Batch-mean loss (a 1-element tensor on the features' device), including MagFace's regulariser.
    pub loss: Tensor<B, 1>,
    /// One `B × classes` logit matrix per shard, in shard order, on the shard's device;
    /// a sample's target column carries its margin in the shard that holds its label.
    pub shard_logits: Vec<Tensor<B, 2>>,
}

/// Where a process sits among those that split the class centres
/// ([`MarginHead::forward_split`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitRank {
    /// This process, `0..processes`.
    pub rank: usize,
    /// Processes that hold a shard of the centres, at least 1.
    pub processes: usize,
}

/// One process's result of [`MarginHead::forward_split`].
#[derive(Debug, Clone)]
pub struct SplitOutput<B: Backend> {
    /// The batch-mean loss over every process's classes (detached, 1
    /// element), the same on every process.
    pub loss: Tensor<B, 1>,
    /// What to call `backward` on: its gradient is this process's part of
    /// the loss's gradient (see [`MarginHead::forward_split`]).
    pub surrogate: Tensor<B, 1>,
    /// `B × classes` logits of this process's shard.
    pub logits: Tensor<B, 2>,
}

/// What each shard contributes before the softmax across shards.
struct ShardTerms<B: Backend> {
    shard_logits: Vec<Tensor<B, 2>>,
    /// `B × 1` on the features' device: the target logits, zero where no shard holds the class.
    target_logit: Tensor<B, 2>,
    regulariser: Option<Tensor<B, 1>>,
    next_adaface_state: Option<AdaFaceState>,
}

/// A validated head: its [`HeadConfig`] plus, for AdaFace, the running norm statistics.
/// Serialises both, so a checkpoint restores the head exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginHead {
    config: HeadConfig,
    /// Present for AdaFace only.
    adaface_state: Option<AdaFaceState>,
}

/// Per-row quantities that some heads need besides the target cosine.
enum RowInputs<B: Backend> {
    None,
    /// MagFace: raw feature norms (with gradient).
    Norms(Tensor<B, 2>),
    /// AdaFace: the detached quality indicator ŝ.
    Indicator(Tensor<B, 2>),
}

impl MarginHead {
    /// Validates the parameters (MagFace's λ_g bound included); AdaFace starts from
    /// [`AdaFaceState::default`] (μ = 20, σ = 100).
    ///
    /// # Errors
    /// Whatever [`HeadConfig::validate`] reports.
    pub fn new(config: HeadConfig) -> Result<Self, HeadError> {
        config.validate()?;
        let adaface_state = matches!(config, HeadConfig::AdaFace(_)).then(AdaFaceState::default);
        Ok(Self { config, adaface_state })
    }

    /// The parameters the head was built with.
    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// AdaFace's running statistics after the last accepted batch; `None` for every other head.
    pub fn adaface_state(&self) -> Option<AdaFaceState> {
        self.adaface_state
    }

    /// Restore AdaFace's running statistics (from a checkpoint, say); ignored by other heads.
    pub fn set_adaface_state(&mut self, state: AdaFaceState) {
        if self.adaface_state.is_some() {
            self.adaface_state = Some(state);
        }
    }

    /// One training batch with every class centre in one tensor.
    /// `features` is `B×D` raw (unnormalised) backbone output; `centres` is `C·K × D`;
    /// `labels` holds `B` class indices `0..C`. AdaFace's running statistics are updated
    /// first, as the spec requires, and only if the batch is accepted.
    ///
    /// # Errors
    /// [`HeadError::Shape`] (empty batch, label count ≠ B, width mismatch, centre rows not a
    /// multiple of K), [`HeadError::LabelOutOfRange`], [`HeadError::ZeroNorm`] /
    /// [`HeadError::NonFinite`] for a feature row (every head) or a centre row (cosine heads),
    /// and [`HeadError::BatchTooSmall`] for AdaFace with B < 2.
    pub fn forward<B: Backend>(&mut self, features: Tensor<B, 2>, centres: Tensor<B, 2>, labels: &[usize]) -> Result<HeadOutput<B>, HeadError> {
        let shard = CentreShard { centres, first_class: 0 };
        let mut output = self.forward_sharded(features, std::slice::from_ref(&shard), labels)?;
        Ok(HeadOutput { loss: output.loss, logits: output.shard_logits.remove(0) })
    }

    /// One training batch with the class centres split over contiguous shards,
    /// possibly on different devices. The loss lives on `features`' device.
    /// Same inputs and errors as [`forward`](Self::forward), with `C` the total over shards.
    pub fn forward_sharded<B: Backend>(
        &mut self,
        features: Tensor<B, 2>,
        shards: &[CentreShard<B>],
        labels: &[usize],
    ) -> Result<ShardedOutput<B>, HeadError> {
        let [batch, dim] = features.dims();
        let per_class = self.config.centres_per_class();
        let shard_classes = check_shapes(shards, batch, dim, per_class, labels)?;
        let home = features.device();
        let local_labels: Vec<Vec<Option<usize>>> = shards
            .iter()
            .zip(&shard_classes)
            .map(|(shard, &classes)| {
                labels
                    .iter()
                    .map(|&label| (shard.first_class..shard.first_class + classes).contains(&label).then(|| label - shard.first_class))
                    .collect()
            })
            .collect();
        let terms = self.shard_terms(features, shards, &shard_classes, &local_labels)?;
        let log_partition = sharded_log_sum_exp(&terms.shard_logits, &home);
        let mut loss = (log_partition - terms.target_logit).mean();
        if let Some(regulariser) = terms.regulariser {
            loss = loss + regulariser;
        }
        self.adaface_state = terms.next_adaface_state;
        Ok(ShardedOutput { loss, shard_logits: terms.shard_logits })
    }

    /// This process's part of one training batch when the class centres are
    /// split across processes (Partial FC's model parallelism, arcface_torch's
    /// `PartialFC_V2`): every process holds the whole batch's `features`
    /// (gathered) and one shard of the centres, and `all_reduce` sums a tensor
    /// over all processes (every process must call it as often, with the same
    /// shape). Two sums make the softmax exact: the row maxima (each process
    /// fills its own row of a `processes × B` block, so the sum is a gather
    /// and the maximum is the one-shard head's, exactly) and the row sums of
    /// `exp` with the target logits. `local_labels[i]` is sample `i`'s column
    /// in this shard, `None` when another process holds its class; with one
    /// process the result is [`forward_sharded`](Self::forward_sharded)'s on
    /// one shard, to the bit.
    ///
    /// The returned `surrogate` is what to differentiate: its gradient with
    /// respect to the features is this process's part of the loss's (sum the
    /// parts over processes) and with respect to the shard's centres it is the
    /// loss's. MagFace's regulariser, a function of the features alone, is in
    /// the surrogate of process 0 only, so the sum counts it once.
    ///
    /// # Errors
    /// Those of [`forward_sharded`](Self::forward_sharded) for this shard
    /// (labels are checked as columns of the shard), [`HeadError::Unsupported`]
    /// for SV-AM-Softmax (its support vectors need the target cosine from
    /// the process that holds it) and whatever `all_reduce` returns.
    pub fn forward_split<B: Backend, E: From<HeadError>>(
        &mut self,
        features: Tensor<B, 2>,
        shard: &CentreShard<B>,
        local_labels: &[Option<usize>],
        split: SplitRank,
        mut all_reduce: impl FnMut(Tensor<B, 2>) -> Result<Tensor<B, 2>, E>,
    ) -> Result<SplitOutput<B>, E> {
        if matches!(self.config, HeadConfig::SvAm(_)) {
            return Err(HeadError::Unsupported {
                head: "svam",
                what: "its support vectors are decided against the target cosine, which one process holds; it cannot split its class centres across processes".into(),
            }
            .into());
        }
        if split.processes == 0 || split.rank >= split.processes {
            return Err(HeadError::Shape {
                what: format!("process {} of {}: the rank must be below the process count", split.rank, split.processes),
            }
            .into());
        }
        let [batch, dim] = features.dims();
        let per_class = self.config.centres_per_class();
        let [rows, centre_dim] = shard.centres.dims();
        if local_labels.len() != batch {
            return Err(HeadError::Shape { what: format!("embeddings has {batch} rows but labels has {} entries", local_labels.len()) }.into());
        }
        if batch == 0 {
            return Err(HeadError::Shape { what: "the batch is empty".into() }.into());
        }
        if centre_dim != dim {
            return Err(HeadError::Shape { what: format!("embeddings have {dim} columns but weights have {centre_dim}") }.into());
        }
        if rows == 0 || rows % per_class != 0 {
            return Err(HeadError::Shape {
                what: format!("weights has {rows} rows: expected a positive multiple of k = {per_class} (rows = classes × k)"),
            }
            .into());
        }
        let classes = rows / per_class;
        if let Some((index, label)) = local_labels.iter().enumerate().find_map(|(i, l)| l.filter(|&l| l >= classes).map(|l| (i, l))) {
            return Err(HeadError::LabelOutOfRange { index, label: label as i64, classes }.into());
        }
        let home = features.device();
        let terms = self.shard_terms(features, std::slice::from_ref(shard), &[classes], &[local_labels.to_vec()])?;
        let logits = terms.shard_logits.into_iter().next().expect("one shard");

        // Row maxima: this process's in row `rank` of a zero block, summed.
        let local_max = on_device(logits.clone().detach().max_dim(1), &home).reshape([1, batch]);
        let (above, below) = (split.rank, split.processes - split.rank - 1);
        let mut blocks = Vec::with_capacity(3);
        if above > 0 {
            blocks.push(Tensor::zeros([above, batch], &home));
        }
        blocks.push(local_max);
        if below > 0 {
            blocks.push(Tensor::zeros([below, batch], &home));
        }
        let block = Tensor::cat(blocks, 0);
        let row_max = all_reduce(block)?.max_dim(0).reshape([batch, 1]);

        let shifted = logits.clone() - on_device(row_max.clone(), &logits.device());
        let local_sum = on_device(shifted.clamp_min(EXP_FLOOR).exp().sum_dim(1), &home);
        let summed = all_reduce(Tensor::cat(vec![local_sum.clone().detach(), terms.target_logit.clone().detach()], 1))?;
        let sum_exp = summed.clone().slice([0..batch, 0..1]);
        let target_logit = summed.slice([0..batch, 1..2]);

        let mut loss = (sum_exp.clone().log() + row_max - target_logit).mean();
        // d/dz of Σ_local exp(z − max) / Σ_all exp(z − max) is the softmax,
        // the gradient of the log-partition: the same as the one-shard head's.
        let mut surrogate = (local_sum / sum_exp - terms.target_logit).mean();
        if let Some(regulariser) = terms.regulariser {
            loss = loss + regulariser.clone().detach();
            if split.rank == 0 {
                surrogate = surrogate + regulariser;
            }
        }
        self.adaface_state = terms.next_adaface_state;
        Ok(SplitOutput { loss: loss.detach(), surrogate, logits })
    }

    /// Per shard, the `B × classes` logits with the margin in each sample's
    /// target column (`local_labels[shard][i]`, `None` where the shard does not
    /// hold the class), the target logits summed over the shards (`B × 1`,
    /// zero where no shard holds the class), MagFace's regulariser and the
    /// AdaFace state the batch leads to. Nothing of `self` changes.
    fn shard_terms<B: Backend>(
        &self,
        features: Tensor<B, 2>,
        shards: &[CentreShard<B>],
        shard_classes: &[usize],
        local_labels: &[Vec<Option<usize>>],
    ) -> Result<ShardTerms<B>, HeadError> {
        let [batch, _] = features.dims();
        let per_class = self.config.centres_per_class();
        let home = features.device();

        let feature_norms = row_norms(features.clone());
        let host_norms = host_values(feature_norms.clone());
        check_rows("embeddings", &host_norms, 0)?;

        let is_softmax = matches!(self.config, HeadConfig::Softmax(_));
        let directions = if is_softmax { features } else { features / feature_norms.clone() };

        // AdaFace's statistics move only once the whole batch has been accepted.
        let mut next_adaface_state = self.adaface_state;
        let (row_inputs, regulariser) = match &self.config {
            HeadConfig::MagFace(config) => {
                let regulariser = config.regulariser(feature_norms.clone());
                (RowInputs::Norms(feature_norms), Some(regulariser))
            }
            HeadConfig::AdaFace(config) => {
                let state = next_adaface_state.get_or_insert_with(AdaFaceState::default);
                let indicator = config.norm_indicator(&host_norms, state)?;
                (RowInputs::Indicator(column(&indicator, &home)), None)
            }
            _ => (RowInputs::None, None),
        };

        // Per shard: the sample's target column there (if its label lives in
        // that shard) and, for the cosine heads, the B × classes cosines.
        let mut prepared = Vec::with_capacity(shards.len());
        for ((shard, &classes), local_labels) in shards.iter().zip(shard_classes).zip(local_labels) {
            let device = shard.centres.device();
            let target_index =
                Tensor::<B, 2, Int>::from_data(TensorData::new(local_labels.iter().map(|l| l.unwrap_or(0) as i64).collect(), [batch, 1]), &device);
            let no_target = Tensor::<B, 2, Bool>::from_data(TensorData::new(local_labels.iter().map(Option::is_none).collect(), [batch, 1]), &device);
            let rows = on_device(directions.clone(), &device);
            let cosines = if is_softmax { None } else { Some(self.class_cosines(rows.clone(), shard, classes, per_class)?) };
            prepared.push((rows, target_index, no_target, cosines));
        }
        // SV-AM-Softmax decides its support vectors against the target cosine,
        // which lives in one shard: all-reduce it (detached, as the indicator is).
        let support_threshold = match &self.config {
            HeadConfig::SvAm(config) => {
                let cos_target = prepared
                    .iter()
                    .map(|(_, target_index, no_target, cosines)| {
                        let cosines = cosines.as_ref().expect("svam is a cosine head").clone().detach();
                        on_device(cosines.gather(1, target_index.clone()).clamp(-1.0, 1.0).mask_fill(no_target.clone(), 0.0), &home)
                    })
                    .reduce(|a, b| a + b)
                    .expect("at least one shard");
                Some(cos_target - config.m)
            }
            _ => None,
        };

        let mut shard_logits = Vec::with_capacity(shards.len());
        let mut target_columns = Vec::with_capacity(shards.len());
        for (shard, (rows, target_index, no_target, cosines)) in shards.iter().zip(prepared) {
            let device = shard.centres.device();
            let (logits, target_logit) = match cosines {
                None => {
                    let logits = rows.matmul(shard.centres.clone().transpose());
                    let target_logit = logits.clone().gather(1, target_index);
                    (logits, target_logit)
                }
                Some(cosines) => {
                    let cos_target = cosines.clone().gather(1, target_index.clone()).clamp(-1.0, 1.0);
                    let target_logit = self.target_logit(cos_target.clone(), &row_inputs, &device);
                    let scale = self.config.scale().expect("cosine heads have a scale");
                    let mut scaled = cosines.clone() * scale;
                    if let (HeadConfig::SvAm(config), Some(threshold)) = (&self.config, &support_threshold) {
                        scaled = scaled + support_vector_boost(cosines, on_device(threshold.clone(), &device), &target_index, &no_target, config);
                    }
                    // Only the target column changes: add (target − s·cos_target) there.
                    // A B×1 scatter-add keeps the backward pass B×1 too (a gather).
                    let correction = (target_logit.clone() - cos_target * scale).mask_fill(no_target.clone(), 0.0);
                    let logits = scaled.scatter(1, target_index, correction, IndexingUpdateOp::Add);
                    (logits, target_logit)
                }
            };
            target_columns.push(on_device(target_logit.mask_fill(no_target, 0.0), &home));
            shard_logits.push(logits);
        }

        let target_logit = target_columns.into_iter().reduce(|a, b| a + b).expect("at least one shard");
        Ok(ShardTerms { shard_logits, target_logit, regulariser, next_adaface_state })
    }

    /// `B × classes` cosines between unit features and the shard's classes
    /// (the max over sub-centres for sub-center ArcFace).
    fn class_cosines<B: Backend>(
        &self,
        unit_features: Tensor<B, 2>,
        shard: &CentreShard<B>,
        classes: usize,
        per_class: usize,
    ) -> Result<Tensor<B, 2>, HeadError> {
        let [batch, _] = unit_features.dims();
        let centre_norms = row_norms(shard.centres.clone());
        check_rows("weights", &host_values(centre_norms.clone()), shard.first_class * per_class)?;
        let unit_centres = shard.centres.clone() / centre_norms;
        // Unit vectors give |cos| ≤ 1 up to rounding. The [−1, 1] clamp matters only
        // where acos/√(1−c²) follow, i.e. the target column, which the caller clamps
        // (B×1); clamping all B×C entries would cost six passes for a 1e-7 change.
        let mut cosines = unit_features.matmul(unit_centres.transpose());
        if per_class > 1 {
            cosines = cosines.reshape([batch, classes, per_class]).max_dim(2).reshape([batch, classes]);
        }
        if let HeadConfig::AdaFace(config) = &self.config {
            cosines = config.clamp_cosines(cosines);
        }
        Ok(cosines)
    }

    /// Scaled target logits (`B×1`) from the target cosines.
    fn target_logit<B: Backend>(&self, cos_target: Tensor<B, 2>, row_inputs: &RowInputs<B>, device: &B::Device) -> Tensor<B, 2> {
        match (&self.config, row_inputs) {
            (HeadConfig::NormFace(c), _) => cos_target * c.s,
            (HeadConfig::SphereFace(c), _) => c.target_logit(cos_target),
            (HeadConfig::CosFace(c), _) => c.target_logit(cos_target),
            (HeadConfig::SvAm(c), _) => c.cosface().target_logit(cos_target),
            (HeadConfig::ArcFace(c), _) => c.target_logit(cos_target),
            (HeadConfig::Combined(c), _) => c.target_logit(cos_target),
            (HeadConfig::SubCenter(c), _) => c.arcface().target_logit(cos_target),
            (HeadConfig::MagFace(c), RowInputs::Norms(norms)) => c.target_logit(cos_target, on_device(norms.clone(), device)),
            (HeadConfig::AdaFace(c), RowInputs::Indicator(indicator)) => c.target_logit(cos_target, on_device(indicator.clone(), device)),
            (config, _) => unreachable!("{} has no cosine target rule or lacks its row inputs", config.kind()),
        }
    }
}

/// SV-AM-Softmax's change to the non-target logits of one shard: a support
/// vector's logit `s·(t·cos + t − 1)` is `s·cos + s·(t − 1)·(cos + 1)`, so this
/// returns `s·(t − 1)·(cos + 1)·I` with the detached indicator
/// `I = [cos > cos_target − m]`, zero in the target column (whose margin the
/// caller applies). The gradient through a support vector's cosine is `s·t`.
fn support_vector_boost<B: Backend>(
    cosines: Tensor<B, 2>,
    threshold: Tensor<B, 2>,
    target_index: &Tensor<B, 2, Int>,
    no_target: &Tensor<B, 2, Bool>,
    config: &crate::heads::svam::SvAmConfig,
) -> Tensor<B, 2> {
    let indicator = (cosines.clone().detach() - threshold).greater_elem(0.0).float();
    // The target column always passes its own test (m ≥ 0): take it out.
    let in_target = indicator.clone().gather(1, target_index.clone()).mask_fill(no_target.clone(), 0.0);
    let indicator = indicator.scatter(1, target_index.clone(), in_target.neg(), IndexingUpdateOp::Add);
    (cosines + 1.0) * indicator * (config.s * (config.t - 1.0))
}

/// Floor under max-shifted logits before `exp`. At s = 64 logits span up to 128,
/// so shifted values below −88 are common; their `exp` underflows to 0 through
/// libm's slow error path (measured: ~15 % of a head's CPU time). `e^−80 ≈ 2e−35`
/// next to the max term's `e^0 = 1` changes no f32 sum, and the true gradient
/// there is as small, so the floor changes neither loss nor gradient in f32.
const EXP_FLOOR: f64 = -80.0;

/// `log Σ_j exp(z_ij)` over the classes of every shard: an all-reduced row max
/// (detached; the max cancels from the gradient exactly) and an all-reduced sum.
fn sharded_log_sum_exp<B: Backend>(shard_logits: &[Tensor<B, 2>], home: &B::Device) -> Tensor<B, 2> {
    let row_max = shard_logits
        .iter()
        .map(|logits| on_device(logits.clone().detach().max_dim(1), home))
        .reduce(|a, b| a.max_pair(b))
        .expect("at least one shard");
    let sum_exp = shard_logits
        .iter()
        .map(|logits| {
            let shifted = logits.clone() - on_device(row_max.clone(), &logits.device());
            on_device(shifted.clamp_min(EXP_FLOOR).exp().sum_dim(1), home)
        })
        .reduce(|a, b| a + b)
        .expect("at least one shard");
    sum_exp.log() + row_max
}

fn check_shapes<B: Backend>(
    shards: &[CentreShard<B>],
    batch: usize,
    dim: usize,
    per_class: usize,
    labels: &[usize],
) -> Result<Vec<usize>, HeadError> {
    if shards.is_empty() {
        return Err(HeadError::Shape { what: "no class centres were given".into() });
    }
    if labels.len() != batch {
        return Err(HeadError::Shape { what: format!("embeddings has {batch} rows but labels has {} entries", labels.len()) });
    }
    if batch == 0 {
        return Err(HeadError::Shape { what: "the batch is empty".into() });
    }
    let mut shard_classes = Vec::with_capacity(shards.len());
    let mut classes_so_far = 0;
    for (index, shard) in shards.iter().enumerate() {
        let [rows, centre_dim] = shard.centres.dims();
        if centre_dim != dim {
            return Err(HeadError::Shape { what: format!("embeddings have {dim} columns but weights (shard {index}) have {centre_dim}") });
        }
        if rows == 0 || rows % per_class != 0 {
            return Err(HeadError::Shape {
                what: format!("weights (shard {index}) has {rows} rows: expected a positive multiple of k = {per_class} (rows = classes × k)"),
            });
        }
        if shard.first_class != classes_so_far {
            return Err(HeadError::Shape {
                what: format!("shard {index} starts at class {} but the shards before it end at {classes_so_far}", shard.first_class),
            });
        }
        classes_so_far += rows / per_class;
        shard_classes.push(rows / per_class);
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &label)| label >= classes_so_far) {
        return Err(HeadError::LabelOutOfRange { index, label: label as i64, classes: classes_so_far });
    }
    Ok(shard_classes)
}

/// Zero or non-finite norms make the cosine undefined: refuse them by row.
fn check_rows(tensor: &'static str, norms: &[f64], first_row: usize) -> Result<(), HeadError> {
    for (offset, &norm) in norms.iter().enumerate() {
        if !norm.is_finite() {
            return Err(HeadError::NonFinite { tensor, row: first_row + offset });
        }
        if norm == 0.0 {
            return Err(HeadError::ZeroNorm { tensor, row: first_row + offset });
        }
    }
    Ok(())
}

/// Reads a tensor back to the host as f64, whatever its element type.
pub(crate) fn host_values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f64> {
    tensor.into_data().convert::<f64>().into_vec::<f64>().expect("converted to f64 above")
}

fn column<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}

fn on_device<B: Backend, const D: usize>(tensor: Tensor<B, D>, device: &B::Device) -> Tensor<B, D> {
    if tensor.device() == *device {
        tensor
    } else {
        tensor.to_device(device)
    }
}
