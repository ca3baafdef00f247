//! The service end to end on loopback: every endpoint on the bundled photos,
//! the search JSON contract, keys and scopes, hostile uploads, the queue
//! bound, and a graceful shutdown that finishes the request in flight.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn enrol_search_and_every_endpoint() {
    let server = TestServer::start("api", |_| {});
    let agent = agent();
    let (url, keys) = (&server.url, &server.keys);

    // Enrol two people: one by raw body + ?name=, one from a form as the page sends it.
    let reply = post_photo(&agent, &format!("{url}/v1/enrol?name=Barack%20Obama"), &keys.write, &photo("obama_1.jpg")).unwrap();
    assert_eq!(reply.status, 201, "{}", reply.text());
    let enrolled = reply.json();
    assert_eq!(
        (enrolled["name"].as_str(), enrolled["created"].as_bool(), enrolled["templates"].as_u64()),
        (Some("Barack Obama"), Some(true), Some(1))
    );
    let biden = photo("biden_1.jpg");
    let (content_type, body) = multipart(&[
        ("name", None, "", b"Joe Biden"),
        ("metadata", None, "", b"{\"role\": \"vp\"}"),
        ("photo", Some("biden_1.jpg"), "image/jpeg", &biden),
    ]);
    let reply = send(agent.post(&format!("{url}/v1/enrol")).set("X-API-Key", &keys.write).set("Content-Type", &content_type), Some(&body)).unwrap();
    assert_eq!(reply.status, 201, "{}", reply.text());
    // A second photo adds a template (200, not created).
    let reply = post_photo(&agent, &format!("{url}/v1/enrol?name=Barack%20Obama"), &keys.write, &photo("obama_3.jpg")).unwrap();
    assert_eq!((reply.status, reply.json()["templates"].as_u64()), (200, Some(2)), "{}", reply.text());

    // Search: the CLI's contract, exactly these keys; the other photos are found.
    let reply = post_photo(&agent, &format!("{url}/v1/search?k=2"), &keys.read, &photo("obama_2.jpg")).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let found = reply.json();
    let top = found.as_object().unwrap();
    assert_eq!(top.keys().collect::<Vec<_>>(), ["faces"]);
    let faces = found["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    let face = faces[0].as_object().unwrap();
    let mut keys_of_face: Vec<&String> = face.keys().collect();
    keys_of_face.sort();
    assert_eq!(keys_of_face, ["box", "decision", "matches", "quality"]);
    assert_eq!(face["box"].as_array().unwrap().len(), 4);
    assert_eq!(face["decision"], "Barack Obama");
    let matches = face["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2);
    assert_eq!(matches[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["identity", "score"]);
    assert_eq!(matches[1]["identity"], "Joe Biden");
    let (obama_score, biden_score) = (matches[0]["score"].as_f64().unwrap(), matches[1]["score"].as_f64().unwrap());
    // The recogniser's same_person_cosine separates them (its config: 0.42 region; genuine ≈ 0.75, impostor ≈ 0.01 on real data).
    let threshold = server.state.same_person_cosine.unwrap() as f64;
    assert!(obama_score >= threshold && biden_score < threshold, "{obama_score} {biden_score} vs {threshold}");

    // The same scores as the gallery computes from the same embedding (the service adds nothing).
    let reply = post_photo(&agent, &format!("{url}/v1/embed"), &keys.read, &photo("obama_2.jpg")).unwrap();
    let embedding: Vec<f32> = reply.json()["faces"][0]["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let norm: f32 = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "unit embedding, norm {norm}");
    let direct = server.state.store.search(&[&embedding], 2).unwrap();
    assert!((direct[0][0].score as f64 - obama_score).abs() < 1e-4, "{} vs {obama_score}", direct[0][0].score);

    // A two-person photo: two faces found, each decided.
    let reply = post_photo(&agent, &format!("{url}/v1/search"), &keys.read, &photo("obama_and_biden.jpg")).unwrap();
    let decisions: Vec<String> = reply.json()["faces"].as_array().unwrap().iter().filter_map(|f| f["decision"].as_str().map(String::from)).collect();
    assert!(decisions.contains(&"Barack Obama".to_string()) && decisions.contains(&"Joe Biden".to_string()), "{decisions:?}");

    // detect / quality / verify.
    let reply = post_photo(&agent, &format!("{url}/v1/detect"), &keys.read, &photo("obama_1.jpg")).unwrap();
    let detected = reply.json();
    assert_eq!((detected["width"].as_u64(), detected["height"].as_u64()), (Some(512), Some(640)));
    assert_eq!(detected["faces"][0]["landmarks"].as_array().unwrap().len(), 5);
    let reply = post_photo(&agent, &format!("{url}/v1/quality"), &keys.read, &photo("obama_and_biden.jpg")).unwrap();
    let qualities: Vec<f64> = reply.json()["faces"].as_array().unwrap().iter().map(|f| f["quality"].as_f64().unwrap()).collect();
    assert!(qualities.len() >= 2 && qualities.windows(2).all(|w| w[0] >= w[1]), "best first: {qualities:?}");
    let (a, b) = (photo("obama_4.jpg"), photo("obama_5.jpg"));
    let (content_type, body) = multipart(&[("a", Some("a.jpg"), "image/jpeg", &a), ("b", Some("b.jpg"), "image/jpeg", &b)]);
    let reply = send(agent.post(&format!("{url}/v1/verify")).set("X-API-Key", &keys.read).set("Content-Type", &content_type), Some(&body)).unwrap();
    assert_eq!((reply.status, reply.json()["same_person"].as_bool()), (200, Some(true)), "{}", reply.text());
    let (content_type, body) = multipart(&[("a", Some("a.jpg"), "image/jpeg", &a), ("b", Some("b.jpg"), "image/jpeg", &biden)]);
    let reply = send(agent.post(&format!("{url}/v1/verify")).set("X-API-Key", &keys.read).set("Content-Type", &content_type), Some(&body)).unwrap();
    assert_eq!(reply.json()["same_person"].as_bool(), Some(false), "{}", reply.text());

    // List, get, thumbnail.
    let listed = get(&agent, &format!("{url}/v1/identities"), Some(&keys.read)).json();
    let names: Vec<&str> = listed["identities"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Barack Obama", "Joe Biden"]);
    assert_eq!(listed["identities"][1]["metadata"]["role"], "vp");
    assert_eq!(listed["identities"][0]["thumbnail"], "/v1/identities/Barack%20Obama/thumbnail");
    let thumbnail = get(&agent, &format!("{url}/v1/identities/Joe%20Biden/thumbnail"), Some(&keys.read));
    assert_eq!((thumbnail.status, thumbnail.headers.get("content-type").map(String::as_str)), (200, Some("image/jpeg")));
    let picture = image::load_from_memory(&thumbnail.body).unwrap();
    assert!(picture.width().max(picture.height()) <= 160 && picture.width() >= 40, "{}×{}", picture.width(), picture.height());
    assert_eq!(get(&agent, &format!("{url}/v1/identities/Joe%20Biden"), Some(&keys.read)).json()["templates"], 1);

    // Delete: gone from the list, the search and the thumbnails; a second delete is 404.
    let reply = send(agent.delete(&format!("{url}/v1/identities/Joe%20Biden")).set("X-API-Key", &keys.write), None).unwrap();
    assert_eq!((reply.status, reply.json()["removed"]["name"].as_str()), (200, Some("Joe Biden")));
    assert_eq!(send(agent.delete(&format!("{url}/v1/identities/Joe%20Biden")).set("X-API-Key", &keys.write), None).unwrap().status, 404);
    assert_eq!(get(&agent, &format!("{url}/v1/identities/Joe%20Biden/thumbnail"), Some(&keys.read)).status, 404);
    let reply = post_photo(&agent, &format!("{url}/v1/search"), &keys.read, &biden).unwrap();
    assert_eq!(reply.json()["faces"][0]["decision"], serde_json::Value::Null);

    // A photo without a face: search answers no faces, enrolment refuses with the reason.
    let mut blank = Vec::new();
    image::RgbImage::from_pixel(200, 150, image::Rgb([120, 120, 120]))
        .write_to(&mut std::io::Cursor::new(&mut blank), image::ImageFormat::Png)
        .unwrap();
    let reply = send(agent.post(&format!("{url}/v1/search")).set("X-API-Key", &keys.read).set("Content-Type", "image/png"), Some(&blank)).unwrap();
    assert_eq!((reply.status, reply.json()["faces"].as_array().unwrap().len()), (200, 0));
    let reply = send(agent.post(&format!("{url}/v1/enrol?name=Nobody")).set("X-API-Key", &keys.write).set("Content-Type", "image/png"), Some(&blank))
        .unwrap();
    assert_eq!((reply.status, reply.json()["refused"][0]["reason"].as_str()), (422, Some("no_face")), "{}", reply.text());

    // The page, the document, health and metrics need no key.
    let page = get(&agent, &format!("{url}/"), None);
    assert!(
        page.status == 200 && page.text().contains("<html") && !page.text().contains("http://") && !page.text().contains("https://"),
        "self-contained page"
    );
    let document = get(&agent, &format!("{url}/openapi.json"), None).json();
    assert_eq!(document["openapi"], "3.1.0");
    let health = get(&agent, &format!("{url}/health"), None);
    assert_eq!((health.status, health.json()["status"].as_str(), health.json()["identities"].as_u64()), (200, Some("ok"), Some(1)));
    let metrics = get(&agent, &format!("{url}/metrics"), None).text();
    assert!(metrics.contains("visage_http_requests_total{route=\"/v1/enrol\",method=\"POST\",status=\"201\"} 2"), "{metrics}");
    assert!(metrics.contains("visage_http_requests_total{route=\"/v1/identities/{name}\",method=\"DELETE\",status=\"404\"} 1"), "{metrics}");
    // Every photo the workers handled is in the histogram: 4 enrolments, 4
    // searches, embed, detect, quality, and 2 verifications of 2 photos = 15.
    assert!(metrics.lines().any(|l| l == "visage_inference_seconds_count 15"), "{metrics}");
    // An unknown route: 404 naming it.
    let reply = get(&agent, &format!("{url}/v2/nothing"), None);
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("GET /v2/nothing"));
    server.stop();
}

/// A minimal PNG that declares `width`×`height` RGB pixels: a few hundred
/// bytes that would decode to `3·width·height` bytes (a decompression bomb
/// when large). Its one IDAT is an empty zlib stream: the pixel limit must
/// refuse it from the header, before any pixel is inflated.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        // PNG's CRC (ISO 3309 / ITU-T V.42), bit by bit.
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        out.extend_from_slice(&typed);
        out.extend_from_slice(&crc32(&typed).to_be_bytes());
    }
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the CRC-32 check value");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive filter, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A complete, valid 16×16 JPEG whose frame header is rewritten to declare `width`×`height`.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(16, 16, image::Rgb([200, 10, 10])).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline frame header");
    // FF C0, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

#[test]
fn hostile_uploads_get_the_right_4xx_and_the_server_keeps_serving() {
    let server = TestServer::start("hostile", |options| options.max_body_bytes = 256 << 10);
    let agent = agent();
    let (url, keys) = (&server.url, &server.keys);
    let good = photo("obama_2.jpg");
    let search = format!("{url}/v1/search");
    let raw = |content_type: &str, key: Option<&str>, body: &[u8]| {
        let mut request = agent.post(&search).set("Content-Type", content_type);
        if let Some(key) = key {
            request = request.set("X-API-Key", key);
        }
        send(request, Some(body)).unwrap_or_else(|e| panic!("{content_type}, {} bytes: {e}", body.len()))
    };
    let mut truncated = good[..good.len() / 2].to_vec();
    truncated.truncate(truncated.len());
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00zip bomb stand-in: any archive is not an image".to_vec();
    // (what, status, content type, body, key, what the error must mention)
    type Case<'a> = (&'a str, u16, &'a str, Vec<u8>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        ("text as a JPEG", 400, "image/jpeg", b"hello, not a photo".to_vec(), Some(&keys.read), "not an image"),
        ("a zip archive", 400, "application/octet-stream", zip, Some(&keys.read), "not an image"),
        ("a truncated JPEG", 400, "image/jpeg", truncated, Some(&keys.read), "truncated JPEG"),
        ("an empty body", 400, "image/jpeg", Vec::new(), Some(&keys.read), "empty upload"),
        ("a PNG declaring 50000×50000 (7.5 GB of pixels)", 413, "image/png", png_declaring(50_000, 50_000), Some(&keys.read), "above the limit"),
        ("a 100-megapixel PNG", 413, "image/png", png_declaring(10_000, 10_000), Some(&keys.read), "above the limit"),
        ("a JPEG declaring 10000×10000", 413, "image/jpeg", jpeg_declaring(10_000, 10_000), Some(&keys.read), "above the limit"),
        ("JSON instead of a photo", 415, "application/json", b"{\"photo\": 1}".to_vec(), Some(&keys.read), "application/json"),
        ("text/plain", 415, "text/plain", good.clone(), Some(&keys.read), "text/plain"),
        ("no API key", 401, "image/jpeg", good.clone(), None, "missing API key"),
        ("an invalid API key", 401, "image/jpeg", good.clone(), Some("vsk_not-a-real-key"), "invalid API key"),
    ];
    for (what, status, content_type, body, key, message) in &cases {
        let reply = raw(content_type, *key, body);
        assert_eq!(reply.status, *status, "{what}: {}", reply.text());
        let error = reply.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains(message), "{what}: {error:?} should mention {message:?}");
        // The server keeps serving.
        assert_eq!(get(&agent, &format!("{url}/health"), None).status, 200, "after {what}");
    }
    // A body over the size limit is refused from its Content-Length without
    // being read, so the client may see the connection close while it is
    // still sending instead of the 413: either way the server counted a 413.
    let over = send(agent.post(&search).set("Content-Type", "image/jpeg").set("X-API-Key", &keys.read), Some(&vec![0xFF; 300 << 10]));
    if let Ok(reply) = &over {
        assert_eq!(reply.status, 413, "{}", reply.text());
        assert!(reply.json()["error"].as_str().unwrap().contains("length limit"), "{}", reply.text());
    }
    assert_eq!(server.state.metrics.requests("/v1/search", 413), 4, "3 pixel-limit refusals and the over-long body ({over:?})");
    assert_eq!(get(&agent, &format!("{url}/health"), None).status, 200);
    // No Content-Type at all.
    let reply = send(agent.post(&search).set("X-API-Key", &keys.read), Some(&good)).unwrap();
    assert_eq!(reply.status, 415, "{}", reply.text());
    // A file field of the wrong type in a form.
    let (content_type, body) = multipart(&[("photo", Some("x.html"), "text/html", b"<script>alert(1)</script>")]);
    assert_eq!(raw(&content_type, Some(&keys.read), &body).status, 415);
    // Compressed bodies are not inflated: gzip bytes are just not an image.
    let reply = send(
        agent.post(&search).set("X-API-Key", &keys.read).set("Content-Type", "image/jpeg").set("Content-Encoding", "gzip"),
        Some(b"\x1f\x8b\x08\x00junk"),
    )
    .unwrap();
    assert_eq!(reply.status, 400);
    // A read-only key cannot write; nothing was written.
    let reply = post_photo(&agent, &format!("{url}/v1/enrol?name=Intruder"), &keys.read, &good).unwrap();
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("read scope"));
    assert_eq!(send(agent.delete(&format!("{url}/v1/identities/Intruder")).set("X-API-Key", &keys.read), None).unwrap().status, 403);
    assert_eq!(send(agent.delete(&format!("{url}/v1/identities/Intruder")), None).unwrap().status, 401);
    assert_eq!(get(&agent, &format!("{url}/v1/identities"), None).status, 401, "reads need a key by default");
    // Bad parameters.
    assert_eq!(post_photo(&agent, &format!("{url}/v1/search?k=0"), &keys.read, &good).unwrap().status, 400);
    assert_eq!(post_photo(&agent, &format!("{url}/v1/enrol?name=%20padded"), &keys.write, &good).unwrap().status, 400);
    assert_eq!(post_photo(&agent, &format!("{url}/v1/enrol"), &keys.write, &good).unwrap().status, 400);

    // After all of it: a real search still works and nothing was enrolled.
    let reply = post_photo(&agent, &search, &keys.read, &good).unwrap();
    assert_eq!((reply.status, reply.json()["faces"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(server.state.store.len().unwrap(), 0);
    server.stop();
}

#[test]
fn public_read_opens_reads_only() {
    let server = TestServer::start("public", |options| options.public_read = true);
    let agent = agent();
    let url = &server.url;
    let reply = send(agent.post(&format!("{url}/v1/detect")).set("Content-Type", "image/jpeg"), Some(&photo("obama_1.jpg"))).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(get(&agent, &format!("{url}/v1/identities"), None).status, 200);
    let reply = send(agent.post(&format!("{url}/v1/enrol?name=X")).set("Content-Type", "image/jpeg"), Some(&photo("obama_1.jpg"))).unwrap();
    assert_eq!(reply.status, 401);
    server.stop();
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    // One worker, one queue slot: of 12 simultaneous searches at most two are
    // being handled at once; the rest must be refused at once, not queued.
    let server = TestServer::start("queue", |options| {
        options.pool.workers = 1;
        options.pool.queue_capacity = 1;
    });
    let photo = photo("obama_and_biden.jpg");
    let barrier = std::sync::Barrier::new(12);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| {
                    let agent = agent();
                    barrier.wait();
                    post_photo(&agent, &format!("{}/v1/search", server.url), &server.keys.read, &photo).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    let served = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(busy.len() + served, 12, "only 200 or 503: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(!busy.is_empty() && served >= 1, "{} busy, {served} served", busy.len());
    for reply in busy {
        assert_eq!(reply.headers.get("retry-after").map(String::as_str), Some("1"));
        assert!(reply.json()["error"].as_str().unwrap().contains("queue is full"));
    }
    assert_eq!(server.state.metrics.queue_depth.load(Ordering::SeqCst), 0, "the depth gauge returns to 0");
    server.stop();
}

#[test]
fn shutdown_finishes_the_request_in_flight() {
    let mut server = TestServer::start("shutdown", |options| options.pool.workers = 1);
    let url = server.url.clone();
    let key = server.keys.write.clone();
    let state = server.state.clone();
    let photo = photo("obama_and_biden.jpg");
    let request = std::thread::spawn(move || post_photo(&agent(), &format!("{url}/v1/enrol?name=Late"), &key, &photo).unwrap());
    // Shut down once the enrolment is being served.
    let deadline = Instant::now() + Duration::from_secs(20);
    while state.metrics.in_flight.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    server.begin_stop();
    let reply = request.join().unwrap();
    assert_eq!(reply.status, 201, "the request in flight completes: {}", reply.text());
    let url = server.url.clone();
    server.join();
    assert!(send(agent().get(&format!("{url}/health")), None).is_err(), "no longer listening");
    assert_eq!(state.store.get("Late").unwrap().templates.len(), 1);
}
