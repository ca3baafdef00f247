//! L-GCN (Wang et al., CVPR 2019, "Linkage-based Face Clustering via Graph
//! Convolution Network"): a graph network predicts, from each face's
//! instance pivot subgraph, which of its nearest neighbours are the same
//! person; confident links are merged into clusters.
//!
//! - [`model`]: the network (four mean-aggregation graph convolutions, an
//!   MLP, two-way softmax on the 1-hop nodes);
//! - [`batch`]: subgraphs ([`visage_eval::cluster::lgcn`]) padded into tensors;
//! - [`file`]: the model file (safetensors, its settings in the header) and
//!   the bundled default model;
//! - [`train`]: training on labelled embeddings plus synthetic identity
//!   mixtures fitted to them;
//! - [`cluster`]: embeddings → link likelihoods → labels.

pub mod batch;
pub mod cluster;
pub mod file;
pub mod model;
pub mod train;

pub use cluster::{cluster, link_likelihoods};
pub use file::{LgcnError, LgcnModel, LgcnSettings, DEFAULT_MODEL_BYTES};
pub use model::{GraphConv, LgcnConfig, LinkageGcn};
pub use train::{train_lgcn, LgcnTrainOptions, LgcnTrainReport};
