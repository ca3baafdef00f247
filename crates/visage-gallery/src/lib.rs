//! visage-gallery: enrolled identities and 1:N search.
//!
//! - [`model`]: identities, face templates, quality-weighted pooling and
//!   the quality screen that refuses faces with a reason;
//! - [`config`]: a gallery's settings, the decision threshold (from the
//!   recogniser config or calibrated for a target FAR with visage-eval's ROC);
//! - [`store`]: the [`GalleryStore`] trait every backend implements (its
//!   transactional contract is documented there);
//! - [`json`]: reading back the gallery's own JSON without serde_json's
//!   fixed nesting limit (bounded by [`json::READ_DEPTH_LIMIT`]);
//! - [`embedded`]: the default backend, one directory, a checksummed
//!   write-ahead log fsynced before each acknowledgement plus atomic snapshots;
//! - `postgres` (feature `postgres`): PostgreSQL + pgvector, for galleries
//!   that several processes or machines share;
//! - [`search`]: exact top-k over a contiguous f32 matrix (vectorised dot
//!   products, rayon over chunks, a bounded heap per task);
//! - [`setup`]: opening or creating a gallery for one recogniser, the rules
//!   the command line and the service share;
//! - [`hnsw`]: an approximate index for large galleries, with recall@k.
//!
//! The search benchmark and the throwaway PostgreSQL server the tests use
//! live in visage-lab.

#![warn(missing_docs)]

pub mod config;
pub mod embedded;
pub mod error;
pub mod hnsw;
pub mod json;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod search;
pub mod setup;
pub mod store;

use std::path::Path;

pub use config::{calibrate_threshold, DecisionThreshold, GalleryConfig, ThresholdOrigin};
pub use embedded::{EmbeddedStore, OpenOptions};
pub use error::{GalleryError, Result};
pub use hnsw::{HnswIndex, HnswParams};
pub use model::{check_metadata, pool_templates, FaceSample, Identity, IdentityId, IdentitySummary, QualityPolicy, Refusal, RefusedFace, Template};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
pub use setup::{EnrolReport, EnrolledFace, GallerySetup};
pub use store::{
    check_enrolment, decide, EnrolOutcome, FaceMatches, GalleryExport, GalleryStore, ImportConflict, ImportReport, Match, SearchResponse,
};

/// Where a gallery lives, as the `--gallery` argument names it. Without the
/// `postgres` feature every operation on a `Postgres` location fails with
/// [`GalleryError::Unsupported`] (bad input) saying how to rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GalleryLocation {
    /// An embedded gallery directory.
    Directory(std::path::PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl GalleryLocation {
    /// Reads a `--gallery` value: a `postgres://` or `postgresql://` URL is a
    /// PostgreSQL gallery, anything else a directory path. Never fails; a
    /// URL is only checked when the gallery is opened.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            GalleryLocation::Postgres(text.to_string())
        } else {
            GalleryLocation::Directory(Path::new(text).to_path_buf())
        }
    }

    /// Whether a gallery exists there (embedded: `gallery.json` is a file in
    /// the directory, never an error; PostgreSQL: the database holds the
    /// schema-version table, which takes a connection, so a malformed URL is
    /// `Invalid` and an unreachable server `Database`).
    pub fn exists(&self) -> Result<bool> {
        match self {
            GalleryLocation::Directory(dir) => Ok(EmbeddedStore::exists(dir)),
            #[cfg(feature = "postgres")]
            GalleryLocation::Postgres(url) => PostgresStore::exists(url),
            #[cfg(not(feature = "postgres"))]
            GalleryLocation::Postgres(_) => Err(self.postgres_missing()),
        }
    }

    /// Opens the gallery there (`read_only`: for searches and listings; writes
    /// are refused, by the PostgreSQL server too).
    pub fn open(&self, read_only: bool) -> Result<Box<dyn GalleryStore>> {
        match self {
            GalleryLocation::Directory(dir) => Ok(Box::new(EmbeddedStore::open(dir, OpenOptions { read_only, ..OpenOptions::default() })?)),
            #[cfg(feature = "postgres")]
            GalleryLocation::Postgres(url) => {
                Ok(Box::new(PostgresStore::open_with(url, &PostgresOptions { read_only, ..PostgresOptions::default() })?))
            }
            #[cfg(not(feature = "postgres"))]
            GalleryLocation::Postgres(_) => Err(self.postgres_missing()),
        }
    }

    /// Creates a gallery there with `config`; refused (`Invalid`, bad input)
    /// when one exists already.
    pub fn create(&self, config: GalleryConfig) -> Result<Box<dyn GalleryStore>> {
        match self {
            GalleryLocation::Directory(dir) => Ok(Box::new(EmbeddedStore::create(dir, config)?)),
            #[cfg(feature = "postgres")]
            GalleryLocation::Postgres(url) => Ok(Box::new(PostgresStore::create(url, config)?)),
            #[cfg(not(feature = "postgres"))]
            GalleryLocation::Postgres(_) => Err(self.postgres_missing()),
        }
    }

    #[cfg(not(feature = "postgres"))]
    fn postgres_missing(&self) -> GalleryError {
        GalleryError::Unsupported {
            location: "--gallery postgres://…".into(),
            message: "this build has no PostgreSQL backend: rebuild with the `postgres` feature of visage-gallery (on by default in visage-cli), or use a gallery directory".into(),
        }
    }
}
