//! What every training step computes, whether it runs on one device
//! ([`crate::trainer`]) or as shards on several ([`crate::parallel`]): the
//! margin head's loss on a batch of features with the batch's top-1 count,
//! and the seeding of the backend's generator for the step's forward pass.
//!
//! Both step paths depend on this module and `trainer` depends on
//! `parallel`, never the other way round.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use visage_heads::{CentreShard, HeadError, MarginHead, PartialFc};

use crate::config::TrainConfig;
use crate::model::with_backend_rng;

/// The head's loss on `features` (`N × D`) against `centres`
/// (`classes·K × D`) and `labels` (`N`), and how many rows the logits rank
/// their own class first. With Partial FC the count is `None`: its logits
/// cover only the sampled classes, so top-1 would not mean the same. `head`
/// is updated in place (AdaFace's running statistics).
pub(crate) fn head_loss<B: Backend>(
    head: &mut MarginHead,
    partial_fc: Option<&PartialFc>,
    features: Tensor<B, 2>,
    centres: Tensor<B, 2>,
    labels: &[usize],
    step: u64,
) -> Result<(Tensor<B, 1>, Option<usize>), HeadError> {
    match partial_fc {
        Some(pfc) => {
            let shard = CentreShard { centres, first_class: 0 };
            Ok((pfc.forward(head, features, std::slice::from_ref(&shard), labels, step)?.output.loss, None))
        }
        None => {
            let output = head.forward(features, centres, labels)?;
            Ok((output.loss, Some(correct_top1(output.logits, labels))))
        }
    }
}

/// Rows of `logits` (`N × classes`) whose largest entry is in their label's
/// column (the lowest index wins a tie, as burn's `argmax`).
pub(crate) fn correct_top1<B: Backend>(logits: Tensor<B, 2>, labels: &[usize]) -> usize {
    let predicted = logits.argmax(1).into_data();
    let predicted: Vec<i64> = predicted.convert::<i64>().to_vec().unwrap_or_default();
    predicted.iter().zip(labels).filter(|(p, l)| **p as usize == **l).count()
}

/// Runs one step's forward pass. Dropout draws from the backend's generator,
/// so with dropout it runs seeded per step (a resumed step draws the same
/// masks); without, it touches the generator not at all.
pub(crate) fn with_step_rng<B: Backend, T>(config: &TrainConfig, device: &B::Device, step: u64, forward: impl FnOnce() -> T) -> T {
    if config.backbone.dropout > 0.0 {
        with_backend_rng::<B, _>(device, step_seed(config.seed, step), forward)
    } else {
        forward()
    }
}

/// The backend seed of one step: SplitMix64 of (run seed, step), so steps
/// draw unrelated dropout masks and a resumed step draws the same one.
fn step_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
