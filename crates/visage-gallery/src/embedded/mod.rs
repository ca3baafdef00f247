//! The embedded backend: a gallery in one directory, no server.
//!
//! ```text
//! DIR/gallery.json     the creation config (format marker; written once, atomically)
//! DIR/snapshot.jsonl   the state as of log record `last_seq` (atomic rewrite)
//! DIR/wal.log          changes after the snapshot, one checksummed record per transaction
//! DIR/lock             flock: one writer, or any number of readers
//! ```
//!
//! Every file and directory is created owner-only (0600 / 0700: templates
//! are biometric data), and every creation, rename or replacement is
//! followed by an fsync of the parent directory before anything that
//! depends on it is acknowledged. All file-system calls go through
//! [`fs::FileSystem`], so that tests can replay power cuts.
//!
//! **Durability.** A write is validated against the in-memory state,
//! appended to the log as one record and `fdatasync`ed, and only then
//! applied in memory and acknowledged. On open the snapshot is loaded and
//! the log replayed (records with `seq ≤ last_seq` are already in the
//! snapshot and skipped); a torn last record — a crash mid-append — is
//! dropped (and cut off the file when opening for writing, after a durable
//! copy of the cut bytes beside it: `wal.log.cut-OFFSET-CRC`), while damage
//! anywhere else is an error (see [`wal`]). So after `kill -9` every
//! acknowledged write is there and the store opens cleanly.
//!
//! **Compaction.** When the log outgrows both `compact_after_bytes` and the
//! last snapshot (so the rewrite cost stays proportional to the writes),
//! the state is written to a new snapshot (temp + fsync + rename + fsync
//! of the directory), then the log is replaced by an empty one: created
//! under a temporary name and fsynced, renamed over the log, and the
//! writer switched to it *before* the directory fsync — from the rename on,
//! the old log is unlinked and nothing may be appended to it. Should that
//! directory fsync fail, the store remembers it and every later write
//! first fsyncs the directory again (and fails, unacknowledged, while that
//! fails), so no acknowledged record can sit in a file a power cut could
//! unname. A crash between snapshot and log reset leaves a log whose
//! records the snapshot already holds; replay skips them by sequence number.
//!
//! **Concurrency.** One process writes at a time (an exclusive `flock` on
//! `DIR/lock`); read-only opens share the lock. A process that finds the
//! lock held waits up to [`OpenOptions::lock_timeout`] and then fails with
//! [`GalleryError::Locked`] naming the holder's pid, rather than waiting
//! silently (`visage serve` holds the lock as long as it runs). Inside a
//! process, readers and the writer are ordered by a `RwLock`.
//!
//! **Idempotency.** An enrolment may carry an idempotency key; the key, a
//! fingerprint of the request and the outcome go into the same log record
//! as the enrolment, and the last [`IDEMPOTENCY_KEYS_KEPT`] keys are kept
//! (in the snapshot too), so a retry of an enrolment whose answer was lost
//! gets the first answer instead of enrolling twice.

pub mod fs;
pub mod snapshot;
pub mod wal;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{DecisionThreshold, GalleryConfig, GALLERY_FORMAT_VERSION};
use crate::error::{GalleryError, Result};
use crate::hnsw::{HnswIndex, HnswParams};
use crate::json::from_json;
use crate::model::{FaceSample, Identity, IdentityId, IdentitySummary, Template};
use crate::search::TemplateMatrix;
use crate::store::{
    check_enrolment, check_idempotency_key, enrolment_fingerprint, plan_import, screen_faces, EnrolOutcome, GalleryExport, GalleryStore,
    ImportConflict, ImportReport, ImportStep, Match, EXPORT_FORMAT,
};
use fs::{FileSystem, LockFailure, LockGuard, RealFs};
use snapshot::{read_snapshot, write_snapshot, SnapshotHeader, SNAPSHOT_FORMAT};
use wal::{read_log, LogWriter};

const CONFIG_FILE: &str = "gallery.json";
const SNAPSHOT_FILE: &str = "snapshot.jsonl";
const LOG_FILE: &str = "wal.log";
const LOCK_FILE: &str = "lock";

/// How many idempotency keys a gallery remembers (the oldest are forgotten
/// first): a retry comes seconds after the first try, not thousands of
/// enrolments later.
pub const IDEMPOTENCY_KEYS_KEPT: usize = 10_000;

/// Ids and sequence numbers read from the files must stay below this, so
/// that `+ 1` on them can never overflow, whatever the files say (a gallery
/// would need 2⁶² writes to get there).
const MAX_COUNTER: u64 = 1 << 62;

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Share the lock with other readers; every write fails.
    pub read_only: bool,
    /// Compact once the log exceeds this many bytes (and the last snapshot's size).
    pub compact_after_bytes: u64,
    /// How long to wait for a lock another process holds before failing
    /// with [`GalleryError::Locked`].
    pub lock_timeout: Duration,
    /// Where the files live: the operating system's file system, or in
    /// tests a layer that records what a power cut would keep.
    pub fs: Arc<dyn FileSystem>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { read_only: false, compact_after_bytes: 64 << 20, lock_timeout: Duration::from_secs(10), fs: Arc::new(RealFs) }
    }
}

/// What a gallery remembers of an enrolment made with an idempotency key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The client's key (1 to 128 visible ASCII characters).
    pub key: String,
    /// [`enrolment_fingerprint`] of the request: the same key with another request is refused.
    pub fingerprint: u32,
    /// The identity the enrolment wrote to.
    pub id: IdentityId,
    /// Whether that enrolment created the identity.
    pub created: bool,
    /// Templates that enrolment added.
    pub accepted: usize,
}

/// One change to the state. A log record holds a list of them: one transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Change {
    /// Adds templates to identity `id`, creating it (with `name`) when new;
    /// `metadata`, when given, replaces the identity's.
    Enrol {
        id: IdentityId,
        name: String,
        metadata: Option<serde_json::Value>,
        templates: Vec<Template>,
    },
    Remove {
        id: IdentityId,
    },
    SetThreshold {
        threshold: DecisionThreshold,
    },
    /// Remembers the idempotency key of the enrolment in the same record.
    Remember(IdempotencyRecord),
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
    /// Remembered idempotency keys, and the order they came in (oldest first).
    idempotency: HashMap<String, IdempotencyRecord>,
    idempotency_order: VecDeque<String>,
}

impl State {
    fn new(config: GalleryConfig) -> Self {
        let matrix = TemplateMatrix::new(config.embedding_size);
        Self {
            config,
            identities: BTreeMap::new(),
            by_name: HashMap::new(),
            matrix,
            next_id: 1,
            last_seq: 0,
            generation: 0,
            idempotency: HashMap::new(),
            idempotency_order: VecDeque::new(),
        }
    }

    /// Keys are unique (a remembered key is answered, never re-recorded).
    fn remember(&mut self, record: IdempotencyRecord) {
        if self.idempotency.insert(record.key.clone(), record.clone()).is_none() {
            self.idempotency_order.push_back(record.key);
        }
        while self.idempotency_order.len() > IDEMPOTENCY_KEYS_KEPT {
            if let Some(oldest) = self.idempotency_order.pop_front() {
                self.idempotency.remove(&oldest);
            }
        }
    }

    /// The remembered keys, oldest first (for the snapshot).
    fn remembered_keys(&self) -> Vec<IdempotencyRecord> {
        self.idempotency_order.iter().filter_map(|key| self.idempotency.get(key).cloned()).collect()
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
                if id >= MAX_COUNTER {
                    return Err(format!("identity id {id} is out of range"));
                }
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
            Change::Remember(record) => self.remember(record),
        }
        Ok(())
    }

    fn identity_named(&self, name: &str) -> Result<&Identity> {
        self.by_name.get(name).and_then(|id| self.identities.get(id)).ok_or_else(|| GalleryError::UnknownIdentity { name: name.to_string() })
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
    /// A rename in the directory (the log's replacement) whose directory
    /// fsync failed: the next write fsyncs the directory before appending.
    directory_unsynced: bool,
}

/// A gallery directory. See the module docs.
pub struct EmbeddedStore {
    dir: PathBuf,
    options: OpenOptions,
    inner: RwLock<Inner>,
    /// Held for the store's lifetime: the flock is released when it closes.
    _lock: Box<dyn LockGuard>,
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
        Self::create_with(dir, config, OpenOptions::default())
    }

    /// [`EmbeddedStore::create`] with `options` (not read-only).
    pub fn create_with(dir: &Path, config: GalleryConfig, options: OpenOptions) -> Result<Self> {
        let fs = options.fs.as_ref();
        if fs.is_file(&dir.join(CONFIG_FILE)) {
            return Err(GalleryError::invalid(dir.display().to_string(), "already holds a gallery"));
        }
        create_dir_durably(fs, dir)?;
        let text = serde_json::to_string_pretty(&config).expect("serialisable");
        write_atomically(fs, &dir.join(CONFIG_FILE), text.as_bytes())?;
        Self::open(dir, OpenOptions { read_only: false, ..options })
    }

    /// Opens the gallery in `dir`: takes the lock (shared when
    /// `options.read_only`), loads the snapshot and replays the log. A
    /// writable open also cuts a torn last record off the log (keeping a
    /// copy beside it) and makes the files owner-only. Errors:
    /// `NotAGallery` without `gallery.json`, `Locked` when another process
    /// holds the lock past `options.lock_timeout`, `Corrupt` for damaged
    /// files or a `format_version` this build does not read, `Io` otherwise.
    pub fn open(dir: &Path, options: OpenOptions) -> Result<Self> {
        let fs = options.fs.clone();
        let fs = fs.as_ref();
        let config_path = dir.join(CONFIG_FILE);
        let text = match fs.read(&config_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GalleryError::NotAGallery { path: dir.to_path_buf(), message: format!("no {CONFIG_FILE}") });
            }
            Err(e) => return Err(GalleryError::io(&config_path, e)),
        };
        let config: GalleryConfig = serde_json::from_slice(&text).map_err(|e| GalleryError::corrupt(&config_path, e.to_string()))?;
        if config.format_version != GALLERY_FORMAT_VERSION {
            return Err(GalleryError::corrupt(
                &config_path,
                format!("format_version {}, this build reads {GALLERY_FORMAT_VERSION}", config.format_version),
            ));
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs.lock(&lock_path, options.read_only, options.lock_timeout).map_err(|failure| match failure {
            LockFailure::Busy { holder } => GalleryError::Locked { path: dir.to_path_buf(), holder, waited_s: options.lock_timeout.as_secs_f64() },
            LockFailure::Io(e) => GalleryError::io(&lock_path, e),
        })?;

        let mut state = State::new(config);
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let mut snapshot_bytes = 0;
        if let Some((header, identities, size)) = read_snapshot(fs, &snapshot_path)? {
            if header.config.embedding_size != state.config.embedding_size {
                return Err(GalleryError::corrupt(&snapshot_path, "embedding size differs from gallery.json"));
            }
            if header.last_seq >= MAX_COUNTER || header.next_id >= MAX_COUNTER || identities.iter().any(|i| i.id >= MAX_COUNTER) {
                return Err(GalleryError::corrupt(&snapshot_path, "a sequence number or identity id is out of range"));
            }
            state.config = header.config;
            state.last_seq = header.last_seq;
            for identity in identities {
                if identity.templates.iter().any(|t| t.embedding.len() != state.config.embedding_size) {
                    return Err(GalleryError::corrupt(&snapshot_path, format!("identity {} has a template of another length", identity.id)));
                }
                if state.identities.contains_key(&identity.id) || state.by_name.contains_key(&identity.name) {
                    return Err(GalleryError::corrupt(&snapshot_path, format!("identity {} `{}` appears twice", identity.id, identity.name)));
                }
                state.insert_identity(identity);
            }
            for record in header.idempotency {
                state.remember(record);
            }
            state.next_id = state.next_id.max(header.next_id);
            snapshot_bytes = size;
        }
        let log_path = dir.join(LOG_FILE);
        let log_contents = read_log(fs, &log_path)?;
        for record in log_contents.records {
            if record.seq <= state.last_seq {
                continue; // already in the snapshot (a crash between snapshot and log reset)
            }
            if record.seq >= MAX_COUNTER {
                return Err(GalleryError::corrupt(&log_path, format!("record seq {} is out of range", record.seq)));
            }
            let changes: Vec<Change> =
                from_json(&record.payload).map_err(|e| GalleryError::corrupt(&log_path, format!("record seq {}: {e}", record.seq)))?;
            for change in changes {
                state.apply(change).map_err(|m| GalleryError::corrupt(&log_path, format!("record seq {}: {m}", record.seq)))?;
            }
            state.last_seq = record.seq;
        }
        let log = if options.read_only { None } else { Some(LogWriter::open(fs, &log_path, log_contents.valid_len)?) };
        if !options.read_only {
            // Biometric data: a gallery created by an older version (0644 / 0755) is
            // made owner-only by its writer. Best effort — a failure (another owner) does
            // not stop the gallery from working.
            for path in [dir.to_path_buf(), config_path, snapshot_path, log_path, lock_path] {
                if fs.is_file(&path) || fs.is_dir(&path) {
                    let _ = fs.restrict_to_owner(&path);
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            options,
            inner: RwLock::new(Inner { state, log, snapshot_bytes, directory_unsynced: false }),
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
        if inner.directory_unsynced {
            self.options.fs.sync_dir(&self.dir).map_err(|e| GalleryError::io(&self.dir, e))?;
            inner.directory_unsynced = false;
        }
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
        let fs = self.options.fs.as_ref();
        if inner.directory_unsynced {
            fs.sync_dir(&self.dir).map_err(|e| GalleryError::io(&self.dir, e))?;
            inner.directory_unsynced = false;
        }
        let state = &inner.state;
        let header = SnapshotHeader {
            format: SNAPSHOT_FORMAT.into(),
            last_seq: state.last_seq,
            next_id: state.next_id,
            config: state.config.clone(),
            idempotency: state.remembered_keys(),
        };
        inner.snapshot_bytes = write_snapshot(fs, &self.dir.join(SNAPSHOT_FILE), &header, state.identities.values())?;
        // The new, empty log is durable under a temporary name before it replaces the old one.
        let log_path = self.dir.join(LOG_FILE);
        let temp = log_path.with_extension("tmp");
        let mut file = fs.create(&temp).map_err(|e| GalleryError::io(&temp, e))?;
        file.sync_data().map_err(|e| GalleryError::io(&temp, e))?;
        fs.rename(&temp, &log_path).map_err(|e| GalleryError::io(&log_path, e))?;
        // The old log is unlinked now: switch before anything else can fail.
        inner.log = Some(LogWriter::empty(file));
        if let Err(e) = fs.sync_dir(&self.dir) {
            inner.directory_unsynced = true;
            return Err(GalleryError::io(&self.dir, e));
        }
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

    fn enrol_idempotent(
        &self,
        idempotency_key: Option<&str>,
        name: &str,
        metadata: Option<serde_json::Value>,
        faces: &[FaceSample],
    ) -> Result<EnrolOutcome> {
        check_enrolment(name, metadata.as_ref())?;
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let mut inner = self.write();
        let (templates, refused) = screen_faces(&inner.state.config, faces)?;
        let fingerprint = enrolment_fingerprint(name, metadata.as_ref(), faces);
        if let Some(earlier) = idempotency_key.and_then(|key| inner.state.idempotency.get(key)) {
            if earlier.fingerprint != fingerprint {
                return Err(GalleryError::invalid(
                    "Idempotency-Key",
                    format!("`{}` was already used for a different enrolment; use a new key for a new request", earlier.key),
                ));
            }
            // The identity as it is now (it may have changed, or been removed, since).
            let identity = inner.state.identities.get(&earlier.id).map(Identity::summary);
            return Ok(EnrolOutcome { identity, created: earlier.created, accepted: earlier.accepted, refused });
        }
        if templates.is_empty() {
            return Ok(EnrolOutcome { identity: None, created: false, accepted: 0, refused });
        }
        let existing = inner.state.by_name.get(name).copied();
        let id = existing.unwrap_or(inner.state.next_id);
        let accepted = templates.len();
        let mut changes = vec![Change::Enrol { id, name: name.to_string(), metadata, templates }];
        if let Some(key) = idempotency_key {
            changes.push(Change::Remember(IdempotencyRecord { key: key.to_string(), fingerprint, id, created: existing.is_none(), accepted }));
        }
        self.commit(&mut inner, changes)?;
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
                    Change::Enrol {
                        id: next_id - 1,
                        name: identity.name.clone(),
                        metadata: Some(identity.metadata.clone()),
                        templates: identity.templates.clone(),
                    }
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
pub fn write_atomically(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("tmp");
    let io = |e| GalleryError::io(&temp, e);
    let mut file = fs.create(&temp).map_err(io)?;
    file.append(bytes).map_err(io)?;
    file.sync_data().map_err(io)?;
    drop(file);
    durable_rename(fs, &temp, path)
}

/// `rename` followed by an fsync of the directory, which makes the rename itself durable.
fn durable_rename(fs: &dyn FileSystem, from: &Path, to: &Path) -> Result<()> {
    fs.rename(from, to).map_err(|e| GalleryError::io(to, e))?;
    let dir = parent_dir(to);
    fs.sync_dir(dir).map_err(|e| GalleryError::io(dir, e))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Creates `dir` and any missing ancestors (owner-only), fsyncing each
/// one's parent, so that the gallery's directory itself survives a power cut.
fn create_dir_durably(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    while !current.as_os_str().is_empty() && !fs.is_dir(current) {
        missing.push(current);
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }
    for created in missing.into_iter().rev() {
        match fs.create_dir(created) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && fs.is_dir(created) => {}
            Err(e) => return Err(GalleryError::io(created, e)),
        }
        let parent = parent_dir(created);
        fs.sync_dir(parent).map_err(|e| GalleryError::io(parent, e))?;
    }
    Ok(())
}
