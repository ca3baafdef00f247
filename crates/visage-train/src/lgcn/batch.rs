//! Instance pivot subgraphs padded into one batch of tensors: node features
//! `[batch, nodes, dim + 1]` (the embedding minus the pivot's, then the
//! cosine to the pivot, `1 − ½‖x̂_v − x̂_p‖²`), mean adjacency
//! `[batch, nodes, nodes]`, the pivot at node 0 and the 1-hop nodes at
//! `1 ..= one_hop`. Padding nodes have zero features and zero adjacency
//! rows and columns, so they reach no real node.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use ndarray::Array2;
use visage_eval::cluster::lgcn::PivotSubgraph;

/// Tensors for a group of subgraphs that share one 1-hop count.
pub struct SubgraphBatch<B: Backend> {
    /// `[batch, nodes, dim + 1]`.
    pub features: Tensor<B, 3>,
    /// `[batch, nodes, nodes]`.
    pub adjacency: Tensor<B, 3>,
    /// 1-hop nodes per subgraph.
    pub one_hop: usize,
}

/// The batch of `subgraphs`, each with the unit embeddings of its set. Every
/// subgraph must have the same number of 1-hop nodes (true of one set's
/// subgraphs) and every set the same dimension.
pub fn subgraph_batch<B: Backend>(subgraphs: &[(&PivotSubgraph, &Array2<f64>)], device: &B::Device) -> SubgraphBatch<B> {
    let dim = subgraphs.first().map_or(0, |(_, unit)| unit.ncols()) + 1;
    let nodes = subgraphs.iter().map(|(g, _)| g.nodes.len()).max().unwrap_or(1);
    let one_hop = subgraphs.first().map_or(0, |(g, _)| g.one_hop.len());
    let mut features = vec![0f32; subgraphs.len() * nodes * dim];
    let mut adjacency = vec![0f32; subgraphs.len() * nodes * nodes];
    for (b, (g, unit)) in subgraphs.iter().enumerate() {
        debug_assert_eq!(g.one_hop.len(), one_hop);
        let v = g.nodes.len();
        let relative = g.relative_features(unit);
        for (node, difference) in relative.chunks_exact(dim - 1).enumerate() {
            let row = &mut features[(b * nodes + node) * dim..][..dim];
            row[..dim - 1].copy_from_slice(difference);
            row[dim - 1] = 1.0 - 0.5 * difference.iter().map(|d| d * d).sum::<f32>();
        }
        let a = g.mean_adjacency();
        for (i, row) in a.chunks_exact(v).enumerate() {
            adjacency[b * nodes * nodes + i * nodes..][..v].copy_from_slice(row);
        }
    }
    SubgraphBatch {
        features: Tensor::from_data(TensorData::new(features, [subgraphs.len(), nodes, dim]), device),
        adjacency: Tensor::from_data(TensorData::new(adjacency, [subgraphs.len(), nodes, nodes]), device),
        one_hop,
    }
}
