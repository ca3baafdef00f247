//! A real server on loopback for the tests: bundled models, a fresh gallery
//! in a temporary directory, one write key and one read key; a blocking
//! HTTP client (ureq) that hands back every status instead of failing on 4xx.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use visage_gallery::GalleryLocation;
use visage_serve::{add_key, AppState, ModelSpec, Scope, ServeOptions, Service};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn models() -> ModelSpec {
    ModelSpec::from_dir(&repo().join("models"), "face_detection_yunet_2023mar", "arcface_mobileface_128d_paddle").unwrap()
}

pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("examples/photos").join(name)).unwrap()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-serve-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Options for a gallery under `dir` (2 workers of 1 thread, as on CI's 2 cores).
pub fn options(dir: &Path) -> ServeOptions {
    let mut options = ServeOptions::new(GalleryLocation::Directory(dir.join("gallery")));
    options.pool.workers = 2;
    options.pool.intra_threads = Some(1);
    options
}

#[derive(Clone)]
pub struct Keys {
    pub write: String,
    pub read: String,
}

pub fn make_keys(options: &ServeOptions) -> Keys {
    Keys {
        write: add_key(&options.keys_file, Scope::Write, "test writer").unwrap().0,
        read: add_key(&options.keys_file, Scope::Read, "test reader").unwrap().0,
    }
}

pub struct TestServer {
    pub url: String,
    pub keys: Keys,
    pub state: Arc<AppState>,
    pub dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(name: &str, configure: impl FnOnce(&mut ServeOptions)) -> Self {
        Self::start_in(temp_dir(name), None, configure)
    }

    /// A server on the gallery under `dir` as it is (a restart), with `keys`
    /// when they exist already (else new ones).
    pub fn start_in(dir: PathBuf, keys: Option<Keys>, configure: impl FnOnce(&mut ServeOptions)) -> Self {
        let mut options = options(&dir);
        configure(&mut options);
        let keys = keys.unwrap_or_else(|| make_keys(&options));
        let service = Service::open(options, &models()).unwrap();
        let state = service.state().clone();
        let (address_sender, address) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                address_sender.send(listener.local_addr().unwrap()).unwrap();
                service
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let address = address.recv_timeout(Duration::from_secs(30)).unwrap();
        Self { url: format!("http://{address}"), keys, state, dir, stop: Some(stop), thread: Some(thread) }
    }

    /// Begins a graceful shutdown and waits until the server has finished.
    pub fn stop(mut self) {
        self.begin_stop();
        self.thread.take().unwrap().join().unwrap();
    }

    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn join(mut self) {
        self.thread.take().unwrap().join().unwrap();
    }
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {}: not JSON ({e}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build()
}

/// Sends `request` (with `body` when given); a transport failure is `Err`.
pub fn send(request: ureq::Request, body: Option<&[u8]>) -> Result<Reply, String> {
    let result = match body {
        Some(bytes) => request.send_bytes(bytes),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let headers = response.headers_names().into_iter().filter_map(|n| response.header(&n).map(|v| (n.to_ascii_lowercase(), v.to_string()))).collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).map_err(|e| e.to_string())?;
    Ok(Reply { status, headers, body })
}

/// A `multipart/form-data` body: `(field, file name, content type, bytes)`;
/// no file name makes a text field. Returns the Content-Type and the body.
pub fn multipart(parts: &[(&str, Option<&str>, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "visage-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (field, file_name, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A JPEG of a real face, raw body, with a key.
pub fn post_photo(agent: &ureq::Agent, url: &str, key: &str, bytes: &[u8]) -> Result<Reply, String> {
    send(agent.post(url).set("Authorization", &format!("Bearer {key}")).set("Content-Type", "image/jpeg"), Some(bytes))
}

pub fn get(agent: &ureq::Agent, url: &str, key: Option<&str>) -> Reply {
    let mut request = agent.get(url);
    if let Some(key) = key {
        request = request.set("Authorization", &format!("Bearer {key}"));
    }
    send(request, None).unwrap()
}

/// Percent-encodes a name for a URL path segment or query.
pub fn encode(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
