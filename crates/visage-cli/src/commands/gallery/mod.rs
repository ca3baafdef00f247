//! `visage gallery …`: enrol people from photos, find them again (1:N), and
//! manage the gallery. `--gallery` is a directory (the embedded store) or a
//! `postgres://` URL (planned). The library (visage-gallery) does the work;
//! this module runs the face pipeline and prints.
//!
//! Contract used by acceptance tests: `search --json` prints
//! `{"faces": [{"box": [x1, y1, x2, y2], "quality": f, "decision": "NAME" | null,
//! "matches": [{"identity": "NAME", "score": f}, …]}]}` for every face found.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use visage_gallery::{
    DecisionThreshold, FaceMatches, FaceSample, GalleryConfig, GalleryError, GalleryExport, GalleryLocation, GallerySetup, GalleryStore, HnswParams,
    ImportConflict, QualityPolicy, Refusal, RefusedFace, SearchResponse,
};
use visage_infer::{InferError, PhotoFace};
use visage_lab::gallery_bench::BenchSettings;

use super::face_models::{expand_inputs, largest_face, DetectorArgs, RecognizerArgs};
use super::Failure;

#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// Enrol the largest face of each photo as NAME (created if new); refuses
    /// photos without a usable face, each with its reason.
    Enrol(EnrolArgs),
    /// Every face of a photo searched in the gallery: top matches and a decision.
    Search(SearchArgs),
    /// The gallery's identities and settings.
    List(ListArgs),
    /// Delete an identity and its templates.
    Remove(RemoveArgs),
    /// Write the whole gallery as one JSON file (any backend can import it).
    Export(ExportArgs),
    /// Add the identities of an exported gallery (creating the gallery if needed).
    Import(ImportArgs),
    /// Set the decision threshold: calibrated for a target FAR on a scores
    /// file, or given.
    Calibrate(CalibrateArgs),
}

impl GalleryCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Enrol(args) => args.run(),
            Self::Search(args) => args.run(),
            Self::List(args) => args.run(),
            Self::Remove(args) => args.run(),
            Self::Export(args) => args.run(),
            Self::Import(args) => args.run(),
            Self::Calibrate(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct GalleryArg {
    /// The gallery: a directory (created on first enrolment) or a postgres:// URL.
    #[arg(long, value_name = "DIR|URL")]
    gallery: String,
}

impl GalleryArg {
    fn location(&self) -> GalleryLocation {
        GalleryLocation::parse(&self.gallery)
    }

    fn open(&self, read_only: bool) -> Result<Box<dyn GalleryStore>, Failure> {
        self.location().open(read_only).map_err(failure)
    }
}

/// Library errors → exit 2 for bad input, 1 for the machine.
fn failure(error: GalleryError) -> Failure {
    Failure::from(error)
}

#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The person's name (created if new, else the faces are added).
    name: String,
    /// Photos of the person (the largest face of each is enrolled), or folders
    /// of photos. With --strict, any refused photo makes the exit code 2.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    gallery: GalleryArg,
    /// JSON object stored with the identity (replaces what it had).
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
    /// When the gallery is created: refuse faces whose magnitude ‖x‖ is below
    /// this (the scale depends on the recogniser; none by default).
    #[arg(long, value_name = "MAGNITUDE")]
    min_quality: Option<f32>,
    /// When the gallery is created: refuse faces narrower or shorter than this (pixels).
    #[arg(long, value_name = "PX", default_value_t = QualityPolicy::default().min_face_px)]
    min_face_px: f32,
    /// When the gallery is created: the decision threshold [default: the
    /// recogniser config's same_person_cosine].
    #[arg(long, value_name = "COSINE")]
    threshold: Option<f32>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    recognizer: RecognizerArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

#[derive(Serialize)]
struct EnrolJson<'a> {
    name: &'a str,
    created: bool,
    enrolled: Vec<EnrolledJson>,
    refused: Vec<RefusedFace>,
    templates: usize,
}

#[derive(Serialize)]
struct EnrolledJson {
    source: String,
    quality: f32,
}

impl EnrolArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let metadata = match &self.metadata {
            Some(text) => {
                Some(serde_json::from_str::<serde_json::Value>(text).map_err(|e| Failure::bad_input(format!("--metadata: not JSON: {e}")))?)
            }
            None => None,
        };
        visage_gallery::model::check_name(&self.name).map_err(failure)?;
        let location = self.gallery.location();
        let recognizer_config = self.recognizer.config()?;
        let setup = GallerySetup {
            recognizer: recognizer_config.name.clone(),
            same_person_cosine: recognizer_config.same_person_cosine,
            manual_threshold: self.threshold,
            quality: QualityPolicy { min_magnitude: self.min_quality, min_face_px: self.min_face_px },
        };
        // Fail on a wrong location or recogniser before running any model.
        let existing = location.open_for(&setup, false).map_err(failure)?;
        let files = expand_inputs(&self.images)?;
        if files.is_empty() {
            return Err(Failure::bad_input("no photos (JPEG, PNG, WebP, BMP) given"));
        }
        let mut pipeline = self.detector.pipeline(&self.recognizer, false, false)?;
        let mut faces: Vec<Option<FaceSample>> = vec![None; files.len()];
        let mut refused = Vec::new();
        pipeline.run(&files, |outcome| {
            let source = outcome.path.display().to_string();
            match outcome.result {
                Ok(photo) => faces[outcome.index] = largest_face(photo.faces).map(|face| sample(face, source)),
                Err(InferError::NoFace { .. }) => refused.push(RefusedFace { source, refusal: Refusal::NoFace }),
                Err(e) => refused.push(RefusedFace { source, refusal: Refusal::Unreadable { message: strip_path(&e.to_string(), &outcome.path) } }),
            }
        });
        let faces: Vec<FaceSample> = faces.into_iter().flatten().collect();
        let store = match existing {
            Some(store) => store,
            None if faces.is_empty() => {
                report_refusals(&refused);
                return Err(Failure::bad_input(format!("nothing enrolled: none of the {} photos has a usable face", files.len())));
            }
            None => location.create_for(&setup, faces[0].embedding.len()).map_err(failure)?,
        };
        let outcome = store.enrol(&self.name, metadata, &faces).map_err(failure)?;
        refused.extend(outcome.refused.iter().cloned());
        refused.sort_by(|a, b| a.source.cmp(&b.source));
        let enrolled: Vec<EnrolledJson> = faces
            .iter()
            .filter(|f| !outcome.refused.iter().any(|r| r.source == f.source))
            .map(|f| EnrolledJson { source: f.source.clone(), quality: f.magnitude })
            .collect();
        let templates = outcome.identity.as_ref().map_or(0, |i| i.templates);
        if self.json {
            let json = EnrolJson { name: &self.name, created: outcome.created, enrolled, refused: refused.clone(), templates };
            println!("{}", serde_json::to_string_pretty(&json).expect("serialisable"));
        } else {
            for face in &enrolled {
                println!("enrolled {} as {} (quality ‖x‖ = {:.3})", face.source, self.name, face.quality);
            }
            if outcome.accepted > 0 {
                let verb = if outcome.created { "created" } else { "now has" };
                println!("{}: {verb} {templates} templates in {}", self.name, store.location());
            }
        }
        report_refusals(&refused);
        if outcome.accepted == 0 {
            return Err(Failure::bad_input(format!("nothing enrolled: all {} photos refused", files.len())));
        }
        if self.detector.strict && !refused.is_empty() {
            return Err(Failure::bad_input(format!("{} of {} photos refused (--strict)", refused.len(), files.len())));
        }
        Ok(())
    }
}

fn report_refusals(refused: &[RefusedFace]) {
    for r in refused {
        eprintln!("visage: refused {}: {}", r.source, r.refusal);
    }
}

/// visage-infer's messages start with the file; the refusal names it already.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

fn sample(face: PhotoFace, source: String) -> FaceSample {
    FaceSample { embedding: face.embedding.embedding, magnitude: face.embedding.norm, bbox: Some(face.bbox), source }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The photo to search: every face in it is looked up.
    image: PathBuf,
    #[command(flatten)]
    gallery: GalleryArg,
    /// Matches per face.
    #[arg(short = 'k', long = "top", default_value_t = 5)]
    k: usize,
    /// Print JSON (the contract in this module's docs).
    #[arg(long)]
    json: bool,
    /// Search with the approximate HNSW index instead of exactly (large galleries).
    #[arg(long)]
    approximate: bool,
    #[command(flatten)]
    recognizer: RecognizerArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

impl SearchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(true)?;
        let recognizer_config = self.recognizer.config()?;
        let config =
            GallerySetup::new(recognizer_config.name.clone(), recognizer_config.same_person_cosine).check(store.as_ref()).map_err(failure)?;
        let mut pipeline = self.detector.pipeline(&self.recognizer, false, false)?;
        let mut result = None;
        pipeline.run(std::slice::from_ref(&self.image), |outcome| result = Some(outcome.result));
        let faces = match result.expect("one outcome per input") {
            Ok(photo) => photo.faces,
            Err(InferError::NoFace { .. }) => Vec::new(),
            Err(e) => return Err(Failure::bad_input(e.to_string())),
        };
        let queries: Vec<&[f32]> = faces.iter().map(|f| f.embedding.embedding.as_slice()).collect();
        let found = if self.approximate {
            store.search_approximate(&queries, self.k, HnswParams { ef_search: self.k.max(100), ..HnswParams::default() })
        } else {
            store.search(&queries, self.k)
        }
        .map_err(failure)?;
        let json = SearchResponse {
            faces: faces
                .iter()
                .zip(found)
                .map(|(face, matches)| FaceMatches::new(face.bbox, face.embedding.norm, matches, &config.threshold))
                .collect(),
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&json).expect("serialisable"));
            return Ok(());
        }
        if json.faces.is_empty() {
            println!("{}: no face found", self.image.display());
        }
        for (i, face) in json.faces.iter().enumerate() {
            let [x1, y1, x2, y2] = face.bbox;
            let decision = face.decision.as_deref().unwrap_or("unknown");
            println!("face {i} [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}] quality {:.3} → {decision}", face.quality);
            for m in &face.matches {
                let mark = if config.threshold.accepts(m.score) { "≥" } else { "<" };
                println!("  {:.4} {mark} {:.4}  {}", m.score, config.threshold.cosine, m.name);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    gallery: GalleryArg,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ListJson {
    config: GalleryConfig,
    identities: Vec<visage_gallery::IdentitySummary>,
}

impl ListArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(true)?;
        let config = store.config().map_err(failure)?;
        let identities = store.list().map_err(failure)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&ListJson { config, identities }).expect("serialisable"));
            return Ok(());
        }
        println!(
            "{}: {} identities, recogniser {} ({}-d), threshold {} ({})",
            store.location(),
            identities.len(),
            config.recognizer,
            config.embedding_size,
            config.threshold.cosine,
            describe_origin(&config.threshold)
        );
        println!("id\ttemplates\tbest_quality\tname");
        for identity in identities {
            println!("{}\t{}\t{:.3}\t{}", identity.id, identity.templates, identity.best_quality, identity.name);
        }
        Ok(())
    }
}

fn describe_origin(threshold: &DecisionThreshold) -> String {
    match &threshold.origin {
        visage_gallery::ThresholdOrigin::Recognizer { recognizer } => format!("same_person_cosine of {recognizer}"),
        visage_gallery::ThresholdOrigin::Manual => "set by hand".into(),
        visage_gallery::ThresholdOrigin::Calibrated { scores, target_far, achieved_far, tar, impostor_pairs, .. } => {
            format!("FAR {achieved_far:.2e} ≤ {target_far:.0e}, TAR {tar:.4} on {scores}, {impostor_pairs} impostor pairs")
        }
    }
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The identity to delete.
    name: String,
    #[command(flatten)]
    gallery: GalleryArg,
}

impl RemoveArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(false)?;
        let removed = store.remove(&self.name).map_err(failure)?;
        println!("removed {} ({} templates)", removed.name, removed.templates);
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    gallery: GalleryArg,
    /// The JSON file to write (`-`: standard output).
    #[arg(long, value_name = "FILE.json")]
    out: PathBuf,
}

impl ExportArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let store = self.gallery.open(true)?;
        let export = store.export().map_err(failure)?;
        let text = serde_json::to_string(&export).expect("serialisable");
        if self.out == Path::new("-") {
            println!("{text}");
        } else {
            std::fs::write(&self.out, text).map_err(|e| Failure::other(format!("{}: {e}", self.out.display())))?;
            eprintln!("visage: exported {} identities to {}", export.identities.len(), self.out.display());
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnConflict {
    Fail,
    Skip,
    Merge,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by `visage gallery export`.
    file: PathBuf,
    #[command(flatten)]
    gallery: GalleryArg,
    /// When an imported name exists: refuse the whole import, skip it, or add its templates.
    #[arg(long, value_enum, default_value = "fail")]
    on_conflict: OnConflict,
}

impl ImportArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let bytes = std::fs::read(&self.file).map_err(|e| Failure::bad_input(format!("{}: {e}", self.file.display())))?;
        // The gallery's own reader: exports of galleries written before
        // metadata depth was bounded nest deeper than serde_json's default.
        let export =
            GalleryExport::from_json(&bytes).map_err(|e| Failure::bad_input(format!("{}: not a gallery export: {e}", self.file.display())))?;
        let location = self.gallery.location();
        let store = if location.exists().map_err(failure)? {
            location.open(false).map_err(failure)?
        } else {
            location.create(export.config.clone()).map_err(failure)?
        };
        let on_conflict = match self.on_conflict {
            OnConflict::Fail => ImportConflict::Fail,
            OnConflict::Skip => ImportConflict::Skip,
            OnConflict::Merge => ImportConflict::Merge,
        };
        let report = store.import(&export, on_conflict).map_err(|e| {
            let failure = failure(e);
            Failure { message: format!("{}: {}", self.file.display(), failure.message), ..failure }
        })?;
        println!(
            "imported {} identities ({} templates) into {}: {} created, {} merged, {} skipped",
            report.created + report.merged,
            report.templates,
            store.location(),
            report.created,
            report.merged,
            report.skipped
        );
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    gallery: GalleryArg,
    /// Scores CSV (`score,label`, label 1 = same person) from the gallery's recogniser.
    #[arg(long, value_name = "S.csv", requires = "far", conflicts_with = "threshold")]
    scores: Option<PathBuf>,
    /// Target false-accept rate for --scores.
    #[arg(long)]
    far: Option<f64>,
    /// Set this cosine threshold instead of calibrating.
    #[arg(long, value_name = "COSINE")]
    threshold: Option<f32>,
}

impl CalibrateArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let threshold = match (&self.scores, self.far, self.threshold) {
            (Some(scores), Some(far), None) => DecisionThreshold::calibrate_from_file(scores, far),
            (None, None, Some(cosine)) => DecisionThreshold::manual(cosine),
            _ => return Err(Failure::bad_input("give --scores S.csv --far F, or --threshold COSINE")),
        }
        .map_err(failure)?;
        let store = self.gallery.open(false)?;
        store.set_threshold(threshold.clone()).map_err(failure)?;
        println!("{}: threshold {} ({})", store.location(), threshold.cosine, describe_origin(&threshold));
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct GalleryBenchArgs {
    /// Templates in the gallery (random unit vectors generated in memory).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    #[arg(long, default_value_t = 512)]
    dim: usize,
    #[arg(short = 'k', long = "top", default_value_t = 10)]
    k: usize,
    /// Timed single-query searches (each interleaved with a bandwidth pass).
    #[arg(long, default_value_t = 15)]
    queries: usize,
    /// Queries per pass in the batched measurement.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Rows of the HNSW comparison (its build is the slow part).
    #[arg(long, default_value_t = 20_000)]
    hnsw_rows: usize,
    #[arg(long, default_value_t = 200)]
    hnsw_queries: usize,
    #[arg(long, default_value_t = 100)]
    ef_construction: usize,
    #[arg(long, default_value_t = 100)]
    ef_search: usize,
    /// Also load the first --postgres-rows templates into a new gallery in
    /// this (empty) PostgreSQL database and time pgvector on the same kind of
    /// queries: exact, and its HNSW index at ef_search 40, 100 and 200.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    postgres_rows: usize,
    #[arg(long, default_value_t = 100)]
    postgres_queries: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl GalleryBenchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.rows == 0 || self.dim == 0 || self.k == 0 || self.queries == 0 || self.batch == 0 || self.hnsw_queries == 0 {
            return Err(Failure::bad_input("--rows, --dim, --top, --queries, --batch and --hnsw-queries must be positive"));
        }
        let settings = BenchSettings {
            rows: self.rows,
            dim: self.dim,
            k: self.k,
            queries: self.queries,
            batch: self.batch,
            hnsw_rows: self.hnsw_rows.max(self.k),
            hnsw_queries: self.hnsw_queries,
            hnsw: HnswParams { ef_construction: self.ef_construction, ef_search: self.ef_search.max(self.k), ..HnswParams::default() },
            seed: 1,
        };
        let report = visage_lab::gallery_bench::run(&settings, |line| eprintln!("visage: {line}"));
        #[cfg(not(feature = "postgres"))]
        if self.postgres.is_some() {
            return Err(Failure::bad_input("--postgres: this visage was built without the `postgres` feature"));
        }
        #[cfg(feature = "postgres")]
        let pgvector = match &self.postgres {
            Some(url) => {
                let settings = visage_lab::gallery_bench::pgvector::PgBenchSettings {
                    rows: self.postgres_rows.min(self.rows).max(self.k),
                    dim: self.dim,
                    k: self.k,
                    queries: self.postgres_queries.max(1),
                    ..Default::default()
                };
                Some(visage_lab::gallery_bench::pgvector::run(url, &settings, |line| eprintln!("visage: {line}")).map_err(failure)?)
            }
            None => None,
        };
        if self.json {
            #[allow(unused_mut)]
            let mut value = serde_json::to_value(&report).expect("serialisable");
            #[cfg(feature = "postgres")]
            if let Some(pgvector) = &pgvector {
                value["pgvector"] = serde_json::to_value(pgvector).expect("serialisable");
            }
            println!("{}", serde_json::to_string_pretty(&value).expect("serialisable"));
            return Ok(());
        }
        let r = &report;
        println!("gallery search, {} × {} f32 ({:.2} GB), top-{}, {} threads", r.rows, r.dim, r.matrix_gb, r.k, r.threads);
        println!(
            "read bandwidth (sum over the matrix)  {:.2} GB/s  [{:.2}–{:.2}]",
            r.read_bandwidth_gbs.median, r.read_bandwidth_gbs.min, r.read_bandwidth_gbs.max
        );
        println!(
            "exact, 1 query per pass              {:.3} queries/s [{:.3}–{:.3}] = {:.2} GB/s = {:.0} % of median bandwidth ({:.0} % of the highest)",
            r.exact_qps.median,
            r.exact_qps.min,
            r.exact_qps.max,
            r.exact_gbs,
            100.0 * r.exact_bandwidth_fraction,
            100.0 * r.exact_fraction_of_peak_bandwidth
        );
        println!(
            "exact, {} queries per pass            {:.3} queries/s [{:.3}–{:.3}]",
            r.batch, r.exact_batched_qps.median, r.exact_batched_qps.min, r.exact_batched_qps.max
        );
        println!(
            "HNSW over {} rows (ef_search {}): recall@{} {:.4}, top-1 agreement {:.3}, {:.0} queries/s vs exact {:.1} queries/s ({:.1}×), build {:.1} s",
            r.hnsw_rows,
            r.hnsw_ef_search,
            r.k,
            r.hnsw_recall_at_k,
            r.hnsw_top1_agreement,
            r.hnsw_qps,
            r.exact_qps_on_hnsw_rows,
            r.hnsw_qps / r.exact_qps_on_hnsw_rows,
            r.hnsw_build_s
        );
        #[cfg(feature = "postgres")]
        if let Some(p) = &pgvector {
            println!(
                "pgvector over {} rows: load {:.1} s, HNSW build {:.1} s; exact {:.2} queries/s (recall@{} {:.4}) vs in-memory exact {:.1} queries/s",
                p.rows, p.load_s, p.index_build_s, p.exact_qps, p.k, p.exact_recall_at_k, p.embedded_exact_qps
            );
            for run in &p.hnsw {
                println!(
                    "pgvector HNSW ef_search {:>4}: {:.1} queries/s, recall@{} {:.4}, top-1 agreement {:.3}",
                    run.ef_search, run.qps, p.k, run.recall_at_k, run.top1_agreement
                );
            }
        }
        Ok(())
    }
}
