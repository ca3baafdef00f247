//! Helpers the binary tests share: running `visage`, the bundled photos, a
//! scratch folder, and a minimal HTTP/1.1 client for `visage serve`.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

pub fn photo(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos").join(name).display().to_string()
}

/// An empty path under a per-process scratch folder named after the test binary.
pub fn scratch(test: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-{test}-{}", std::process::id())).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

/// Standard output of a run that must succeed (else the whole output in the panic).
pub fn ok(out: Output) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

pub fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).expect("JSON on stdout")
}

/// `visage serve ARGS… --listen 127.0.0.1:PORT` on a free loopback port,
/// once it accepts connections: the child and its address.
pub fn start_serve(args: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("serve")
        .args(args)
        .args(["--listen", &address])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "visage serve exited early");
        assert!(Instant::now() < deadline, "visage serve did not listen within 120 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    (child, address)
}

/// SIGTERM, then the exit must be clean (status 0, no panic on standard error).
pub fn stop_serve(child: Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("panicked"), "exit {:?}: {stderr}", output.status);
}

/// A minimal HTTP/1.1 exchange on loopback (no client crate needed): status
/// and body (JSON when it parses, else the text as a JSON string).
pub fn http(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}
