//! Readers (and the one writer) of the file formats users already have.

pub mod embeddings;
pub mod erc_csv;
pub mod ijb_meta;
pub mod labels;
pub mod pairs;
pub mod scores_csv;
pub mod text;
pub mod verification_bin;
