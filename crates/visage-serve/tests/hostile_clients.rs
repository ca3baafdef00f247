//! The service against clients that do not play by the rules, on loopback
//! with raw sockets where an HTTP client library would be too polite:
//! half-sent headers and idle connections are closed after the header
//! timeout, connections beyond the bound wait instead of piling up, a
//! keyless upload is refused from its headers before its body is sent,
//! made-up methods add no metric rows, a model worker that panics is
//! replaced while `/health` says `degraded`, photos with too many faces
//! are refused, `Idempotency-Key` makes a retried enrolment safe, a
//! thumbnail dies with its identity, and nothing the service says shows
//! a server path or a key.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

fn address(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes the connection (or `limit` passes);
/// returns what was read and how long the close took. A reset counts as closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return (received, Some(started.elapsed())),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (received, Some(started.elapsed())),
        }
    }
    (received, None)
}

#[test]
fn half_sent_headers_and_idle_connections_are_closed_and_connections_are_bounded() {
    let server = TestServer::start("slowloris", |options| {
        options.header_read_timeout = Duration::from_secs(1);
        options.max_connections = 8;
    });
    let address = address(&server);

    // Half a request head, then silence: closed after the header timeout (1 s), not kept.
    let mut half = TcpStream::connect(&address).unwrap();
    half.write_all(b"POST /v1/search HTTP/1.1\r\nHost: visage\r\nContent-Ty").unwrap();
    let (_, closed_after) = read_until_closed(&mut half, Duration::from_secs(10));
    let closed_after = closed_after.expect("a half-sent header must be disconnected");
    assert!(closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(5), "closed after {closed_after:?}");

    // A keep-alive connection left idle after a complete request: answered, then closed.
    let mut idle = TcpStream::connect(&address).unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: visage\r\n\r\n").unwrap();
    let (answer, closed_after) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    assert!(closed_after.is_some_and(|d| d < Duration::from_secs(5)), "idle keep-alive connection kept: {closed_after:?}");

    // 40 connections that send half a header: never more than 8 open in the
    // service at once (the rest wait in the backlog), all closed in the end.
    let started = Instant::now();
    let mut sockets: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut socket = TcpStream::connect(&address).unwrap();
            socket.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
            socket
        })
        .collect();
    let mut most_open = 0;
    while started.elapsed() < Duration::from_secs(3) {
        most_open = most_open.max(server.state.metrics.connections_open.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(most_open == 8, "the bound is 8 and 40 clients wait: {most_open} open at most");
    // 40 connections through 8 slots with a 1 s timeout: about 5 s.
    for (i, socket) in sockets.iter_mut().enumerate() {
        let (_, closed) = read_until_closed(socket, Duration::from_secs(30));
        assert!(closed.is_some(), "connection {i} never closed");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(server.state.metrics.header_timeouts.load(Ordering::SeqCst) >= 41);
    // And the service still answers.
    assert_eq!(get(&agent(), &format!("{}/health", server.url), None).status, 200);
    let metrics = get(&agent(), &format!("{}/metrics", server.url), None).text();
    assert!(metrics.lines().any(|l| l.starts_with("visage_http_header_timeouts_total ")), "{metrics}");
    server.stop();
}

#[test]
fn a_keyless_upload_is_refused_before_its_body_is_sent() {
    let server = TestServer::start("keyless", |_| {});
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    // Declares 20 MB, sends 1 KB of it, and waits for an answer.
    let head = "POST /v1/enrol?name=Mallory HTTP/1.1\r\nHost: visage\r\nContent-Type: image/jpeg\r\nContent-Length: 20971520\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[0xFF; 1024]).unwrap();
    let started = Instant::now();
    let (answer, closed_after) = read_until_closed(&mut stream, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("missing API key"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(closed_after.is_some(), "the connection must be closed after the 401, not wait for 20 MB");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The same with a key that does not exist, and the key is not echoed.
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    let head =
        "POST /v1/search HTTP/1.1\r\nHost: visage\r\nX-API-Key: vsk_secret-guess-123\r\nContent-Type: image/jpeg\r\nContent-Length: 20971520\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let (answer, closed_after) = read_until_closed(&mut stream, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 401") && closed_after.is_some(), "{text}");
    assert!(!text.contains("secret-guess"), "a key must not be echoed: {text}");
    // A wrong content type is refused from the headers too.
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    let head = format!(
        "POST /v1/search HTTP/1.1\r\nHost: visage\r\nX-API-Key: {}\r\nContent-Type: text/html\r\nContent-Length: 20971520\r\n\r\n",
        server.keys.read
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (answer, closed_after) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 415") && closed_after.is_some(), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(server.state.store.len().unwrap(), 0);
    server.stop();
}

#[test]
fn made_up_methods_share_one_metric_row() {
    let server = TestServer::start("methods", |_| {});
    let address = address(&server);
    let request = |method: &str, path: &str| {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.write_all(format!("{method} {path} HTTP/1.1\r\nHost: visage\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10));
        String::from_utf8_lossy(&answer).into_owned()
    };
    // One made-up method on a route and one elsewhere create the rows.
    assert!(request("BREW0", "/v1/search").starts_with("HTTP/1.1 405"));
    assert!(request("BREW0", "/no/such/path").starts_with("HTTP/1.1 404"));
    let rows = |text: &str| text.lines().filter(|l| l.starts_with("visage_http_requests_total")).count();
    let before = server.state.metrics.render();
    for i in 1..300 {
        let path = if i % 2 == 0 { "/v1/search".to_string() } else { format!("/made/up/{i}") };
        request(&format!("X-METHOD-{i}"), &path);
    }
    let after = server.state.metrics.render();
    assert_eq!(rows(&after), rows(&before), "300 made-up methods added label rows:\n{after}");
    // Only the counts grew (by at most 3 digits per row).
    assert!(after.len() <= before.len() + 6, "{} → {} bytes", before.len(), after.len());
    assert!(after.contains("visage_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 151"), "{after}");
    assert!(after.contains("visage_http_requests_total{route=\"/v1/search\",method=\"other\",status=\"405\"} 150"), "{after}");
    server.stop();
}

#[test]
fn a_panicking_worker_is_caught_counted_and_replaced() {
    let server = TestServer::start("panic", |options| options.pool.workers = 1);
    let agent = agent();
    let (url, keys) = (&server.url, &server.keys);
    let mut poison = visage_serve::engine::PANIC_TRIGGER.to_vec();
    poison.extend_from_slice(b" and some bytes after");
    let reply = post_photo(&agent, &format!("{url}/v1/detect"), &keys.read, &poison).unwrap();
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("replaced"), "{}", reply.text());
    // While the only worker reloads, /health says so (it may already be back).
    let health = get(&agent, &format!("{url}/health"), None);
    let status = health.json()["status"].as_str().unwrap().to_string();
    assert!(matches!(status.as_str(), "no model workers" | "ok"), "{status}");
    // The replacement takes photos again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = get(&agent, &format!("{url}/health"), None).json();
        if health["status"] == "ok" {
            assert_eq!((health["workers"].as_u64(), health["worker_panics"].as_u64()), (Some(1), Some(1)));
            break;
        }
        assert!(Instant::now() < deadline, "the worker was not replaced: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = post_photo(&agent, &format!("{url}/v1/detect"), &keys.read, &photo("obama_1.jpg")).unwrap();
    assert_eq!((reply.status, reply.json()["faces"].as_array().map(Vec::len)), (200, Some(1)), "{}", reply.text());
    let metrics = get(&agent, &format!("{url}/metrics"), None).text();
    assert!(metrics.lines().any(|l| l == "visage_model_worker_panics_total 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "visage_model_workers 1"), "{metrics}");
    server.stop();
}

#[test]
fn a_missing_worker_makes_health_degraded() {
    // Two workers; one panics: until it is back, one of two is serving.
    let server = TestServer::start("degraded", |options| options.pool.workers = 2);
    let state = server.state.clone();
    let url = server.url.clone();
    let key = server.keys.read.clone();
    let poisoned = std::thread::spawn(move || {
        let mut poison = visage_serve::engine::PANIC_TRIGGER.to_vec();
        poison.push(0);
        post_photo(&agent(), &format!("{url}/v1/detect"), &key, &poison).unwrap()
    });
    // Watch /health while the worker is replaced: one reading must say degraded.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let health = get(&agent(), &format!("{}/health", server.url), None);
        let status = health.json()["status"].as_str().unwrap().to_string();
        if status == "degraded" {
            assert_eq!((health.status, health.json()["workers"].as_u64(), health.json()["workers_configured"].as_u64()), (200, Some(1), Some(2)));
        }
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        if state.metrics.worker_panics.load(Ordering::SeqCst) == 1 && state.metrics.workers_alive.load(Ordering::SeqCst) == 2 {
            break;
        }
    }
    assert_eq!(poisoned.join().unwrap().status, 500);
    assert!(seen.contains(&"degraded".to_string()), "never degraded: {seen:?}");
    assert_eq!(get(&agent(), &format!("{}/health", server.url), None).json()["status"], "ok");
    server.stop();
}

#[test]
fn photos_with_too_many_faces_are_refused() {
    let server = TestServer::start("faces", |options| {
        options.max_faces_per_photo = 2;
        options.max_faces_per_request = 3;
    });
    let agent = agent();
    let (url, keys) = (&server.url, &server.keys);
    // obama_and_biden.jpg holds three faces (two adults and a child at the edge).
    let reply = post_photo(&agent, &format!("{url}/v1/search"), &keys.read, &photo("obama_and_biden.jpg")).unwrap();
    assert_eq!(reply.status, 422, "{}", reply.text());
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("more than 2 faces") && error.contains("--max-faces-per-photo"), "{error}");
    // A one-face photo is fine; two photos of 1 + 3 faces are over the request cap... and the photo cap.
    assert_eq!(post_photo(&agent, &format!("{url}/v1/search"), &keys.read, &photo("obama_1.jpg")).unwrap().status, 200);
    server.stop();

    let server = TestServer::start("faces-request", |options| {
        options.max_faces_per_photo = 5;
        options.max_faces_per_request = 1;
    });
    let (a, b) = (photo("obama_4.jpg"), photo("obama_5.jpg"));
    let (content_type, body) = multipart(&[("a", Some("a.jpg"), "image/jpeg", &a), ("b", Some("b.jpg"), "image/jpeg", &b)]);
    let reply =
        send(agent.post(&format!("{}/v1/verify", server.url)).set("X-API-Key", &server.keys.read).set("Content-Type", &content_type), Some(&body))
            .unwrap();
    assert_eq!(reply.status, 422, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("at most 1 per request"), "{}", reply.text());
    server.stop();
}

#[test]
fn an_idempotency_key_makes_a_retried_enrolment_safe() {
    let server = TestServer::start("idempotent", |_| {});
    let agent = agent();
    let (url, keys) = (&server.url, &server.keys);
    let enrol = |name: &str, key: Option<&str>, bytes: &[u8]| {
        let mut request =
            agent.post(&format!("{url}/v1/enrol?name={}", encode(name))).set("X-API-Key", &keys.write).set("Content-Type", "image/jpeg");
        if let Some(key) = key {
            request = request.set("Idempotency-Key", key);
        }
        send(request, Some(bytes)).unwrap()
    };
    let (first_photo, second_photo) = (photo("obama_1.jpg"), photo("obama_3.jpg"));
    let first = enrol("Barack Obama", Some("retry-1"), &first_photo);
    assert_eq!(first.status, 201, "{}", first.text());
    assert!(!first.headers.contains_key("idempotent-replayed"));
    // The retry gets the first answer and writes nothing.
    let retry = enrol("Barack Obama", Some("retry-1"), &first_photo);
    assert_eq!((retry.status, retry.headers.get("idempotent-replayed").map(String::as_str)), (201, Some("true")), "{}", retry.text());
    assert_eq!(retry.json(), first.json());
    assert_eq!(server.state.store.get("Barack Obama").unwrap().templates.len(), 1);
    // The same key for another photo: refused, nothing written.
    let reused = enrol("Barack Obama", Some("retry-1"), &second_photo);
    assert_eq!(reused.status, 422, "{}", reused.text());
    assert!(reused.json()["error"].as_str().unwrap().contains("already used"), "{}", reused.text());
    assert_eq!(server.state.store.get("Barack Obama").unwrap().templates.len(), 1);
    // Four simultaneous sends of one keyed request: one enrolment.
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| enrol("Barack Obama", Some("burst-7"), &second_photo))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| (r.status, r.text())).collect::<Vec<_>>());
    assert_eq!(replies.iter().filter(|r| !r.headers.contains_key("idempotent-replayed")).count(), 1, "one ran, three replayed");
    assert_eq!(server.state.store.get("Barack Obama").unwrap().templates.len(), 2);
    // Without a key a repeat is a new enrolment; a malformed key is refused.
    assert_eq!(enrol("Barack Obama", None, &second_photo).status, 200);
    assert_eq!(server.state.store.get("Barack Obama").unwrap().templates.len(), 3);
    let reply = enrol("Barack Obama", Some(&"k".repeat(129)), &second_photo);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(server.state.store.get("Barack Obama").unwrap().templates.len(), 3);
    let (dir, keys) = (server.dir.clone(), server.keys.clone());
    server.stop();

    // After a restart the service's table is empty; the store remembers the key.
    let server = TestServer::start_in(dir, Some(keys), |_| {});
    let agent = crate::agent();
    let retry = send(
        agent
            .post(&format!("{}/v1/enrol?name=Barack%20Obama", server.url))
            .set("X-API-Key", &server.keys.write)
            .set("Content-Type", "image/jpeg")
            .set("Idempotency-Key", "retry-1"),
        Some(&first_photo),
    )
    .unwrap();
    assert_eq!((retry.status, retry.json()["created"].as_bool()), (201, Some(true)), "{}", retry.text());
    assert_eq!(server.state.store.get("Barack Obama").unwrap().templates.len(), 3, "the retry after a restart wrote nothing");
    server.stop();
}

#[test]
fn a_thumbnail_dies_with_its_identity() {
    let server = TestServer::start("thumbs", |_| {});
    let agent = agent();
    let (url, keys) = (&server.url, &server.keys);
    let thumbnails = server.state.options.state_dir.join("thumbnails");
    let files = || std::fs::read_dir(&thumbnails).unwrap().count();
    for (name, file) in [("Barack Obama", "obama_1.jpg"), ("Joe Biden", "biden_1.jpg")] {
        assert_eq!(post_photo(&agent, &format!("{url}/v1/enrol?name={}", encode(name)), &keys.write, &photo(file)).unwrap().status, 201);
    }
    assert_eq!(files(), 2);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&thumbnails).unwrap().permissions().mode() & 0o777, 0o700);
        for entry in std::fs::read_dir(&thumbnails).unwrap() {
            assert_eq!(entry.unwrap().metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
    // Deleted through the service: the file goes with it.
    let reply = send(agent.delete(&format!("{url}/v1/identities/Joe%20Biden")).set("X-API-Key", &keys.write), None).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(files(), 1);
    // Deleted behind the service's back (another process on a shared database):
    // the photo is not served, and is removed when asked for.
    server.state.store.remove("Barack Obama").unwrap();
    assert_eq!(get(&agent, &format!("{url}/v1/identities/Barack%20Obama/thumbnail"), Some(&keys.read)).status, 404);
    assert_eq!(files(), 0);
    server.stop();
}

#[test]
fn health_and_errors_show_no_server_path_or_secret() {
    let server = TestServer::start("secrets", |_| {});
    let agent = agent();
    let dir = server.dir.to_string_lossy().into_owned();
    let health = get(&agent, &format!("{}/health", server.url), None);
    assert_eq!((health.status, health.json()["gallery"].as_str()), (200, Some("directory")));
    let text = health.text();
    assert!(!text.contains(&dir) && !text.contains("/tmp") && !text.contains("gallery\":\"/"), "{text}");
    // Error bodies for a range of mistakes: none names a server path or echoes a key.
    let mut bodies = Vec::new();
    bodies.push(post_photo(&agent, &format!("{}/v1/search", server.url), "vsk_not-mine-987", &photo("obama_1.jpg")).unwrap().text());
    bodies.push(post_photo(&agent, &format!("{}/v1/search", server.url), &server.keys.read, b"not an image").unwrap().text());
    bodies.push(get(&agent, &format!("{}/v1/identities/nobody", server.url), Some(&server.keys.read)).text());
    bodies.push(get(&agent, &format!("{}/v1/identities/nobody/thumbnail", server.url), Some(&server.keys.read)).text());
    bodies.push(get(&agent, &format!("{}/etc/passwd", server.url), None).text());
    for body in &bodies {
        assert!(!body.contains(&dir) && !body.contains("/tmp/") && !body.contains("not-mine-987") && !body.contains(&server.keys.read), "{body}");
    }
    server.stop();
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let server = TestServer::start("slow-reader", |options| options.write_stall_timeout = Duration::from_secs(1));
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    // 3000 pipelined requests for the OpenAPI document (tens of MB of answers), never read.
    let requests = b"GET /openapi.json HTTP/1.1\r\nHost: visage\r\n\r\n".repeat(3000);
    stream.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = stream.write_all(&requests); // may stop part-way once the server gives up
    let started = Instant::now();
    while server.state.metrics.connections_open.load(Ordering::SeqCst) > 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "a connection whose client stopped reading is kept open");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The service answers others meanwhile and after.
    assert_eq!(get(&agent(), &format!("{}/health", server.url), None).status, 200);
    drop(stream);
    server.stop();
}

#[test]
fn a_trickled_body_is_cut_at_the_request_timeout() {
    let server = TestServer::start("trickle", |options| options.request_timeout = Duration::from_secs(1));
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    let head = format!(
        "POST /v1/search HTTP/1.1\r\nHost: visage\r\nX-API-Key: {}\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n",
        server.keys.read
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[0xFF, 0xD8]).unwrap();
    let started = Instant::now();
    let (answer, closed_after) = read_until_closed(&mut stream, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503") && text.contains("timed out after 1 s"), "{text}");
    assert!(closed_after.is_some() && started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    server.stop();
}

#[test]
fn shutdown_is_not_held_up_by_stalled_or_idle_clients() {
    // Long timeouts: only graceful shutdown itself can close these connections quickly.
    let mut server = TestServer::start("stalled-shutdown", |options| {
        options.header_read_timeout = Duration::from_secs(300);
        options.write_stall_timeout = Duration::from_secs(300);
    });
    let address = address(&server);
    let mut half = TcpStream::connect(&address).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    let mut idle = TcpStream::connect(&address).unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: visage\r\n\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.state.metrics.connections_open.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the connections were not accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    server.begin_stop();
    server.join();
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown waited {:?} for stalled clients", started.elapsed());
    for stream in [&mut half, &mut idle] {
        assert!(read_until_closed(stream, Duration::from_secs(5)).1.is_some(), "a connection outlived the server");
    }
}

#[test]
fn a_panicking_handler_answers_500_and_the_service_goes_on() {
    let server = TestServer::start("handler-panic", |_| {});
    let agent = agent();
    let reply = send(agent.get(&format!("{}/v1/identities", server.url)).set(visage_serve::engine::PANIC_HEADER, "1"), None).unwrap();
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().starts_with("the request handler failed (error "), "{}", reply.text());
    assert_eq!(server.state.metrics.handler_panics.load(Ordering::SeqCst), 1);
    assert_eq!(server.state.metrics.in_flight.load(Ordering::SeqCst), 0, "the in-flight gauge is not left counting a dead request");
    assert_eq!(get(&agent, &format!("{}/v1/identities", server.url), Some(&server.keys.read)).status, 200);
    assert!(get(&agent, &format!("{}/metrics", server.url), None).text().lines().any(|l| l == "visage_http_handler_panics_total 1"));
    server.stop();
}
