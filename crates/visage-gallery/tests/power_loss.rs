//! Power cuts, replayed: the embedded store runs on an in-memory file
//! system that keeps, for every file and directory, what is durable (made
//! so by an fsync) apart from what only the page cache holds. A scenario
//! of every kind of write is run once to count its file-system operations,
//! then once per operation index with the power cut there; from each cut,
//! every disk a real machine could come back with is built (below), and on
//! each the store must open with every acknowledged write in it and the one
//! in flight either whole or absent. Each recovery is then cut again at
//! every one of its own operations (a second failure while the store
//! repairs a torn tail and takes its next write), with the same disks.
//!
//! The disks: unsynced file bytes all lost, all kept, or torn (half kept),
//! each with every subset of the unsynced directory changes (creations,
//! renames) whose prerequisites hold, applied in their order: a created
//! name must be free and a renamed source must name the renamed file. That
//! is weaker than ext4's journal, which keeps a directory's metadata
//! operations in order (only prefixes would reach the disk), so it also
//! covers file systems that reorder them; it leaves out what no file
//! system with an atomic rename produces, such as a rename's new name
//! without its source's creation, or its unlink without its link. Up to
//! [`EXHAUSTIVE_CHANGES`] changes every subset is tried, beyond that a
//! seeded sample of [`SAMPLED_SUBSETS`]. Not modelled: file data reaching
//! the disk out of order within a file (only a prefix of the unsynced
//! bytes survives), a file's size changing without its data, and a synced
//! directory's entries being lost (a lying or failing disk).
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// One unsynced change to a directory's entries. A rename is one change,
/// not an unlink plus a link: rename(2) is atomic on every journalling file
/// system, so no disk holds the new name without the old one gone. (The
/// [`FileSystem`] trait has no unlink; the store removes only by renaming over.)
#[derive(Clone, Debug)]
enum DirOp {
    /// A new entry: `create` of a missing file, or `mkdir`.
    Create(OsString, usize),
    /// `rename` within the directory, replacing whatever `to` named.
    Rename { from: OsString, to: OsString, inode: usize },
}

impl DirOp {
    /// Applies the change to `entries` if its prerequisites hold there (a
    /// created name is free; a renamed source names the renamed inode) and
    /// says whether it did. A change whose prerequisites are missing is on no
    /// real disk: the file system would have had to persist a change without
    /// an earlier one it depends on (a rename of a file whose creation was
    /// lost; a second creation of a name whose first file was never renamed away).
    fn apply(&self, entries: &mut BTreeMap<OsString, usize>) -> bool {
        match self {
            DirOp::Create(name, inode) => {
                if entries.contains_key(name) {
                    return false;
                }
                entries.insert(name.clone(), *inode);
            }
            DirOp::Rename { from, to, inode } => {
                if entries.get(from) != Some(inode) {
                    return false;
                }
                entries.remove(from);
                entries.insert(to.clone(), *inode);
            }
        }
        true
    }
}

#[derive(Clone, Debug, Default)]
struct Dir {
    durable: BTreeMap<OsString, usize>,
    cached: BTreeMap<OsString, usize>,
    /// Changes since the last fsync of the directory, in order.
    pending: Vec<DirOp>,
}

/// What a power cut leaves of the bytes appended to a file since its last
/// fsync (of the whole disk: every file alike).
#[derive(Clone, Copy, Debug)]
enum Data {
    Lost,
    Kept,
    /// Half of them (a torn write); a file cut back since its fsync keeps its durable bytes.
    Torn,
}

/// Unsynced directory changes (all directories together) up to which every
/// subset is tried; beyond, [`SAMPLED_SUBSETS`] seeded random ones.
const EXHAUSTIVE_CHANGES: usize = 8;
const SAMPLED_SUBSETS: usize = 256;

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

    /// Records `change` in `dir` (which must exist) and applies it to what the page cache holds.
    fn change_dir(&mut self, dir: &Path, change: DirOp) -> io::Result<()> {
        if !self.dir_exists(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no such directory", dir.display())));
        }
        let dir = self.dirs.get_mut(dir).unwrap();
        assert!(change.apply(&mut dir.cached), "{change:?} is applicable to the live directory");
        dir.pending.push(change);
        Ok(())
    }

    fn create_entry(&mut self, path: &Path, inode: usize) -> io::Result<()> {
        self.change_dir(path.parent().unwrap(), DirOp::Create(path.file_name().unwrap().to_os_string(), inode))
    }

    /// Every unsynced directory change, directory by directory, each in order.
    fn pending_changes(&self) -> usize {
        self.dirs.values().map(|dir| dir.pending.len()).sum()
    }

    /// The subsets of [`Disk::pending_changes`] to try, each a flag per
    /// change: every subset whose changes' prerequisites hold when applied
    /// in order when there are at most [`EXHAUSTIVE_CHANGES`], else a seeded
    /// sample of such subsets (each change kept with probability ½ when its
    /// prerequisites hold) together with none and all.
    fn change_subsets(&self) -> Vec<Vec<bool>> {
        let n = self.pending_changes();
        if n <= EXHAUSTIVE_CHANGES {
            let all = (0..1usize << n).map(|mask| (0..n).map(|i| mask >> i & 1 == 1).collect::<Vec<bool>>());
            return all.filter(|subset| self.apply_changes(subset).is_some()).collect();
        }
        let mut rng = StdRng::seed_from_u64(n as u64);
        let mut subsets = std::collections::BTreeSet::from([vec![false; n], vec![true; n]]);
        for _ in 0..SAMPLED_SUBSETS - 2 {
            let mut subset = Vec::with_capacity(n);
            for dir in self.dirs.values() {
                let mut entries = dir.durable.clone();
                subset.extend(dir.pending.iter().map(|change| rng.random_bool(0.5) && change.apply(&mut entries)));
            }
            subsets.insert(subset);
        }
        subsets.into_iter().collect()
    }

    /// Each directory's entries with the flagged pending changes applied in
    /// order, or `None` when one's prerequisites do not hold.
    fn apply_changes(&self, subset: &[bool]) -> Option<BTreeMap<PathBuf, BTreeMap<OsString, usize>>> {
        let mut flags = subset.iter();
        let mut dirs = BTreeMap::new();
        for (path, dir) in &self.dirs {
            let mut entries = dir.durable.clone();
            for change in &dir.pending {
                if *flags.next().unwrap() && !change.apply(&mut entries) {
                    return None;
                }
            }
            dirs.insert(path.clone(), entries);
        }
        Some(dirs)
    }

    /// The disk the machine comes back with when `data` is what is left
    /// of unsynced file bytes and the flagged unsynced directory changes
    /// (see [`Disk::change_subsets`]) reached the disk.
    fn after_cut(&self, data: Data, subset: &[bool]) -> Disk {
        let mut disk = Disk { inodes: self.inodes.clone(), ..Disk::default() };
        for inode in &mut disk.inodes {
            let kept = match data {
                Data::Kept => inode.cached.clone(),
                Data::Torn if inode.cached.starts_with(&inode.durable) => {
                    let unsynced = inode.cached.len() - inode.durable.len();
                    inode.cached[..inode.durable.len() + unsynced / 2].to_vec()
                }
                _ => inode.durable.clone(),
            };
            *inode = Inode { durable: kept.clone(), cached: kept, is_dir: inode.is_dir };
        }
        let dirs = self.apply_changes(subset).expect("a subset from change_subsets");
        disk.dirs = dirs.into_iter().map(|(path, entries)| (path, Dir { durable: entries.clone(), cached: entries, pending: Vec::new() })).collect();
        disk
    }

    /// Every disk a power cut now could leave that the replay tries: each
    /// subset from [`Disk::change_subsets`] with each [`Data`] outcome,
    /// with a label saying which.
    fn crash_disks(&self) -> Vec<(String, Disk)> {
        let subsets = self.change_subsets();
        let mut disks = Vec::with_capacity(subsets.len() * 3);
        for subset in &subsets {
            let flags: String = subset.iter().map(|&applied| if applied { '1' } else { '0' }).collect();
            for data in [Data::Lost, Data::Kept, Data::Torn] {
                disks.push((
                    format!("unsynced data {data:?}, directory changes [{flags}] of {:?}", self.pending_summary()),
                    self.after_cut(data, subset),
                ));
            }
        }
        disks
    }

    /// The disk as it would be if it all reached the platter (for re-running from the same state).
    fn everything(&self) -> Disk {
        self.after_cut(Data::Kept, &vec![true; self.pending_changes()])
    }

    fn pending_summary(&self) -> Vec<String> {
        let mut summary = Vec::new();
        for (path, dir) in &self.dirs {
            for change in &dir.pending {
                summary.push(match change {
                    DirOp::Create(name, _) => format!("create {}", path.join(name).display()),
                    DirOp::Rename { from, to, .. } => format!("rename {} {}", path.join(from).display(), to.display()),
                });
            }
        }
        summary
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
        disk.create_entry(path, inode)?;
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
                disk.create_entry(path, inode)?;
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
        let (from_name, to_name) = (from.file_name().unwrap().to_os_string(), to.file_name().unwrap().to_os_string());
        disk.change_dir(from.parent().unwrap(), DirOp::Rename { from: from_name, to: to_name, inode })
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
    let mut second_disks = 0;
    let mut most_changes = 0;
    let mut subsets_tried = 0;
    for cut_at in 0..=total_ops {
        let fs = RecordingFs::new(Disk { cut_at: Some(cut_at), ..Disk::new() });
        let (acknowledged, _) = run_scenario(&fs);
        assert!(cut_at == total_ops || acknowledged < STEPS, "the cut at {cut_at} stopped nothing");
        let pending = fs.disk().pending_changes();
        most_changes = most_changes.max(pending);
        let disks = fs.disk().crash_disks();
        subsets_tried += fs.disk().change_subsets().len();
        for (survivors, disk) in disks {
            let context =
                format!("cut at operation {cut_at} of {total_ops} ({:?}), {acknowledged} steps acknowledged, {survivors}", fs.disk().journal.last());
            let after = RecordingFs::new(disk);
            let opened = EmbeddedStore::open(Path::new(GALLERY), options(&after));
            let store = match opened {
                Ok(store) => store,
                // Before `create` returned, there may be no gallery at all.
                Err(visage_gallery::GalleryError::NotAGallery { .. }) if acknowledged == 0 => continue,
                Err(e) => panic!("{context}: the store does not open: {e}"),
            };
            let recovered = store.export().unwrap();
            drop(store);
            let (cuts, disks) = recovery_survives_a_second_cut(&after, &recovered, &context);
            second_cuts += cuts;
            second_disks += disks;
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
    assert!(checked >= 3 * (total_ops - 8), "{checked} recoveries checked");
    assert!(second_cuts > checked, "{second_cuts} cuts during recovery");
    eprintln!(
        "power-loss replay: {total_ops} operations, at most {most_changes} unsynced directory changes at a cut ({subsets_tried} subsets over all cuts), \
         {checked} disks recovered, {second_cuts} cuts during a recovery leaving {second_disks} disks, in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// The machine fails again while recovering (opening, cutting a torn tail,
/// writing the first new enrolment): at every operation of that, the store
/// must still open to `recovered`, or to it plus the new enrolment.
/// Returns the number of cuts tried and of disks checked.
fn recovery_survives_a_second_cut(disk: &RecordingFs, recovered: &GalleryExport, context: &str) -> (usize, usize) {
    let recover = |fs: &RecordingFs| -> Option<GalleryExport> {
        let store = EmbeddedStore::open(Path::new(GALLERY), options(fs)).ok()?;
        store.enrol("second", None, &faces(10, 1)).ok()?;
        store.export().ok()
    };
    let clean = RecordingFs::new(disk.disk().everything());
    let with_probe = recover(&clean).unwrap_or_else(|| panic!("{context}: recovery fails without a second cut"));
    let ops = clean.disk().ops;
    let mut disks = 0;
    for cut_at in 0..ops {
        let fs = RecordingFs::new(Disk { cut_at: Some(cut_at), ..disk.disk().everything() });
        // (A cut inside an automatic compaction after the enrolment fails only the compaction.)
        recover(&fs);
        let crash_disks = fs.disk().crash_disks();
        for (survivors, after) in crash_disks {
            let after = RecordingFs::new(after);
            let store = EmbeddedStore::open(Path::new(GALLERY), options(&after))
                .unwrap_or_else(|e| panic!("{context}, second cut at {cut_at} of {ops} ({survivors}): does not open: {e}"));
            let export = store.export().unwrap();
            assert!(export == *recovered || export == with_probe, "{context}, second cut at {cut_at} of {ops} ({survivors}): neither state");
            disks += 1;
        }
    }
    (ops, disks)
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
        let crash_disks = fs.disk().crash_disks();
        for (survivors, after) in crash_disks {
            let after = RecordingFs::new(after);
            let store = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap_or_else(|e| panic!("fail #{fail_nth}, {survivors}: {e}"));
            assert_eq!(store.export().unwrap(), before, "fail #{fail_nth}, {survivors}: an acknowledged write was lost");
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
    let crash_disks = fs.disk().crash_disks();
    for (survivors, after) in crash_disks {
        let after = RecordingFs::new(after);
        let store = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap_or_else(|e| panic!("{survivors}: {e}"));
        assert_eq!(store.export().unwrap(), before, "{survivors}: the failed enrolment of bob must not appear, carol's must");
    }
}

/// The subset model itself, on the recording file system alone: changes
/// without a common name are tried in every combination, a rename never
/// without the creation of its source, and beyond [`EXHAUSTIVE_CHANGES`]
/// a sample of [`SAMPLED_SUBSETS`] whose prerequisites all hold.
#[test]
fn unsynced_directory_changes_are_tried_in_every_possible_subset() {
    let gallery = Path::new(GALLERY);
    let fs = RecordingFs::new(Disk::new());
    fs.create_dir(gallery).unwrap();
    fs.sync_dir(Path::new(ROOT)).unwrap();
    for name in ["a.tmp", "b", "c"] {
        fs.create(&gallery.join(name)).unwrap();
    }
    fs.rename(&gallery.join("a.tmp"), &gallery.join("a")).unwrap();
    // 16 subsets of the four changes; those with the rename but not a.tmp's creation are on no disk.
    let subsets = fs.disk().change_subsets();
    assert_eq!(subsets.len(), 12, "{subsets:?}");
    assert!(subsets.iter().all(|subset| !subset[3] || subset[0]), "{subsets:?}");
    let names = |disk: &Disk| disk.dirs[gallery].durable.keys().map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
    let mut layouts: Vec<String> = fs.disk().crash_disks().iter().map(|(_, disk)| names(disk)).collect();
    layouts.sort();
    layouts.dedup();
    assert!(
        layouts.contains(&"c".to_string())
            && layouts.contains(&"a b".to_string())
            && !layouts.iter().any(|l| l.contains("a.tmp") && l.contains("a ")),
        "{layouts:?}"
    );
    assert_eq!(layouts.len(), 12, "{layouts:?}");

    for i in 0..7 {
        fs.create(&gallery.join(format!("more_{i}"))).unwrap();
    }
    assert_eq!(fs.disk().pending_changes(), 11);
    let sampled = fs.disk().change_subsets();
    assert!(sampled.len() > SAMPLED_SUBSETS / 2 && sampled.len() <= SAMPLED_SUBSETS, "{} subsets", sampled.len());
    assert!(sampled.iter().all(|subset| fs.disk().apply_changes(subset).is_some()));
    assert_eq!(sampled, fs.disk().change_subsets(), "the sample is seeded");
}

/// A directory fsync that fails on every compaction leaves their creations
/// and renames unsynced together; writes acknowledged meanwhile (appended
/// to the old, durable log) must be on every disk those changes can leave.
#[test]
fn directory_fsyncs_failing_again_and_again_lose_no_acknowledged_write() {
    let fs = RecordingFs::new(Disk::new());
    let store = EmbeddedStore::create_with(Path::new(GALLERY), config(), OpenOptions { compact_after_bytes: 1 << 30, ..options(&fs) }).unwrap();
    store.enrol("alice", None, &faces(1, 1)).unwrap();
    for person in 2..7 {
        // The first sync_dir of each compaction (the snapshot's) fails.
        fs.disk().fail = vec![("sync_dir", 1)];
        assert!(store.compact().is_err());
        store.enrol(&format!("person_{person}"), None, &faces(person, 1)).unwrap();
    }
    assert!(fs.disk().pending_changes() > EXHAUSTIVE_CHANGES, "{:?}", fs.disk().pending_summary());
    let before = store.export().unwrap();
    let crash_disks = fs.disk().crash_disks();
    assert!(crash_disks.len() >= 3 * (fs.disk().pending_changes() + 1), "{} disks", crash_disks.len());
    for (survivors, after) in crash_disks {
        let after = RecordingFs::new(after);
        let store = EmbeddedStore::open(Path::new(GALLERY), options(&after)).unwrap_or_else(|e| panic!("{survivors}: {e}"));
        assert_eq!(store.export().unwrap(), before, "{survivors}: an acknowledged write was lost");
    }
}
