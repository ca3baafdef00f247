//! `visage gallery …` and `visage serve` with `--gallery postgres://…`
//! through the real binary, against a real PostgreSQL + pgvector server
//! started here (visage_lab::pgserver) and stopped after: the same JSON
//! as the embedded gallery for the same photos.

mod common;

use common::{http, json, ok, photo, start_serve, stop_serve, visage};
use serde_json::Value;
use visage_lab::pgserver::start_for_test;

fn scratch(name: &str) -> std::path::PathBuf {
    common::scratch("gallery-pg-cli", name)
}

/// Enrols obama_1..3 and biden_1, then searches obama_and_biden.jpg.
fn enrol_and_search(gallery: &str) -> Value {
    ok(visage(&["gallery", "enrol", "obama", &photo("obama_1.jpg"), &photo("obama_2.jpg"), &photo("obama_3.jpg"), "--gallery", gallery]));
    ok(visage(&["gallery", "enrol", "biden", &photo("biden_1.jpg"), "--gallery", gallery, "--metadata", r#"{"role": "vp"}"#]));
    json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", gallery, "-k", "5", "--json"]))
}

/// Every number of two search outputs equal within f32 rounding, every string equal.
fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5, "{path}: {x} vs {y}")
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            x.iter().zip(y).enumerate().for_each(|(i, (x, y))| assert_close(x, y, &format!("{path}[{i}]")));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{path}");
            x.iter().for_each(|(k, v)| assert_close(v, &y[k], &format!("{path}.{k}")));
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn gallery_commands_on_postgres_match_the_embedded_gallery() {
    let server = start_for_test("cli");
    let url = server.create_database("faces").unwrap();
    let from_postgres = enrol_and_search(&url);
    let embedded = scratch("embedded").display().to_string();
    let from_embedded = enrol_and_search(&embedded);
    assert_close(&from_postgres, &from_embedded, "search");
    let decisions: Vec<Option<&str>> = from_postgres["faces"].as_array().unwrap().iter().map(|f| f["decision"].as_str()).collect();
    assert!(decisions.contains(&Some("obama")) && decisions.contains(&Some("biden")), "{from_postgres}");

    // --approximate goes through pgvector's HNSW index: same answer on two identities.
    let approximate = json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", &url, "-k", "5", "--json", "--approximate"]));
    assert_close(&approximate, &from_postgres, "approximate");

    // list / export / remove / import, between the two backends.
    let list = json(visage(&["gallery", "list", "--gallery", &url, "--json"]));
    assert_eq!(list, json(visage(&["gallery", "list", "--gallery", &embedded, "--json"])));
    let export = scratch("export.json");
    ok(visage(&["gallery", "export", "--gallery", &url, "--out", export.to_str().unwrap()]));
    ok(visage(&["gallery", "remove", "biden", "--gallery", &url]));
    let after = json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", &url, "--json"]));
    assert!(after["faces"].as_array().unwrap().iter().all(|f| f["decision"].as_str() != Some("biden")), "{after}");
    let copy = server.create_database("copy").unwrap();
    ok(visage(&["gallery", "import", export.to_str().unwrap(), "--gallery", &copy]));
    let imported = json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", &copy, "-k", "5", "--json"]));
    assert_close(&imported, &from_postgres, "imported");
    // An embedded export imports into PostgreSQL too (merging into the existing people).
    let embedded_export = scratch("embedded-export.json");
    ok(visage(&["gallery", "export", "--gallery", &embedded, "--out", embedded_export.to_str().unwrap()]));
    ok(visage(&["gallery", "import", embedded_export.to_str().unwrap(), "--gallery", &copy, "--on-conflict", "merge"]));
    let merged = json(visage(&["gallery", "list", "--gallery", &copy, "--json"]));
    let templates: Vec<u64> = merged["identities"].as_array().unwrap().iter().map(|i| i["templates"].as_u64().unwrap()).collect();
    assert_eq!(templates, [2, 6], "biden 1+1, obama 3+3: {merged}");
}

#[test]
fn serve_uses_a_postgres_gallery() {
    let server = start_for_test("serve");
    let url = server.create_database("faces").unwrap();
    let from_cli = enrol_and_search(&url);
    let state = scratch("serve-state");
    let (child, address) = start_serve(&["--gallery", &url, "--public-read", "--workers", "1", "--state", state.to_str().unwrap()]);
    // /health counts the identities in PostgreSQL (a store call from the service's runtime).
    let (status, health) = http(&address, "GET", "/health", &[], b"");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["identities"], 2, "{health}");
    assert_eq!(health["gallery"], "postgresql", "/health names the kind of gallery, never its URL: {health}");
    // The service's search answers exactly what the CLI printed.
    let jpeg = std::fs::read(photo("obama_and_biden.jpg")).unwrap();
    let (status, found) = http(&address, "POST", "/v1/search?k=5", &[("Content-Type", "image/jpeg")], &jpeg);
    assert_eq!(status, 200, "{found}");
    assert_close(&found["faces"], &from_cli["faces"], "serve");
    // SIGTERM: graceful stop; the store is dropped inside the service's runtime without a panic.
    stop_serve(child);
}
