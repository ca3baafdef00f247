//! API keys: who may read (detect, embed, verify, quality, search, list)
//! and who may also write (enrol, delete).
//!
//! A key is `vsk_` + 32 random bytes (base64url), printed once by
//! `visage serve keys add` and never stored: the keys file keeps only its
//! SHA-256. A plain hash suffices here where passwords need a slow,
//! salted one (bcrypt, Argon2): those exist to make guessing *low-entropy*
//! secrets expensive, while a 256-bit random key cannot be guessed at any
//! speed, and SHA-256's preimage resistance keeps a leaked keys file from
//! giving the keys back. A fast hash also lets every request be checked
//! without a per-request cost worth measuring. Salting is moot for the same
//! reason (no two keys share a value to precompute).
//!
//! The service re-reads the keys file when its modification time changes,
//! so keys added or removed while it runs take effect on the next request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ServeError};

/// The keys file's format marker.
pub const KEYS_FORMAT: &str = "visage-serve-keys/1";
/// What every key starts with, so a leaked one is recognisable in logs and scanners.
pub const KEY_PREFIX: &str = "vsk_";

/// What a key may do; `Write` includes `Read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// detect, embed, verify, quality, search, list, get, thumbnail (`read` in the keys file).
    Read,
    /// Everything `Read` may, plus enrol and delete (`write`).
    Write,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Write => "write",
        })
    }
}

/// One key as the keys file holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// The first 8 hex digits of the hash: names the key in listings and removals.
    pub id: String,
    /// What the key may do.
    pub scope: Scope,
    /// Hex SHA-256 of the whole key string.
    pub sha256: String,
    /// Who or what the key is for (free text).
    #[serde(default)]
    pub label: String,
    /// When it was made, in seconds since the Unix epoch (UTC).
    pub created_unix_s: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeysFile {
    format: String,
    keys: Vec<KeyEntry>,
}

fn hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys in `path`; an absent file holds none.
pub fn read_keys(path: &Path) -> Result<Vec<KeyEntry>, ServeError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ServeError::io(path, e)),
    };
    let bad = |message: String| ServeError::Keys { path: path.to_path_buf(), message };
    // Bytes that are not text are the file's fault (exit 2), not the file system's.
    let text = String::from_utf8(bytes).map_err(|e| bad(format!("not a keys file: not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
    let file: KeysFile = serde_json::from_str(&text).map_err(|e| bad(format!("not a keys file: {e}")))?;
    if file.format != KEYS_FORMAT {
        return Err(bad(format!("format `{}`, expected `{KEYS_FORMAT}`", file.format)));
    }
    for entry in &file.keys {
        if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("key {}: sha256 must be 64 hex digits", entry.id)));
        }
    }
    Ok(file.keys)
}

/// Runs `change` on the keys in `path` under an exclusive lock and writes
/// the result atomically (temporary file, fsync, rename), readable by the
/// owner only.
fn update_keys<T>(path: &Path, change: impl FnOnce(&mut Vec<KeyEntry>) -> Result<T, ServeError>) -> Result<T, ServeError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The state directory also holds the thumbnails (faces): owner-only.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| ServeError::io(dir, e))?;
    }
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| ServeError::io(&lock_path, e))?;
    lock.lock().map_err(|e| ServeError::io(&lock_path, e))?;
    let mut keys = read_keys(path)?;
    let result = change(&mut keys)?;
    let text = serde_json::to_string_pretty(&KeysFile { format: KEYS_FORMAT.into(), keys }).expect("serialisable");
    // Owner-only and synced before the rename: the file is the service's only record of its keys.
    let options = visage_image::AtomicOptions { mode: Some(0o600), sync: true };
    visage_image::write_atomically_with(path, text.as_bytes(), options).map_err(|e| ServeError::io(path, e))?;
    Ok(result)
}

/// Creates a key with `scope`, records its hash in `path` (created if
/// absent) and returns the key — the only time it is ever seen.
pub fn add_key(path: &Path, scope: Scope, label: &str) -> Result<(String, KeyEntry), ServeError> {
    let mut secret = [0u8; 32];
    // ThreadRng: ChaCha seeded from the operating system's generator.
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let sha256 = hash_hex(&key);
    let created_unix_s = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let entry = KeyEntry { id: sha256[..8].to_string(), scope, sha256, label: label.to_string(), created_unix_s };
    let stored = entry.clone();
    update_keys(path, move |keys| {
        keys.push(stored);
        Ok(())
    })?;
    Ok((key, entry))
}

/// Removes the key whose id is `id`; returns it.
pub fn remove_key(path: &Path, id: &str) -> Result<KeyEntry, ServeError> {
    update_keys(path, |keys| {
        let position = keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| ServeError::Keys { path: path.to_path_buf(), message: format!("no key with id `{id}` (see `visage serve keys list`)") })?;
        Ok(keys.remove(position))
    })
}

/// The key a request carries (`Authorization: Bearer KEY` or `X-API-Key: KEY`).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Who sent a request, for scoping what it may see of others' state (its
/// idempotency keys): the SHA-256 of the key it carries (what the keys
/// file stores), or `""` without one. Never the key itself.
pub fn requester_id(headers: &HeaderMap) -> String {
    presented_key(headers).map_or_else(String::new, hash_hex)
}

/// The keys a running service accepts, re-read when the file changes.
pub struct KeyRing {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

struct Loaded {
    modified: Option<SystemTime>,
    scopes: HashMap<String, Scope>,
}

impl KeyRing {
    /// Reads the keys file at `path`; an absent file is an empty ring (every
    /// keyed request gets 401 until a key is added). A malformed file is
    /// [`ServeError::Keys`].
    pub fn open(path: &Path) -> Result<Self, ServeError> {
        let loaded = Self::load(path)?;
        Ok(Self { path: path.to_path_buf(), loaded: RwLock::new(loaded) })
    }

    fn load(path: &Path) -> Result<Loaded, ServeError> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let scopes = read_keys(path)?.into_iter().map(|k| (k.sha256, k.scope)).collect();
        Ok(Loaded { modified, scopes })
    }

    /// The keys file this ring reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of keys accepted now.
    pub fn len(&self) -> usize {
        self.refresh();
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).scopes.len()
    }

    /// Whether no key is accepted now (re-reading the file first when it changed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file when its modification time changed. A file that
    /// became unreadable keeps the keys last read (and says so on stderr):
    /// a half-edited file must not lock everyone out or let everyone in.
    fn refresh(&self) {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if self.loaded.read().unwrap_or_else(|p| p.into_inner()).modified == modified {
            return;
        }
        match Self::load(&self.path) {
            Ok(loaded) => *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded,
            Err(e) => eprintln!("visage serve: keeping the keys read before: {e}"),
        }
    }

    /// The scope of the key the request carries (`Authorization: Bearer KEY`
    /// or `X-API-Key: KEY`): 401 when there is none or it is unknown.
    pub fn scope_of(&self, headers: &HeaderMap) -> Result<Scope, ApiError> {
        let key = presented_key(headers)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`"))?;
        self.refresh();
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        loaded.scopes.get(&hash_hex(key)).copied().ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key"))
    }

    /// Whether the request may do something that needs `needed`: 401 without
    /// a valid key, 403 with a read key on a write. With `public_read`,
    /// reads need no key.
    pub fn authorize(&self, headers: &HeaderMap, needed: Scope, public_read: bool) -> Result<(), ApiError> {
        if needed == Scope::Read && public_read {
            return Ok(());
        }
        let scope = self.scope_of(headers)?;
        if scope < needed {
            return Err(ApiError::new(StatusCode::FORBIDDEN, format!("this API key has the {scope} scope; this request needs {needed}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("visage-serve-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("keys.json")
    }

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {key}")).unwrap());
        headers
    }

    #[test]
    fn a_keys_file_of_binary_bytes_is_bad_input_naming_the_file() {
        let path = temp_path("binary");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"format\": \xff\xfe}").unwrap();
        let error = read_keys(&path).unwrap_err();
        assert!(error.is_bad_input(), "{error}");
        assert_eq!(error.to_string(), format!("{}: not a keys file: not UTF-8 text (byte 11)", path.display()));
    }

    #[test]
    fn keys_are_stored_hashed_and_scoped() {
        let path = temp_path("scoped");
        let (read_key, read_entry) = add_key(&path, Scope::Read, "viewer").unwrap();
        let (write_key, _) = add_key(&path, Scope::Write, "admin").unwrap();
        assert!(read_key.starts_with(KEY_PREFIX) && read_key.len() == KEY_PREFIX.len() + 43, "{read_key}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&read_key[KEY_PREFIX.len()..]) && !text.contains(&write_key[KEY_PREFIX.len()..]), "a key is stored in clear");
        // The stored hash is SHA-256 of the key (FIPS 180-4 test vector checks the hex encoding).
        assert_eq!(hash_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(read_entry.sha256, hash_hex(&read_key));
        assert_eq!(read_entry.id, read_entry.sha256[..8]);
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700, "a new state directory is owner-only");
        }

        let ring = KeyRing::open(&path).unwrap();
        assert_eq!(ring.len(), 2);
        assert!(ring.authorize(&bearer(&read_key), Scope::Read, false).is_ok());
        assert_eq!(ring.authorize(&bearer(&read_key), Scope::Write, false).unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(ring.authorize(&bearer(&write_key), Scope::Write, false).is_ok());
        let mut x_api_key = HeaderMap::new();
        x_api_key.insert("x-api-key", HeaderValue::from_str(&write_key).unwrap());
        assert!(ring.authorize(&x_api_key, Scope::Write, false).is_ok());
        assert_eq!(ring.authorize(&HeaderMap::new(), Scope::Read, false).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert!(ring.authorize(&HeaderMap::new(), Scope::Read, true).is_ok(), "--public-read opens reads");
        assert_eq!(ring.authorize(&HeaderMap::new(), Scope::Write, true).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert_eq!(ring.authorize(&bearer("vsk_guess"), Scope::Read, false).unwrap_err().status, StatusCode::UNAUTHORIZED);

        // Removing a key takes effect without a restart.
        remove_key(&path, &read_entry.id).unwrap();
        // The modification time may not move within the filesystem's resolution: force a reload.
        *ring.loaded.write().unwrap() = KeyRing::load(&path).unwrap();
        assert_eq!(ring.authorize(&bearer(&read_key), Scope::Read, false).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert!(remove_key(&path, "nope").unwrap_err().to_string().contains("no key with id `nope`"));
    }

    #[test]
    fn a_damaged_keys_file_is_named() {
        let path = temp_path("damaged");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"format\": \"other/9\", \"keys\": []}").unwrap();
        let err = KeyRing::open(&path).err().unwrap().to_string();
        assert!(err.contains("keys.json") && err.contains("format `other/9`"), "{err}");
        std::fs::write(&path, "not json").unwrap();
        assert!(read_keys(&path).unwrap_err().to_string().contains("not a keys file"));
    }
}
