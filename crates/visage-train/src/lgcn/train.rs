//! Training the linkage network: cross-entropy on every pivot's 1-hop
//! links (paper §3.3), over
//!
//! - the real labelled set as one scene, and scenes mixing a random half of
//!   its identities with synthetic ones;
//! - synthetic scenes drawn from a spread fitted to the real set
//!   ([`visage_eval::cluster::lgcn::synthetic`]),
//!
//! each scene's subgraphs built within the scene, as clustering will build
//! them within one collection, each scene turned by its own random rotation.
//! AdamW; the learning rate drops tenfold for the last quarter of the
//! epochs. The model keeps the merge threshold it is given (0.5: a link is
//! kept when the network finds it likelier than not); the threshold with the
//! best mean pairwise F on held-out synthetic scenes is reported beside it.
//! On the real sets that choice was worse than 0.5 (docs/clustering.md):
//! synthetic scenes are easier than real ones, so they favour high
//! thresholds that cost recall on real photos.
//! Everything random follows `seed`: the same inputs and seed give the same
//! model file.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use ndarray::{concatenate, Array2, Axis};
use visage_eval::cluster::distance::normalize_rows;
use visage_eval::cluster::lgcn::{
    fit_spread, knn_cosine, merge_links, permutation, pivot_subgraphs, random_rotation, IpsConfig, MergeConfig, PivotSubgraph, SceneConfig, SpreadFit,
};
use visage_eval::metrics::cluster_scores;
use visage_nn::{materialize, with_backend_rng};

use super::batch::subgraph_batch;
use super::cluster::link_likelihoods;
use super::file::{LgcnError, LgcnModel, LgcnSettings};
use super::model::LgcnConfig;

/// How to train.
#[derive(Debug, Clone)]
pub struct LgcnTrainOptions {
    /// Seed of every draw (scenes, initial weights, batch order).
    pub seed: u64,
    /// Passes over all subgraphs.
    pub epochs: usize,
    /// Subgraphs per step.
    pub batch_size: usize,
    /// AdamW's learning rate.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Synthetic scenes to train on.
    pub synthetic_scenes: usize,
    /// Scenes of a random half of the real identities plus synthetic ones.
    pub mixed_scenes: usize,
    /// Held-out synthetic scenes the merge threshold is chosen on.
    pub validation_scenes: usize,
    /// Sizes of synthetic scenes.
    pub scene: SceneConfig,
    /// Turn every training scene by its own random rotation, so the network
    /// learns geometry rather than where the training identities lie.
    pub rotate: bool,
    /// Subgraph sizes.
    pub ips: IpsConfig,
    /// Merge settings stored with the model.
    pub merge: MergeConfig,
    /// Widths; `input_dim` is taken from the embeddings.
    pub hidden: Vec<usize>,
    /// Classifier width.
    pub classifier_dim: usize,
    /// Written into the model's settings.
    pub trained_on: String,
}

impl Default for LgcnTrainOptions {
    fn default() -> Self {
        let network = LgcnConfig::new(0);
        LgcnTrainOptions {
            seed: 0,
            epochs: 4,
            batch_size: 32,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            synthetic_scenes: 200,
            mixed_scenes: 40,
            validation_scenes: 20,
            scene: SceneConfig::default(),
            rotate: true,
            ips: IpsConfig::default(),
            merge: MergeConfig::default(),
            hidden: network.hidden,
            classifier_dim: network.classifier_dim,
            trained_on: String::new(),
        }
    }
}

/// One epoch's mean loss and link accuracy (at probability ½).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochReport {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Share of links classified right.
    pub accuracy: f64,
}

/// What training did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LgcnTrainReport {
    /// Scenes trained on (real, mixed, synthetic).
    pub scenes: usize,
    /// Subgraphs per epoch.
    pub subgraphs: usize,
    /// Share of positive links among them.
    pub positive_share: f64,
    /// The fitted spread: mean and std of log s, face log std, identities used.
    pub spread: [f64; 4],
    /// Per epoch.
    pub epochs: Vec<EpochReport>,
    /// The threshold (0.30, 0.35, …, 0.95) with the best mean pairwise F on the
    /// held-out synthetic scenes (reported, not stored).
    pub synthetic_best_threshold: f64,
    /// That mean pairwise F.
    pub synthetic_best_pairwise_f: f64,
    /// Network parameters.
    pub parameters: usize,
    /// Wall time.
    pub seconds: f64,
}

struct Scene {
    unit: Array2<f64>,
    labels: Vec<i64>,
    subgraphs: Vec<PivotSubgraph>,
}

impl Scene {
    /// The scene's subgraphs, its embeddings turned by `rotation` first (if any).
    fn new(x: &Array2<f64>, labels: Vec<i64>, ips: &IpsConfig, rotation: Option<u64>) -> Scene {
        let mut unit = normalize_rows(x);
        if let Some(seed) = rotation {
            unit = unit.dot(&random_rotation(unit.ncols(), seed));
        }
        let knn = knn_cosine(&unit, ips.clamped(unit.nrows()).neighbours_needed());
        let subgraphs = pivot_subgraphs(&knn, ips);
        Scene { unit, labels, subgraphs }
    }
}

/// Noise labels (< 0) become identities of one face each, so they link to nothing.
fn singletons_for_noise(labels: &[i64]) -> Vec<i64> {
    let top = labels.iter().copied().max().unwrap_or(0).max(0) + 1;
    labels.iter().enumerate().map(|(i, &l)| if l < 0 { top + i as i64 } else { l }).collect()
}

/// A random half of the real identities (at least one) plus a synthetic scene.
fn mixed_scene(x: &Array2<f64>, labels: &[i64], fit: &SpreadFit, scene: &SceneConfig, seed: u64) -> (Array2<f64>, Vec<i64>) {
    let mut identities: Vec<i64> = labels.to_vec();
    identities.sort_unstable();
    identities.dedup();
    let order = permutation(identities.len(), seed);
    let kept: std::collections::HashSet<i64> = order.iter().take(identities.len().div_ceil(2)).map(|&i| identities[i]).collect();
    let rows: Vec<usize> = (0..labels.len()).filter(|&i| kept.contains(&labels[i])).collect();
    let real = x.select(Axis(0), &rows);
    let small = SceneConfig { min_identities: scene.min_identities / 2, max_identities: scene.max_identities / 2, ..*scene };
    let (synthetic, synthetic_labels) = fit.scene(&small, seed ^ 0x5eed);
    let offset = labels.iter().copied().max().unwrap_or(0) + 1;
    let all_labels = rows.iter().map(|&i| labels[i]).chain(synthetic_labels.iter().map(|l| l + offset)).collect();
    (concatenate(Axis(0), &[normalize_rows(&real).view(), synthetic.view()]).expect("same dimension"), all_labels)
}

/// Trains a model on labelled embeddings `x` (one row per face) and
/// synthetic scenes fitted to them.
pub fn train_lgcn<B: AutodiffBackend>(
    x: &Array2<f64>,
    labels: &[i64],
    options: &LgcnTrainOptions,
    device: &B::Device,
) -> Result<(LgcnModel<B::InnerBackend>, LgcnTrainReport), LgcnError> {
    let started = Instant::now();
    if labels.len() != x.nrows() {
        return Err(LgcnError::Invalid(format!("{} labels for {} embeddings", labels.len(), x.nrows())));
    }
    if options.ips.k1 == 0 || options.batch_size == 0 || options.epochs == 0 {
        return Err(LgcnError::Invalid("k1, the batch size and the epochs must be at least 1".into()));
    }
    let labels = singletons_for_noise(labels);
    let fit = fit_spread(x, &labels).map_err(|e| LgcnError::Invalid(e.to_string()))?;
    let seeds = |stream: u64, i: usize| options.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (stream << 48) ^ i as u64;

    let rotation = |stream: u64, i: usize| options.rotate.then(|| seeds(stream, i));
    let mut scenes = vec![Scene::new(x, labels.clone(), &options.ips, rotation(5, 0))];
    for i in 0..options.mixed_scenes {
        let (mx, ml) = mixed_scene(x, &labels, &fit, &options.scene, seeds(1, i));
        scenes.push(Scene::new(&mx, ml, &options.ips, rotation(6, i)));
    }
    for i in 0..options.synthetic_scenes {
        let (sx, sl) = fit.scene(&options.scene, seeds(2, i));
        scenes.push(Scene::new(&sx, sl, &options.ips, rotation(7, i)));
    }
    // one 1-hop count per batch: sets too small for k1 neighbours are left out
    scenes.retain(|s| s.unit.nrows() > options.ips.k1);
    if scenes.is_empty() {
        return Err(LgcnError::Invalid(format!("every scene has at most k1 = {} faces", options.ips.k1)));
    }
    let samples: Vec<(usize, usize)> = scenes.iter().enumerate().flat_map(|(s, scene)| (0..scene.subgraphs.len()).map(move |g| (s, g))).collect();
    let truths: Vec<Vec<bool>> = samples.iter().map(|&(s, g)| scenes[s].subgraphs[g].link_truth(&scenes[s].labels)).collect();
    let positives = truths.iter().flatten().filter(|&&t| t).count();
    let links = truths.iter().map(Vec::len).sum::<usize>();

    let network_config = LgcnConfig { input_dim: x.ncols(), hidden: options.hidden.clone(), classifier_dim: options.classifier_dim };
    let mut network = with_backend_rng::<B, _>(device, options.seed, || {
        let network = network_config.init::<B>(device);
        materialize(&network);
        network
    });
    let mut optimizer = AdamWConfig::new().with_weight_decay(options.weight_decay).init();
    let mut epochs = Vec::new();
    let drop_at = (options.epochs * 3).div_ceil(4);
    for epoch in 0..options.epochs {
        let lr = if epoch < drop_at { options.learning_rate } else { options.learning_rate * 0.1 };
        let order = permutation(samples.len(), seeds(3, epoch));
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for chunk in order.chunks(options.batch_size) {
            let items: Vec<_> = chunk.iter().map(|&i| (&scenes[samples[i].0].subgraphs[samples[i].1], &scenes[samples[i].0].unit)).collect();
            let batch = subgraph_batch::<B>(&items, device);
            let targets: Vec<f32> = chunk.iter().flat_map(|&i| truths[i].iter().flat_map(|&t| if t { [0.0, 1.0] } else { [1.0, 0.0] })).collect();
            let rows = chunk.len() * batch.one_hop;
            let logits = network.forward(batch.features, batch.adjacency, batch.one_hop).reshape([rows, 2]);
            let log_p = log_softmax(logits, 1);
            let target = Tensor::<B, 2>::from_data(TensorData::new(targets.clone(), [rows, 2]), device);
            let loss = (log_p.clone() * target).sum().neg() / rows as f64;
            let log_p_host = log_p.clone().into_data().convert::<f32>().to_vec::<f32>().expect("f32");
            correct += log_p_host.chunks_exact(2).zip(targets.chunks_exact(2)).filter(|(p, t)| (p[1] > p[0]) == (t[1] > 0.5)).count();
            seen += rows;
            loss_sum += loss.clone().into_scalar().elem::<f64>() * rows as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &network);
            network = optimizer.step(lr, network, grads);
        }
        epochs.push(EpochReport { loss: loss_sum / seen.max(1) as f64, accuracy: correct as f64 / seen.max(1) as f64 });
    }

    let network = network.valid();
    let inner_device = device.clone();
    let (synthetic_best_threshold, synthetic_best_pairwise_f) = choose_threshold(&network, &fit, options, &inner_device, |i| seeds(4, i));
    let settings = LgcnSettings { network: network_config, ips: options.ips, merge: options.merge, trained_on: options.trained_on.clone() };
    let model = LgcnModel { network, settings };
    let report = LgcnTrainReport {
        scenes: scenes.len(),
        subgraphs: samples.len(),
        positive_share: positives as f64 / links.max(1) as f64,
        spread: [fit.log_spread_mean, fit.log_spread_std, fit.face_log_std, fit.identities as f64],
        epochs,
        synthetic_best_threshold,
        synthetic_best_pairwise_f,
        parameters: model.parameters(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, report))
}

/// The merge threshold (0.30, 0.35, …, 0.95) with the best mean pairwise F
/// over held-out synthetic scenes; ties to the lower threshold.
fn choose_threshold<B: burn::tensor::backend::Backend>(
    network: &super::model::LinkageGcn<B>,
    fit: &SpreadFit,
    options: &LgcnTrainOptions,
    device: &B::Device,
    seed: impl Fn(usize) -> u64,
) -> (f64, f64) {
    let scenes: Vec<(usize, Vec<i64>, Vec<visage_eval::cluster::lgcn::Link>)> = (0..options.validation_scenes)
        .map(|i| {
            let (x, labels) = fit.scene(&options.scene, seed(i));
            (x.nrows(), labels, link_likelihoods(network, &x, &options.ips, device))
        })
        .collect();
    let candidates: Vec<f64> = (6..=19).map(|i| i as f64 * 0.05).collect();
    let mut best = (options.merge.threshold, f64::NEG_INFINITY);
    for &t in &candidates {
        let merge = MergeConfig { threshold: t, ..options.merge };
        let f = scenes.iter().map(|(n, labels, links)| cluster_scores(labels, &merge_links(*n, links, &merge)).pairwise_f).sum::<f64>()
            / scenes.len().max(1) as f64;
        if f > best.1 + 1e-12 {
            best = (t, f);
        }
    }
    if scenes.is_empty() {
        best.1 = f64::NAN;
    }
    best
}
