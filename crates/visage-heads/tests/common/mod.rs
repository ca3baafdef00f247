//! Helpers shared by the integration tests: run one batch through a head on the
//! CPU backend with autodiff and read back loss and both gradients.
#![allow(dead_code)]

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use visage_heads::{CentreShard, HeadConfig, HeadError, MarginHead, PartialFc, PartialFcConfig};

pub type Backend = Autodiff<Flex>;

#[derive(Debug, Clone)]
pub struct Evaluated {
    pub loss: f64,
    pub grad_features: Vec<f32>,
    pub grad_centres: Vec<f32>,
}

pub fn tensor(values: &[f32], rows: usize) -> Tensor<Backend, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, values.len() / rows]), &Default::default())
}

fn read(t: Tensor<Backend, 2>, grads: &<Backend as burn::tensor::backend::AutodiffBackend>::Gradients) -> Vec<f32> {
    let n = t.dims().iter().product();
    t.grad(grads).map(|g| g.into_data().into_vec::<f32>().unwrap()).unwrap_or_else(|| vec![0.0; n])
}

/// Full head, one shard.
pub fn evaluate(config: HeadConfig, features: &[f32], centres: &[f32], labels: &[usize]) -> Result<Evaluated, HeadError> {
    let mut head = MarginHead::new(config)?;
    let x = tensor(features, labels.len()).require_grad();
    let dim = features.len() / labels.len();
    let w = tensor(centres, centres.len() / dim).require_grad();
    let out = head.forward(x.clone(), w.clone(), labels)?;
    let grads = out.loss.backward();
    Ok(Evaluated { loss: out.loss.into_data().into_vec::<f32>().unwrap()[0] as f64, grad_features: read(x, &grads), grad_centres: read(w, &grads) })
}

/// The centres split into shards of `split` classes (the last may be smaller),
/// optionally through Partial FC; gradients of the centres are re-assembled.
pub fn evaluate_sharded(
    config: HeadConfig,
    features: &[f32],
    centres: &[f32],
    labels: &[usize],
    split: usize,
    partial_fc: Option<PartialFcConfig>,
) -> Result<Evaluated, HeadError> {
    let mut head = MarginHead::new(config)?;
    let per_class = config.centres_per_class();
    let dim = features.len() / labels.len();
    let rows_per_shard = split * per_class * dim;
    let x = tensor(features, labels.len()).require_grad();
    let pieces: Vec<Tensor<Backend, 2>> = centres.chunks(rows_per_shard).map(|c| tensor(c, c.len() / dim).require_grad()).collect();
    let shards: Vec<CentreShard<Backend>> =
        pieces.iter().enumerate().map(|(i, c)| CentreShard { centres: c.clone(), first_class: i * split }).collect();
    let loss = match partial_fc {
        Some(pfc) => PartialFc::new(pfc)?.forward(&mut head, x.clone(), &shards, labels, 0)?.output.loss,
        None => head.forward_sharded(x.clone(), &shards, labels)?.loss,
    };
    let grads = loss.backward();
    Ok(Evaluated {
        loss: loss.into_data().into_vec::<f32>().unwrap()[0] as f64,
        grad_features: read(x, &grads),
        grad_centres: pieces.into_iter().flat_map(|p| read(p, &grads)).collect(),
    })
}

pub fn assert_close(a: &Evaluated, b: &Evaluated, rtol: f64, what: &str) {
    let rel = |x: f64, y: f64, scale: f64| (x - y).abs() / scale.max(1e-6);
    assert!(rel(a.loss, b.loss, b.loss.abs()) < rtol, "{what}: loss {} vs {}", a.loss, b.loss);
    for (name, ga, gb) in [("features", &a.grad_features, &b.grad_features), ("centres", &a.grad_centres, &b.grad_centres)] {
        let scale = gb.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
        for (i, (&x, &y)) in ga.iter().zip(gb).enumerate() {
            assert!(rel(x as f64, y as f64, scale) < rtol, "{what}: grad {name}[{i}] {x} vs {y} (scale {scale})");
        }
    }
}
