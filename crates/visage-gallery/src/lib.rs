//! visage-gallery: enrolled identities and 1:N search.
//!
//! - [`model`]: identities, face templates, quality-weighted pooling and
//!   the quality screen that refuses faces with a reason;
//! - [`config`]: a gallery's settings, the decision threshold (from the
//!   recogniser config or calibrated for a target FAR with visage-eval's ROC);
//! - [`store`]: the [`GalleryStore`] trait every backend implements (its
//!   transactional contract is documented there);
//! - [`embedded`]: the default backend, one directory, a checksummed
//!   write-ahead log fsynced before each acknowledgement plus atomic snapshots;
//! - [`search`]: exact top-k over a contiguous f32 matrix (vectorised dot
//!   products, rayon over chunks, a bounded heap per task);
//! - [`hnsw`]: an approximate index for large galleries, with recall@k;
//! - [`bench`]: the search benchmark against measured memory bandwidth.

pub mod bench;
pub mod config;
pub mod embedded;
pub mod error;
pub mod hnsw;
pub mod model;
pub mod search;
pub mod store;

use std::path::Path;

pub use config::{calibrate_threshold, DecisionThreshold, GalleryConfig, ThresholdOrigin};
pub use embedded::{EmbeddedStore, OpenOptions};
pub use error::{GalleryError, Result};
pub use hnsw::{HnswIndex, HnswParams};
pub use model::{pool_templates, FaceSample, Identity, IdentityId, IdentitySummary, QualityPolicy, Refusal, RefusedFace, Template};
pub use store::{decide, EnrolOutcome, GalleryExport, GalleryStore, ImportConflict, ImportReport, Match};

/// Where a gallery lives, as the `--gallery` argument names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GalleryLocation {
    /// An embedded gallery directory.
    Directory(std::path::PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl GalleryLocation {
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            GalleryLocation::Postgres(text.to_string())
        } else {
            GalleryLocation::Directory(Path::new(text).to_path_buf())
        }
    }

    /// Whether a gallery exists there.
    pub fn exists(&self) -> Result<bool> {
        match self {
            GalleryLocation::Directory(dir) => Ok(EmbeddedStore::exists(dir)),
            GalleryLocation::Postgres(_) => Err(self.postgres_missing()),
        }
    }

    /// Opens the gallery there (`read_only`: for searches and listings).
    pub fn open(&self, read_only: bool) -> Result<Box<dyn GalleryStore>> {
        match self {
            GalleryLocation::Directory(dir) => {
                Ok(Box::new(EmbeddedStore::open(dir, OpenOptions { read_only, ..OpenOptions::default() })?))
            }
            GalleryLocation::Postgres(_) => Err(self.postgres_missing()),
        }
    }

    /// Creates a gallery there with `config`.
    pub fn create(&self, config: GalleryConfig) -> Result<Box<dyn GalleryStore>> {
        match self {
            GalleryLocation::Directory(dir) => Ok(Box::new(EmbeddedStore::create(dir, config)?)),
            GalleryLocation::Postgres(_) => Err(self.postgres_missing()),
        }
    }

    fn postgres_missing(&self) -> GalleryError {
        GalleryError::Unsupported {
            location: "--gallery postgres://…".into(),
            message: "the PostgreSQL backend is not built yet (issue 8): use a gallery directory".into(),
        }
    }
}
