//! The PostgreSQL + pgvector backend: a gallery in a database that several
//! processes and machines share (feature `postgres`).
//!
//! `--gallery postgres://user[:password]@host[:port]/database[?sslmode=verify-full]`
//! names it; the tables of [`schema`] live in the connection's default
//! schema.
//!
//! **TLS is verified when asked for.** `sslmode=require` alone (in libpq and
//! sqlx) encrypts without checking whom it talks to, which stops a passive
//! listener but not anyone in the middle, who then sees the password and
//! every face template. Here `require` is therefore checked like
//! `verify-full`: the server's certificate must chain to a trusted root
//! (the Mozilla roots, or `sslrootcert=FILE` for a private CA) and name the
//! host. `verify-ca` checks the chain only; `prefer` (the default) and
//! `allow` may still fall back to plain text, as in libpq, and `disable`
//! never encrypts — for a server on the same machine or a trusted network.
//!
//! **Every statement is time-bounded.** Connections start with
//! `statement_timeout` ([`PostgresOptions::statement_timeout`], 30 s by
//! default; a `options=-c statement_timeout=…` in the URL wins), so a lock
//! held by a stuck client or a runaway query fails with a clear error
//! instead of hanging a request (and, behind it, the service's threads).
//! Schema migrations, index builds and [`PostgresStore::execute`]
//! (maintenance) run without it: building HNSW over a million rows takes
//! minutes. The server needs the `vector` extension installable (pgvector
//! ≥ 0.5 for HNSW); creating the gallery runs `CREATE EXTENSION IF NOT
//! EXISTS vector`.
//!
//! **Same answers as the embedded store.** Screening ([`screen_faces`]),
//! import conflict rules ([`plan_import`]) and pooling
//! ([`pool_templates`]) are the shared code of `store.rs` and `model.rs`;
//! the pooled template is computed in Rust and stored, never re-derived in SQL.
//!
//! **Transactions.** Each write is one transaction with
//! `synchronous_commit = on` set locally, so `Ok` means the commit record
//! reached the server's disk. `enrol` locks the identity's row (`FOR
//! UPDATE`, or the unique name for a new one), so concurrent enrolments of
//! the same person serialise and none is lost; `import` takes a `SHARE ROW
//! EXCLUSIVE` lock on the identities so its conflict check holds until it
//! commits. Reads of several statements (`export`, a batch of searches) run
//! in one `REPEATABLE READ` snapshot.
//!
//! **Search.** Exact search orders by pgvector's negative inner product
//! `pooled <#> q` (templates and queries are unit vectors, so this is the
//! cosine order), ties by id: the HNSW index is built for the cosine
//! operator `<=>`, so the planner cannot use it here and every exact search
//! is a (parallel) sequential scan — exact by construction, with no setting
//! to forget. `<#>` also scores the zero vector (faces that cancel) as 0
//! like the embedded store, where `<=>` would give NaN. The score is
//! pgvector's f32 dot product, equal to the embedded store's within f32
//! rounding (summation order). [`GalleryStore::search_approximate`] orders
//! by `<=>` through the HNSW index (`hnsw.ef_search` set per transaction,
//! sequential scans disabled for it) and scores `1 − distance`.
//!
//! **Blocking API over async sqlx.** The store owns a small tokio runtime
//! (two worker threads); every call is spawned onto it and the calling
//! thread waits on a channel. So the store works from plain threads, from
//! `spawn_blocking` and even from inside another runtime's task (where a
//! nested `block_on` would panic), and dropping it anywhere is safe (the
//! runtime is shut down in the background).

pub mod schema;
pub mod vector;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

/// One connection inside a transaction (`&mut *tx`).
type Conn = PgConnection;

use crate::config::{DecisionThreshold, GalleryConfig, GALLERY_FORMAT_VERSION};
use crate::error::{GalleryError, Result};
use crate::hnsw::HnswParams;
use crate::model::{pool_templates, FaceSample, Identity, IdentityId, IdentitySummary, Template};
use crate::store::{
    check_enrolment, check_idempotency_key, enrolment_fingerprint, plan_import, screen_faces, EnrolOutcome, GalleryExport, GalleryStore,
    ImportConflict, ImportReport, ImportStep, Match, EXPORT_FORMAT,
};
use vector::PgVector;

/// How the store connects. The defaults suit a CLI call or a service.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections in the pool (concurrent statements of this process).
    pub max_connections: u32,
    /// How long to wait for a connection before failing (an unreachable host).
    pub connect_timeout: Duration,
    /// For searches and listings only: every connection starts with
    /// `default_transaction_read_only = on`, so the *server* refuses any
    /// write (as on a read replica), no migration is applied, and the
    /// store's own writes fail first with "opened read-only".
    pub read_only: bool,
    /// The server cancels any statement running longer (`None`: no limit).
    pub statement_timeout: Option<Duration>,
}

/// Far above any search or enrolment (milliseconds on a gallery of a
/// million identities), far below a client's patience.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 8, connect_timeout: Duration::from_secs(10), read_only: false, statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT) }
    }
}

/// Rows per statement when importing in bulk (arrays bound as parameters).
const IMPORT_BATCH: usize = 1000;

/// A gallery in a PostgreSQL database. See the module docs.
pub struct PostgresStore {
    /// The URL without its password.
    location: String,
    pool: PgPool,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// Fixed at creation (the column type is `vector(E)`).
    embedding_size: usize,
    /// See [`PostgresOptions::read_only`].
    read_only: bool,
}

/// A failure inside a database task: SQL errors get the location attached by [`PostgresStore::run`].
enum Fail {
    Sql(sqlx::Error),
    Gallery(GalleryError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<GalleryError> for Fail {
    fn from(e: GalleryError) -> Self {
        Fail::Gallery(e)
    }
}

type Step<T> = std::result::Result<T, Fail>;

/// Query parameters whose values are secrets (libpq's names and sqlx's
/// spellings): never shown. `passfile` names where passwords are kept.
const SECRET_PARAMETERS: [&str; 4] = ["password", "sslpassword", "ssl-password", "passfile"];

/// `url` with every secret replaced by `***`, for messages and
/// `location()`: the password of `user:password@`, and the values of
/// `password`, `sslpassword` and `passfile` parameters (any case,
/// percent-encoded or not). A password containing `/`, `?`, `#` or `@`
/// (which should have been percent-encoded) is still hidden whole: the
/// user information runs to the last `@` before the query.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let (scheme, rest) = url.split_at(scheme_end);
    let query_start = query_start(rest);
    let (before_query, query) = match query_start {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    let mut redacted = scheme.to_string();
    match before_query.rfind('@') {
        Some(at) => {
            let user_info = &before_query[..at];
            match user_info.find(':') {
                Some(colon) => redacted.push_str(&format!("{}:***{}", &user_info[..colon], &before_query[at..])),
                None => redacted.push_str(before_query),
            }
        }
        None => redacted.push_str(before_query),
    }
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let key = pair.split_once('=').map_or(pair, |(key, _)| key);
                let name = percent_decode(key).to_ascii_lowercase();
                if SECRET_PARAMETERS.contains(&name.trim()) {
                    format!("{key}=***")
                } else {
                    pair.to_string()
                }
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

/// Where the query of the text after `scheme://` starts: the first `?`
/// followed by a parameter (`name=`), so a `?` inside a careless password
/// is not taken for one.
fn query_start(rest: &str) -> Option<usize> {
    rest.match_indices('?').map(|(i, _)| i).find(|&i| {
        let after = &rest[i + 1..];
        let name_end = after.find(|c: char| !(c.is_ascii_alphanumeric() || "_-[]%".contains(c))).unwrap_or(after.len());
        name_end > 0 && after[name_end..].starts_with('=')
    })
}

/// `%XX` escapes decoded (invalid ones kept as they are); for comparing parameter names.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                decoded.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The connection options for `url`: TLS verified whenever it is required
/// (see the module docs), the statement timeout unless the URL sets one,
/// and read-only sessions when asked.
pub fn connect_options(url: &str, options: &PostgresOptions) -> Result<PgConnectOptions> {
    let location = redact_url(url);
    let mut connect_options = PgConnectOptions::from_str(url)
        .map_err(|e| GalleryError::invalid(format!("--gallery {location}"), format!("not a PostgreSQL connection URL: {e}")))?;
    if matches!(connect_options.get_ssl_mode(), PgSslMode::Require) {
        connect_options = connect_options.ssl_mode(PgSslMode::VerifyFull);
    }
    if options.read_only {
        connect_options = connect_options.options([("default_transaction_read_only", "on")]);
    }
    let url_sets_timeout = connect_options.get_options().is_some_and(|o| o.contains("statement_timeout"));
    if let (Some(timeout), false) = (options.statement_timeout, url_sets_timeout) {
        connect_options = connect_options.options([("statement_timeout", format!("{}ms", timeout.as_millis().max(1)))]);
    }
    Ok(connect_options)
}

/// A runtime of its own for the store's database tasks.
fn runtime(location: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("visage-postgres")
        .enable_all()
        .build()
        .map_err(|e| GalleryError::Database { location: location.to_string(), message: format!("cannot start the database runtime: {e}") })
}

/// Runs `work` on `runtime` and waits for it from any thread (see the module docs).
fn run_on<T: Send + 'static>(runtime: &tokio::runtime::Runtime, location: &str, work: impl Future<Output = Step<T>> + Send + 'static) -> Result<T> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(work.await);
    });
    match receiver.recv() {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Fail::Gallery(e))) => Err(e),
        Ok(Err(Fail::Sql(e))) => Err(database_error(location, e)),
        Err(_) => Err(GalleryError::Database { location: location.to_string(), message: "the database task stopped (panicked)".into() }),
    }
}

/// Words for a database error that say what to do where it is clear.
fn database_error(location: &str, error: sqlx::Error) -> GalleryError {
    let message = match &error {
        sqlx::Error::Io(e) => format!("cannot reach the PostgreSQL server: {e}"),
        sqlx::Error::PoolTimedOut => "no connection to the PostgreSQL server within the timeout (host unreachable or every connection busy)".into(),
        sqlx::Error::Tls(e) => format!(
            "TLS to the PostgreSQL server failed: {e} (certificates are verified for sslmode=require, verify-ca and verify-full: give sslrootcert=FILE for a private certificate authority)"
        ),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => format!("no such database: {}", db.message()),
            Some("28P01") | Some("28000") => format!("authentication refused: {}", db.message()),
            Some("42501") => format!("permission denied: {}", db.message()),
            Some("57014") => format!("a statement ran past the statement timeout and was cancelled: {}", db.message()),
            Some("0A000") | Some("58P01") if db.message().contains("vector") => format!(
                "the `vector` extension (pgvector) is not available on this server: {} (install pgvector on the server, then retry)",
                db.message()
            ),
            _ => format!("PostgreSQL: {}", db.message()),
        },
        other => format!("PostgreSQL: {other}"),
    };
    GalleryError::Database { location: location.to_string(), message }
}

impl PostgresStore {
    /// Whether the database at `url` holds a visage gallery.
    pub fn exists(url: &str) -> Result<bool> {
        let store = Self::connect(url, &PostgresOptions::default())?;
        let pool = store.pool.clone();
        store.run(async move { Ok(gallery_version(&pool).await?.is_some()) })
    }

    /// Creates a gallery in the database at `url` (which must not hold one),
    /// creating the `vector` extension and the schema.
    pub fn create(url: &str, config: GalleryConfig) -> Result<Self> {
        Self::create_with(url, config, &PostgresOptions::default())
    }

    /// [`PostgresStore::create`] with `options`. All of it is one
    /// transaction under the migration lock: a database that already holds
    /// a gallery is refused (`Invalid`) and a failure leaves nothing behind.
    /// A read-only `options` or an `embedding_size` of 0 is refused before
    /// any statement runs.
    pub fn create_with(url: &str, config: GalleryConfig, options: &PostgresOptions) -> Result<Self> {
        let mut store = Self::connect(url, options)?;
        store.refuse_if_read_only()?;
        if config.embedding_size == 0 {
            return Err(GalleryError::invalid("embedding_size", "must be positive"));
        }
        let (pool, location) = (store.pool.clone(), store.location.clone());
        let dim = config.embedding_size;
        let stored = config.clone();
        store.run(async move {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(schema::MIGRATION_LOCK).execute(&mut *tx).await?;
            if table_exists(&mut tx, "visage_config").await? {
                return Err(GalleryError::invalid(location, "already holds a gallery").into());
            }
            sqlx::Executor::execute(&mut *tx, schema::VERSION_TABLE).await?;
            sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await?;
            for version in 1..=schema::SCHEMA_VERSION {
                apply_migration(&mut tx, version, dim).await?;
            }
            sqlx::query("INSERT INTO visage_config (id, config) VALUES (1, $1)").bind(Json(&stored)).execute(&mut *tx).await?;
            commit(tx).await
        })?;
        store.embedding_size = config.embedding_size;
        Ok(store)
    }

    /// Opens the gallery in the database at `url`, applying pending migrations.
    /// (Read-only opens apply none: an older schema must be migrated by one
    /// read-write open first.)
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &PostgresOptions::default())
    }

    /// [`PostgresStore::open`] with `options`. A database without the
    /// schema is `Invalid` (not a gallery); a schema or format newer than
    /// this build is `Unsupported`.
    pub fn open_with(url: &str, options: &PostgresOptions) -> Result<Self> {
        let mut store = Self::connect(url, options)?;
        let (pool, location, read_only) = (store.pool.clone(), store.location.clone(), store.read_only);
        let config = store.run(async move {
            let mut tx = pool.begin().await?;
            if !read_only {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(schema::MIGRATION_LOCK).execute(&mut *tx).await?;
            }
            let Some(version) = version_in(&mut tx).await? else {
                return Err(GalleryError::Invalid {
                    what: location,
                    message: "not a visage gallery (no visage_schema_version table): create one with `visage gallery enrol`".into(),
                }
                .into());
            };
            if version > schema::SCHEMA_VERSION {
                return Err(GalleryError::Unsupported {
                    location,
                    message: format!("gallery schema version {version}, this build knows up to {}: use a newer visage", schema::SCHEMA_VERSION),
                }
                .into());
            }
            let config = read_config(&mut tx, &location).await?;
            if read_only && version < schema::SCHEMA_VERSION {
                return Err(GalleryError::Unsupported {
                    location,
                    message: format!(
                        "gallery schema version {version} needs migrating to {} and this open is read-only: open it once read-write (e.g. `visage gallery list` is read-only, `visage gallery enrol` is not)",
                        schema::SCHEMA_VERSION
                    ),
                }
                .into());
            }
            if version < schema::SCHEMA_VERSION {
                // A migration may rebuild an index over every row: minutes, not the request-sized timeout.
                sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await?;
            }
            for next in version + 1..=schema::SCHEMA_VERSION {
                apply_migration(&mut tx, next, config.embedding_size).await?;
            }
            commit(tx).await?;
            Ok(config)
        })?;
        store.embedding_size = config.embedding_size;
        Ok(store)
    }

    fn connect(url: &str, options: &PostgresOptions) -> Result<Self> {
        let location = redact_url(url);
        let connect_options = connect_options(url, options)?;
        let runtime = runtime(&location)?;
        let pool_options = PgPoolOptions::new().max_connections(options.max_connections.max(1)).acquire_timeout(options.connect_timeout);
        let timeout = options.connect_timeout;
        let timeout_location = location.clone();
        let pool = run_on(&runtime, &location, async move {
            // One direct connection first, so a bad host, database or password
            // fails now with its own error (the pool would retry until its
            // timeout and report only that).
            let first = tokio::time::timeout(timeout, <PgConnection as sqlx::Connection>::connect_with(&connect_options)).await.map_err(|_| {
                GalleryError::Database {
                    location: timeout_location,
                    message: format!("no answer from the PostgreSQL server within {} s (host unreachable?)", timeout.as_secs_f64()),
                }
            })??;
            sqlx::Connection::close(first).await?;
            Ok(pool_options.connect_lazy_with(connect_options))
        })?;
        Ok(Self { location, pool, runtime: Some(runtime), embedding_size: 0, read_only: options.read_only })
    }

    /// The embedded store's refusal, before any statement reaches the server.
    fn refuse_if_read_only(&self) -> Result<()> {
        if self.read_only {
            return Err(GalleryError::Unsupported { location: self.location.clone(), message: "opened read-only".into() });
        }
        Ok(())
    }

    fn run<T: Send + 'static>(&self, work: impl Future<Output = Step<T>> + Send + 'static) -> Result<T> {
        run_on(self.runtime.as_ref().expect("runtime lives until drop"), &self.location, work)
    }

    fn check_queries(&self, queries: &[&[f32]]) -> Result<Vec<PgVector>> {
        queries
            .iter()
            .enumerate()
            .map(|(i, query)| {
                if query.len() != self.embedding_size {
                    return Err(GalleryError::DimensionMismatch { what: format!("query {i}"), expected: self.embedding_size, found: query.len() });
                }
                Ok(PgVector(query.to_vec()))
            })
            .collect()
    }

    /// Drops the HNSW index: bulk loads (a large `import`) run much faster
    /// without it; [`Self::create_search_index`] rebuilds it afterwards.
    pub fn drop_search_index(&self) -> Result<()> {
        self.refuse_if_read_only()?;
        let pool = self.pool.clone();
        self.run(async move {
            sqlx::Executor::execute(&pool, format!("DROP INDEX IF EXISTS {}", schema::SEARCH_INDEX).as_str()).await?;
            Ok(())
        })
    }

    /// Builds the HNSW index (when absent) over the current identities.
    pub fn create_search_index(&self) -> Result<()> {
        self.refuse_if_read_only()?;
        self.execute(&schema::create_search_index())
    }

    /// Runs SQL (for benchmarks and maintenance: `ANALYZE`, `VACUUM`, index
    /// builds) without the statement timeout: maintenance on a large
    /// gallery takes minutes. The connection gets its timeout back after.
    pub fn execute(&self, sql: &str) -> Result<()> {
        let (pool, sql) = (self.pool.clone(), sql.to_string());
        self.run(async move {
            let mut conn = pool.acquire().await?;
            sqlx::Executor::execute(&mut *conn, "SET statement_timeout = 0").await?;
            let result = sqlx::Executor::execute(&mut *conn, sql.as_str()).await;
            sqlx::Executor::execute(&mut *conn, "RESET statement_timeout").await?;
            result?;
            Ok(())
        })
    }

    /// A server setting as this store's connections see it (`SHOW name`):
    /// for diagnostics, e.g. the statement timeout in force.
    pub fn setting(&self, name: &str) -> Result<String> {
        let (pool, name) = (self.pool.clone(), name.to_string());
        self.run(async move { Ok(sqlx::query_scalar::<_, String>("SELECT current_setting($1)").bind(name).fetch_one(&pool).await?) })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Close the connections politely (bounded wait), then stop the
            // runtime without blocking: dropping a runtime inside another
            // runtime's task would panic.
            let pool = self.pool.clone();
            let (sender, receiver) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                pool.close().await;
                let _ = sender.send(());
            });
            let _ = receiver.recv_timeout(Duration::from_secs(5));
            runtime.shutdown_background();
        }
    }
}

/// A boxed `Send` future: the helpers below return these so that the
/// borrow of the connection is checked here, not as a higher-ranked bound
/// on the outer task (which rustc cannot prove `Send` for sqlx's executors).
type Boxed<'a, T> = std::pin::Pin<Box<dyn Future<Output = Step<T>> + Send + 'a>>;

fn table_exists<'a>(conn: &'a mut Conn, table: &'static str) -> Boxed<'a, bool> {
    Box::pin(async move { Ok(sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&mut *conn).await?) })
}

/// The schema version, `None` when the database holds no gallery.
fn version_in(conn: &mut Conn) -> Boxed<'_, Option<i32>> {
    Box::pin(async move {
        if !table_exists(conn, "visage_schema_version").await? {
            return Ok(None);
        }
        Ok(sqlx::query_scalar::<_, Option<i32>>("SELECT max(version) FROM visage_schema_version").fetch_one(&mut *conn).await?)
    })
}

async fn gallery_version(pool: &PgPool) -> Step<Option<i32>> {
    let mut tx = pool.begin().await?;
    let version = version_in(&mut tx).await?;
    tx.rollback().await?;
    Ok(version)
}

fn apply_migration(conn: &mut Conn, version: i32, dim: usize) -> Boxed<'_, ()> {
    Box::pin(async move {
        let sql = schema::migration(version, dim).expect("every version up to SCHEMA_VERSION has a migration");
        sqlx::Executor::execute(&mut *conn, sql.as_str()).await?;
        sqlx::query("INSERT INTO visage_schema_version (version) VALUES ($1)").bind(version).execute(&mut *conn).await?;
        Ok(())
    })
}

/// Commits with `synchronous_commit = on` (set at the start of each write).
async fn commit(tx: Transaction<'static, Postgres>) -> Step<()> {
    tx.commit().await?;
    Ok(())
}

/// Begins a write transaction whose commit waits for the WAL flush.
async fn begin_write(pool: &PgPool) -> Step<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = on").execute(&mut *tx).await?;
    Ok(tx)
}

/// Begins a read-only transaction that sees one snapshot for all its statements.
async fn begin_snapshot(pool: &PgPool) -> Step<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    Ok(tx)
}

async fn read_config(conn: &mut Conn, location: &str) -> Step<GalleryConfig> {
    let config: Option<Json<GalleryConfig>> = sqlx::query_scalar("SELECT config FROM visage_config WHERE id = 1").fetch_optional(&mut *conn).await?;
    let Some(Json(config)) = config else {
        return Err(
            GalleryError::Invalid { what: location.to_string(), message: "the gallery has no configuration row (visage_config)".into() }.into()
        );
    };
    if config.format_version != GALLERY_FORMAT_VERSION {
        return Err(GalleryError::Unsupported {
            location: location.to_string(),
            message: format!("gallery format_version {}, this build reads {GALLERY_FORMAT_VERSION}", config.format_version),
        }
        .into());
    }
    Ok(config)
}

/// An identity's templates in enrolment order.
async fn templates_of(conn: &mut Conn, id: i64) -> Step<Vec<Template>> {
    let rows: Vec<(PgVector, f32, String)> =
        sqlx::query_as("SELECT embedding, magnitude, source FROM visage_templates WHERE identity_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(embedding, magnitude, source)| Template { embedding: embedding.0, magnitude, source }).collect())
}

/// Appends `templates` to identity `id` (in their order).
async fn insert_templates(conn: &mut Conn, ids: Vec<i64>, templates: Vec<Template>) -> Step<()> {
    let mut embeddings = Vec::with_capacity(templates.len());
    let mut magnitudes = Vec::with_capacity(templates.len());
    let mut sources = Vec::with_capacity(templates.len());
    for template in templates {
        embeddings.push(PgVector(template.embedding));
        magnitudes.push(template.magnitude);
        sources.push(template.source);
    }
    sqlx::query(
        "INSERT INTO visage_templates (identity_id, embedding, magnitude, source)
         SELECT i, e, m, s FROM unnest($1::bigint[], $2::vector[], $3::real[], $4::text[]) WITH ORDINALITY AS t (i, e, m, s, n) ORDER BY n",
    )
    .bind(ids)
    .bind(embeddings)
    .bind(magnitudes)
    .bind(sources)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Recomputes identity `id`'s pooled template from all its templates and
/// returns the identity (with `metadata` replaced when given).
async fn repool(conn: &mut Conn, id: i64, metadata: Option<serde_json::Value>) -> Step<Identity> {
    let templates = templates_of(conn, id).await?;
    let pooled = PgVector(pool_templates(&templates));
    let (name, metadata): (String, serde_json::Value) = match metadata {
        Some(metadata) => {
            sqlx::query_as("UPDATE visage_identities SET pooled = $2, metadata = $3 WHERE id = $1 RETURNING name, metadata")
                .bind(id)
                .bind(pooled)
                .bind(metadata)
                .fetch_one(&mut *conn)
                .await?
        }
        None => {
            sqlx::query_as("UPDATE visage_identities SET pooled = $2 WHERE id = $1 RETURNING name, metadata")
                .bind(id)
                .bind(pooled)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    Ok(Identity { id: id as IdentityId, name, metadata, templates })
}

/// `SELECT … FROM visage_identities` rows as listing summaries, by name in byte order (as Rust sorts).
const SUMMARY_SQL: &str = "SELECT i.id, i.name, i.metadata, count(t.id), greatest(coalesce(max(t.magnitude), 0), 0)
     FROM visage_identities i LEFT JOIN visage_templates t ON t.identity_id = i.id";

type SummaryRow = (i64, String, serde_json::Value, i64, f32);

fn summary((id, name, metadata, templates, best_quality): SummaryRow) -> IdentitySummary {
    IdentitySummary { id: id as IdentityId, name, metadata, templates: templates as usize, best_quality }
}

impl GalleryStore for PostgresStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn config(&self) -> Result<GalleryConfig> {
        let (pool, location) = (self.pool.clone(), self.location.clone());
        self.run(async move { read_config(&mut *pool.acquire().await?, &location).await })
    }

    fn set_threshold(&self, threshold: DecisionThreshold) -> Result<()> {
        self.refuse_if_read_only()?;
        let (pool, location) = (self.pool.clone(), self.location.clone());
        self.run(async move {
            let mut tx = begin_write(&pool).await?;
            sqlx::query("SELECT 1 FROM visage_config WHERE id = 1 FOR UPDATE").execute(&mut *tx).await?;
            let mut config = read_config(&mut tx, &location).await?;
            config.threshold = threshold;
            sqlx::query("UPDATE visage_config SET config = $1 WHERE id = 1").bind(Json(&config)).execute(&mut *tx).await?;
            commit(tx).await
        })
    }

    /// The key is claimed by inserting its row first in the enrolment's
    /// transaction: a concurrent retry with the same key blocks on that
    /// row until the first commits, then finds it and returns its outcome.
    fn enrol_idempotent(
        &self,
        idempotency_key: Option<&str>,
        name: &str,
        metadata: Option<serde_json::Value>,
        faces: &[FaceSample],
    ) -> Result<EnrolOutcome> {
        self.refuse_if_read_only()?;
        check_enrolment(name, metadata.as_ref())?;
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let config = self.config()?;
        let (templates, refused) = screen_faces(&config, faces)?;
        let fingerprint = i64::from(enrolment_fingerprint(name, metadata.as_ref(), faces));
        let (pool, name, key) = (self.pool.clone(), name.to_string(), idempotency_key.map(str::to_string));
        let dim = self.embedding_size;
        let (identity, created, accepted) = self.run(async move {
            let mut tx = begin_write(&pool).await?;
            if let Some(key) = &key {
                let claimed: Option<String> = sqlx::query_scalar(
                    "INSERT INTO visage_idempotency (key, fingerprint, identity_id, created, accepted) VALUES ($1, $2, 0, false, 0)
                     ON CONFLICT (key) DO NOTHING RETURNING key",
                )
                .bind(key)
                .bind(fingerprint)
                .fetch_optional(&mut *tx)
                .await?;
                if claimed.is_none() {
                    let (earlier, id, created, accepted): (i64, i64, bool, i32) =
                        sqlx::query_as("SELECT fingerprint, identity_id, created, accepted FROM visage_idempotency WHERE key = $1")
                            .bind(key)
                            .fetch_one(&mut *tx)
                            .await?;
                    if earlier != fingerprint {
                        return Err(GalleryError::invalid(
                            "Idempotency-Key",
                            format!("`{key}` was already used for a different enrolment; use a new key for a new request"),
                        )
                        .into());
                    }
                    // The identity as it is now (it may have changed, or been removed, since).
                    let row: Option<SummaryRow> =
                        sqlx::query_as(&format!("{SUMMARY_SQL} WHERE i.id = $1 GROUP BY i.id")).bind(id).fetch_optional(&mut *tx).await?;
                    tx.rollback().await?;
                    return Ok((row.map(summary), created, accepted as usize));
                }
            }
            if templates.is_empty() {
                // Nothing written, the key not recorded: a retry screens again.
                tx.rollback().await?;
                return Ok((None, false, 0));
            }
            let lock = "SELECT id FROM visage_identities WHERE name = $1 FOR UPDATE";
            let mut created = false;
            let id = match sqlx::query_scalar::<_, i64>(lock).bind(&name).fetch_optional(&mut *tx).await? {
                Some(id) => id,
                None => {
                    // A concurrent enrolment may create the same name first:
                    // then nothing is inserted and the row is locked below.
                    let inserted: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO visage_identities (name, metadata, pooled) VALUES ($1, 'null', $2)
                         ON CONFLICT (name) DO NOTHING RETURNING id",
                    )
                    .bind(&name)
                    .bind(PgVector(vec![0.0; dim]))
                    .fetch_optional(&mut *tx)
                    .await?;
                    match inserted {
                        Some(id) => {
                            created = true;
                            id
                        }
                        None => sqlx::query_scalar(lock).bind(&name).fetch_one(&mut *tx).await?,
                    }
                }
            };
            let accepted = templates.len();
            insert_templates(&mut tx, vec![id; accepted], templates).await?;
            let identity = repool(&mut tx, id, metadata).await?;
            if let Some(key) = &key {
                sqlx::query("UPDATE visage_idempotency SET identity_id = $2, created = $3, accepted = $4 WHERE key = $1")
                    .bind(key)
                    .bind(id)
                    .bind(created)
                    .bind(accepted as i32)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM visage_idempotency WHERE seq <= (SELECT max(seq) FROM visage_idempotency) - $1")
                    .bind(schema::IDEMPOTENCY_KEYS_KEPT)
                    .execute(&mut *tx)
                    .await?;
            }
            commit(tx).await?;
            Ok((Some(identity.summary()), created, accepted))
        })?;
        Ok(EnrolOutcome { identity, created, accepted, refused })
    }

    fn remove(&self, name: &str) -> Result<IdentitySummary> {
        self.refuse_if_read_only()?;
        let (pool, name) = (self.pool.clone(), name.to_string());
        self.run(async move {
            let mut tx = begin_write(&pool).await?;
            let locked: Option<i64> =
                sqlx::query_scalar("SELECT id FROM visage_identities WHERE name = $1 FOR UPDATE").bind(&name).fetch_optional(&mut *tx).await?;
            let Some(id) = locked else {
                return Err(GalleryError::UnknownIdentity { name }.into());
            };
            let row: SummaryRow = sqlx::query_as(&format!("{SUMMARY_SQL} WHERE i.id = $1 GROUP BY i.id")).bind(id).fetch_one(&mut *tx).await?;
            sqlx::query("DELETE FROM visage_identities WHERE id = $1").bind(id).execute(&mut *tx).await?;
            commit(tx).await?;
            Ok(summary(row))
        })
    }

    fn list(&self) -> Result<Vec<IdentitySummary>> {
        let pool = self.pool.clone();
        self.run(async move {
            let rows: Vec<SummaryRow> =
                sqlx::query_as(&format!("{SUMMARY_SQL} GROUP BY i.id ORDER BY i.name COLLATE \"C\"")).fetch_all(&pool).await?;
            Ok(rows.into_iter().map(summary).collect())
        })
    }

    fn get(&self, name: &str) -> Result<Identity> {
        let (pool, name) = (self.pool.clone(), name.to_string());
        self.run(async move {
            let mut tx = begin_snapshot(&pool).await?;
            let row: Option<(i64, serde_json::Value)> =
                sqlx::query_as("SELECT id, metadata FROM visage_identities WHERE name = $1").bind(&name).fetch_optional(&mut *tx).await?;
            let Some((id, metadata)) = row else {
                return Err(GalleryError::UnknownIdentity { name }.into());
            };
            let templates = templates_of(&mut tx, id).await?;
            tx.rollback().await?;
            Ok(Identity { id: id as IdentityId, name, metadata, templates })
        })
    }

    fn len(&self) -> Result<usize> {
        let pool = self.pool.clone();
        self.run(async move { Ok(sqlx::query_scalar::<_, i64>("SELECT count(*) FROM visage_identities").fetch_one(&pool).await? as usize) })
    }

    fn search(&self, queries: &[&[f32]], k: usize) -> Result<Vec<Vec<Match>>> {
        let queries = self.check_queries(queries)?;
        if k == 0 || queries.is_empty() {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        let pool = self.pool.clone();
        self.run(async move {
            let mut tx = begin_snapshot(&pool).await?;
            let mut results = Vec::with_capacity(queries.len());
            for query in queries {
                let rows: Vec<(i64, String, f64)> =
                    sqlx::query_as("SELECT id, name, -(pooled <#> $1) FROM visage_identities ORDER BY pooled <#> $1, id LIMIT $2")
                        .bind(query)
                        .bind(k as i64)
                        .fetch_all(&mut *tx)
                        .await?;
                results.push(rows.into_iter().map(|(id, name, score)| Match { id: id as IdentityId, name, score: score as f32 }).collect());
            }
            tx.rollback().await?;
            Ok(results)
        })
    }

    fn export(&self) -> Result<GalleryExport> {
        let (pool, location) = (self.pool.clone(), self.location.clone());
        self.run(async move {
            let mut tx = begin_snapshot(&pool).await?;
            let config = read_config(&mut tx, &location).await?;
            let rows: Vec<(i64, String, serde_json::Value)> =
                sqlx::query_as("SELECT id, name, metadata FROM visage_identities ORDER BY id").fetch_all(&mut *tx).await?;
            let mut identities: Vec<Identity> =
                rows.into_iter().map(|(id, name, metadata)| Identity { id: id as IdentityId, name, metadata, templates: Vec::new() }).collect();
            let position: std::collections::HashMap<IdentityId, usize> =
                identities.iter().enumerate().map(|(i, identity)| (identity.id, i)).collect();
            let templates: Vec<(i64, PgVector, f32, String)> =
                sqlx::query_as("SELECT identity_id, embedding, magnitude, source FROM visage_templates ORDER BY identity_id, id")
                    .fetch_all(&mut *tx)
                    .await?;
            for (identity_id, embedding, magnitude, source) in templates {
                identities[position[&(identity_id as IdentityId)]].templates.push(Template { embedding: embedding.0, magnitude, source });
            }
            tx.rollback().await?;
            Ok(GalleryExport { format: EXPORT_FORMAT.to_string(), config, identities })
        })
    }

    fn import(&self, export: &GalleryExport, on_conflict: ImportConflict) -> Result<ImportReport> {
        self.refuse_if_read_only()?;
        let (pool, location) = (self.pool.clone(), self.location.clone());
        let export = export.clone();
        self.run(async move {
            let mut tx = begin_write(&pool).await?;
            // No identity appears or goes between the conflict check and the commit.
            sqlx::query("LOCK TABLE visage_identities IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
            let config = read_config(&mut tx, &location).await?;
            let names: Vec<String> = export.identities.iter().map(|i| i.name.clone()).collect();
            let existing: std::collections::HashMap<String, IdentityId> =
                sqlx::query_as::<_, (String, i64)>("SELECT name, id FROM visage_identities WHERE name = ANY($1)")
                    .bind(&names)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(name, id)| (name, id as IdentityId))
                    .collect();
            let (steps, report) = plan_import(&config, &export, on_conflict, |name| existing.get(name).copied())?;
            let (creates, merges): (Vec<ImportStep>, Vec<ImportStep>) = steps.into_iter().partition(|s| matches!(s, ImportStep::Create { .. }));
            for batch in creates.chunks(IMPORT_BATCH) {
                let identities: Vec<&Identity> = batch
                    .iter()
                    .map(|step| match step {
                        ImportStep::Create { index } => &export.identities[*index],
                        ImportStep::Merge { .. } => unreachable!("partitioned"),
                    })
                    .collect();
                let names: Vec<&str> = identities.iter().map(|i| i.name.as_str()).collect();
                let metadata: Vec<String> = identities.iter().map(|i| i.metadata.to_string()).collect();
                let pooled: Vec<PgVector> = identities.iter().map(|i| PgVector(pool_templates(&i.templates))).collect();
                let ids: Vec<(i64, String)> = sqlx::query_as(
                    "INSERT INTO visage_identities (name, metadata, pooled)
                     SELECT n, m::jsonb, p FROM unnest($1::text[], $2::text[], $3::vector[]) WITH ORDINALITY AS t (n, m, p, o) ORDER BY o
                     RETURNING id, name",
                )
                .bind(&names)
                .bind(&metadata)
                .bind(pooled)
                .fetch_all(&mut *tx)
                .await?;
                let id_of: std::collections::HashMap<String, i64> = ids.into_iter().map(|(id, name)| (name, id)).collect();
                let mut template_ids = Vec::new();
                let mut templates = Vec::new();
                for identity in identities {
                    for template in &identity.templates {
                        template_ids.push(id_of[&identity.name]);
                        templates.push(template.clone());
                    }
                }
                insert_templates(&mut tx, template_ids, templates).await?;
            }
            for step in merges {
                let ImportStep::Merge { index, id } = step else { unreachable!("partitioned") };
                let identity = &export.identities[index];
                insert_templates(&mut tx, vec![id as i64; identity.templates.len()], identity.templates.clone()).await?;
                repool(&mut tx, id as i64, None).await?;
            }
            commit(tx).await?;
            Ok(report)
        })
    }

    fn search_approximate(&self, queries: &[&[f32]], k: usize, params: HnswParams) -> Result<Vec<Vec<Match>>> {
        let queries = self.check_queries(queries)?;
        if k == 0 || queries.is_empty() {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        // pgvector accepts ef_search in 1..=1000; fewer than k candidates cannot give k results.
        let ef_search = params.ef_search.max(k).clamp(1, 1000);
        let pool = self.pool.clone();
        self.run(async move {
            let mut tx = begin_snapshot(&pool).await?;
            sqlx::query("SELECT set_config('hnsw.ef_search', $1, true), set_config('enable_seqscan', 'off', true)")
                .bind(ef_search.to_string())
                .execute(&mut *tx)
                .await?;
            let mut results = Vec::with_capacity(queries.len());
            for query in queries {
                let rows: Vec<(i64, String, f64)> =
                    sqlx::query_as("SELECT id, name, pooled <=> $1 FROM visage_identities ORDER BY pooled <=> $1 LIMIT $2")
                        .bind(query)
                        .bind(k as i64)
                        .fetch_all(&mut *tx)
                        .await?;
                results.push(
                    rows.into_iter().map(|(id, name, distance)| Match { id: id as IdentityId, name, score: (1.0 - distance) as f32 }).collect(),
                );
            }
            tx.rollback().await?;
            Ok(results)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://ann:s3cr:et@db.local:5432/g?sslmode=require"), "postgres://ann:***@db.local:5432/g?sslmode=require");
        assert_eq!(redact_url("postgresql://ann@db/g"), "postgresql://ann@db/g");
        assert_eq!(redact_url("postgres://db/g?user=a@b"), "postgres://db/g?user=a@b");
        // Every other place a secret can sit.
        let cases = [
            ("postgres://db/g?password=hunter2", "postgres://db/g?password=***"),
            (
                "postgres://ann@db/g?sslmode=disable&password=hunter2&application_name=x",
                "postgres://ann@db/g?sslmode=disable&password=***&application_name=x",
            ),
            ("postgres://db/g?PassWord=hunter2", "postgres://db/g?PassWord=***"),
            ("postgres://db/g?pass%77ord=hunter2", "postgres://db/g?pass%77ord=***"),
            ("postgres://db/g?sslpassword=hunter2&sslkey=k.pem", "postgres://db/g?sslpassword=***&sslkey=k.pem"),
            ("postgres://db/g?passfile=/home/ann/.pgpass-hunter2", "postgres://db/g?passfile=***"),
            ("postgres://ann:hun/ter?2@db/g?sslmode=verify-full", "postgres://ann:***@db/g?sslmode=verify-full"),
            ("postgres://ann:hu@nter2@db/g", "postgres://ann:***@db/g"),
            ("postgres://ann:hunter2@db/g?password=hunter2&password=hunter2", "postgres://ann:***@db/g?password=***&password=***"),
            ("postgres://ann:hunter2@/g?host=/var/run/postgresql", "postgres://ann:***@/g?host=/var/run/postgresql"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_url(url), expected, "{url}");
            assert!(!redact_url(url).contains("hunter2"), "{url}");
        }
        let err = PostgresStore::open("postgres://ann:pw@host:notaport/db").err().unwrap().to_string();
        assert!(
            err.contains("postgres://ann:***@host:notaport/db") && err.contains("not a PostgreSQL connection URL") && !err.contains("pw@"),
            "{err}"
        );
        let err = PostgresStore::open("postgres://ann@host:notaport/db?password=hunter2").err().unwrap().to_string();
        assert!(!err.contains("hunter2") && err.contains("password=***"), "{err}");
    }

    #[test]
    fn tls_that_is_required_is_verified_and_statements_are_bounded() {
        let mode = |url: &str| format!("{:?}", connect_options(url, &PostgresOptions::default()).unwrap().get_ssl_mode());
        assert_eq!(mode("postgres://ann@db/g?sslmode=require"), "VerifyFull");
        assert_eq!(mode("postgres://ann@db/g?sslmode=verify-ca"), "VerifyCa");
        assert_eq!(mode("postgres://ann@db/g?sslmode=verify-full"), "VerifyFull");
        assert_eq!(mode("postgres://ann@db/g?sslmode=disable"), "Disable");
        let startup = |url: &str, options: &PostgresOptions| connect_options(url, options).unwrap().get_options().map(str::to_string);
        assert_eq!(startup("postgres://db/g", &PostgresOptions::default()).as_deref(), Some("-c statement_timeout=30000ms"));
        let read_only = PostgresOptions { read_only: true, statement_timeout: Some(Duration::from_millis(1500)), ..PostgresOptions::default() };
        assert_eq!(startup("postgres://db/g", &read_only).as_deref(), Some("-c default_transaction_read_only=on -c statement_timeout=1500ms"));
        assert_eq!(startup("postgres://db/g", &PostgresOptions { statement_timeout: None, ..PostgresOptions::default() }), None);
        // The URL's own timeout wins.
        assert_eq!(
            startup("postgres://db/g?options=-c%20statement_timeout%3D5s", &PostgresOptions::default()).as_deref(),
            Some("-c statement_timeout=5s")
        );
    }
}
