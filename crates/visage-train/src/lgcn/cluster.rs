//! Embeddings → pivot subgraphs → link likelihoods → clusters.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use ndarray::Array2;
use visage_eval::cluster::distance::normalize_rows;
use visage_eval::cluster::lgcn::{knn_cosine, merge_links, pivot_subgraphs, IpsConfig, Link, MergeConfig};

use super::batch::subgraph_batch;
use super::model::LinkageGcn;

/// Subgraphs per forward pass at inference.
const BATCH: usize = 256;

/// Every pivot→1-hop link of the rows of `x` with its predicted probability.
pub fn link_likelihoods<B: Backend>(model: &LinkageGcn<B>, x: &Array2<f64>, ips: &IpsConfig, device: &B::Device) -> Vec<Link> {
    if x.nrows() < 2 {
        return Vec::new();
    }
    let unit = normalize_rows(x);
    let knn = knn_cosine(&unit, ips.clamped(unit.nrows()).neighbours_needed());
    let subgraphs = pivot_subgraphs(&knn, ips);
    let mut links = Vec::with_capacity(subgraphs.len() * ips.k1);
    for chunk in subgraphs.chunks(BATCH) {
        let items: Vec<_> = chunk.iter().map(|g| (g, &unit)).collect();
        let batch = subgraph_batch::<B>(&items, device);
        let logits = model.forward(batch.features, batch.adjacency, batch.one_hop);
        let probability = softmax(logits, 2).into_data().convert::<f32>().to_vec::<f32>().expect("f32 logits");
        for (b, g) in chunk.iter().enumerate() {
            for (k, &position) in g.one_hop.iter().enumerate() {
                let p = probability[(b * batch.one_hop + k) * 2 + 1];
                links.push(Link { pivot: g.pivot, neighbour: g.nodes[position], probability: p as f64 });
            }
        }
    }
    links
}

/// Cluster labels `0..` for the rows of `x` (one face per row).
pub fn cluster<B: Backend>(model: &LinkageGcn<B>, x: &Array2<f64>, ips: &IpsConfig, merge: &MergeConfig, device: &B::Device) -> Vec<i64> {
    merge_links(x.nrows(), &link_likelihoods(model, x, ips, device), merge)
}
