//! The routes. Every image endpoint takes the photo as the raw request body
//! (`Content-Type: image/jpeg|png|webp|bmp` or `application/octet-stream`)
//! or as a file field of `multipart/form-data` (what the web page sends);
//! anything else is 415. Reads need a read key (unless `--public-read`),
//! writes a write key; see [`crate::keys`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Multipart, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use visage_gallery::{FaceSample, IdentitySummary, Refusal, RefusedFace};
use visage_infer::PhotoFace;

use crate::engine::Analysed;
use crate::error::ApiError;
use crate::idempotency::{Claim, StoredAnswer};
use crate::keys::Scope;
use crate::AppState;

type Shared = Arc<AppState>;

/// The web page (self-contained: no external scripts, styles or fonts).
pub const PAGE_HTML: &str = include_str!("page.html");

/// Every route, as `(method, path template)`: the OpenAPI document must
/// describe exactly these (tested in [`crate::openapi`]).
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/metrics"),
    ("POST", "/v1/detect"),
    ("POST", "/v1/embed"),
    ("POST", "/v1/quality"),
    ("POST", "/v1/verify"),
    ("POST", "/v1/search"),
    ("POST", "/v1/enrol"),
    ("GET", "/v1/identities"),
    ("GET", "/v1/identities/{name}"),
    ("DELETE", "/v1/identities/{name}"),
    ("GET", "/v1/identities/{name}/thumbnail"),
];

/// The service's routes ([`ENDPOINTS`]) over `state`, behind the guard: the
/// in-flight bound and request timeout (503 with `Retry-After: 1`), the body
/// limit (413), `X-Content-Type-Options: nosniff` on every answer and
/// `Connection: close` on every 4xx/5xx; unknown routes get a JSON 404.
pub fn router(state: Shared) -> Router {
    let body_limit = state.options.max_body_bytes;
    Router::new()
        .route("/", get(page))
        .route("/openapi.json", get(openapi))
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/metrics", get(metrics))
        .route("/v1/detect", post(detect))
        .route("/v1/embed", post(embed))
        .route("/v1/quality", post(quality))
        .route("/v1/verify", post(verify))
        .route("/v1/search", post(search))
        .route("/v1/enrol", post(enrol))
        .route("/v1/identities", get(list))
        .route("/v1/identities/{name}", get(get_identity).delete(remove))
        .route("/v1/identities/{name}/thumbnail", get(thumbnail))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Around every request: the in-flight bound (503 beyond it), the
/// per-request timeout (503), security headers, and the request counter.
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().as_str().to_string();
    let exempt = matches!(route.as_str(), "/health" | "/health/live" | "/metrics");
    let permit = if exempt {
        None
    } else {
        match state.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let response = ApiError::unavailable("busy: too many requests in flight, retry shortly", 1).into_response();
                state.metrics.record_request(&route, &method, response.status().as_u16());
                return response;
            }
        }
    };
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let timeout = state.options.request_timeout;
    #[cfg(feature = "fault-injection")]
    let panic_requested = request.headers().contains_key(crate::engine::PANIC_HEADER);
    let handler = async move {
        #[cfg(feature = "fault-injection")]
        if panic_requested {
            panic!("fault injection: a request handler that panics");
        }
        next.run(request).await
    };
    let mut response = match tokio::time::timeout(timeout, CatchPanic(Box::pin(handler))).await {
        Ok(Ok(response)) => response,
        Ok(Err(())) => {
            state.metrics.handler_panics.fetch_add(1, Ordering::Relaxed);
            ApiError::server_fault("the request handler failed", &"it panicked (see the message above)").into_response()
        }
        Err(_) => ApiError::unavailable(format!("timed out after {} s", timeout.as_secs_f64()), 1).into_response(),
    };
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // A refused request may leave its body unread (a 401 is answered before
    // the upload arrives), and then the connection cannot carry another
    // request: say so, so clients do not reuse it and hit a closed socket.
    if response.status().is_client_error() || response.status().is_server_error() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    state.metrics.record_request(&route, &method, response.status().as_u16());
    response
}

/// A handler future whose panic becomes `Err(())` (a 500 for that request)
/// instead of unwinding through the connection: the gauges and the
/// connection stay consistent and the client gets an answer.
struct CatchPanic<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchPanic<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

/// Extractor for the read routes without a body: 401 without a valid key
/// (none needed with `--public-read`). Uploads check their key before the
/// body is read instead.
pub struct ReadAccess;
/// Extractor for the write routes without a body (delete): 401 without a
/// valid key, 403 with a read key.
pub struct WriteAccess;

impl FromRequestParts<Shared> for ReadAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        state.keys.authorize(&parts.headers, Scope::Read, state.options.public_read).map(|()| ReadAccess)
    }
}

impl FromRequestParts<Shared> for WriteAccess {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        state.keys.authorize(&parts.headers, Scope::Write, state.options.public_read).map(|()| WriteAccess)
    }
}

/// Runs gallery work (disk, network) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::server_fault("the gallery task failed", &e))?
}

/// An uploaded photo.
pub struct Photo {
    /// The form field it came in (`body` for a raw body).
    pub field: String,
    /// Its file name, when the client gave one (else the field).
    pub name: String,
    /// The file's bytes, not yet decoded.
    pub bytes: Vec<u8>,
}

/// What a request uploaded: photos, and the text fields of a form.
pub struct Upload {
    /// The raw body as one photo, or every form part with a file name, in order.
    pub photos: Vec<Photo>,
    /// Form parts without a file name, by field name (UTF-8 text; a
    /// repeated name keeps the last).
    pub fields: HashMap<String, String>,
}

const IMAGE_TYPES: [&str; 5] = ["image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream"];

fn unsupported(content_type: &str) -> ApiError {
    let what = if content_type.is_empty() { "no Content-Type".to_string() } else { format!("Content-Type `{content_type}`") };
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "{what}: send the photo as image/jpeg, image/png, image/webp, image/bmp or application/octet-stream, or as a file in multipart/form-data"
        ),
    )
}

/// Form parts read from one upload at most: verify sends two photos, the
/// enrolment form three fields; anything far beyond is not a client of
/// this API, and each part costs a copy.
const MAX_FORM_PARTS: usize = 16;

/// The Content-Type's essence (`multipart/form-data`, `image/jpeg`), lowercased.
fn content_essence(request: &Request) -> String {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    content_type.split(';').next().unwrap_or("").trim().to_string()
}

/// Reads the body (up to the size limit: 413 beyond it, from the
/// Content-Length before anything is read) into photos and form fields.
/// Public so that the fuzz harness (fuzz/harness/upload.rs) feeds hostile
/// bodies to this very parsing rather than to a copy of it.
pub async fn read_upload(request: Request) -> Result<Upload, ApiError> {
    let essence = content_essence(&request);
    let (parts, body) = request.into_parts();
    let bytes =
        axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    if essence == "multipart/form-data" {
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        let mut form = Multipart::from_request(request, &()).await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        let mut upload = Upload { photos: Vec::new(), fields: HashMap::new() };
        let mut count = 0;
        while let Some(field) = form.next_field().await.map_err(|e| ApiError::new(e.status(), e.body_text()))? {
            count += 1;
            if count > MAX_FORM_PARTS {
                return Err(ApiError::bad_request(format!(
                    "more than {MAX_FORM_PARTS} form parts: this API takes at most two photos and a few fields"
                )));
            }
            let field_name = field.name().unwrap_or("").to_string();
            let file_name = field.file_name().map(str::to_string);
            let field_type = field.content_type().map(str::to_ascii_lowercase);
            let bytes = field.bytes().await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
            match (file_name, field_type) {
                (Some(file_name), field_type) => {
                    if let Some(t) = field_type.filter(|t| !IMAGE_TYPES.contains(&t.as_str())) {
                        return Err(unsupported(&format!("{t}` (form field `{field_name}")));
                    }
                    upload.photos.push(Photo { field: field_name, name: file_name, bytes: bytes.to_vec() });
                }
                (None, _) => {
                    let text = String::from_utf8(bytes.to_vec())
                        .map_err(|_| ApiError::bad_request(format!("form field `{field_name}` is not UTF-8 text")))?;
                    upload.fields.insert(field_name, text);
                }
            }
        }
        return Ok(upload);
    }
    Ok(Upload { photos: vec![Photo { field: "body".into(), name: "upload".into(), bytes: bytes.to_vec() }], fields: HashMap::new() })
}

/// The upload of a request that needs `scope`. The key and the content
/// type are judged from the headers before any byte of the body is read:
/// a client without a key cannot make the service take in 20 MB before
/// its 401. The refusal carries `Connection: close` (see [`guard`]), so
/// the unread body dies with the connection.
async fn authorized_upload(state: &AppState, scope: Scope, request: Request) -> Result<Upload, ApiError> {
    if let Err(refusal) = state.keys.authorize(request.headers(), scope, state.options.public_read) {
        linger(request);
        return Err(refusal);
    }
    let essence = content_essence(&request);
    if essence != "multipart/form-data" && !IMAGE_TYPES.contains(&essence.as_str()) {
        linger(request);
        return Err(unsupported(&essence));
    }
    read_upload(request).await
}

/// How much of a refused upload is still read and thrown away, and for how long.
const LINGER_BYTES: usize = 1 << 20;
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and discards what is left of a refused request's body, up to
/// [`LINGER_BYTES`] or [`LINGER`], while the refusal is sent. Closing a
/// socket with unread data makes the kernel answer with a reset, and a
/// client still writing its (small) upload then reports a broken pipe
/// instead of the 401 it was sent; lingering briefly lets it finish and
/// read the answer, the way web servers do a "lingering close". A large
/// upload is cut at the bound: it never costs more than 1 MiB of reading
/// and no memory (each chunk is dropped as it comes).
fn linger(request: Request) {
    use axum::body::HttpBody;
    let mut body = request.into_body();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut read = 0;
        while read < LINGER_BYTES {
            let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
            match tokio::time::timeout_at(deadline, frame).await {
                Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |data| data.len()),
                _ => break,
            }
        }
    });
}

impl Upload {
    /// The one photo an endpoint works on.
    fn single(mut self) -> Result<(Photo, HashMap<String, String>), ApiError> {
        match self.photos.len() {
            0 => Err(ApiError::bad_request("no photo: send it as the request body or as a file field of the form")),
            1 => Ok((self.photos.remove(0), self.fields)),
            n => Err(ApiError::bad_request(format!("{n} photos sent, this endpoint takes one"))),
        }
    }
}

/// Decodes and runs the models on one photo through the worker pool; a
/// photo with more faces than a request may have is refused (422).
async fn analyse(state: &AppState, photo: Photo, thumbnail: bool) -> Result<Analysed, ApiError> {
    if photo.bytes.is_empty() {
        return Err(ApiError::bad_request(format!("{}: empty upload", photo.name)));
    }
    let name = photo.name.clone();
    let analysed = state.pool.analyse(photo.bytes, &photo.name, thumbnail).await?.map_err(ApiError::from_infer)?;
    let cap = state.options.max_faces_per_photo.min(state.options.max_faces_per_request);
    if analysed.faces.len() > cap {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{name}: more than {cap} faces in the photo; this service takes at most {cap} faces per photo (crop the photo, or raise --max-faces-per-photo)"),
        ));
    }
    Ok(analysed)
}

/// The faces of all a request's photos together against the per-request cap.
fn check_request_faces(state: &AppState, photos: &[&Analysed]) -> Result<(), ApiError> {
    let total: usize = photos.iter().map(|a| a.faces.len()).sum();
    let cap = state.options.max_faces_per_request;
    if total > cap {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{total} faces in this request's photos; this service takes at most {cap} per request (--max-faces-per-request)"),
        ));
    }
    Ok(())
}

async fn page() -> Response {
    let mut response = Html(PAGE_HTML).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'",
        ),
    );
    response
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no route {method} {}: see /openapi.json", uri.path()))
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

/// Readiness: 200 while serving (`ok`, or `degraded` while a panicked
/// model worker is being replaced); 503 once shutdown began (so a load
/// balancer stops sending), when the gallery cannot be read, or when no
/// model worker is left. Unauthenticated, so it names no server path or
/// database URL: only the kind of gallery.
async fn health(State(state): State<Shared>) -> Response {
    let store = state.store.clone();
    let identities = blocking(move || store.len().map_err(ApiError::from)).await;
    let draining = !state.ready.load(Ordering::SeqCst);
    let workers = state.metrics.workers_alive.load(Ordering::SeqCst);
    let workers_configured = state.metrics.workers_configured.load(Ordering::SeqCst);
    let status = if draining {
        "draining"
    } else if identities.is_err() {
        "gallery unavailable"
    } else if workers == 0 {
        "no model workers"
    } else if workers < workers_configured {
        "degraded"
    } else {
        "ok"
    };
    let body = json!({
        "status": status,
        "identities": identities.as_ref().ok(),
        "gallery": match state.options.gallery {
            visage_gallery::GalleryLocation::Directory(_) => "directory",
            visage_gallery::GalleryLocation::Postgres(_) => "postgresql",
        },
        "recognizer": state.recognizer,
        "workers": workers,
        "workers_configured": workers_configured,
        "worker_panics": state.metrics.worker_panics.load(Ordering::Relaxed),
        "queue_depth": state.metrics.queue_depth.load(Ordering::Relaxed),
        "queue_capacity": state.metrics.queue_capacity.load(Ordering::Relaxed),
        "in_flight": state.metrics.in_flight.load(Ordering::Relaxed),
    });
    let code = if matches!(status, "ok" | "degraded") { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

#[derive(Serialize)]
struct DetectedFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: Option<f32>,
    landmarks: [[f32; 2]; 5],
    quality: f32,
}

async fn detect(State(state): State<Shared>, request: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let (photo, _) = authorized_upload(&state, Scope::Read, request).await?.single()?;
    let analysed = analyse(&state, photo, false).await?;
    let faces: Vec<DetectedFace> =
        analysed.faces.iter().map(|f| DetectedFace { bbox: f.bbox, score: f.det_score, landmarks: f.landmarks, quality: f.embedding.norm }).collect();
    Ok(Json(json!({ "width": analysed.size.0, "height": analysed.size.1, "faces": faces })))
}

async fn embed(State(state): State<Shared>, request: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let (photo, _) = authorized_upload(&state, Scope::Read, request).await?.single()?;
    let analysed = analyse(&state, photo, false).await?;
    let faces: Vec<serde_json::Value> =
        analysed.faces.iter().map(|f| json!({ "box": f.bbox, "quality": f.embedding.norm, "embedding": f.embedding.embedding })).collect();
    Ok(Json(json!({ "recognizer": state.recognizer, "width": analysed.size.0, "height": analysed.size.1, "faces": faces })))
}

async fn quality(State(state): State<Shared>, request: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let (photo, _) = authorized_upload(&state, Scope::Read, request).await?.single()?;
    let analysed = analyse(&state, photo, false).await?;
    let mut faces: Vec<(usize, &PhotoFace)> = analysed.faces.iter().enumerate().collect();
    faces.sort_by(|a, b| b.1.embedding.norm.total_cmp(&a.1.embedding.norm));
    let faces: Vec<serde_json::Value> = faces.iter().map(|(i, f)| json!({ "face": i, "box": f.bbox, "quality": f.embedding.norm })).collect();
    Ok(Json(json!({ "faces": faces })))
}

async fn verify(State(state): State<Shared>, request: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let upload = authorized_upload(&state, Scope::Read, request).await?;
    if upload.photos.len() != 2 {
        return Err(ApiError::bad_request(format!(
            "verify takes two photos as multipart/form-data file fields `a` and `b`, got {}",
            upload.photos.len()
        )));
    }
    let mut photos = upload.photos;
    photos.sort_by_key(|p| p.field != "a");
    let (b, a) = (photos.pop().expect("two"), photos.pop().expect("two"));
    let (a, b) = tokio::try_join!(analyse(&state, a, false), analyse(&state, b, false))?;
    check_request_faces(&state, &[&a, &b])?;
    let largest = |analysed: &Analysed, which: &str| -> Result<PhotoFace, ApiError> {
        analysed
            .largest()
            .map(|i| analysed.faces[i].clone())
            .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("photo `{which}`: no face found")))
    };
    let (face_a, face_b) = (largest(&a, "a")?, largest(&b, "b")?);
    let cosine = face_a.embedding.cosine(&face_b.embedding);
    Ok(Json(json!({
        "a": { "box": face_a.bbox, "quality": face_a.embedding.norm },
        "b": { "box": face_b.bbox, "quality": face_b.embedding.norm },
        "cosine": cosine,
        "threshold": state.same_person_cosine,
        "same_person": state.same_person_cosine.map(|t| cosine >= t),
    })))
}

#[derive(Deserialize)]
struct SearchQuery {
    k: Option<usize>,
}

/// The CLI's `gallery search --json` shape (one definition, in visage-gallery).
pub use visage_gallery::{FaceMatches, SearchResponse};

async fn search(State(state): State<Shared>, Query(query): Query<SearchQuery>, request: Request) -> Result<Json<SearchResponse>, ApiError> {
    let (photo, _) = authorized_upload(&state, Scope::Read, request).await?.single()?;
    let k = query.k.unwrap_or(5);
    if k == 0 || k > state.options.max_k {
        return Err(ApiError::bad_request(format!("k = {k}: must be 1 to {}", state.options.max_k)));
    }
    let analysed = analyse(&state, photo, false).await?;
    let store = state.store.clone();
    let queries: Vec<Vec<f32>> = analysed.faces.iter().map(|f| f.embedding.embedding.clone()).collect();
    let (found, config) = blocking(move || {
        let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        Ok((store.search(&refs, k)?, store.config()?))
    })
    .await?;
    let faces = analysed
        .faces
        .iter()
        .zip(found)
        .map(|(face, matches)| FaceMatches::new(face.bbox, face.embedding.norm, matches, &config.threshold))
        .collect();
    Ok(Json(SearchResponse { faces }))
}

#[derive(Deserialize)]
struct EnrolQuery {
    name: Option<String>,
}

/// The `Idempotency-Key` header, when sent: 1 to 128 visible ASCII characters.
fn idempotency_key(header: Option<&HeaderValue>) -> Result<Option<String>, ApiError> {
    let Some(value) = header else { return Ok(None) };
    let key = value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_string())).ok_or_else(|| ApiError::bad_request("header `Idempotency-Key`: must be 1 to 128 visible ASCII characters"))
}

/// What a keyed enrolment is compared by: a retry must send the same name,
/// metadata and photo bytes.
fn enrolment_fingerprint(name: &str, metadata: Option<&serde_json::Value>, photo: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let metadata = metadata.map(|m| m.to_string()).unwrap_or_default();
    let mut hasher = Sha256::new();
    for part in [name.as_bytes(), metadata.as_bytes(), photo] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn replayed(answer: StoredAnswer) -> Response {
    let mut response = (answer.status, Json(answer.body)).into_response();
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Enrols the largest face of one photo: `?name=` with a raw body, or a
/// form with fields `name`, `photo` (a file) and optionally `metadata`
/// (JSON). With an `Idempotency-Key` header a retry of the same request is
/// answered from the first attempt: from the service's table while it runs
/// (see [`crate::idempotency`]), and from the store after a restart (the
/// key, scoped to the API key, is recorded in the enrolment's transaction
/// by `GalleryStore::enrol_idempotent`).
async fn enrol(State(state): State<Shared>, Query(query): Query<EnrolQuery>, request: Request) -> Result<Response, ApiError> {
    let key_header = request.headers().get("idempotency-key").cloned();
    let requester = crate::keys::requester_id(request.headers());
    let (photo, fields) = authorized_upload(&state, Scope::Write, request).await?.single()?;
    // Judged after the body is read, like the other fields, so the client reads the 400.
    let idempotency_key = idempotency_key(key_header.as_ref())?;
    let name = fields.get("name").cloned().or(query.name).ok_or_else(|| ApiError::bad_request("no name: give `?name=` or a form field `name`"))?;
    visage_gallery::model::check_name(&name)?;
    let metadata = match fields.get("metadata").filter(|m| !m.trim().is_empty()) {
        Some(text) => Some(
            serde_json::from_str::<serde_json::Value>(text).map_err(|e| ApiError::bad_request(format!("form field `metadata`: not JSON: {e}")))?,
        ),
        None => None,
    };
    // The key as the store records it: scoped to the API key, fixed length.
    let store_key = idempotency_key.as_ref().map(|key| {
        use sha2::{Digest, Sha256};
        Sha256::digest(format!("{requester}\u{0}{key}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    });
    let ticket = match &idempotency_key {
        None => None,
        Some(key) => {
            let fingerprint = enrolment_fingerprint(&name, metadata.as_ref(), &photo.bytes);
            loop {
                match state.idempotency.claim(&requester, key, fingerprint) {
                    Claim::Run(ticket) => break Some(ticket),
                    Claim::Replay(answer) => return Ok(replayed(answer)),
                    Claim::Wait(mut running) => {
                        // Err: the first attempt wrote nothing and was forgotten; claim again.
                        if let Ok(answer) = running.wait_for(Option::is_some).await {
                            return Ok(replayed(answer.clone().expect("waited for an answer")));
                        }
                    }
                    Claim::Mismatch => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("Idempotency-Key `{key}` was already used for another enrolment (a different name, metadata or photo): use a new key for a new request"),
                        ))
                    }
                }
            }
        }
    };
    let source = format!("upload:{}", photo.name);
    let analysed = analyse(&state, photo, true).await?;
    let Some(largest) = analysed.largest() else {
        let refused = [RefusedFace { source, refusal: Refusal::NoFace }];
        return Ok(refusal_response("no face found in the photo", &refused));
    };
    let face = &analysed.faces[largest];
    let sample = FaceSample { embedding: face.embedding.embedding.clone(), magnitude: face.embedding.norm, bbox: Some(face.bbox), source };
    let (bbox, quality) = (face.bbox, face.embedding.norm);
    let thumbnail = analysed.thumbnail_jpeg;
    let worker_state = state.clone();
    // The store write, its thumbnail and the recorded answer happen on a
    // blocking thread that runs to the end even when the request times out,
    // so a retry with the same key finds the answer of a write that happened.
    let answer = blocking(move || {
        let _thumbnail_lock = worker_state.thumbnails.lock(&name);
        let outcome = worker_state.store.enrol_idempotent(store_key.as_deref(), &name, metadata, std::slice::from_ref(&sample))?;
        // Keep the photo of the identity's best face: this one when it is the best so far.
        if let (Some(identity), Some(jpeg)) = (&outcome.identity, &thumbnail) {
            if outcome.accepted > 0 && (outcome.created || sample.magnitude >= identity.best_quality || !worker_state.thumbnails.exists(&name)) {
                if let Err(e) = worker_state.thumbnails.put(&name, jpeg) {
                    eprintln!("visage serve: thumbnail of {name}: {e}");
                }
            }
        }
        let answer = if outcome.accepted == 0 {
            refusal_answer("the face was refused by the gallery's quality policy", &outcome.refused)
        } else {
            let body = json!({
                "name": name,
                "created": outcome.created,
                "templates": outcome.identity.as_ref().map_or(0, |i| i.templates),
                "box": bbox,
                "quality": quality,
                "identity": outcome.identity,
            });
            StoredAnswer { status: if outcome.created { StatusCode::CREATED } else { StatusCode::OK }, body }
        };
        if let Some(ticket) = ticket {
            ticket.finish(answer.clone());
        }
        Ok(answer)
    })
    .await?;
    Ok((answer.status, Json(answer.body)).into_response())
}

fn refusal_answer(message: &str, refused: &[RefusedFace]) -> StoredAnswer {
    let reasons: Vec<String> = refused.iter().map(|r| r.refusal.to_string()).collect();
    StoredAnswer {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        body: json!({ "error": format!("{message}: {}", reasons.join("; ")), "refused": refused }),
    }
}

fn refusal_response(message: &str, refused: &[RefusedFace]) -> Response {
    let answer = refusal_answer(message, refused);
    (answer.status, Json(answer.body)).into_response()
}

#[derive(Serialize)]
struct IdentityJson {
    #[serde(flatten)]
    summary: IdentitySummary,
    /// Where its enrolment photo is, when the service has one.
    thumbnail: Option<String>,
}

fn identity_json(state: &AppState, summary: IdentitySummary) -> IdentityJson {
    let thumbnail = state.thumbnails.exists(&summary.name).then(|| format!("/v1/identities/{}/thumbnail", percent_encode(&summary.name)));
    IdentityJson { summary, thumbnail }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn percent_encode(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn list(State(state): State<Shared>, _: ReadAccess) -> Result<Json<serde_json::Value>, ApiError> {
    let worker_state = state.clone();
    let (identities, config) = blocking(move || Ok((worker_state.store.list()?, worker_state.store.config()?))).await?;
    let identities: Vec<IdentityJson> = identities.into_iter().map(|s| identity_json(&state, s)).collect();
    Ok(Json(json!({
        "recognizer": config.recognizer,
        "threshold": config.threshold.cosine,
        "identities": identities,
    })))
}

async fn get_identity(State(state): State<Shared>, _: ReadAccess, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let worker_state = state.clone();
    let summary = blocking(move || Ok(worker_state.store.get(&name)?.summary())).await?;
    Ok(Json(serde_json::to_value(identity_json(&state, summary)).expect("serialisable")))
}

async fn remove(State(state): State<Shared>, _: WriteAccess, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let worker_state = state.clone();
    let removed = blocking(move || {
        let _thumbnail_lock = worker_state.thumbnails.lock(&name);
        let removed = worker_state.store.remove(&name)?;
        worker_state.thumbnails.remove(&name);
        Ok(removed)
    })
    .await?;
    Ok(Json(json!({ "removed": removed })))
}

/// The identity's enrolment photo. One whose identity is no longer in the
/// store (removed by another process on a shared database) is deleted
/// here instead of being served.
async fn thumbnail(State(state): State<Shared>, _: ReadAccess, Path(name): Path<String>) -> Result<Response, ApiError> {
    let worker_state = state.clone();
    let lookup = name.clone();
    let jpeg = blocking(move || {
        let _thumbnail_lock = worker_state.thumbnails.lock(&lookup);
        let Some(jpeg) = worker_state.thumbnails.get(&lookup) else { return Ok(None) };
        match worker_state.store.get(&lookup) {
            Ok(_) => Ok(Some(jpeg)),
            Err(visage_gallery::GalleryError::UnknownIdentity { .. }) => {
                worker_state.thumbnails.remove(&lookup);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let jpeg = jpeg.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no enrolment photo of `{name}`")))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-cache")], jpeg).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_for_urls() {
        assert_eq!(percent_encode("Barack Obama"), "Barack%20Obama");
        assert_eq!(percent_encode("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(percent_encode("Zoë"), "Zo%C3%AB");
        assert_eq!(percent_encode("x-y_z.~"), "x-y_z.~");
    }
}
