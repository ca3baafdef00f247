//! The linkage network of L-GCN (paper §3.3): four graph convolutions with
//! mean aggregation over an instance pivot subgraph, then an MLP that
//! classifies each 1-hop node's linkage to the pivot (two-way softmax).
//!
//! A layer is the paper's eq. 3 as the authors' code writes it
//! (`GraphConv`): `Y = ReLU([X ‖ ÃX]·W + b)`, `Ã = D⁻¹A` the mean over a
//! node's neighbours, so a node keeps its own features beside the mean of
//! its neighbours'. The authors' widths for 512-d features are 512, 512,
//! 256, 256 and a 256-wide classifier; ours default to 64, 64, 32, 32 and 32
//! for 128-d features and a few hundred labelled faces (33 k parameters,
//! 130 KB): wider layers fitted the synthetic mixtures no better.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, PRelu, PReluConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Widths of the network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LgcnConfig {
    /// Embedding dimension. A node's features are its embedding minus the
    /// pivot's and its cosine to the pivot (`input_dim + 1` values): the
    /// cosine gives the network the one rotation-free quantity a linear
    /// layer cannot form from the difference.
    pub input_dim: usize,
    /// Output width of each graph convolution (the paper has four).
    pub hidden: Vec<usize>,
    /// Width of the classifier's hidden layer.
    pub classifier_dim: usize,
}

impl LgcnConfig {
    /// The default widths for `input_dim`-d embeddings.
    pub fn new(input_dim: usize) -> Self {
        LgcnConfig { input_dim, hidden: vec![64, 64, 32, 32], classifier_dim: 32 }
    }

    /// The network with freshly drawn parameters (burn's default
    /// initialisers; seed them with `visage_nn::with_backend_rng`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> LinkageGcn<B> {
        let mut width = self.input_dim + 1;
        let layers = self
            .hidden
            .iter()
            .map(|&out| {
                let layer = GraphConv { linear: LinearConfig::new(2 * width, out).init(device) };
                width = out;
                layer
            })
            .collect();
        LinkageGcn {
            layers,
            classifier: LinearConfig::new(width, self.classifier_dim).init(device),
            activation: PReluConfig::new().init(device),
            output: LinearConfig::new(self.classifier_dim, 2).init(device),
        }
    }
}

/// One graph convolution with mean aggregation: `ReLU([X ‖ ÃX]·W + b)`.
#[derive(Module, Debug)]
pub struct GraphConv<B: Backend> {
    /// `W` (`2·d_in × d_out`) and `b`.
    pub linear: Linear<B>,
}

impl<B: Backend> GraphConv<B> {
    /// `features`: `[batch, nodes, d_in]`; `adjacency`: `[batch, nodes,
    /// nodes]`, row-normalised (zero rows for padding) → `[batch, nodes, d_out]`.
    pub fn forward(&self, features: Tensor<B, 3>, adjacency: Tensor<B, 3>) -> Tensor<B, 3> {
        let aggregated = adjacency.matmul(features.clone());
        relu(self.linear.forward(Tensor::cat(vec![features, aggregated], 2)))
    }
}

/// The whole network: graph convolutions, then the linkage classifier on the 1-hop nodes.
#[derive(Module, Debug)]
pub struct LinkageGcn<B: Backend> {
    /// The graph convolutions, in order.
    pub layers: Vec<GraphConv<B>>,
    /// The classifier's hidden layer…
    pub classifier: Linear<B>,
    /// …its PReLU…
    pub activation: PRelu<B>,
    /// …and the two logits (no link, link).
    pub output: Linear<B>,
}

impl<B: Backend> LinkageGcn<B> {
    /// Logits `[batch, one_hop, 2]` for the 1-hop nodes, which sit at node
    /// positions `1 ..= one_hop` of every subgraph (the pivot at 0).
    pub fn forward(&self, features: Tensor<B, 3>, adjacency: Tensor<B, 3>, one_hop: usize) -> Tensor<B, 3> {
        let mut x = features;
        for layer in &self.layers {
            x = layer.forward(x, adjacency.clone());
        }
        let [batch, _, width] = x.dims();
        let candidates = x.slice([0..batch, 1..one_hop + 1, 0..width]);
        self.output.forward(self.activation.forward(self.classifier.forward(candidates)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use visage_backend::{Cpu, CpuAutodiff};

    fn tensor3<B: Backend>(values: Vec<f32>, shape: [usize; 3]) -> Tensor<B, 3> {
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    /// A 2 → 2 layer with hand-set weights.
    fn hand_layer<B: Backend>() -> GraphConv<B> {
        let device = Default::default();
        let mut linear = LinearConfig::new(4, 2).init::<B>(&device);
        // rows: x0, x1, (Ãx)0, (Ãx)1; columns: the two outputs
        let w = vec![1.0f32, 0.0, 0.0, 1.0, 0.5, -1.0, 2.0, 0.0];
        linear.weight = linear.weight.map(|_| Tensor::from_data(TensorData::new(w.clone(), [4, 2]), &device));
        linear.bias = linear.bias.map(|b| b.map(|_| Tensor::from_data(TensorData::new(vec![0.1f32, -0.2], [2]), &device)));
        GraphConv { linear }
    }

    #[test]
    fn graph_convolution_matches_a_hand_computation() {
        // three nodes: path 0–1–2, so Ã rows: [0,1,0], [½,0,½], [0,1,0]
        let x = tensor3::<Cpu>(vec![1.0, 2.0, -1.0, 0.5, 3.0, -2.0], [1, 3, 2]);
        let a = tensor3::<Cpu>(vec![0.0, 1.0, 0.0, 0.5, 0.0, 0.5, 0.0, 1.0, 0.0], [1, 3, 3]);
        let y = hand_layer::<Cpu>().forward(x, a).into_data().to_vec::<f32>().unwrap();
        // node 0: x = (1, 2), Ãx = (−1, 0.5): y = (1 + 0.5·(−1) + 2·0.5 + 0.1, 2 − (−1) − 0.2) = (1.6, 2.8)
        // node 1: x = (−1, 0.5), Ãx = (2, 0): (−1 + 1 + 0 + 0.1, 0.5 − 2 − 0.2) = (0.1, −1.7) → ReLU (0.1, 0)
        // node 2: x = (3, −2), Ãx = (−1, 0.5): (3 − 0.5 + 1 + 0.1, −2 + 1 − 0.2) = (3.6, −1.2) → (3.6, 0)
        let want = [1.6, 2.8, 0.1, 0.0, 3.6, 0.0];
        assert!(y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{y:?}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // d/dx of Σ y² through one layer, at a point with no ReLU kink nearby.
        let x0 = vec![1.0f32, 2.0, -1.0, 0.5, 3.0, -2.0];
        let a = vec![0.0f32, 1.0, 0.0, 0.5, 0.0, 0.5, 0.0, 1.0, 0.0];
        let layer = hand_layer::<CpuAutodiff>();
        let loss = |x: &[f32]| -> f64 {
            let y = hand_layer::<Cpu>().forward(tensor3(x.to_vec(), [1, 3, 2]), tensor3(a.clone(), [1, 3, 3]));
            y.into_data().to_vec::<f32>().unwrap().iter().map(|v| (*v as f64).powi(2)).sum()
        };
        let x = tensor3::<CpuAutodiff>(x0.clone(), [1, 3, 2]).require_grad();
        let y = layer.forward(x.clone(), tensor3(a.clone(), [1, 3, 3]));
        let grads = y.powf_scalar(2.0).sum().backward();
        let analytic = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let h = 1e-2f32;
        for i in 0..x0.len() {
            let (mut up, mut down) = (x0.clone(), x0.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * h as f64);
            assert!((numeric - analytic[i] as f64).abs() < 2e-3 * (1.0 + numeric.abs()), "x[{i}]: {numeric} vs {}", analytic[i]);
        }
        // by hand for x[0] (node 0's first feature): y0 = (1.6, 2.8) depends on it through
        // W rows 0 (1, 0); node 1's Ãx averages it with weight ½ through W rows 2–3 (0.5, −1)
        // → node 1's first output (0.1, live) gains 0.25; ∂/∂x[0] = 2·1.6·1 + 2·0.1·0.25 = 3.25
        assert!((analytic[0] - 3.25).abs() < 1e-5, "{}", analytic[0]);
    }

    #[test]
    fn logits_cover_the_one_hop_nodes() {
        let device = Default::default();
        let model = LgcnConfig::new(3).init::<Cpu>(&device);
        let x = Tensor::<Cpu, 3>::zeros([2, 6, 4], &device);
        let a = Tensor::<Cpu, 3>::zeros([2, 6, 6], &device);
        assert_eq!(model.forward(x, a, 4).dims(), [2, 4, 2]);
        let params = model.num_params();
        // 2·4·64+64, 128·64+64, 128·32+32, 64·32+32, 32·32+32, 1 (PReLU), 32·2+2
        assert_eq!(params, 576 + 8256 + 4128 + 2080 + 1056 + 1 + 66);
    }
}
