//! The embedded backend: a gallery in one directory, no server.
//!
//! ```text
//! DIR/gallery.json     the creation config (format marker; written once, atomically)
//! DIR/snapshot.jsonl   the state as of log record `last_seq` (atomic rewrite)
//! DIR/wal.log          changes after the snapshot, one checksummed record per transaction
//! DIR/lock             flock: one writer, or any number of readers
//! ```
//!
//! **Durability.** A write is validated against the in-memory state,
//! appended to the log as one record and `fdatasync`ed, and only then
//! applied in memory and acknowledged. On open the snapshot is loaded and
//! the log replayed (records with `seq ≤ last_seq` are already in the
//! snapshot and skipped); a torn last record — a crash mid-append — is
//! dropped (and cut off the file when opening for writing), while damage
//! anywhere else is an error (see [`wal`]). So after `kill -9` every
//! acknowledged write is there and the store opens cleanly.
//!
//! **Compaction.** When the log outgrows both `compact_after_bytes` and the
//! last snapshot (so the rewrite cost stays proportional to the writes),
//! the state is written to a new snapshot (temp + fsync + rename + fsync
//! of the directory), then the log is replaced by an empty one the same
//! way. A crash between the two leaves a log whose records the snapshot
//! already holds; replay skips them by sequence number.
//!
//! **Concurrency.** One process writes at a time (an exclusive `flock` on
//! `DIR/lock`, waited for); read-only opens share the lock. Inside a
//! process, readers and the writer are ordered by a `RwLock`.

pub mod snapshot;
pub mod wal;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::{DecisionThreshold, GalleryConfig, GALLERY_FORMAT_VERSION};
use crate::error::{GalleryError, Result};
use crate::hnsw::{HnswIndex, HnswParams};
use crate::model::{check_name, FaceSample, Identity, IdentityId, IdentitySummary, Template};
use crate::search::TemplateMatrix;
use crate::store::{plan_import, screen_faces, EnrolOutcome, GalleryExport, GalleryStore, ImportConflict, ImportReport, ImportStep, Match, EXPORT_FORMAT};
use snapshot::{read_snapshot, write_snapshot, SnapshotHeader, SNAPSHOT_FORMAT};
use wal::{read_log, LogWriter};

const CONFIG_FILE: &str = "gallery.json";
const SNAPSHOT_FILE: &str = "snapshot.jsonl";
const LOG_FILE: &str = "wal.log";
const LOCK_FILE: &str = "lock";

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Share the lock with other readers; every write fails.
    pub read_only: bool,
    /// Compact once the log exceeds this many bytes (and the last snapshot's size).
    pub compact_after_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { read_only: false, compact_after_bytes: 64 << 20 }
    }
}

/// One change to the state. A log record holds a list of them: one transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Change {
    /// Adds templates to identity `id`, creating it (with `name`) when new;
    /// `metadata`, when given, replaces the identity's.
    Enrol { id: IdentityId, name: String, metadata: Option<serde_json::Value>, templates: Vec<Template> },
    Remove { id: IdentityId },
    SetThreshold { threshold: DecisionThreshold },
}

/// The gallery in memory.
struct State {
    config: GalleryConfig,
    identities: BTreeMap<IdentityId, Identity>,
    by_name: HashMap<String, IdentityId>,
    matrix: TemplateMatrix,
    next_id: IdentityId,
    last_seq: u64,
    /// Bumped by every applied transaction; keys the cached HNSW index.
    generation: u64,
}

impl State {
    fn new(config: GalleryConfig) -> Self {
        let matrix = TemplateMatrix::new(config.embedding_size);
        Self { config, identities: BTreeMap::new(), by_name: HashMap::new(), matrix, next_id: 1, last_seq: 0, generation: 0 }
    }

    fn insert_identity(&mut self, identity: Identity) {
        self.next_id = self.next_id.max(identity.id + 1);
        self.matrix.upsert(identity.id, &identity.pooled_template());
        self.by_name.insert(identity.name.clone(), identity.id);
        self.identities.insert(identity.id, identity);
    }

    /// Applies a validated change. Errors only for a log that does not fit
    /// the state it is replayed on (then the files are corrupt).
    fn apply(&mut self, change: Change) -> std::result::Result<(), String> {
        match change {
            Change::Enrol { id, name, metadata, templates } => {
                for template in &templates {
                    if template.embedding.len() != self.config.embedding_size {
                        return Err(format!("identity {id}: template of {} dimensions", template.embedding.len()));
                    }
                }
                match self.identities.get_mut(&id) {
                    Some(identity) => {
                        identity.templates.extend(templates);
                        if let Some(metadata) = metadata {
                            identity.metadata = metadata;
                        }
                        self.matrix.upsert(id, &identity.pooled_template());
                    }
                    None => {
                        if self.by_name.contains_key(&name) {
                            return Err(format!("identity {id} `{name}`: the name belongs to another identity"));
                        }
                        let metadata = metadata.unwrap_or(serde_json::Value::Null);
                        self.insert_identity(Identity { id, name, metadata, templates });
                    }
                }
            }
            Change::Remove { id } => {
                let identity = self.identities.remove(&id).ok_or_else(|| format!("removal of unknown identity {id}"))?;
                self.by_name.remove(&identity.name);
                self.matrix.remove(id);
            }
            Change::SetThreshold { threshold } => self.config.threshold = threshold,
        }
        Ok(())
    }

    fn identity_named(&self, name: &str) -> Result<&Identity> {
        self.by_name
            .get(name)
            .and_then(|id| self.identities.get(id))
            .ok_or_else(|| GalleryError::UnknownIdentity { name: name.to_string() })
    }

    fn check_queries(&self, queries: &[&[f32]]) -> Result<()> {
        for (i, query) in queries.iter().enumerate() {
            self.config.check_dimension(&format!("query {i}"), query.len())?;
        }
        Ok(())
    }

    fn matches(&self, hits: Vec<crate::search::Scored>) -> Vec<Match> {
        hits.into_iter().map(|hit| Match { id: hit.id, name: self.identities[&hit.id].name.clone(), score: hit.score }).collect()
    }
}

struct Inner {
    state: State,
    /// `None` when opened read-only.
    log: Option<LogWriter>,
    snapshot_bytes: u64,
}

/// A gallery directory. See the module docs.
pub struct EmbeddedStore {
    dir: PathBuf,
    options: OpenOptions,
    inner: RwLock<Inner>,
    /// Held for the store's lifetime: the flock is released when it closes.
    _lock: File,
    /// The HNSW index of the current state, built on first approximate search.
    approximate: Mutex<Option<(u64, std::sync::Arc<HnswIndex>)>>,
    /// Why the last automatic compaction failed (the write itself had succeeded).
    compaction_error: Mutex<Option<String>>,
}

impl EmbeddedStore {
    /// Whether `dir` holds a gallery.
    pub fn exists(dir: &Path) -> bool {
        dir.join(CONFIG_FILE).is_file()
    }

    /// Creates a gallery in `dir` (made if missing; it must not hold a gallery yet).
    pub fn create(dir: &Path, config: GalleryConfig) -> Result<Self> {
        if Self::exists(dir) {
            return Err(GalleryError::invalid(dir.display().to_string(), "already holds a gallery"));
        }
        std::fs::create_dir_all(dir).map_err(|e| GalleryError::io(dir, e))?;
        let text = serde_json::to_string_pretty(&config).expect("serialisable");
        write_atomically(&dir.join(CONFIG_FILE), text.as_bytes())?;
        Self::open(dir, OpenOptions::default())
    }

    pub fn open(dir: &Path, options: OpenOptions) -> Result<Self> {
        let config_path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&config_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GalleryError::NotAGallery { path: dir.to_path_buf(), message: format!("no {CONFIG_FILE}") });
            }
            Err(e) => return Err(GalleryError::io(&config_path, e)),
        };
        let config: GalleryConfig = serde_json::from_str(&text).map_err(|e| GalleryError::corrupt(&config_path, e.to_string()))?;
        if config.format_version != GALLERY_FORMAT_VERSION {
            return Err(GalleryError::corrupt(
                &config_path,
                format!("format_version {}, this build reads {GALLERY_FORMAT_VERSION}", config.format_version),
            ));
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| GalleryError::io(&lock_path, e))?;
        if options.read_only { lock.lock_shared() } else { lock.lock() }.map_err(|e| GalleryError::io(&lock_path, e))?;

        let mut state = State::new(config);
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let mut snapshot_bytes = 0;
        if let Some((header, identities, size)) = read_snapshot(&snapshot_path)? {
            if header.config.embedding_size != state.config.embedding_size {
                return Err(GalleryError::corrupt(&snapshot_path, "embedding size differs from gallery.json"));
            }
            state.config = header.config;
            state.last_seq = header.last_seq;
            for identity in identities {
                state.insert_identity(identity);
            }
            state.next_id = state.next_id.max(header.next_id);
            snapshot_bytes = size;
        }
        let log_path = dir.join(LOG_FILE);
        let log_contents = read_log(&log_path)?;
        for record in log_contents.records {
            if record.seq <= state.last_seq {
                continue; // already in the snapshot (a crash between snapshot and log reset)
            }
            let changes: Vec<Change> = serde_json::from_slice(&record.payload)
                .map_err(|e| GalleryError::corrupt(&log_path, format!("record seq {}: {e}", record.seq)))?;
            for change in changes {
                state.apply(change).map_err(|m| GalleryError::corrupt(&log_path, format!("record seq {}: {m}", record.seq)))?;
            }
            state.last_seq = record.seq;
        }
        let log = if options.read_only { None } else { Some(LogWriter::open(&log_path, log_contents.valid_len)?) };
        Ok(Self {
            dir: dir.to_path_buf(),
            options,
            inner: RwLock::new(Inner { state, log, snapshot_bytes }),
            _lock: lock,
            approximate: Mutex::new(None),
            compaction_error: Mutex::new(None),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `changes` durable as one log record, then applies them.
    fn commit(&self, inner: &mut Inner, changes: Vec<Change>) -> Result<()> {
        let log_path = self.dir.join(LOG_FILE);
        let Some(log) = inner.log.as_mut() else {
            return Err(GalleryError::Unsupported { location: self.location(), message: "opened read-only".into() });
        };
        let seq = inner.state.last_seq + 1;
        let payload = serde_json::to_vec(&changes).expect("serialisable");
        log.append(&log_path, seq, &payload)?;
        for change in changes {
            inner.state.apply(change).map_err(|m| GalleryError::invalid("transaction", m))?;
        }
        inner.state.last_seq = seq;
        inner.state.generation += 1;
        let log_len = log.len();
        if log_len > self.options.compact_after_bytes.max(inner.snapshot_bytes) {
            // The write is durable already: a failed compaction must not turn
            // it into an error (a retry would enrol twice). It is kept for
            // `compaction_error` and the next write tries again.
            let outcome = self.compact_locked(inner).err().map(|e| e.to_string());
            *self.compaction_error.lock().unwrap_or_else(|p| p.into_inner()) = outcome;
        }
        Ok(())
    }

    /// Writes a snapshot of the current state and empties the log.
    pub fn compact(&self) -> Result<()> {
        let mut inner = self.write();
        self.compact_locked(&mut inner)
    }

    fn compact_locked(&self, inner: &mut Inner) -> Result<()> {
        if inner.log.is_none() {
            return Err(GalleryError::Unsupported { location: self.location(), message: "opened read-only".into() });
        }
        let state = &inner.state;
        let header = SnapshotHeader { format: SNAPSHOT_FORMAT.into(), last_seq: state.last_seq, next_id: state.next_id, config: state.config.clone() };
        inner.snapshot_bytes = write_snapshot(&self.dir.join(SNAPSHOT_FILE), &header, state.identities.values())?;
        let log_path = self.dir.join(LOG_FILE);
        write_atomically(&log_path, &[])?;
        inner.log = Some(LogWriter::open(&log_path, 0)?);
        Ok(())
    }

    /// Why the last automatic compaction failed, if it did.
    pub fn compaction_error(&self) -> Option<String> {
        self.compaction_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Approximate top-`k` by HNSW, for large galleries. The index is built
    /// on first use for the current state (not persisted: seconds per 10⁵
    /// identities) and rebuilt after writes.
    pub fn search_approximate(&self, queries: &[&[f32]], k: usize, params: HnswParams) -> Result<Vec<Vec<Match>>> {
        let inner = self.read();
        inner.state.check_queries(queries)?;
        let index = {
            let mut cached = self.approximate.lock().unwrap_or_else(|p| p.into_inner());
            match cached.as_ref() {
                Some((generation, index)) if *generation == inner.state.generation && index.params() == params => index.clone(),
                _ => {
                    let index = std::sync::Arc::new(HnswIndex::build(&inner.state.matrix, params));
                    *cached = Some((inner.state.generation, index.clone()));
                    index
                }
            }
        };
        Ok(queries.iter().map(|query| inner.state.matches(index.search(query, k))).collect())
    }
}

impl GalleryStore for EmbeddedStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn config(&self) -> Result<GalleryConfig> {
        Ok(self.read().state.config.clone())
    }

    fn set_threshold(&self, threshold: DecisionThreshold) -> Result<()> {
        let mut inner = self.write();
        self.commit(&mut inner, vec![Change::SetThreshold { threshold }])
    }

    fn enrol(&self, name: &str, metadata: Option<serde_json::Value>, faces: &[FaceSample]) -> Result<EnrolOutcome> {
        check_name(name)?;
        let mut inner = self.write();
        let (templates, refused) = screen_faces(&inner.state.config, faces)?;
        if templates.is_empty() {
            return Ok(EnrolOutcome { identity: None, created: false, accepted: 0, refused });
        }
        let existing = inner.state.by_name.get(name).copied();
        let id = existing.unwrap_or(inner.state.next_id);
        let accepted = templates.len();
        self.commit(&mut inner, vec![Change::Enrol { id, name: name.to_string(), metadata, templates }])?;
        let identity = inner.state.identities[&id].summary();
        Ok(EnrolOutcome { identity: Some(identity), created: existing.is_none(), accepted, refused })
    }

    fn remove(&self, name: &str) -> Result<IdentitySummary> {
        let mut inner = self.write();
        let identity = inner.state.identity_named(name)?.summary();
        self.commit(&mut inner, vec![Change::Remove { id: identity.id }])?;
        Ok(identity)
    }

    fn list(&self) -> Result<Vec<IdentitySummary>> {
        let inner = self.read();
        let mut identities: Vec<IdentitySummary> = inner.state.identities.values().map(Identity::summary).collect();
        identities.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(identities)
    }

    fn get(&self, name: &str) -> Result<Identity> {
        Ok(self.read().state.identity_named(name)?.clone())
    }

    fn len(&self) -> Result<usize> {
        Ok(self.read().state.identities.len())
    }

    fn search(&self, queries: &[&[f32]], k: usize) -> Result<Vec<Vec<Match>>> {
        let inner = self.read();
        inner.state.check_queries(queries)?;
        Ok(inner.state.matrix.top_k(queries, k).into_iter().map(|hits| inner.state.matches(hits)).collect())
    }

    fn export(&self) -> Result<GalleryExport> {
        let inner = self.read();
        Ok(GalleryExport {
            format: EXPORT_FORMAT.to_string(),
            config: inner.state.config.clone(),
            identities: inner.state.identities.values().cloned().collect(),
        })
    }

    fn import(&self, export: &GalleryExport, on_conflict: ImportConflict) -> Result<ImportReport> {
        let mut inner = self.write();
        let (steps, report) = plan_import(&inner.state.config, export, on_conflict, |name| inner.state.by_name.get(name).copied())?;
        let mut next_id = inner.state.next_id;
        let changes: Vec<Change> = steps
            .into_iter()
            .map(|step| match step {
                ImportStep::Create { index } => {
                    let identity = &export.identities[index];
                    next_id += 1;
                    Change::Enrol { id: next_id - 1, name: identity.name.clone(), metadata: Some(identity.metadata.clone()), templates: identity.templates.clone() }
                }
                ImportStep::Merge { index, id } => {
                    let identity = &export.identities[index];
                    Change::Enrol { id, name: identity.name.clone(), metadata: None, templates: identity.templates.clone() }
                }
            })
            .collect();
        if !changes.is_empty() {
            self.commit(&mut inner, changes)?;
        }
        Ok(report)
    }

    fn search_approximate(&self, queries: &[&[f32]], k: usize, params: HnswParams) -> Result<Vec<Vec<Match>>> {
        EmbeddedStore::search_approximate(self, queries, k, params)
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the
/// new one: write a temporary file, fsync it, rename it over, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("tmp");
    let io = |e| GalleryError::io(&temp, e);
    let mut file = File::create(&temp).map_err(io)?;
    std::io::Write::write_all(&mut file, bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    durable_rename(&temp, path)
}

/// `rename` followed by an fsync of the directory, which makes the rename itself durable.
fn durable_rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| GalleryError::io(to, e))?;
    let dir = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| GalleryError::io(dir, e))
}
