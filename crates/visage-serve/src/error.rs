//! Errors: [`ApiError`] is what a request gets back (a status, a JSON
//! `{"error": "…"}` body naming what was wrong, and `Retry-After` on 503);
//! [`ServeError`] is why the service could not start.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use visage_gallery::GalleryError;
use visage_infer::InferError;

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for `Retry-After` (503 only).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after_s: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The service is saturated or draining: come back in `retry_after_s`.
    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into(), retry_after_s: Some(retry_after_s) }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An upload the decoder or the models refused. Caller mistakes are 4xx
    /// (unreadable → 400, too many pixels → 413); model failures are 500.
    pub fn from_infer(error: InferError) -> Self {
        let status = match &error {
            InferError::NotAnImage { .. } | InferError::Decode { .. } | InferError::Truncated { .. } | InferError::NotAligned { .. } => {
                StatusCode::BAD_REQUEST
            }
            InferError::ImageTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
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
            _ => StatusCode::INTERNAL_SERVER_ERROR,
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
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Gallery(#[from] GalleryError),
    #[error("{0}")]
    Infer(#[from] InferError),
    #[error("{path}: {message}")]
    Keys { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
}

impl ServeError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// Whether the operator's input was at fault (exit code 2 at the CLI).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ServeError::Gallery(e) => e.is_bad_input(),
            ServeError::Keys { .. } | ServeError::Config(_) => true,
            ServeError::Infer(InferError::Config { .. } | InferError::DetectorConfig { .. }) => true,
            _ => false,
        }
    }
}
