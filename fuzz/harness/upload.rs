//! The service's upload parsing (`visage_serve::api::read_upload`) on a
//! hostile `multipart/form-data` body. The input is split at its first
//! line: that line is the boundary, the rest the body, so mutations reach
//! both.

use axum::body::Body;
use axum::extract::Request;

pub fn serve_upload(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(boundary) = std::str::from_utf8(&data[..split]) else { return };
    let body = data.get(split + 1..).unwrap_or(&[]).to_vec();
    let Ok(request) = Request::builder()
        .method("POST")
        .header("content-type", format!("multipart/form-data; boundary={}", boundary.trim_end_matches('\r')))
        .body(Body::from(body))
    else {
        return;
    };
    let _ = runtime().block_on(visage_serve::api::read_upload(request));
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime"))
}
