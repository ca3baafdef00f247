//! visage-serve: the HTTP service over a gallery (`visage serve`).
//!
//! - [`api`]: the REST + JSON endpoints (detect, embed, verify, quality,
//!   enrol, search, list, get, delete, thumbnails), `/health`, `/metrics`,
//!   the web page at `/`;
//! - [`engine`]: model workers, each with its own ONNX Runtime sessions, fed
//!   by a bounded queue (full → 503 with `Retry-After`);
//! - [`idempotency`]: enrolments remembered by `Idempotency-Key`, so a
//!   client retrying after a timeout does not enrol twice;
//! - [`keys`]: API keys with read and write scopes, stored as SHA-256 hashes;
//! - [`metrics`]: Prometheus text (requests by route and status, queue
//!   depth, an inference latency histogram);
//! - [`openapi`]: the OpenAPI 3.1 document served at `/openapi.json`;
//! - [`thumbnails`]: one small enrolment photo per identity, kept beside the gallery.
//!
//! The gallery is only ever used through `dyn GalleryStore`, so any backend
//! that implements the trait serves unchanged.

#![warn(missing_docs)]

pub mod api;
pub mod engine;
pub mod error;
pub mod idempotency;
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

use visage_gallery::{GalleryLocation, GallerySetup, GalleryStore};
use visage_infer::DecodeOptions;

pub use engine::{InferencePool, ModelSpec, PoolOptions};
pub use error::{ApiError, ServeError};
pub use keys::{add_key, read_keys, remove_key, KeyEntry, KeyRing, Scope};

/// Everything the service is configured with.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The gallery served: a directory or a `postgres://` URL. Created for
    /// the recogniser when it does not exist.
    pub gallery: GalleryLocation,
    /// The service's own files (thumbnails; the keys file by default).
    pub state_dir: PathBuf,
    /// The API keys file (default `STATE/keys.json`), re-read when its mtime changes.
    pub keys_file: PathBuf,
    /// Reads (detect, embed, verify, quality, search, list) without a key.
    pub public_read: bool,
    /// The model workers, their queue and decoding limits.
    pub pool: PoolOptions,
    /// Requests served at once (beyond it: 503). `/health` and `/metrics` are not counted.
    pub max_in_flight: usize,
    /// Largest request body (bytes); larger ones get 413 before they are read whole.
    pub max_body_bytes: usize,
    /// A request still unanswered after this gets 503 (queued work it had is skipped).
    pub request_timeout: Duration,
    /// Largest `k` a search may ask for.
    pub max_k: usize,
    /// A connection must deliver a complete request head within this, or be
    /// closed: it bounds both a client that stops half-way through its
    /// headers and a keep-alive connection left idle between requests
    /// (hyper starts the same timer whenever it waits for a request head).
    pub header_read_timeout: Duration,
    /// A connection whose client reads nothing of its answer for this long
    /// is closed (a stalled write frees its slot and its buffered response).
    pub write_stall_timeout: Duration,
    /// Connections served at once. Beyond it the service stops accepting:
    /// new connections wait in the kernel's listen backlog (holding no file
    /// descriptor of the process) until one closes.
    pub max_connections: usize,
    /// Faces kept per photo; a photo with more is refused (422).
    pub max_faces_per_photo: usize,
    /// Faces over all the photos of one request (verify sends two).
    pub max_faces_per_request: usize,
    /// Enrolments remembered by `Idempotency-Key` (oldest forgotten first).
    pub idempotency_capacity: usize,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
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
                max_faces: None,
            },
            max_in_flight: 256,
            max_body_bytes: 20 << 20,
            request_timeout: Duration::from_secs(30),
            max_k: 100,
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_S),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            write_stall_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_S),
            max_faces_per_photo: DEFAULT_MAX_FACES_PER_PHOTO,
            max_faces_per_request: DEFAULT_MAX_FACES_PER_REQUEST,
            idempotency_capacity: 10_000,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Seconds a client has to send a whole request head (and that an idle
/// keep-alive connection is kept): generous for any real client on a slow
/// link, and short enough that connections opened and left half-sent are
/// reclaimed long before they can exhaust the descriptor limit.
pub const DEFAULT_HEADER_READ_TIMEOUT_S: u64 = 30;
/// Connections at once: four times the default in-flight bound, so
/// keep-alive clients between requests do not starve new ones, and far
/// below the usual 20 000+ descriptor limit of a service.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// A group photo rarely holds more than a few dozen recognisable faces;
/// each face costs an embedding and a search, so a crowd shot cannot turn
/// one request into hundreds of model runs.
pub const DEFAULT_MAX_FACES_PER_PHOTO: usize = 50;
/// Two photos (verify) at the per-photo cap.
pub const DEFAULT_MAX_FACES_PER_REQUEST: usize = 100;

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
    /// The gallery, used only through the trait (calls run in `spawn_blocking`).
    pub store: Arc<dyn GalleryStore>,
    /// The model workers every photo goes through.
    pub pool: InferencePool,
    /// The API keys requests are checked against.
    pub keys: KeyRing,
    /// Enrolment photos by identity, in `STATE/thumbnails`.
    pub thumbnails: thumbnails::ThumbnailStore,
    /// The counters `/metrics` and `/health` report (shared with the pool).
    pub metrics: Arc<metrics::Metrics>,
    /// The options the service was opened with.
    pub options: ServeOptions,
    /// The recogniser the gallery's templates come from.
    pub recognizer: String,
    /// Its `same_person_cosine` (the 1:1 verify threshold).
    pub same_person_cosine: Option<f32>,
    /// Permits for requests being served (`max_in_flight`); `/health`,
    /// `/health/live` and `/metrics` take none.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// False once shutdown began (`/health` then answers 503).
    pub ready: AtomicBool,
    /// Enrolments by `Idempotency-Key`, so a retry does not enrol twice.
    pub idempotency: idempotency::IdempotencyTable,
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
        let mut pool_options = options.pool.clone();
        pool_options.max_faces = Some(options.max_faces_per_photo.min(options.max_faces_per_request).max(1) + 1);
        let pool = InferencePool::start(models, &pool_options, metrics.clone())?;
        let recognizer = models.recognizer.name.clone();
        let setup = GallerySetup::new(recognizer.clone(), models.recognizer.same_person_cosine);
        let store: Arc<dyn GalleryStore> = Arc::from(options.gallery.open_or_create_for(&setup, pool.embedding_size)?);
        let state = AppState {
            store,
            pool,
            keys,
            thumbnails,
            metrics,
            recognizer,
            same_person_cosine: models.recognizer.same_person_cosine,
            in_flight: Arc::new(tokio::sync::Semaphore::new(options.max_in_flight.max(1))),
            idempotency: idempotency::IdempotencyTable::new(options.idempotency_capacity, options.idempotency_ttl),
            options,
            ready: AtomicBool::new(true),
        };
        Ok(Self { state: Arc::new(state) })
    }

    /// What the handlers share (for tests and embedding programs).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Every route of [`api::ENDPOINTS`] with the guard (key, limits,
    /// timeout, metrics) around it, ready for any axum server.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting,
    /// finishes the requests in flight and the photos they queued, and returns.
    ///
    /// Each connection is served by hyper's HTTP/1 connection with a timer,
    /// so a request head must arrive within `header_read_timeout` (see
    /// [`ServeOptions::header_read_timeout`]); at most `max_connections` are
    /// open at once. At shutdown a connection with no request being handled
    /// (idle, or still sending a head) is given 2 s to finish what it was
    /// writing and then closed; one with a request finishes it (bounded by
    /// the request timeout) and its response.
    pub async fn serve(self, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let state = self.state.clone();
        let router = self.router();
        let connection_slots = Arc::new(tokio::sync::Semaphore::new(state.options.max_connections.max(1)));
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // A slot first, then accept: when every slot is taken, new
            // connections wait in the kernel's backlog, not as open sockets here.
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = connection_slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors or a connection reset before
                        // accept: not fatal; pause so a persistent error
                        // does not spin.
                        eprintln!("visage serve: accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            while connections.try_join_next().is_some() {}
            let _ = stream.set_nodelay(true);
            let connection = serve_connection(stream, router.clone(), state.clone(), stop.clone(), slot);
            connections.spawn(connection);
        }
        state.ready.store(false, std::sync::atomic::Ordering::SeqCst);
        drop(listener);
        let _ = stop_sender.send(true);
        // Each connection bounds its own drain (see `serve_connection`); this is the backstop.
        let drain_limit = state.options.request_timeout + 2 * SHUTDOWN_GRACE;
        let drained = tokio::time::timeout(drain_limit, async { while connections.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            eprintln!("visage serve: {} connection(s) still open {} s after shutdown began: closing them", connections.len(), drain_limit.as_secs());
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.pool.shutdown()).await.map_err(|e| ServeError::Config(e.to_string()))?;
        Ok(())
    }
}

/// One connection, from accept to close; `_slot` is its place in the
/// connection bound, given back when this returns.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let metrics = state.metrics.clone();
    metrics.connections_open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(state.options.header_read_timeout).keep_alive(true);
    // Requests of this connection being handled now: at shutdown a
    // connection with none (idle, or half-way through a request head) is
    // closed at once instead of waiting for its client.
    let handling = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = hyper_util::service::TowerToHyperService::new(router);
    let counter = handling.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let handled = Handling::start(counter.clone());
        let response = hyper::service::Service::call(&router, request);
        async move {
            let response = response.await;
            drop(handled);
            response
        }
    });
    let stream = WriteStallLimit::new(stream, state.options.write_stall_timeout);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = stop.wait_for(|stopping| *stopping) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            // A request being handled ends within the request timeout; a
            // response already handed over is written within a moment.
            let busy = handling.load(std::sync::atomic::Ordering::SeqCst) > 0;
            let grace = if busy { state.options.request_timeout + SHUTDOWN_GRACE } else { SHUTDOWN_GRACE };
            match tokio::time::timeout(grace, connection).await {
                Ok(result) => result,
                Err(_) => Ok(()), // dropped: the client was not going to finish
            }
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            metrics.header_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    metrics.connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// How long shutdown waits for a connection to write what it was answering.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Counts one request as being handled for as long as it lives (a
/// cancelled request stops counting too).
struct Handling(Arc<std::sync::atomic::AtomicUsize>);

impl Handling {
    fn start(counter: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A connection whose writes may not stall longer than a limit: a client
/// that stops reading its answers (or pipelines requests without reading)
/// would otherwise hold its connection, its slot and the response in
/// memory for as long as it likes. Reads pass through untouched (the
/// header timeout and the request timeout bound those).
struct WriteStallLimit {
    inner: tokio::net::TcpStream,
    limit: Duration,
    /// Running while a write is pending; reset by any progress.
    stalled_since: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl WriteStallLimit {
    fn new(inner: tokio::net::TcpStream, limit: Duration) -> Self {
        Self { inner, limit, stalled_since: None }
    }

    /// `Pending` from the socket: start (or check) the stall timer.
    fn stalled<T>(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<T>> {
        let limit = self.limit;
        let timer = self.stalled_since.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {} s", limit.as_secs_f64()),
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for WriteStallLimit {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WriteStallLimit {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, data: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, data) {
            std::task::Poll::Pending => self.stalled(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, data) {
            std::task::Poll::Pending => self.stalled(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.inner).poll_flush(cx) {
            std::task::Poll::Pending => self.stalled(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
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
