//! The embedded store through its public API: the trait's operations,
//! persistence across reopen and compaction, and crash safety for real — a
//! child process enrolling in a loop is killed with SIGKILL, then the
//! gallery must open cleanly with every acknowledged enrolment in it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use visage_gallery::{DecisionThreshold, EmbeddedStore, FaceSample, GalleryError, GalleryStore, ImportConflict, OpenOptions, Refusal};

mod common;
use common::{config, embedding, face, temp_dir, DIM};

#[test]
fn enrol_search_list_remove_and_reopen() {
    let dir = temp_dir("basic");
    let store = EmbeddedStore::create(&dir, config()).unwrap();
    let outcome = store.enrol("alice", Some(serde_json::json!({"team": "red"})), &[face(1, 0, 8.0), face(1, 1, 6.0), face(1, 2, 3.0)]).unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.accepted, 2);
    assert_eq!(outcome.refused.len(), 1);
    assert_eq!(outcome.refused[0].source, "p1_f2.jpg");
    assert_eq!(outcome.refused[0].refusal, Refusal::LowQuality { magnitude: 3.0, min_magnitude: 5.0 });
    store.enrol("bob", None, &[face(2, 0, 9.0)]).unwrap();
    // A second enrolment adds to the identity.
    let again = store.enrol("alice", None, &[face(1, 3, 7.0)]).unwrap();
    assert!(!again.created);
    assert_eq!(again.identity.as_ref().unwrap().templates, 3);
    // Every face refused: nothing written, no identity.
    let refused = store.enrol("carol", None, &[face(3, 0, 1.0)]).unwrap();
    assert!(refused.identity.is_none() && refused.refused.len() == 1);
    assert!(matches!(store.get("carol"), Err(GalleryError::UnknownIdentity { .. })));

    // The search template is the magnitude-weighted pool of alice's faces.
    let alice = store.get("alice").unwrap();
    assert_eq!(alice.metadata, serde_json::json!({"team": "red"}));
    let mut pooled = [0.0f64; DIM];
    for (index, magnitude) in [(0, 8.0), (1, 6.0), (3, 7.0)] {
        for (p, e) in pooled.iter_mut().zip(embedding(1, index)) {
            *p += magnitude * f64::from(e);
        }
    }
    let norm = pooled.iter().map(|x| x * x).sum::<f64>().sqrt();
    let query = embedding(1, 9);
    let expected_score: f64 = pooled.iter().zip(&query).map(|(p, q)| p / norm * f64::from(*q)).sum();
    let hits = store.search(&[&query, &embedding(2, 5)], 5).unwrap();
    assert_eq!(hits[0].iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
    assert!((f64::from(hits[0][0].score) - expected_score).abs() < 1e-5, "{} vs {expected_score}", hits[0][0].score);
    assert_eq!(hits[1][0].name, "bob");
    let wrong = store.search(&[&[1.0, 0.0]], 3).unwrap_err();
    assert!(wrong.to_string().contains("query 0 has 2 dimensions, the gallery holds 16-dimensional"), "{wrong}");

    store.set_threshold(DecisionThreshold::manual(0.9).unwrap()).unwrap();
    let removed = store.remove("bob").unwrap();
    assert_eq!(removed.name, "bob");
    assert!(matches!(store.remove("bob"), Err(GalleryError::UnknownIdentity { .. })));
    let before = store.export().unwrap();
    drop(store);

    // Reopen: the log replays to the same gallery.
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(store.export().unwrap(), before);
    assert_eq!(store.config().unwrap().threshold.cosine, 0.9);
    // Compaction, then reopen from the snapshot alone.
    store.compact().unwrap();
    assert_eq!(std::fs::metadata(dir.join("wal.log")).unwrap().len(), 0);
    store.enrol("dave", None, &[face(4, 0, 9.0)]).unwrap();
    let after = store.export().unwrap();
    drop(store);
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(store.export().unwrap(), after);
    // Ids are not reused after a removal: bob was 2, dave is 3.
    assert_eq!(store.get("dave").unwrap().id, 3);
    assert_eq!(store.list().unwrap().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["alice", "dave"]);
}

#[test]
fn export_import_round_trip_and_conflicts() {
    let source_dir = temp_dir("export-source");
    let source = EmbeddedStore::create(&source_dir, config()).unwrap();
    source.enrol("alice", Some(serde_json::json!({"n": 1})), &[face(1, 0, 8.0), face(1, 1, 9.0)]).unwrap();
    source.enrol("bob", None, &[face(2, 0, 9.0)]).unwrap();
    let export = source.export().unwrap();
    let json = serde_json::to_string(&export).unwrap();
    let parsed: visage_gallery::GalleryExport = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, export);

    let target_dir = temp_dir("export-target");
    let target = EmbeddedStore::create(&target_dir, config()).unwrap();
    target.enrol("bob", None, &[face(2, 1, 9.0)]).unwrap();
    // Fail: nothing is written.
    assert!(matches!(target.import(&parsed, ImportConflict::Fail), Err(GalleryError::IdentityExists { .. })));
    assert_eq!(target.len().unwrap(), 1);
    let report = target.import(&parsed, ImportConflict::Merge).unwrap();
    assert_eq!((report.created, report.merged, report.skipped, report.templates), (1, 1, 0, 3));
    assert_eq!(target.get("bob").unwrap().templates.len(), 2);
    let alice = target.get("alice").unwrap();
    assert_eq!(alice.templates, source.get("alice").unwrap().templates);
    assert_eq!(alice.metadata, serde_json::json!({"n": 1}));
    let skip = target.import(&parsed, ImportConflict::Skip).unwrap();
    assert_eq!((skip.created, skip.skipped), (0, 2));

    // Another recogniser's export is refused.
    let mut foreign = parsed.clone();
    foreign.config.recognizer = "other".into();
    let err = target.import(&foreign, ImportConflict::Merge).unwrap_err().to_string();
    assert!(err.contains("templates of `other`"), "{err}");
}

#[test]
fn torn_tail_is_dropped_and_mid_log_damage_refused() {
    let dir = temp_dir("torn");
    let store = EmbeddedStore::create(&dir, config()).unwrap();
    for person in 0..5 {
        store.enrol(&format!("p{person}"), None, &[face(person, 0, 9.0)]).unwrap();
    }
    drop(store);
    let log = dir.join("wal.log");
    let intact = std::fs::read(&log).unwrap();

    // A half-written sixth record (what a crash mid-append leaves).
    let mut torn = intact.clone();
    torn.extend_from_slice(b"VGW1\x10\x00\x00\x00partial");
    std::fs::write(&log, &torn).unwrap();
    let read_only = EmbeddedStore::open(&dir, OpenOptions { read_only: true, ..OpenOptions::default() }).unwrap();
    assert_eq!(read_only.len().unwrap(), 5);
    assert!(read_only.enrol("x", None, &[face(9, 0, 9.0)]).unwrap_err().to_string().contains("opened read-only"));
    drop(read_only);
    assert_eq!(std::fs::read(&log).unwrap().len(), torn.len(), "a read-only open leaves the file alone");
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(store.len().unwrap(), 5);
    assert_eq!(std::fs::read(&log).unwrap(), intact, "the torn tail is cut off on a writable open");
    store.enrol("p5", None, &[face(5, 0, 9.0)]).unwrap();
    drop(store);
    assert_eq!(EmbeddedStore::open(&dir, OpenOptions::default()).unwrap().len().unwrap(), 6);

    // The log cut anywhere inside its last record: the first records survive.
    let bytes = std::fs::read(&log).unwrap();
    for cut in [bytes.len() - 1, bytes.len() - 30, intact.len() + 3] {
        std::fs::write(&log, &bytes[..cut]).unwrap();
        assert_eq!(EmbeddedStore::open(&dir, OpenOptions::default()).unwrap().len().unwrap(), 5, "cut at {cut}");
        std::fs::write(&log, &bytes).unwrap();
    }

    // A flipped byte in the second record with later records intact: refused, named.
    let mut damaged = bytes.clone();
    let second_record = intact.len() / 5 + 40;
    damaged[second_record] ^= 0x20;
    std::fs::write(&log, &damaged).unwrap();
    let err = EmbeddedStore::open(&dir, OpenOptions::default()).err().expect("damage must be refused").to_string();
    assert!(err.contains("wal.log: the record at byte") && err.contains("damage inside the log"), "{err}");

    // A damaged snapshot is refused too.
    std::fs::write(&log, &bytes).unwrap();
    EmbeddedStore::open(&dir, OpenOptions::default()).unwrap().compact().unwrap();
    let snapshot = dir.join("snapshot.jsonl");
    let mut text = std::fs::read_to_string(&snapshot).unwrap();
    text = text.replacen("\"p3\"", "\"q3\"", 1);
    std::fs::write(&snapshot, text).unwrap();
    let err = EmbeddedStore::open(&dir, OpenOptions::default()).err().expect("checksum").to_string();
    assert!(err.contains("snapshot.jsonl: trailer says 6 identities with CRC-32"), "{err}");
}

#[test]
fn not_a_gallery_is_named() {
    let dir = temp_dir("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = EmbeddedStore::open(&dir, OpenOptions::default()).err().unwrap();
    assert!(matches!(err, GalleryError::NotAGallery { .. }));
    assert!(err.to_string().contains("not a visage gallery (no gallery.json)"));
}

// ---- crash safety: SIGKILL of a writing process ----

const CHILD_ENV: &str = "VISAGE_GALLERY_CRASH_CHILD";

/// The writer run in a child process: enrols person after person (each a
/// second face every third time, so identities also grow), compacting
/// every few kilobytes, and prints `ACK <person> <faces>` after each
/// enrolment returned. Does nothing unless started by the test below.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let store = EmbeddedStore::open(Path::new(&dir), OpenOptions { read_only: false, compact_after_bytes: 4096, ..OpenOptions::default() }).unwrap();
    let first = store.len().unwrap();
    let mut stdout = std::io::stdout();
    for person in first.. {
        let faces: Vec<FaceSample> = (0..1 + person % 3).map(|f| face(person, f, 9.0)).collect();
        store.enrol(&format!("person-{person}"), Some(serde_json::json!({"n": person})), &faces).unwrap();
        writeln!(stdout, "ACK {person} {}", faces.len()).unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn acknowledged_enrolments_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = temp_dir("crash");
    EmbeddedStore::create(&dir, config()).unwrap();
    let mut acknowledged: BTreeMap<usize, usize> = BTreeMap::new();
    // Kill after different numbers of acknowledgements, so the kill lands
    // in different places: mid-append, mid-fsync, mid-compaction.
    for kill_after in [7usize, 40, 3, 90, 25] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let record = |line: String, acknowledged: &mut BTreeMap<usize, usize>| {
            // libtest may print "test crash_child ... " before the first line.
            let Some(start) = line.find("ACK ") else { return false };
            let rest = &line[start + 4..];
            let (person, faces) = rest.split_once(' ').unwrap();
            acknowledged.insert(person.parse().unwrap(), faces.parse().unwrap());
            true
        };
        let mut seen = 0;
        while seen < kill_after {
            let line = lines.next().expect("child ended early").unwrap();
            seen += usize::from(record(line, &mut acknowledged));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Acknowledgements the child wrote before it died but we had not read yet.
        for line in lines {
            record(line.unwrap(), &mut acknowledged);
        }

        let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
        for (&person, &faces) in &acknowledged {
            let identity = store.get(&format!("person-{person}")).unwrap_or_else(|e| panic!("acknowledged person-{person} lost: {e}"));
            assert_eq!(identity.templates.len(), faces);
            assert_eq!(identity.metadata, serde_json::json!({"n": person}));
            assert_eq!(identity.templates[0].embedding, embedding(person, 0));
        }
        // At most the one enrolment in flight at the kill may be there beyond the acknowledged ones.
        let extra = store.len().unwrap() - acknowledged.len();
        assert!(
            extra <= 1,
            "{extra} unacknowledged identities after kill_after {kill_after}: acknowledged {:?}, stored {:?}",
            acknowledged.keys().collect::<Vec<_>>(),
            store.list().unwrap().iter().map(|s| s.name.clone()).collect::<Vec<_>>()
        );
        if extra == 1 {
            let person = acknowledged.len();
            acknowledged.insert(person, 1 + person % 3);
        }
    }
    assert!(acknowledged.len() >= 165, "{} acknowledged", acknowledged.len());
    assert!(dir.join("snapshot.jsonl").is_file(), "compaction ran during the test");
}

// ---- what enrol accepts must read back; nothing may brick a gallery ----

fn nested(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

#[test]
fn deep_metadata_is_refused_at_enrolment_and_the_gallery_stays_usable() {
    let dir = temp_dir("deep-metadata");
    let store = EmbeddedStore::create(&dir, config()).unwrap();
    // What `--metadata '[[[…127 levels…]]]'` parses to.
    let deep: serde_json::Value = serde_json::from_str(&nested(127)).unwrap();
    let err = store.enrol("mallory", Some(deep), &[face(1, 0, 9.0)]).unwrap_err();
    assert!(err.is_bad_input(), "{err:?}");
    assert_eq!(err.to_string(), "metadata: nested more than 32 levels deep (arrays and objects); flatten it");
    let big = serde_json::json!({ "notes": "x".repeat(70_000) });
    assert!(store.enrol("mallory", Some(big), &[face(1, 0, 9.0)]).unwrap_err().to_string().starts_with("metadata: 70012 bytes as JSON"));
    assert!(store.is_empty().unwrap(), "a refused enrolment writes nothing");
    // The deepest metadata allowed is stored and reads back after reopen and compaction.
    let deepest: serde_json::Value = serde_json::from_str(&nested(32)).unwrap();
    store.enrol("alice", Some(deepest.clone()), &[face(1, 0, 9.0)]).unwrap();
    drop(store);
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(store.get("alice").unwrap().metadata, deepest);
    store.compact().unwrap();
    drop(store);
    let store = EmbeddedStore::open(&dir, OpenOptions { read_only: true, ..OpenOptions::default() }).unwrap();
    assert_eq!(store.get("alice").unwrap().metadata, deepest);
    // An export holding it imports again; metadata too deep in an export is refused by name.
    let mut export = store.export().unwrap();
    let target = EmbeddedStore::create(&temp_dir("deep-metadata-target"), config()).unwrap();
    assert_eq!(target.import(&export, ImportConflict::Fail).unwrap().created, 1);
    export.identities[0].name = "alice2".into();
    export.identities[0].metadata = serde_json::from_str(&nested(40)).unwrap();
    let err = target.import(&export, ImportConflict::Fail).unwrap_err();
    assert!(err.is_bad_input() && err.to_string().starts_with("import: metadata of `alice2`: nested more than 32"), "{err}");
}

/// A log record as an older visage wrote it, with `metadata` given as JSON text.
fn enrol_record(seq: u64, id: u64, name: &str, metadata_json: &str, person: usize) -> Vec<u8> {
    let template =
        serde_json::to_string(&visage_gallery::Template { embedding: embedding(person, 0), magnitude: 9.0, source: "old.jpg".into() }).unwrap();
    let payload = format!(r#"[{{"op":"enrol","id":{id},"name":"{name}","metadata":{metadata_json},"templates":[{template}]}}]"#);
    visage_gallery::embedded::wal::encode(seq, payload.as_bytes())
}

#[test]
fn a_gallery_bricked_by_an_older_version_opens_with_its_metadata() {
    // Before metadata was bounded, `enrol --metadata` with 127 levels was
    // acknowledged and the record (3 levels more) no longer parsed with
    // serde_json's limit of 128: every command failed.
    let dir = temp_dir("bricked");
    drop(EmbeddedStore::create(&dir, config()).unwrap());
    let mut log = enrol_record(1, 1, "deep", &nested(127), 1);
    log.extend(enrol_record(2, 2, "after", "null", 2));
    std::fs::write(dir.join("wal.log"), &log).unwrap();
    let first_len = u32::from_le_bytes(log[4..8].try_into().unwrap()) as usize;
    let record_json = &log[20..20 + first_len];
    assert!(serde_json::from_slice::<serde_json::Value>(record_json).is_err_and(|e| e.to_string().starts_with("recursion limit exceeded")));

    let store = EmbeddedStore::open(&dir, OpenOptions { read_only: true, ..OpenOptions::default() }).unwrap();
    let expected: serde_json::Value = visage_gallery::json::parse_value(nested(127).as_bytes(), 200).unwrap();
    assert_eq!(store.get("deep").unwrap().metadata, expected);
    assert_eq!(store.list().unwrap().len(), 2);
    drop(store);
    // Writable: compaction puts it into the snapshot, which reads back too.
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    store.compact().unwrap();
    store.enrol("new", None, &[face(3, 0, 9.0)]).unwrap();
    let export = store.export().unwrap();
    drop(store);
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(store.export().unwrap(), export);
    // Its export, written and read back as a file, parses (serde_json alone refuses it).
    let text = serde_json::to_vec(&export).unwrap();
    assert!(serde_json::from_slice::<visage_gallery::GalleryExport>(&text).is_err());
    assert_eq!(visage_gallery::GalleryExport::from_json(&text).unwrap(), export);
    // Re-enrolling the identity with bounded metadata replaces the deep one.
    store.enrol("deep", Some(serde_json::json!({"fixed": true})), &[face(1, 1, 9.0)]).unwrap();
    assert_eq!(store.get("deep").unwrap().metadata, serde_json::json!({"fixed": true}));
}

#[test]
fn a_log_nested_deeper_than_any_writer_wrote_is_refused_by_name() {
    let dir = temp_dir("too-deep");
    drop(EmbeddedStore::create(&dir, config()).unwrap());
    let mut log = enrol_record(1, 1, "ok", "null", 1);
    log.extend(enrol_record(2, 2, "hostile", &nested(100_000), 2));
    std::fs::write(dir.join("wal.log"), &log).unwrap();
    let err = EmbeddedStore::open(&dir, OpenOptions::default()).err().expect("refused").to_string();
    assert!(err.contains("wal.log: record seq 2: nested deeper than 256 levels at byte"), "{err}");
}

#[cfg(unix)]
#[test]
fn gallery_files_and_directories_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = temp_dir("modes");
    let dir = parent.join("nested").join("gallery");
    let store = EmbeddedStore::create(&dir, config()).unwrap();
    store.enrol("alice", None, &[face(1, 0, 9.0)]).unwrap();
    store.compact().unwrap();
    store.enrol("bob", None, &[face(2, 0, 9.0)]).unwrap();
    drop(store);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for created in [&parent, &parent.join("nested"), &dir] {
        assert_eq!(mode(created), 0o700, "{}", created.display());
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["gallery.json", "lock", "snapshot.jsonl", "wal.log"]);
    for file in &files {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    // A gallery left world-readable by an older version is made owner-only by its next writer.
    for file in &files {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(EmbeddedStore::open(&dir, OpenOptions { read_only: true, ..OpenOptions::default() }).unwrap());
    assert_eq!(mode(&dir), 0o755, "a read-only open changes nothing");
    drop(EmbeddedStore::open(&dir, OpenOptions::default()).unwrap());
    assert_eq!(mode(&dir), 0o700);
    for file in &files {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file} after reopening");
    }
}

#[test]
fn a_held_lock_fails_after_the_timeout_naming_the_holder() {
    let dir = temp_dir("locked");
    let writer = EmbeddedStore::create(&dir, config()).unwrap();
    let short = Duration::from_millis(300);
    for read_only in [false, true] {
        let started = Instant::now();
        let err =
            EmbeddedStore::open(&dir, OpenOptions { read_only, lock_timeout: short, ..OpenOptions::default() }).err().expect("the lock is held");
        let waited = started.elapsed();
        assert!(waited >= short && waited < Duration::from_secs(3), "waited {waited:?}");
        match &err {
            GalleryError::Locked { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        assert!(!err.is_bad_input());
        let message = err.to_string();
        assert!(message.contains(&format!("the gallery is locked by another process (pid {}); gave up after 0 s", std::process::id())), "{message}");
    }
    drop(writer);
    // Readers share the lock; the writer waits for them only as long as allowed.
    let reader = EmbeddedStore::open(&dir, OpenOptions { read_only: true, lock_timeout: short, ..OpenOptions::default() }).unwrap();
    let second_reader = EmbeddedStore::open(&dir, OpenOptions { read_only: true, lock_timeout: short, ..OpenOptions::default() }).unwrap();
    assert!(matches!(EmbeddedStore::open(&dir, OpenOptions { lock_timeout: short, ..OpenOptions::default() }), Err(GalleryError::Locked { .. })));
    drop((reader, second_reader));
    EmbeddedStore::open(&dir, OpenOptions { lock_timeout: short, ..OpenOptions::default() }).unwrap();
}

#[test]
fn a_retried_keyed_enrolment_enrols_once() {
    let dir = temp_dir("idempotent");
    let store = EmbeddedStore::create(&dir, config()).unwrap();
    let faces = [face(1, 0, 9.0), face(1, 1, 2.0)];
    let first = store.enrol_idempotent(Some("6f1c2a"), "alice", Some(serde_json::json!({"n": 1})), &faces).unwrap();
    assert!(first.created && first.accepted == 1 && first.refused.len() == 1);
    let log_len = std::fs::metadata(dir.join("wal.log")).unwrap().len();
    let retry = store.enrol_idempotent(Some("6f1c2a"), "alice", Some(serde_json::json!({"n": 1})), &faces).unwrap();
    assert_eq!(retry, first, "the retry gets the first answer");
    assert_eq!(std::fs::metadata(dir.join("wal.log")).unwrap().len(), log_len, "and writes nothing");
    assert_eq!(store.get("alice").unwrap().templates.len(), 1);
    // A retry runs the model again: vectors a little off are still the same request.
    let mut recomputed = faces.clone();
    recomputed[0].magnitude += 1e-4;
    recomputed[0].embedding[0] += 1e-7;
    assert_eq!(store.enrol_idempotent(Some("6f1c2a"), "alice", Some(serde_json::json!({"n": 1})), &recomputed).unwrap(), first);
    // The same key for another request is refused; a new key enrols.
    let err = store.enrol_idempotent(Some("6f1c2a"), "alice", None, &[face(1, 2, 9.0)]).unwrap_err();
    assert!(err.is_bad_input() && err.to_string().starts_with("Idempotency-Key: `6f1c2a` was already used for a different enrolment"), "{err}");
    assert!(store.enrol_idempotent(Some("bad key"), "alice", None, &faces).unwrap_err().to_string().starts_with("Idempotency-Key: must be"));
    assert_eq!(store.enrol_idempotent(Some("7d"), "alice", None, &[face(1, 2, 9.0)]).unwrap().identity.unwrap().templates, 2);
    // Keys survive a reopen (from the log) and a compaction (from the snapshot).
    drop(store);
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    let again = store.enrol_idempotent(Some("6f1c2a"), "alice", Some(serde_json::json!({"n": 1})), &faces).unwrap();
    assert_eq!((again.created, again.accepted, again.identity.unwrap().templates), (true, 1, 2));
    store.compact().unwrap();
    drop(store);
    let store = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    store.enrol_idempotent(Some("7d"), "alice", None, &[face(1, 2, 9.0)]).unwrap();
    assert_eq!(store.get("alice").unwrap().templates.len(), 2, "no second enrolment after compaction");
}

#[test]
fn counters_near_overflow_in_the_files_are_refused_not_wrapped() {
    let dir = temp_dir("overflow");
    drop(EmbeddedStore::create(&dir, config()).unwrap());
    for (seq, id, expected) in [
        (1, u64::MAX, "record seq 1: identity id 18446744073709551615 is out of range"),
        (u64::MAX, 1, "record seq 18446744073709551615 is out of range"),
    ] {
        std::fs::write(dir.join("wal.log"), enrol_record(seq, id, "x", "null", 1)).unwrap();
        let err = EmbeddedStore::open(&dir, OpenOptions::default()).err().expect("refused").to_string();
        assert!(err.contains("wal.log: ") && err.ends_with(expected), "{err}");
    }
}

#[test]
fn a_snapshot_naming_one_identity_twice_is_refused() {
    use visage_gallery::embedded::{fs::RealFs, snapshot};
    let dir = temp_dir("duplicate-snapshot");
    drop(EmbeddedStore::create(&dir, config()).unwrap());
    let template = visage_gallery::Template { embedding: embedding(1, 0), magnitude: 9.0, source: "a.jpg".into() };
    let identity = |id| visage_gallery::Identity { id, name: "same".into(), metadata: serde_json::Value::Null, templates: vec![template.clone()] };
    let header =
        snapshot::SnapshotHeader { format: snapshot::SNAPSHOT_FORMAT.into(), last_seq: 0, next_id: 3, config: config(), idempotency: Vec::new() };
    snapshot::write_snapshot(&RealFs, &dir.join("snapshot.jsonl"), &header, [identity(1), identity(2)].iter()).unwrap();
    let err = EmbeddedStore::open(&dir, OpenOptions::default()).err().expect("refused").to_string();
    assert!(err.ends_with("snapshot.jsonl: identity 2 `same` appears twice"), "{err}");
}
