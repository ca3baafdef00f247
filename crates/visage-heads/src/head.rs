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
        for (shard, &classes) in shards.iter().zip(&shard_classes) {
            let device = shard.centres.device();
            let local_labels: Vec<Option<usize>> = labels
                .iter()
                .map(|&label| (shard.first_class..shard.first_class + classes).contains(&label).then(|| label - shard.first_class))
                .collect();
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

        let log_partition = sharded_log_sum_exp(&shard_logits, &home);
        let target_logit = target_columns.into_iter().reduce(|a, b| a + b).expect("at least one shard");
        let mut loss = (log_partition - target_logit).mean();
        if let Some(regulariser) = regulariser {
            loss = loss + regulariser;
        }
        self.adaface_state = next_adaface_state;
        Ok(ShardedOutput { loss, shard_logits })
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
