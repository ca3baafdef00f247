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

/// The centres split into slices of `split` classes, each slice held by a
/// process of its own (a thread here) that sees every feature, through
/// [`PartialFc::forward_split`] with an in-memory all-reduce (sums in rank
/// order). The features' gradients of the processes are summed, the
/// centres' re-assembled.
pub fn evaluate_split(
    config: HeadConfig,
    features: &[f32],
    centres: &[f32],
    labels: &[usize],
    split: usize,
    partial_fc: PartialFcConfig,
) -> Result<Evaluated, HeadError> {
    use std::sync::{Barrier, Mutex};
    use visage_heads::SplitRank;
    let per_class = config.centres_per_class();
    let dim = features.len() / labels.len();
    let classes = centres.len() / dim / per_class;
    let slices: Vec<&[f32]> = centres.chunks(split * per_class * dim).collect();
    let processes = slices.len();
    let barrier = Barrier::new(processes);
    let posted: Mutex<Vec<Vec<f32>>> = Mutex::new(vec![Vec::new(); processes]);
    let results: Vec<Result<Evaluated, HeadError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = slices
            .iter()
            .enumerate()
            .map(|(rank, slice)| {
                let (barrier, posted) = (&barrier, &posted);
                scope.spawn(move || -> Result<Evaluated, HeadError> {
                    let mut head = MarginHead::new(config)?;
                    let pfc = PartialFc::new(partial_fc)?;
                    let x = tensor(features, labels.len()).require_grad();
                    let w = tensor(slice, slice.len() / dim).require_grad();
                    let shard = CentreShard { centres: w.clone(), first_class: rank * split };
                    let all_reduce = |t: Tensor<Backend, 2>| -> Result<Tensor<Backend, 2>, HeadError> {
                        let dims = t.dims();
                        posted.lock().unwrap()[rank] = t.into_data().into_vec::<f32>().unwrap();
                        barrier.wait();
                        let sum = {
                            let posted = posted.lock().unwrap();
                            posted.iter().skip(1).fold(posted[0].clone(), |acc, v| acc.iter().zip(v).map(|(a, b)| a + b).collect())
                        };
                        barrier.wait();
                        Ok(Tensor::from_data(TensorData::new(sum, dims), &Default::default()))
                    };
                    let split_rank = SplitRank { rank, processes };
                    let out = pfc.forward_split(&mut head, x.clone(), &shard, classes, labels, 0, split_rank, all_reduce)?;
                    // What a process keeps is Partial FC's sample of shard `rank`, nothing else.
                    let slice_classes = slice.len() / dim / per_class;
                    assert_eq!(out.sampled.classes, pfc.sample_shard(rank, rank * split, slice_classes, labels, 0));
                    let grads = out.output.surrogate.backward();
                    Ok(Evaluated {
                        loss: out.output.loss.into_data().into_vec::<f32>().unwrap()[0] as f64,
                        grad_features: read(x, &grads),
                        grad_centres: read(w, &grads),
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let losses: Vec<f64> = results.iter().map(|r| r.loss).collect();
    assert!(losses.iter().all(|l| l.to_bits() == losses[0].to_bits()), "every process computes the same loss: {losses:?}");
    let grad_features =
        results.iter().skip(1).fold(results[0].grad_features.clone(), |acc, r| acc.iter().zip(&r.grad_features).map(|(a, b)| a + b).collect());
    Ok(Evaluated { loss: losses[0], grad_features, grad_centres: results.into_iter().flat_map(|r| r.grad_centres).collect() })
}
