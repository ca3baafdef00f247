//! `visage serve keys …` and `visage serve` on a directory gallery through
//! the real binary: a key is printed once and only its hash is stored, the
//! service refuses reads and writes without a key, a read key cannot enrol,
//! a write key can, a removed key stops working while the service runs, and
//! SIGTERM stops it cleanly.

mod common;

use common::{http, ok, photo, start_serve, stop_serve, visage};

#[test]
fn keys_guard_a_served_directory_gallery() {
    let gallery = common::scratch("serve-cli", "people");
    let gallery = gallery.to_str().unwrap();
    let add =
        |scope: &str, label: &str| ok(visage(&["serve", "keys", "add", "--gallery", gallery, "--scope", scope, "--label", label])).trim().to_string();
    let write_key = add("write", "admin");
    let read_key = add("read", "kiosk");
    assert!(write_key.starts_with("vsk_") && read_key.starts_with("vsk_") && write_key != read_key, "{write_key} {read_key}");
    let keys_file = std::fs::read_to_string(format!("{gallery}.serve/keys.json")).unwrap();
    assert!(!keys_file.contains(&write_key) && !keys_file.contains(&read_key), "keys must be stored hashed: {keys_file}");
    let listed = ok(visage(&["serve", "keys", "list", "--gallery", gallery]));
    assert!(listed.contains("admin") && listed.contains("kiosk") && !listed.contains("vsk_"), "{listed}");

    let (child, address) = start_serve(&["--gallery", gallery, "--workers", "1"]);
    let jpeg = |name: &str| std::fs::read(photo(name)).unwrap();
    let as_jpeg = ("Content-Type", "image/jpeg");
    let (status, health) = http(&address, "GET", "/health", &[], b"");
    assert_eq!((status, health["identities"].as_u64()), (200, Some(0)), "{health}");

    let enrol = |key: Option<&str>, name: &str, file: &str| {
        let header;
        let mut headers = vec![as_jpeg];
        if let Some(key) = key {
            header = key.to_string();
            headers.push(("X-API-Key", header.as_str()));
        }
        http(&address, "POST", &format!("/v1/enrol?name={name}"), &headers, &jpeg(file))
    };
    assert_eq!(enrol(None, "obama", "obama_1.jpg").0, 401);
    assert_eq!(enrol(Some("vsk_not-a-key"), "obama", "obama_1.jpg").0, 401);
    let (status, refused) = enrol(Some(&read_key), "obama", "obama_1.jpg");
    assert_eq!(status, 403, "{refused}");
    // 201: a new identity; 200: a face added to an existing one.
    let (status, enrolled) = enrol(Some(&write_key), "obama", "obama_1.jpg");
    assert_eq!((status, enrolled["created"].as_bool()), (201, Some(true)), "{enrolled}");
    let (status, added) = enrol(Some(&write_key), "obama", "obama_2.jpg");
    assert_eq!((status, added["templates"].as_u64()), (200, Some(2)), "{added}");
    assert_eq!(enrol(Some(&write_key), "biden", "biden_1.jpg").0, 201);

    // Reads need a key too (no --public-read); the read key finds both people.
    assert_eq!(http(&address, "POST", "/v1/search", &[as_jpeg], &jpeg("obama_and_biden.jpg")).0, 401);
    let (status, found) = http(&address, "POST", "/v1/search", &[as_jpeg, ("X-API-Key", &read_key)], &jpeg("obama_and_biden.jpg"));
    assert_eq!(status, 200, "{found}");
    let mut decisions: Vec<&str> = found["faces"].as_array().unwrap().iter().filter_map(|f| f["decision"].as_str()).collect();
    decisions.sort();
    assert_eq!(decisions, ["biden", "obama"], "{found}");

    // Revoking the read key takes effect in the running service.
    let id = listed_id(&ok(visage(&["serve", "keys", "list", "--gallery", gallery])), "kiosk");
    ok(visage(&["serve", "keys", "remove", &id, "--gallery", gallery]));
    let (status, _) = http(&address, "GET", "/v1/identities", &[("X-API-Key", &read_key)], b"");
    assert_eq!(status, 401, "a removed key must stop working");
    let (status, identities) = http(&address, "GET", "/v1/identities", &[("X-API-Key", &write_key)], b"");
    assert_eq!(status, 200, "{identities}");
    stop_serve(child);
}

/// The id column of the key labelled `label` in `visage serve keys list`.
fn listed_id(listing: &str, label: &str) -> String {
    let line = listing.lines().find(|l| l.split('\t').next_back() == Some(label)).unwrap_or_else(|| panic!("no key {label} in {listing}"));
    line.split('\t').next().unwrap().to_string()
}
