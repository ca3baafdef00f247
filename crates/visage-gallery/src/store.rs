//! The storage trait every gallery backend implements, and what crosses it.
//!
//! # Contract
//!
//! Backends: the embedded directory store ([`crate::embedded::EmbeddedStore`],
//! the default) and PostgreSQL + pgvector (`crate::postgres::PostgresStore`,
//! feature `postgres`). The CLI and the HTTP service only ever see
//! `dyn GalleryStore`; the pure parts of `enrol` and `import`
//! ([`screen_faces`], [`plan_import`]) and pooling
//! ([`crate::model::pool_templates`]) are shared, so both give the same answers.
//!
//! - **Identities are addressed by name.** Names are unique within a
//!   gallery (checked by [`crate::model::check_name`]); ids are numbered by
//!   the gallery, never reused, and only meaningful inside it (an import
//!   gives new ids).
//! - **Every write is one transaction.** `enrol`, `remove`, `import` and
//!   `set_threshold` either happen whole or not at all — never some of an
//!   enrolment's templates, never half an import — and when the method
//!   returns `Ok` the change is durable: it survives a crash or `kill -9`
//!   of the process the next instant, and a power cut (embedded: the log
//!   record is fdatasynced, and every file or directory it depends on was
//!   followed by an fsync of its parent directory — tests/power_loss.rs
//!   replays a power cut at every file-system operation; PostgreSQL: the
//!   transaction is committed with `synchronous_commit` on).
//!   A method that returns `Err` changed nothing.
//! - **Reads see committed writes**: a search or listing after an `Ok`
//!   write returns includes it (read-your-writes; snapshot isolation per call).
//! - **Concurrency**: methods take `&self` and backends are `Send + Sync`,
//!   so a service can share one store between request threads. Calls may
//!   block (disk, network): async callers wrap them in `spawn_blocking`.
//! - **Search is exact unless asked otherwise**: [`GalleryStore::search`] returns
//!   the true top-k identities by cosine of their pooled templates; an
//!   approximate index (HNSW) is a separate, explicitly named method.
//! - **Quality screening happens inside `enrol`**, with the gallery's own
//!   [`QualityPolicy`](crate::model::QualityPolicy), so no client can bypass it.
//! - **What a write accepts reads back.** Names ([`check_name`]) and
//!   metadata ([`check_metadata`]: nesting, size, key length) are checked
//!   by [`check_enrolment`] before anything is written, with a bad-input
//!   error naming the field, and the stored form of anything accepted
//!   is read back without a tighter limit (embedded: [`crate::json`]), so
//!   no accepted request can make a gallery unreadable. Imports are held
//!   to the same bounds ([`plan_import`]).
//! - **Retries are safe with a key.** [`GalleryStore::enrol_idempotent`]
//!   records the key with the enrolment in the same transaction; a repeat
//!   with the same key and the same request ([`enrolment_fingerprint`])
//!   returns the first outcome and writes nothing, the same key with
//!   another request is refused (bad input). Keys are kept for at least
//!   the last 10 000 keyed enrolments.
//!   The fingerprint covers name, metadata and face sources, not the
//!   vectors, which a retry computes again.
//! - **Locks do not hang.** A backend that must wait for another process
//!   (the embedded store's single-writer lock, held by `visage serve`)
//!   gives up after a bounded wait with [`GalleryError::Locked`].

use serde::{Deserialize, Serialize};

use crate::config::{DecisionThreshold, GalleryConfig};
use crate::error::{GalleryError, Result};
use crate::model::{check_metadata, check_name, FaceSample, Identity, IdentityId, IdentitySummary, RefusedFace, Template};

/// What an enrolment did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnrolOutcome {
    /// The identity after the enrolment; `None` when every face was refused
    /// (then nothing was written).
    pub identity: Option<IdentitySummary>,
    /// Whether the identity was created by this enrolment.
    pub created: bool,
    /// Templates added.
    pub accepted: usize,
    /// The faces the quality screen refused, each with its reason, in the
    /// order given.
    pub refused: Vec<RefusedFace>,
}

/// The answer to a search of every face of one photo: the stable JSON
/// contract of `visage gallery search --json` and of the service's
/// `/v1/search` (`{"faces": [{"box", "quality", "decision", "matches"}]}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// One entry per face found in the photo, in the detector's order;
    /// empty when it has none.
    pub faces: Vec<FaceMatches>,
}

/// One face of a searched photo and what the gallery holds for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceMatches {
    /// The face's box `[x1, y1, x2, y2]` in photo pixels (JSON key `box`).
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The feature magnitude `‖x‖` (its scale depends on the recogniser).
    pub quality: f32,
    /// The top match's name when it passes the gallery's threshold, else
    /// `None` (JSON `null`: not anyone in the gallery).
    pub decision: Option<String>,
    /// The top-k identities, best first.
    pub matches: Vec<Match>,
}

impl FaceMatches {
    /// The face's entry, its decision taken from `matches` at `threshold`.
    pub fn new(bbox: [f32; 4], quality: f32, matches: Vec<Match>, threshold: &DecisionThreshold) -> Self {
        let decision = decide(&matches, threshold).map(|m| m.name.clone());
        Self { bbox, quality, decision, matches }
    }
}

/// One identity found by a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// The identity's id; left out of JSON (ids mean nothing outside the gallery).
    #[serde(skip)]
    pub id: IdentityId,
    /// The identity's name (JSON key `identity`).
    #[serde(rename = "identity")]
    pub name: String,
    /// Cosine similarity of the query and the identity's pooled template.
    pub score: f32,
}

/// The top match when it passes the threshold.
pub fn decide<'a>(matches: &'a [Match], threshold: &DecisionThreshold) -> Option<&'a Match> {
    matches.first().filter(|m| threshold.accepts(m.score))
}

/// What to do when an imported identity's name already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportConflict {
    /// Refuse the whole import (nothing is written).
    Fail,
    /// Keep the existing identity, drop the imported one.
    Skip,
    /// Add the imported templates to the existing identity (its metadata kept).
    Merge,
}

/// What an import did, counted in the export's identities.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Identities created under new ids.
    pub created: usize,
    /// Identities whose templates were added to an existing one of the same name.
    pub merged: usize,
    /// Identities left out because the name exists ([`ImportConflict::Skip`]).
    pub skipped: usize,
    /// Templates added, over created and merged identities.
    pub templates: usize,
}

/// A whole gallery as one portable JSON document (vectors as base64 f32 LE):
/// what `export` writes and `import` reads, between any two backends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalleryExport {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// The exported gallery's settings: an import checks its embedding size
    /// and recogniser against the target's (`visage gallery import` creates
    /// a missing gallery with all of it).
    pub config: GalleryConfig,
    /// Every identity with its templates and metadata, ordered by id.
    pub identities: Vec<Identity>,
}

/// The format marker of [`GalleryExport`]; an import refuses any other.
pub const EXPORT_FORMAT: &str = "visage-gallery-export/1";

impl GalleryExport {
    /// Parses an export file. Metadata accepted before enrolment bounded its
    /// depth can nest deeper than serde_json's default limit allows; this
    /// reads such exports (see [`crate::json`]). The export is not checked
    /// here: `import` does that. The error is the parser's message.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Self, String> {
        crate::json::from_json(bytes)
    }
}

/// The checks every backend's `enrol` makes before anything else: the
/// name, and the metadata when given (field `metadata`).
pub fn check_enrolment(name: &str, metadata: Option<&serde_json::Value>) -> Result<()> {
    check_name(name)?;
    match metadata {
        Some(metadata) => check_metadata("metadata", metadata),
        None => Ok(()),
    }
}

/// The longest idempotency key accepted, in bytes.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 128;

/// Idempotency keys are opaque tokens chosen by clients (UUIDs, typically):
/// 1 to 128 bytes of visible ASCII.
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GalleryError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX_BYTES} visible ASCII characters (got {} bytes)", key.len()),
        ));
    }
    Ok(())
}

/// A CRC-32 of what identifies an enrolment request — the name, the
/// metadata and each face's source — so that a key reused for another
/// request is told apart from a retry. Embeddings, magnitudes and boxes are
/// left out on purpose: a retry runs the model again, and inference need
/// not be bitwise reproducible (thread scheduling, GPU kernels).
pub fn enrolment_fingerprint(name: &str, metadata: Option<&serde_json::Value>, faces: &[FaceSample]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    let metadata = metadata.map(|m| serde_json::to_vec(m).expect("a JSON value serialises")).unwrap_or_default();
    hasher.update(&(metadata.len() as u64).to_le_bytes());
    hasher.update(&metadata);
    hasher.update(&(faces.len() as u64).to_le_bytes());
    for face in faces {
        hasher.update(&(face.source.len() as u64).to_le_bytes());
        hasher.update(face.source.as_bytes());
    }
    hasher.finalize()
}

/// The part of `enrol` every backend shares: faces of the wrong length are
/// an error (another recogniser), the rest are screened with the gallery's
/// quality policy into templates and refusals, in the order given.
pub fn screen_faces(config: &GalleryConfig, faces: &[FaceSample]) -> Result<(Vec<Template>, Vec<RefusedFace>)> {
    let mut templates = Vec::new();
    let mut refused = Vec::new();
    for face in faces {
        config.check_dimension(&format!("the embedding of {}", face.source), face.embedding.len())?;
        match config.quality.screen(face) {
            Ok(template) => templates.push(template),
            Err(refusal) => refused.push(RefusedFace { source: face.source.clone(), refusal }),
        }
    }
    Ok((templates, refused))
}

/// What an import does with one exported identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStep {
    /// Create `export.identities[index]` (with its metadata) under a new id.
    Create {
        /// Position in `export.identities`.
        index: usize,
    },
    /// Add `export.identities[index]`'s templates to existing identity `id`.
    Merge {
        /// Position in `export.identities`.
        index: usize,
        /// The target gallery's identity of the same name.
        id: IdentityId,
    },
}

/// The part of `import` every backend shares: checks the export and that it
/// fits `config`, then resolves name conflicts with `on_conflict` against
/// `existing` (name → id in the target gallery). `Fail` on a taken name is
/// an error before anything is written.
pub fn plan_import(
    config: &GalleryConfig,
    export: &GalleryExport,
    on_conflict: ImportConflict,
    existing: impl Fn(&str) -> Option<IdentityId>,
) -> Result<(Vec<ImportStep>, ImportReport)> {
    check_export(export)?;
    if export.config.embedding_size != config.embedding_size || export.config.recognizer != config.recognizer {
        return Err(GalleryError::invalid(
            "import",
            format!(
                "the export holds {}-dimensional templates of `{}`, this gallery {}-dimensional ones of `{}`",
                export.config.embedding_size, export.config.recognizer, config.embedding_size, config.recognizer
            ),
        ));
    }
    let mut report = ImportReport::default();
    let mut steps = Vec::new();
    for (index, identity) in export.identities.iter().enumerate() {
        match (existing(&identity.name), on_conflict) {
            (Some(_), ImportConflict::Fail) => return Err(GalleryError::IdentityExists { name: identity.name.clone() }),
            (Some(_), ImportConflict::Skip) => {
                report.skipped += 1;
                continue;
            }
            (Some(id), ImportConflict::Merge) => {
                report.merged += 1;
                steps.push(ImportStep::Merge { index, id });
            }
            (None, _) => {
                report.created += 1;
                steps.push(ImportStep::Create { index });
            }
        }
        report.templates += identity.templates.len();
    }
    Ok((steps, report))
}

/// Refuses an export that is not one, or whose identities or templates are malformed.
pub fn check_export(export: &GalleryExport) -> Result<()> {
    if export.format != EXPORT_FORMAT {
        return Err(GalleryError::invalid("import", format!("format {:?}, expected {EXPORT_FORMAT:?}", export.format)));
    }
    let mut names = std::collections::HashSet::new();
    for identity in &export.identities {
        check_name(&identity.name)?;
        if !names.insert(identity.name.as_str()) {
            return Err(GalleryError::invalid("import", format!("identity `{}` appears twice", identity.name)));
        }
        if identity.templates.is_empty() {
            return Err(GalleryError::invalid("import", format!("identity `{}` has no templates", identity.name)));
        }
        check_metadata(&format!("import: metadata of `{}`", identity.name), &identity.metadata)?;
        for (i, template) in identity.templates.iter().enumerate() {
            export.config.check_dimension(&format!("template {i} of `{}`", identity.name), template.embedding.len())?;
            if !template.magnitude.is_finite() || template.embedding.iter().any(|v| !v.is_finite()) {
                return Err(GalleryError::invalid("import", format!("template {i} of `{}` is not finite", identity.name)));
            }
        }
    }
    Ok(())
}

/// The storage backend of a gallery. See the module docs for the contract.
pub trait GalleryStore: Send + Sync {
    /// Where the gallery lives (a directory or a connection URL without its password).
    fn location(&self) -> String;

    /// The gallery's settings, including a threshold set since it was opened.
    fn config(&self) -> Result<GalleryConfig>;

    /// Replaces the decision threshold (one durable write).
    fn set_threshold(&self, threshold: DecisionThreshold) -> Result<()>;

    /// Screens `faces` with the gallery's quality policy and adds the
    /// accepted ones to identity `name`, creating it when it does not exist.
    /// `metadata`, when given, replaces the identity's metadata. One
    /// transaction: all accepted templates or none.
    fn enrol(&self, name: &str, metadata: Option<serde_json::Value>, faces: &[FaceSample]) -> Result<EnrolOutcome> {
        self.enrol_idempotent(None, name, metadata, faces)
    }

    /// [`GalleryStore::enrol`], safe to retry when `idempotency_key` is
    /// given: the key is recorded in the enrolment's transaction, and a
    /// later call with the same key and the same request returns the first
    /// outcome (with the identity as it is now, `None` if removed since)
    /// without writing; the same key with a different request is a
    /// bad-input error. With `None` it is `enrol`. Every backend records
    /// keys; one that could not would have to refuse a key
    /// ([`GalleryError::Unsupported`]) rather than risk a double enrolment.
    fn enrol_idempotent(
        &self,
        idempotency_key: Option<&str>,
        name: &str,
        metadata: Option<serde_json::Value>,
        faces: &[FaceSample],
    ) -> Result<EnrolOutcome>;

    /// Deletes an identity and its templates; returns what was removed.
    fn remove(&self, name: &str) -> Result<IdentitySummary>;

    /// Every identity, ordered by name.
    fn list(&self) -> Result<Vec<IdentitySummary>>;

    /// One identity with its templates; `UnknownIdentity` when absent.
    fn get(&self, name: &str) -> Result<Identity>;

    /// Number of identities.
    fn len(&self) -> Result<usize>;

    /// Whether the gallery holds no identity.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Exact top-`k` identities for each query (unit vectors of the
    /// gallery's embedding size), best first; ties go to the identity
    /// enrolled first.
    fn search(&self, queries: &[&[f32]], k: usize) -> Result<Vec<Vec<Match>>>;

    /// The whole gallery, consistent as of one instant.
    fn export(&self) -> Result<GalleryExport>;

    /// Adds another gallery's identities as one transaction. The export's
    /// embedding size and recogniser must equal this gallery's; its
    /// threshold and quality policy are not taken over.
    fn import(&self, export: &GalleryExport, on_conflict: ImportConflict) -> Result<ImportReport>;

    /// Approximate top-`k` through the backend's HNSW index (embedded: built
    /// in memory with `params`; PostgreSQL: pgvector's index, where only
    /// `params.ef_search` applies). Faster on large galleries, may miss
    /// true matches: recall is measured by `visage bench gallery`.
    fn search_approximate(&self, queries: &[&[f32]], k: usize, params: crate::hnsw::HnswParams) -> Result<Vec<Vec<Match>>>;
}
