//! Power cuts, replayed: the embedded store runs on an in-memory file
//! system that keeps, for every file and directory, what is durable (made
//! so by an fsync) apart from what only the page cache holds. A scenario
//! of every kind of write is run once to count its file-system operations,
//! then once per operation index with the power cut there; from each cut,
//! several disks a real machine could come back with are built (every
//! unsynced change lost; all kept; the first half of the directory changes
//! and a torn half of the unsynced file bytes; only the last directory
//! change), and on each the store must open with every acknowledged write
//! in it and the one in flight either whole or absent. Each recovery is
//! then cut again at every one of its own operations (a second failure
//! while the store repairs a torn tail and takes its next write).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use visage_gallery::embedded::fs::{FileHandle, FileSystem, LockFailure, LockGuard};
use visage_gallery::{DecisionThreshold, EmbeddedStore, FaceSample, GalleryExport, GalleryStore, Identity, ImportConflict, OpenOptions, Template};

mod common;
use common::{config, embedding, face};

const ROOT: &str = "/disk";
const GALLERY: &str = "/disk/gallery";

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    cached: Vec<u8>,
    is_dir: bool,
}

#[derive(Clone, Debug)]
enum DirOp {
    Set(OsString, usize),
    Remove(OsString),
}

#[derive(Clone, Debug, Default)]
struct Dir {
    durable: BTreeMap<OsString, usize>,
    cached: BTreeMap<OsString, usize>,
    /// Changes since the last fsync of the directory, in order.
    pending: Vec<DirOp>,
}

/// Which unsynced changes survive the cut.
#[derive(Clone, Copy, Debug)]
enum Survivors {
    Nothing,
    Everything,
    /// The first half of each directory's changes; each file keeps half of
    /// the bytes appended since its last fsync (a torn write).
    FirstHalf,
    /// Only each directory's last change (reordered), no unsynced file bytes.
    LastOnly,
}

#[derive(Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    /// Mutating and syncing operations so far.
    ops: usize,
    /// The operation index at which the power fails; from then on every call fails.
    cut_at: Option<usize>,
    cut: bool,
    /// Injected failures: the n-th operation (1 = the next) whose journal
    /// entry starts with the prefix fails, once, without taking effect.
    fail: Vec<(&'static str, usize)>,
    /// What happened, for the test's own checks.
    journal: Vec<String>,
}

fn power_cut() -> io::Error {
    io::Error::other("power cut (simulated)")
}

impl Disk {
    fn new() -> Self {
        let mut disk = Disk { inodes: vec![Inode { is_dir: true, ..Inode::default() }], ..Disk::default() };
        disk.dirs.insert(PathBuf::from(ROOT), Dir::default());
        disk
    }

    /// Counts one operation; fails it (and all later ones) at the cut.
    fn op(&mut self, what: String) -> io::Result<()> {
        if self.cut || self.cut_at == Some(self.ops) {
            self.cut = true;
            return Err(power_cut());
        }
        self.ops += 1;
        let mut injected = false;
        self.fail.retain_mut(|(prefix, countdown)| {
            if !injected && what.starts_with(*prefix) {
                *countdown -= 1;
                injected = *countdown == 0;
                return !injected;
            }
            true
        });
        if injected {
            self.journal.push(format!("{what} (failed)"));
            return Err(io::Error::other(format!("{what} failed (injected)")));
        }
        self.journal.push(what);
        Ok(())
    }

    fn dir_exists(&self, path: &Path) -> bool {
        if path == Path::new(ROOT) {
            return true;
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return false };
        self.dir_exists(parent) && self.dirs.get(parent).and_then(|d| d.cached.get(name)).is_some_and(|&inode| self.inodes[inode].is_dir)
    }

    fn lookup(&self, path: &Path) -> Option<usize> {
        let (parent, name) = (path.parent()?, path.file_name()?);
        if !self.dir_exists(parent) {
            return None;
        }
        self.dirs.get(parent)?.cached.get(name).copied()
    }

    fn file(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path) {
            Some(inode) if !self.inodes[inode].is_dir => Ok(inode),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))),
        }
    }

    fn set_entry(&mut self, path: &Path, inode: usize) -> io::Result<()> {
        let (parent, name) = (path.parent().unwrap(), path.file_name().unwrap().to_os_string());
        if !self.dir_exists(parent) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no such directory", parent.display())));
        }
        let dir = self.dirs.get_mut(parent).unwrap();
        dir.cached.insert(name.clone(), inode);
        dir.pending.push(DirOp::Set(name, inode));
        Ok(())
    }

    /// The disk the machine comes back with.
    fn after_cut(&self, survivors: Survivors) -> Disk {
        let mut disk = Disk { inodes: self.inodes.clone(), ..Disk::default() };
        for inode in &mut disk.inodes {
            let kept = match survivors {
                Survivors::Everything => inode.cached.clone(),
                Survivors::FirstHalf if inode.cached.starts_with(&inode.durable) => {
                    let unsynced = inode.cached.len() - inode.durable.len();
                    inode.cached[..inode.durable.len() + unsynced / 2].to_vec()
                }
                _ => inode.durable.clone(),
            };
            *inode = Inode { durable: kept.clone(), cached: kept, is_dir: inode.is_dir };
        }
        for (path, dir) in &self.dirs {
            let n = dir.pending.len();
            let applied: &[DirOp] = match survivors {
                Survivors::Nothing => &[],
                Survivors::Everything => &dir.pending,
                Survivors::FirstHalf => &dir.pending[..n.div_ceil(2)],
                Survivors::LastOnly => &dir.pending[n.saturating_sub(1)..],
            };
            let mut entries = dir.durable.clone();
            for op in applied {
                match op {
                    DirOp::Set(name, inode) => entries.insert(name.clone(), *inode),
                    DirOp::Remove(name) => entries.remove(name),
                };
            }
            disk.dirs.insert(path.clone(), Dir { durable: entries.clone(), cached: entries, pending: Vec::new() });
        }
        disk
    }
}

#[derive(Clone, Debug)]
struct RecordingFs(Arc<Mutex<Disk>>);

impl RecordingFs {
    fn new(disk: Disk) -> Self {
        Self(Arc::new(Mutex::new(disk)))
    }

    fn disk(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.0.lock().unwrap()
    }
}

struct Handle {
    disk: Arc<Mutex<Disk>>,
    inode: usize,
    name: String,
}

impl FileHandle for Handle {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.op(format!("append {} {}", self.name, bytes.len()))?;
        disk.inodes[self.inode].cached.extend_from_slice(bytes);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.op(format!("sync {}", self.name))?;
        let inode = &mut disk.inodes[self.inode];
        inode.durable = inode.cached.clone();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.op(format!("set_len {} {len}", self.name))?;
        disk.inodes[self.inode].cached.resize(len as usize, 0);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.disk.lock().unwrap().inodes[self.inode].cached.len() as u64)
    }
}

struct NoLock;

impl LockGuard for NoLock {}

impl FileSystem for RecordingFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let disk = self.disk();
        if disk.cut {
            return Err(power_cut());
        }
        Ok(disk.inodes[disk.file(path)?].cached.clone())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(Cursor::new(self.read(path)?)))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.disk().file(path).is_ok()
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.disk().dir_exists(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        disk.op(format!("mkdir {}", path.display()))?;
        if disk.lookup(path).is_some() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, path.display().to_string()));
        }
        disk.inodes.push(Inode { is_dir: true, ..Inode::default() });
        let inode = disk.inodes.len() - 1;
        disk.set_entry(path, inode)?;
        disk.dirs.insert(path.to_path_buf(), Dir::default());
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut disk = self.disk();
        disk.op(format!("create {}", path.display()))?;
        let inode = match disk.lookup(path) {
            Some(inode) => {
                disk.inodes[inode].cached.clear();
                inode
            }
            None => {
                disk.inodes.push(Inode::default());
                let inode = disk.inodes.len() - 1;
                disk.set_entry(path, inode)?;
                inode
            }
        };
        Ok(Box::new(Handle { disk: self.0.clone(), inode, name: path.display().to_string() }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let disk = self.disk();
        if disk.cut {
            return Err(power_cut());
        }
        let inode = disk.file(path)?;
        Ok(Box::new(Handle { disk: self.0.clone(), inode, name: path.display().to_string() }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        assert_eq!(from.parent(), to.parent(), "the store renames within its directory");
        let mut disk = self.disk();
        disk.op(format!("rename {} {}", from.display(), to.display()))?;
        let inode = disk.file(from)?;
        let (parent, name) = (from.parent().unwrap().to_path_buf(), from.file_name().unwrap().to_os_string());
        let dir = disk.dirs.get_mut(&parent).unwrap();
        dir.cached.remove(&name);
        dir.pending.push(DirOp::Remove(name));
        disk.set_entry(to, inode)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        disk.op(format!("sync_dir {}", path.display()))?;
        if !disk.dir_exists(path) {
            return Err(io::Error::new(io::ErrorKind::NotFound, path.display().to_string()));
        }
        let dir = disk.dirs.get_mut(path).unwrap();
        dir.durable = dir.cached.clone();
        dir.pending.clear();
        Ok(())
    }

    fn lock(&self, _path: &Path, _shared: bool, _timeout: Duration) -> Result<Box<dyn LockGuard>, LockFailure> {
        if self.disk().cut {
            return Err(LockFailure::Io(power_cut()));
        }
        Ok(Box::new(NoLock))
    }
}

fn options(fs: &RecordingFs) -> OpenOptions {
    // Small enough that enrolments trigger automatic compactions too.
    OpenOptions { compact_after_bytes: 1200, fs: Arc::new(fs.clone()), ..OpenOptions::default() }
}

fn faces(person: usize, count: usize) -> Vec<FaceSample> {
    (0..count).map(|f| face(person, f, 9.0)).collect()
}

const KEYED_STEP: usize = 3;

/// The scenario's steps; each returns whether it was acknowledged. Step 0
/// creates the gallery; `store` holds it from then on.
fn run_step(step: usize, fs: &RecordingFs, store: &mut Option<EmbeddedStore>) -> bool {
    let gallery = Path::new(GALLERY);
    if step == 0 {
        *store = EmbeddedStore::create_with(gallery, config(), options(fs)).ok();
        return store.is_some();
    }
    let Some(s) = store.as_ref() else { return false };
    let result = match step {
        1 => s.enrol("alice", Some(serde_json::json!({"team": "red"})), &faces(1, 2)).map(drop),
        2 => s.enrol("bob", None, &faces(2, 1)).map(drop),
        KEYED_STEP => s.enrol_idempotent(Some("retry-7f3a"), "carol", None, &faces(3, 1)).map(drop),
        4 => s.enrol("alice", Some(serde_json::json!({"team": "blue"})), &[face(1, 5, 8.0)]).map(drop),
        5 => s.remove("bob").map(drop),
        6 => s.import(&import_document(), ImportConflict::Merge).map(drop),
        7 => s.set_threshold(DecisionThreshold::manual(0.7).unwrap()),
        8 => s.compact(),
        9 => s.enrol("erin", None, &faces(5, 2)).map(drop),
        10 => s.remove("carol").map(drop),
        11 => s.enrol("frank", Some(serde_json::json!([1, 2, 3])), &faces(6, 3)).map(drop),
        12 => s.enrol("alice", None, &faces(7, 1)).map(drop),
        _ => unreachable!(),
    };
    result.is_ok()
}

const STEPS: usize = 13;

/// Another gallery's export: a new identity and one that merges into alice.
fn import_document() -> GalleryExport {
    let template = |person, index| Template { embedding: embedding(person, index), magnitude: 9.0, source: format!("import_{person}_{index}") };
    GalleryExport {
        format: "visage-gallery-export/1".into(),
        config: config(),
        identities: vec![
            Identity { id: 1, name: "dave".into(), metadata: serde_json::json!({"from": "import"}), templates: vec![template(4, 0), template(4, 1)] },
            Identity { id: 2, name: "alice".into(), metadata: serde_json::Value::Null, templates: vec![template(1, 7)] },
        ],
    }
}

/// Runs the scenario on `fs`; returns how many steps were acknowledged and
/// the gallery's export after each acknowledged one.
fn run_scenario(fs: &RecordingFs) -> (usize, Vec<GalleryExport>) {
    let mut store = None;
    let mut exports = Vec::new();
    for step in 0..STEPS {
        if !run_step(step, fs, &mut store) {
            return (step, exports);
        }
        exports.push(store.as_ref().unwrap().export().unwrap());
    }
    (STEPS, exports)
}

#[test]
fn every_acknowledged_write_survives_a_power_cut_at_every_operation() {
    let started = std::time::Instant::now();
    let clean = RecordingFs::new(Disk::new());
    let (acknowledged, states) = run_scenario(&clean);
    assert_eq!(acknowledged, STEPS, "the scenario runs whole without a cut");
    let total_ops = clean.disk().ops;
    let journal = clean.disk().journal.clone();
    let snapshots = journal.iter().filter(|op| op.starts_with("rename /disk/gallery/snapshot.tmp")).count();
    let log_resets = journal.iter().filter(|op| op.starts_with("rename /disk/gallery/wal.tmp")).count();
    assert!(snapshots >= 2 && log_resets >= 2, "explicit and automatic compactions: {snapshots} snapshots, {log_resets} log resets");
    assert!(journal.iter().any(|op| op == "mkdir /disk/gallery") && journal.iter().any(|op| op == "sync_dir /disk"));
    let max_id = |upto: usize| states[..upto].iter().flat_map(|s| s.identities.iter().map(|i| i.id)).max().unwrap_or(0);

    let mut checked = 0;
    let mut second_cuts = 0;
    for cut_at in 0..=total_ops {
        let fs = RecordingFs::new(Disk { cut_at: Some(cut_at), ..Disk::new() });
        let (acknowledged, _) = run_scenario(&fs);
        assert!(cut_at == total_ops || acknowledged < STEPS, "the cut at {cut_at} stopped nothing");
        for survivors in [Survivors::Nothing, Survivors::Everything, Survivors::FirstHalf, Survivors::LastOnly] {
            let context =
                format!("cut at operation {cut_at} of {total_ops} ({:?}), {acknowledged} steps acknowledged, {survivors:?} survives", fs.disk().journal.last());
            let after = RecordingFs::new(fs.disk().after_cut(survivors));
            let opened = EmbeddedStore::open(Path::new(GALLERY), options(&after));
            let store = match opened {
                Ok(store) => store,
                // Before `create` returned, there may be no gallery at all.
                Err(visage_gallery::GalleryError::NotAGallery { .. }) if acknowledged == 0 => continue,
                Err(e) => panic!("{context}: the store does not open: {e}"),
            };
            let recovered = store.export().unwrap();
            drop(store);
            second_cuts += recovery_survives_a_second_cut(&after, &recovered, &context);
            let store = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap();
            // Every acknowledged step is there; the one in flight whole or not at all.
            let candidates: Vec<usize> = (acknowledged.max(1)..=(acknowledged + 1).min(STEPS)).collect();
            let Some(&matched) = candidates.iter().find(|&&n| states[n - 1] == recovered) else {
                panic!("{context}: the recovered gallery is none of the states after {candidates:?} steps:\n{recovered:#?}");
            };
            // Ids are never reused: a new identity gets one above every id handed out.
            let probe = store.enrol("probe", None, &faces(9, 1)).unwrap_or_else(|e| panic!("{context}: writing after recovery: {e}"));
            let probe_id = probe.identity.unwrap().id;
            assert!(probe_id > max_id(matched), "{context}: id {probe_id} reused (ids up to {} were given)", max_id(matched));
            // A retried keyed enrolment does not enrol twice once the first is in.
            if matched > KEYED_STEP {
                let carol_before = store.get("carol").ok().map(|c| c.templates.len());
                let retry = store.enrol_idempotent(Some("retry-7f3a"), "carol", None, &faces(3, 1)).unwrap();
                assert_eq!(retry.accepted, 1, "{context}");
                assert_eq!(store.get("carol").ok().map(|c| c.templates.len()), carol_before, "{context}: the retry enrolled again");
            }
            let expected = store.export().unwrap();
            drop(store);
            // The repaired files open again to the same gallery.
            let again = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap_or_else(|e| panic!("{context}: second open: {e}"));
            assert_eq!(again.export().unwrap(), expected, "{context}: second open differs");
            checked += 1;
        }
    }
    assert!(total_ops >= 45, "{total_ops} operations");
    assert!(checked >= 4 * (total_ops - 8), "{checked} recoveries checked");
    assert!(second_cuts > checked, "{second_cuts} cuts during recovery");
    eprintln!(
        "power-loss replay: {total_ops} operations × 4 survivor sets, {checked} recoveries, {second_cuts} cuts during a recovery, in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// The machine fails again while recovering (opening, cutting a torn tail,
/// writing the first new enrolment): at every operation of that, the store
/// must still open to `recovered`, or to it plus the new enrolment.
/// Returns the number of cuts tried.
fn recovery_survives_a_second_cut(disk: &RecordingFs, recovered: &GalleryExport, context: &str) -> usize {
    let recover = |fs: &RecordingFs| -> Option<GalleryExport> {
        let store = EmbeddedStore::open(Path::new(GALLERY), options(fs)).ok()?;
        store.enrol("second", None, &faces(10, 1)).ok()?;
        store.export().ok()
    };
    let clean = RecordingFs::new(disk.disk().after_cut(Survivors::Everything));
    let with_probe = recover(&clean).unwrap_or_else(|| panic!("{context}: recovery fails without a second cut"));
    let ops = clean.disk().ops;
    for cut_at in 0..ops {
        let fs = RecordingFs::new(Disk { cut_at: Some(cut_at), ..disk.disk().after_cut(Survivors::Everything) });
        // (A cut inside an automatic compaction after the enrolment fails only the compaction.)
        recover(&fs);
        for survivors in [Survivors::Nothing, Survivors::FirstHalf] {
            let after = RecordingFs::new(fs.disk().after_cut(survivors));
            let store = EmbeddedStore::open(Path::new(GALLERY), options(&after))
                .unwrap_or_else(|e| panic!("{context}, second cut at {cut_at} of {ops} ({survivors:?}): does not open: {e}"));
            let export = store.export().unwrap();
            assert!(export == *recovered || export == with_probe, "{context}, second cut at {cut_at} of {ops} ({survivors:?}): neither state");
        }
    }
    ops
}

#[test]
fn a_failed_directory_fsync_in_compaction_loses_no_later_write() {
    for fail_nth in 1..=2 {
        let fs = RecordingFs::new(Disk::new());
        let store = EmbeddedStore::create_with(Path::new(GALLERY), config(), OpenOptions { compact_after_bytes: 1 << 30, ..options(&fs) }).unwrap();
        store.enrol("alice", None, &faces(1, 1)).unwrap();
        // The first sync_dir of a compaction makes the snapshot durable, the second the new log.
        fs.disk().fail = vec![("sync_dir", fail_nth)];
        let err = store.compact().unwrap_err().to_string();
        assert!(err.contains("sync_dir /disk/gallery failed (injected)"), "{err}");
        // Acknowledged after the failure: it must be durable where the gallery will look.
        store.enrol("bob", Some(serde_json::json!({"after": "failed fsync"})), &faces(2, 1)).unwrap();
        let before = store.export().unwrap();
        for survivors in [Survivors::Nothing, Survivors::Everything, Survivors::FirstHalf, Survivors::LastOnly] {
            let after = RecordingFs::new(fs.disk().after_cut(survivors));
            let store = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap_or_else(|e| panic!("fail #{fail_nth}, {survivors:?}: {e}"));
            assert_eq!(store.export().unwrap(), before, "fail #{fail_nth}, {survivors:?}: an acknowledged write was lost");
        }
    }
}

#[test]
fn a_failed_append_is_cut_off_before_the_next_one() {
    let fs = RecordingFs::new(Disk::new());
    let store = EmbeddedStore::create_with(Path::new(GALLERY), config(), options(&fs)).unwrap();
    store.enrol("alice", None, &faces(1, 1)).unwrap();
    // The record is appended, its fdatasync fails, and so does cutting it off.
    fs.disk().fail = vec![("sync /disk/gallery/wal.log", 1), ("set_len /disk/gallery/wal.log", 1)];
    let err = store.enrol("bob", None, &faces(2, 1)).unwrap_err().to_string();
    assert!(err.contains("sync /disk/gallery/wal.log failed (injected)"), "{err}");
    assert!(store.get("bob").is_err(), "a failed write is not applied");
    // The next write cuts the leftover record first, then appends its own (same seq).
    store.enrol("carol", None, &faces(3, 1)).unwrap();
    let journal = fs.disk().journal.clone();
    let tail: Vec<&str> = journal.iter().rev().take(6).rev().map(String::as_str).collect();
    assert!(tail[3].starts_with("set_len /disk/gallery/wal.log") && !tail[3].ends_with("(failed)"), "{tail:?}");
    let before = store.export().unwrap();
    for survivors in [Survivors::Nothing, Survivors::Everything, Survivors::FirstHalf, Survivors::LastOnly] {
        let after = RecordingFs::new(fs.disk().after_cut(survivors));
        let store = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap_or_else(|e| panic!("{survivors:?}: {e}"));
        assert_eq!(store.export().unwrap(), before, "{survivors:?}: the failed enrolment of bob must not appear, carol's must");
    }
}
