//! The file-system operations the embedded store performs, behind a trait.
//!
//! The store's durability argument is about *which* bytes and directory
//! entries are on stable storage when power fails, and a `kill -9` cannot
//! test that (the page cache survives it). Routing every operation through
//! [`FileSystem`] lets a test substitute a layer that records writes,
//! renames and fsyncs and can then produce the state a power cut would
//! leave (tests/power_loss.rs). [`RealFs`] is the one production uses.
//!
//! Files are written through [`FileHandle`]s that always append at the end
//! (`O_APPEND`): the write-ahead log only ever appends or cuts back a torn
//! tail, and every other file is written whole into a new temporary file.

use std::fmt::Debug;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Files the store creates hold biometric templates: owner-only.
pub const FILE_MODE: u32 = 0o600;
/// Directories the store creates: owner-only.
pub const DIR_MODE: u32 = 0o700;

/// An open file, written at its end.
pub trait FileHandle: Send + Sync {
    /// Appends all of `bytes` (not yet durable).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes; later appends go after it.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// The file's length.
    fn size(&self) -> io::Result<u64>;
}

/// What the lock on a gallery is held through; released when dropped.
pub trait LockGuard: Send + Sync {}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockFailure {
    /// Another process holds it; `holder` is the pid the last writer recorded.
    Busy {
        /// The pid in the lock file, when it holds one (see `Busy`).
        holder: Option<u32>,
    },
    /// Opening or locking the lock file failed.
    Io(io::Error),
}

/// The operations the embedded store needs. Paths are absolute or relative
/// to the working directory, as the caller gave them.
pub trait FileSystem: Send + Sync + Debug {
    /// The whole file, or `NotFound`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// A reader over the file, or `NotFound`.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    /// Whether a regular file exists at `path`.
    fn is_file(&self, path: &Path) -> bool;
    /// Whether a directory exists at `path`.
    fn is_dir(&self, path: &Path) -> bool;
    /// Creates one directory ([`DIR_MODE`]); its parent must exist. Not durable
    /// until the parent is synced.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates `path` empty (or truncates it) with [`FILE_MODE`] and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// Opens an existing file for appending, or `NotFound`.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;
    /// Renames within one directory (replacing `to`). Not durable until the directory is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes the gallery lock at `path` (created when missing), shared or
    /// exclusive, trying until `timeout` has passed. An exclusive holder
    /// records its pid in the file so that a waiter can name it.
    fn lock(&self, path: &Path, shared: bool, timeout: Duration) -> Result<Box<dyn LockGuard>, LockFailure>;
    /// Takes group and other permissions away from an existing file or
    /// directory (galleries created before files were owner-only). Layers
    /// without permissions have nothing to do.
    fn restrict_to_owner(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

struct RealHandle(File);

impl FileHandle for RealHandle {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        // A handle from `create` is not O_APPEND: keep its position at the end.
        io::Seek::seek(&mut self.0, io::SeekFrom::End(0)).map(drop)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

struct RealLock(#[allow(dead_code)] File);

impl LockGuard for RealLock {}

fn owner_only(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, FILE_MODE);
    options
}

/// How often a waiter retries a held lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

impl FileSystem for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(path)?))
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
        builder.create(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let file = owner_only(std::fs::OpenOptions::new().create(true).truncate(true).write(true)).open(path)?;
        Ok(Box::new(RealHandle(file)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        Ok(Box::new(RealHandle(std::fs::OpenOptions::new().append(true).open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn lock(&self, path: &Path, shared: bool, timeout: Duration) -> Result<Box<dyn LockGuard>, LockFailure> {
        let created = !path.exists();
        let mut file =
            owner_only(std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true)).open(path).map_err(LockFailure::Io)?;
        if created {
            // The lock file holds no data, but a created entry is synced like every other.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            self.sync_dir(dir).map_err(LockFailure::Io)?;
        }
        let start = Instant::now();
        loop {
            let attempt = if shared { file.try_lock_shared() } else { file.try_lock() };
            match attempt {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => std::thread::sleep(LOCK_POLL.min(timeout)),
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let holder = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                    return Err(LockFailure::Busy { holder });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(LockFailure::Io(e)),
            }
        }
        if !shared {
            // Best effort: only a waiter's message depends on it.
            let _ = file.set_len(0).and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
        }
        Ok(Box::new(RealLock(file)))
    }

    #[cfg(unix)]
    fn restrict_to_owner(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mut permissions = std::fs::metadata(path)?.permissions();
        let mode = permissions.mode();
        if mode & 0o077 != 0 {
            permissions.set_mode(mode & !0o077);
            std::fs::set_permissions(path, permissions)?;
        }
        Ok(())
    }
}
