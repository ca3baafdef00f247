//! visage-serve: the HTTP service over a gallery (`visage serve`).
//!
//! - [`api`]: the REST + JSON endpoints (detect, embed, verify, quality,
//!   enrol, search, list, get, delete, thumbnails), `/health`, `/metrics`,
//!   the web page at `/`;
//! - [`engine`]: model workers, each with its own ONNX Runtime sessions, fed
//!   by a bounded queue (full → 503 with `Retry-After`);
//! - [`keys`]: API keys with read and write scopes, stored as SHA-256 hashes;
//! - [`metrics`]: Prometheus text (requests by route and status, queue
//!   depth, an inference latency histogram);
//! - [`openapi`]: the OpenAPI 3.1 document served at `/openapi.json`;
//! - [`thumbnails`]: one small enrolment photo per identity, kept beside the gallery.
//!
//! The gallery is only ever used through `dyn GalleryStore`, so any backend
//! that implements the trait serves unchanged.

pub mod api;
pub mod engine;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod thumbnails;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use visage_gallery::{DecisionThreshold, GalleryConfig, GalleryLocation, GalleryStore, QualityPolicy};
use visage_infer::DecodeOptions;

pub use engine::{InferencePool, ModelSpec, PoolOptions};
pub use error::{ApiError, ServeError};
pub use keys::{add_key, read_keys, remove_key, KeyEntry, KeyRing, Scope};

/// Everything the service is configured with.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub gallery: GalleryLocation,
    /// The service's own files (thumbnails; the keys file by default).
    pub state_dir: PathBuf,
    pub keys_file: PathBuf,
    /// Reads (detect, embed, verify, quality, search, list) without a key.
    pub public_read: bool,
    pub pool: PoolOptions,
    /// Requests served at once (beyond it: 503). `/health` and `/metrics` are not counted.
    pub max_in_flight: usize,
    /// Largest request body (bytes); larger ones get 413 before they are read whole.
    pub max_body_bytes: usize,
    /// A request still unanswered after this gets 503 (queued work it had is skipped).
    pub request_timeout: Duration,
    /// Largest `k` a search may ask for.
    pub max_k: usize,
}

impl ServeOptions {
    /// Defaults for `gallery`, with the state directory beside it.
    pub fn new(gallery: GalleryLocation) -> Self {
        let state_dir = default_state_dir(&gallery);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            gallery,
            keys_file: state_dir.join("keys.json"),
            state_dir,
            public_read: false,
            pool: PoolOptions {
                workers: cores.clamp(1, 4),
                intra_threads: None,
                queue_capacity: 64,
                decode: DecodeOptions { max_pixels: DEFAULT_MAX_PIXELS },
                thumbnail_px: 160,
            },
            max_in_flight: 256,
            max_body_bytes: 20 << 20,
            request_timeout: Duration::from_secs(30),
            max_k: 100,
        }
    }
}

/// The service refuses photos above 50 megapixels before decoding (a 50 MP
/// phone sensor's full-resolution frame is 8160×6120 ≈ 49.9 MP); the CLI's
/// 100 MP suits files an operator chose, not uploads from anyone with a key.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// `DIR.serve` beside a gallery directory; `visage-serve` in the working
/// directory for a database gallery.
pub fn default_state_dir(gallery: &GalleryLocation) -> PathBuf {
    match gallery {
        GalleryLocation::Directory(dir) => {
            let name = dir.file_name().map_or_else(|| "gallery".into(), |n| n.to_string_lossy().into_owned());
            dir.with_file_name(format!("{name}.serve"))
        }
        GalleryLocation::Postgres(_) => PathBuf::from("visage-serve"),
    }
}

/// What every request handler shares.
pub struct AppState {
    pub store: Arc<dyn GalleryStore>,
    pub pool: InferencePool,
    pub keys: KeyRing,
    pub thumbnails: thumbnails::ThumbnailStore,
    pub metrics: Arc<metrics::Metrics>,
    pub options: ServeOptions,
    /// The recogniser the gallery's templates come from.
    pub recognizer: String,
    /// Its `same_person_cosine` (the 1:1 verify threshold).
    pub same_person_cosine: Option<f32>,
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// False once shutdown began (`/health` then answers 503).
    pub ready: AtomicBool,
}

/// A loaded service, ready to serve on a listener.
pub struct Service {
    state: Arc<AppState>,
}

impl Service {
    /// Loads the models (one set per worker), opens the gallery (creating
    /// it for the recogniser when absent; refusing one built with another
    /// recogniser) and the keys file.
    pub fn open(options: ServeOptions, models: &ModelSpec) -> Result<Self, ServeError> {
        let keys = KeyRing::open(&options.keys_file)?;
        let thumbnails = thumbnails::ThumbnailStore::open(&options.state_dir.join("thumbnails"))?;
        let metrics = Arc::new(metrics::Metrics::default());
        let pool = InferencePool::start(models, &options.pool, metrics.clone())?;
        let recognizer = models.recognizer.name.clone();
        let store: Arc<dyn GalleryStore> = if options.gallery.exists()? {
            let store = options.gallery.open(false)?;
            let config = store.config()?;
            if config.recognizer != recognizer {
                return Err(ServeError::Config(format!(
                    "{}: the gallery holds templates of recogniser `{}`, not `{recognizer}` (serve it with --recognizer {})",
                    store.location(),
                    config.recognizer,
                    config.recognizer
                )));
            }
            Arc::from(store)
        } else {
            let embedding_size = pool.embedding_size.ok_or_else(|| {
                ServeError::Config(format!(
                    "recogniser `{recognizer}` does not declare its embedding length: create the gallery with `visage gallery enrol` first"
                ))
            })?;
            let cosine = models.recognizer.same_person_cosine.ok_or_else(|| {
                ServeError::Config(format!(
                    "recogniser `{recognizer}` has no same_person_cosine: create the gallery with `visage gallery enrol --threshold` first"
                ))
            })?;
            let threshold = DecisionThreshold::from_recognizer(&recognizer, cosine)?;
            let config = GalleryConfig::new(embedding_size, recognizer.clone(), QualityPolicy::default(), threshold);
            Arc::from(options.gallery.create(config)?)
        };
        let state = AppState {
            store,
            pool,
            keys,
            thumbnails,
            metrics,
            recognizer,
            same_person_cosine: models.recognizer.same_person_cosine,
            in_flight: Arc::new(tokio::sync::Semaphore::new(options.max_in_flight.max(1))),
            options,
            ready: AtomicBool::new(true),
        };
        Ok(Self { state: Arc::new(state) })
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting,
    /// finishes the requests in flight and the photos they queued, and returns.
    pub async fn serve(self, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let address = listener.local_addr().ok();
        let state = self.state.clone();
        let draining = async move {
            shutdown.await;
            state.ready.store(false, std::sync::atomic::Ordering::SeqCst);
        };
        axum::serve(listener, self.router())
            .with_graceful_shutdown(draining)
            .await
            .map_err(|e| ServeError::Config(format!("serving on {address:?}: {e}")))?;
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.pool.shutdown()).await.map_err(|e| ServeError::Config(e.to_string()))?;
        Ok(())
    }
}

/// Resolves on ctrl-c (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// Loads the service, binds `listen`, calls `on_ready` with the bound
/// address, and serves until ctrl-c or SIGTERM (graceful: in-flight
/// requests finish). What `visage serve` runs.
pub fn run_until_signal(options: ServeOptions, models: &ModelSpec, listen: SocketAddr, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let service = Service::open(options, models)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| ServeError::io("tokio runtime", e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| ServeError::io(listen.to_string(), e))?;
        on_ready(listener.local_addr().map_err(|e| ServeError::io(listen.to_string(), e))?);
        service.serve(listener, shutdown_signal()).await
    })
}
