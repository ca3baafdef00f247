//! Errors: [`ApiError`] is what a request gets back (a status, a JSON
//! `{"error": "…"}` body naming what was wrong, and `Retry-After` on 503);
//! [`ServeError`] is why the service could not start.
//!
//! A client is told what *it* got wrong in full. What went wrong on the
//! server (an I/O error, a database or model failure) is written to the
//! log with its details and answered with a 500 that says only which part
//! failed and a reference to find the log line: those details name files
//! and directories of the server (and, for a database, its location),
//! which are no business of an API client.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use visage_gallery::GalleryError;
use visage_image::ImageError;
use visage_infer::InferError;

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// The body's `error` text, shown to the client as is.
    pub message: String,
    /// Seconds for `Retry-After` (503 only).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An answer with `status` and `message`, without `Retry-After`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after_s: None }
    }

    /// 400: the request itself is malformed (a parameter, a form field, the body).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The service is saturated or draining: come back in `retry_after_s`.
    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into(), retry_after_s: Some(retry_after_s) }
    }

    /// 500 with `message` as is. For a failure whose details name server
    /// files or hosts, use [`ApiError::server_fault`], which logs them instead.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A server-side failure: `detail` goes to the log under a fresh
    /// reference, the client gets `what` and the reference only.
    pub fn server_fault(what: &str, detail: &dyn std::fmt::Display) -> Self {
        static NEXT_REFERENCE: AtomicU64 = AtomicU64::new(1);
        let reference = NEXT_REFERENCE.fetch_add(1, Ordering::Relaxed);
        eprintln!("visage serve: error {reference}: {what}: {detail}");
        Self::internal(format!("{what} (error {reference} in the server log)"))
    }

    /// An upload the decoder or the models refused. Caller mistakes are 4xx
    /// (unreadable → 400, too many pixels → 413); model failures are 500.
    pub fn from_infer(error: InferError) -> Self {
        let status = match &error {
            InferError::Image(ImageError::NotAnImage { .. } | ImageError::Decode { .. } | ImageError::Truncated { .. })
            | InferError::NotAligned { .. } => StatusCode::BAD_REQUEST,
            InferError::Image(ImageError::ImageTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => return Self::server_fault("the face models failed on this photo", &error),
        };
        Self::new(status, error.to_string())
    }
}

impl From<GalleryError> for ApiError {
    fn from(error: GalleryError) -> Self {
        let status = match &error {
            GalleryError::UnknownIdentity { .. } => StatusCode::NOT_FOUND,
            GalleryError::IdentityExists { .. } => StatusCode::CONFLICT,
            GalleryError::BadName { .. } | GalleryError::Invalid { .. } | GalleryError::DimensionMismatch { .. } => StatusCode::BAD_REQUEST,
            _ => return Self::server_fault("the gallery failed", &error),
        };
        Self::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Why the service did not start (or a keys-file operation failed).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file or socket of the service could not be read, written or bound.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or listen address.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The gallery could not be opened or created: unreadable, built with
    /// another recogniser, or absent with a recogniser that declares no
    /// embedding length or `same_person_cosine` to create it with.
    #[error("{0}")]
    Gallery(#[from] GalleryError),
    /// A model config or ONNX file could not be loaded.
    #[error("{0}")]
    Infer(#[from] InferError),
    /// The keys file is malformed, or a key id to remove is not in it.
    #[error("{path}: {message}")]
    Keys {
        /// The keys file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A model worker thread could not start or stopped while loading its
    /// models, or the pool's shutdown task failed.
    #[error("{0}")]
    Config(String),
}

impl ServeError {
    /// [`ServeError::Io`] naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// Whether the operator's input was at fault (exit code 2 at the CLI).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ServeError::Gallery(e) => e.is_bad_input(),
            ServeError::Keys { .. } | ServeError::Config(_) => true,
            ServeError::Infer(InferError::Config { .. } | InferError::DetectorConfig { .. } | InferError::ModelNotFound { .. }) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_faults_do_not_show_server_paths() {
        let io = GalleryError::io(std::path::Path::new("/srv/galleries/people/wal.log"), std::io::Error::other("disk on fire"));
        let reply = ApiError::from(io);
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.message.starts_with("the gallery failed (error ") && !reply.message.contains("/srv"), "{}", reply.message);
        let database = GalleryError::Database { location: "postgres://ann:***@db/g".into(), message: "connection refused".into() };
        assert!(!ApiError::from(database).message.contains("db/g"));
        let model = InferError::Model { path: "/opt/models/yunet.onnx".into(), message: "shape mismatch".into() };
        let reply = ApiError::from_infer(model);
        assert!(reply.status == StatusCode::INTERNAL_SERVER_ERROR && !reply.message.contains("/opt"), "{}", reply.message);
        // What the client got wrong is said in full.
        let unknown = ApiError::from(GalleryError::UnknownIdentity { name: "Zoë".into() });
        assert_eq!((unknown.status, unknown.message.as_str()), (StatusCode::NOT_FOUND, "no identity named `Zoë` in the gallery"));
    }
}
