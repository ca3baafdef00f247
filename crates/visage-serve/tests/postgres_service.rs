//! The service over a real PostgreSQL gallery (a throwaway server, see
//! `visage_lab::pgserver`) whose URL carries a password in its query:
//! neither `/health` (unauthenticated) nor an error after the database
//! goes away shows the URL or the password.

mod common;

use common::*;
use visage_gallery::GalleryLocation;

#[test]
fn a_postgres_gallery_url_never_reaches_a_client() {
    let mut database = visage_lab::pgserver::start_for_test("serve-secrets");
    let url = database.create_database("g").unwrap();
    let secret_url = format!("{url}?password=hunter2&application_name=visage-serve-test");
    let server = TestServer::start("pg-secrets", |options| options.gallery = GalleryLocation::Postgres(secret_url.clone()));
    let agent = agent();
    let reply = post_photo(&agent, &format!("{}/v1/enrol?name=Barack%20Obama", server.url), &server.keys.write, &photo("obama_1.jpg")).unwrap();
    assert_eq!(reply.status, 201, "{}", reply.text());
    let address = url.trim_start_matches("postgres://postgres@").split('/').next().unwrap().to_string();
    let leaks = |text: &str| text.contains("hunter2") || text.contains("postgres://") || text.contains(&address);
    let health = get(&agent, &format!("{}/health", server.url), None);
    assert_eq!((health.status, health.json()["gallery"].as_str(), health.json()["identities"].as_u64()), (200, Some("postgresql"), Some(1)));
    assert!(!leaks(&health.text()), "{}", health.text());

    // The database goes away: errors say which part failed, not where it is.
    database.stop(true);
    let listed = get(&agent, &format!("{}/v1/identities", server.url), Some(&server.keys.read));
    assert_eq!(listed.status, 500, "{}", listed.text());
    assert!(listed.json()["error"].as_str().unwrap().starts_with("the gallery failed (error "), "{}", listed.text());
    assert!(!leaks(&listed.text()), "{}", listed.text());
    let health = get(&agent, &format!("{}/health", server.url), None);
    assert_eq!((health.status, health.json()["status"].as_str()), (503, Some("gallery unavailable")));
    assert!(!leaks(&health.text()), "{}", health.text());
    server.stop();
}
