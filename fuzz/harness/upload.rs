//! The service's upload parsing: a `multipart/form-data` body read the way
//! visage-serve's `read_upload` reads it (axum's `Multipart` over the
//! received bytes, every field's name, file name, content type and bytes).
//! The input is split at its first line: that line is the boundary, the
//! rest the body, so mutations reach both.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};

pub fn serve_upload(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(boundary) = std::str::from_utf8(&data[..split]) else { return };
    let body = data.get(split + 1..).unwrap_or(&[]).to_vec();
    let request = match Request::builder()
        .method("POST")
        .header("content-type", format!("multipart/form-data; boundary={}", boundary.trim_end_matches('\r')))
        .body(Body::from(body))
    {
        Ok(request) => request,
        Err(_) => return,
    };
    let runtime = runtime();
    runtime.block_on(async move {
        let Ok(mut form) = Multipart::from_request(request, &()).await else { return };
        while let Ok(Some(field)) = form.next_field().await {
            let _ = (field.name().map(str::to_string), field.file_name().map(str::to_string), field.content_type().map(str::to_ascii_lowercase));
            if field.bytes().await.is_err() {
                return;
            }
        }
    });
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime"))
}
