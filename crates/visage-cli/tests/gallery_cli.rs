//! `visage gallery …` through the real binary on the bundled photos
//! (examples/photos) and models: the contract users' scripts rely on.

mod common;

use common::{json, ok, photo, visage};
use serde_json::Value;

fn scratch(name: &str) -> std::path::PathBuf {
    common::scratch("gallery-cli", name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Enrols obama_1..3 and biden_1 into a new gallery.
fn obama_and_biden_gallery(name: &str) -> String {
    let gallery = scratch(name).display().to_string();
    ok(visage(&["gallery", "enrol", "obama", &photo("obama_1.jpg"), &photo("obama_2.jpg"), &photo("obama_3.jpg"), "--gallery", &gallery]));
    ok(visage(&["gallery", "enrol", "biden", &photo("biden_1.jpg"), "--gallery", &gallery]));
    gallery
}

/// (decision, top match, top score) per face, ordered by the box's left edge.
fn decisions(search: &Value) -> Vec<(Option<String>, String, f64, f64)> {
    let mut faces: Vec<(Option<String>, String, f64, f64)> = search["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|face| {
            let top = &face["matches"][0];
            (
                face["decision"].as_str().map(str::to_string),
                top["identity"].as_str().unwrap().to_string(),
                top["score"].as_f64().unwrap(),
                face["box"][0].as_f64().unwrap(),
            )
        })
        .collect();
    faces.sort_by(|a, b| a.3.total_cmp(&b.3));
    faces
}

#[test]
fn enrol_then_search_finds_both_people_with_the_right_decisions() {
    let gallery = obama_and_biden_gallery("both");
    let result = json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", &gallery, "-k", "5", "--json"]));
    let faces = result["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 3, "YuNet finds three faces in obama_and_biden.jpg: {result}");
    for face in faces {
        let keys: Vec<&str> = face.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["box", "decision", "matches", "quality"], "exactly the contract's fields (sorted by serde_json)");
        assert_eq!(face["box"].as_array().unwrap().len(), 4);
        assert!(face["quality"].as_f64().unwrap() > 0.0);
        let matches = face["matches"].as_array().unwrap();
        assert_eq!(matches.len(), 2, "two identities enrolled, k = 5");
        assert!(matches[0]["score"].as_f64() >= matches[1]["score"].as_f64());
        assert_eq!(matches[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["identity", "score"]);
    }
    // Left to right: Biden (x ≈ 245), Obama (x ≈ 366), and a small face in
    // the background (x ≈ 519) that is neither, below the threshold 0.34.
    let found = decisions(&result);
    assert_eq!(found[0].0.as_deref(), Some("biden"), "{found:?}");
    assert_eq!(found[1].0.as_deref(), Some("obama"), "{found:?}");
    assert_eq!(found[2].0, None, "{found:?}");
    assert!(found[0].2 >= 0.34 && found[1].2 >= 0.34 && found[2].2 < 0.34, "{found:?}");

    // The score is the cosine to the pooled template: with one enrolled
    // photo it must equal `visage verify`'s cosine between that photo and
    // the largest face of the probe (Obama's), an independent code path.
    let single = scratch("single").display().to_string();
    ok(visage(&["gallery", "enrol", "obama2", &photo("obama_2.jpg"), "--gallery", &single]));
    let search = json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", &single, "--json"]));
    let verify = json(visage(&["verify", &photo("obama_2.jpg"), &photo("obama_and_biden.jpg"), "--json"]));
    let obama_score = decisions(&search)[1].2;
    assert!((obama_score - verify["cosine"].as_f64().unwrap()).abs() < 1e-5, "{obama_score} vs {verify}");
    // A photo searched against itself: cosine 1.
    let own = json(visage(&["gallery", "search", &photo("obama_2.jpg"), "--gallery", &single, "--json"]));
    assert!((own["faces"][0]["matches"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-5, "{own}");
}

#[test]
fn photos_without_a_usable_face_are_refused_with_a_reason() {
    let blank = scratch("blank.png");
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128])).save(&blank).unwrap();
    let not_an_image = scratch("not_an_image.jpg");
    std::fs::write(&not_an_image, b"this is text, not a JPEG").unwrap();
    let (blank, not_an_image) = (blank.display().to_string(), not_an_image.display().to_string());
    let gallery = scratch("refusals").display().to_string();

    // Nothing usable: exit 2, a reason per photo, no gallery created.
    let out = visage(&["gallery", "enrol", "nobody", &blank, &not_an_image, "--gallery", &gallery]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("refused {blank}: no face found")), "{stderr}");
    assert!(stderr.contains(&format!("refused {not_an_image}: unreadable")), "{stderr}");
    assert!(!std::path::Path::new(&gallery).join("gallery.json").exists());

    // Mixed: the good photo is enrolled, the blank one refused (exit 0; 2 with --strict).
    let out = visage(&["gallery", "enrol", "obama", &photo("obama_4.jpg"), &blank, "--gallery", &gallery, "--json"]);
    let outcome = json(out);
    assert_eq!(outcome["enrolled"].as_array().unwrap().len(), 1);
    assert_eq!(outcome["refused"][0]["source"], blank.as_str());
    assert_eq!(outcome["refused"][0]["reason"], "no_face");
    let out = visage(&["gallery", "enrol", "obama", &photo("obama_5.jpg"), &blank, "--gallery", &gallery, "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // A quality floor set at creation: biden_1's face (‖x‖ ≈ 6.9) is refused, obama_1's (≈ 8.9) is not.
    let strict_gallery = scratch("min-quality").display().to_string();
    let out = visage(&[
        "gallery",
        "enrol",
        "x",
        &photo("obama_1.jpg"),
        &photo("biden_1.jpg"),
        "--gallery",
        &strict_gallery,
        "--min-quality",
        "8",
        "--json",
    ]);
    let outcome = json(out);
    assert_eq!(outcome["enrolled"][0]["source"], photo("obama_1.jpg").as_str());
    assert_eq!(outcome["refused"][0]["reason"], "low_quality");
    assert_eq!(outcome["refused"][0]["min_magnitude"], 8.0);
    let magnitude = outcome["refused"][0]["magnitude"].as_f64().unwrap();
    assert!((6.5..7.5).contains(&magnitude), "{outcome}");

    // A search photo without a face: no faces, not an error.
    let search = json(visage(&["gallery", "search", &blank, "--gallery", &gallery, "--json"]));
    assert_eq!(search, serde_json::json!({"faces": []}));
}

#[test]
fn list_remove_export_import_round_trip() {
    let gallery = obama_and_biden_gallery("round-trip");
    let listed = json(visage(&["gallery", "list", "--gallery", &gallery, "--json"]));
    let identities = listed["identities"].as_array().unwrap();
    let names: Vec<(&str, u64)> = identities.iter().map(|i| (i["name"].as_str().unwrap(), i["templates"].as_u64().unwrap())).collect();
    assert_eq!(names, [("biden", 1), ("obama", 3)]);
    assert_eq!(listed["config"]["recognizer"], "arcface_mobileface_128d_paddle_fastprelu");
    assert_eq!(listed["config"]["embedding_size"], 128);
    // The default recogniser's same_person_cosine (docs/accuracy.md).
    assert_eq!(listed["config"]["threshold"]["cosine"].as_f64().unwrap() as f32, 0.34);

    let export = scratch("export.json").display().to_string();
    ok(visage(&["gallery", "export", "--gallery", &gallery, "--out", &export]));
    let copy = scratch("copy").display().to_string();
    ok(visage(&["gallery", "import", &export, "--gallery", &copy]));
    let copied = json(visage(&["gallery", "list", "--gallery", &copy, "--json"]));
    assert_eq!(copied, listed, "the imported gallery lists the same identities and settings");
    let probe = photo("obama_and_biden.jpg");
    let original = json(visage(&["gallery", "search", &probe, "--gallery", &gallery, "--json"]));
    assert_eq!(json(visage(&["gallery", "search", &probe, "--gallery", &copy, "--json"])), original);

    // Importing the same names again: refused by default, naming the file; skipped on request.
    let out = visage(&["gallery", "import", &export, "--gallery", &copy]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("export.json: identity `obama` already exists"), "{}", text(&out.stderr));
    assert!(ok(visage(&["gallery", "import", &export, "--gallery", &copy, "--on-conflict", "skip"])).contains("2 skipped"));

    // Remove: Biden's face is then nobody's.
    assert!(ok(visage(&["gallery", "remove", "biden", "--gallery", &copy])).contains("removed biden (1 templates)"));
    let out = visage(&["gallery", "remove", "biden", "--gallery", &copy]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no identity named `biden`"));
    let after = decisions(&json(visage(&["gallery", "search", &probe, "--gallery", &copy, "--json"])));
    assert_eq!((after[0].0.as_deref(), after[1].0.as_deref()), (None, Some("obama")), "{after:?}");
}

#[test]
fn calibrate_sets_the_decision_threshold() {
    let gallery = obama_and_biden_gallery("calibrate");
    // 1000 impostor scores k/2000 (0 … 0.4995) and three genuine ones. FAR
    // 1e-2 allows 10 false accepts: the lowest threshold with at most 10
    // impostors at or above it is the 10th highest impostor, 0.4950.
    let scores = scratch("scores.csv");
    let mut csv = String::from("score,label\n0.9,1\n0.8,1\n0.45,1\n");
    for k in 0..1000 {
        csv.push_str(&format!("{},0\n", f64::from(k) / 2000.0));
    }
    std::fs::write(&scores, csv).unwrap();
    let out = ok(visage(&["gallery", "calibrate", "--gallery", &gallery, "--scores", scores.to_str().unwrap(), "--far", "1e-2"]));
    assert!(out.contains("threshold 0.495 (FAR 1.00e-2 ≤ 1e-2, TAR 0.6667"), "{out}");
    let listed = json(visage(&["gallery", "list", "--gallery", &gallery, "--json"]));
    assert_eq!(listed["config"]["threshold"]["origin"]["kind"], "calibrated");
    assert_eq!(listed["config"]["threshold"]["cosine"].as_f64().unwrap() as f32, 0.495);

    // A threshold above Biden's score (≈ 0.66) and below Obama's (≈ 0.85).
    ok(visage(&["gallery", "calibrate", "--gallery", &gallery, "--threshold", "0.75"]));
    let found = decisions(&json(visage(&["gallery", "search", &photo("obama_and_biden.jpg"), "--gallery", &gallery, "--json"])));
    assert_eq!((found[0].0.as_deref(), found[1].0.as_deref()), (None, Some("obama")), "{found:?}");

    // Unmeasurable targets and bad files are refused.
    let out = visage(&["gallery", "calibrate", "--gallery", &gallery, "--scores", scores.to_str().unwrap(), "--far", "1e-4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("needs at least 10000 impostor pairs"), "{}", text(&out.stderr));
}

#[test]
fn bad_locations_and_recognisers_are_named() {
    // PostgreSQL locations: a malformed URL is bad input (2), a server that
    // does not answer is the machine's failure (1); both name the URL, never its password.
    let out = visage(&["gallery", "list", "--gallery", "postgres://ann:secret@localhost:notaport/visage"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a PostgreSQL connection URL") && stderr.contains("ann:***@") && !stderr.contains("secret"), "{stderr}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = visage(&["gallery", "list", "--gallery", &format!("postgres://visage@127.0.0.1:{closed}/visage")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach the PostgreSQL server"), "{}", text(&out.stderr));
    let missing = scratch("missing").display().to_string();
    let out = visage(&["gallery", "search", &photo("obama_1.jpg"), "--gallery", &missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a visage gallery"), "{}", text(&out.stderr));
    let gallery = scratch("recogniser").display().to_string();
    ok(visage(&["gallery", "enrol", "obama", &photo("obama_1.jpg"), "--gallery", &gallery]));
    let out = visage(&["gallery", "search", &photo("obama_1.jpg"), "--gallery", &gallery, "--recognizer", "mobilefacenet_128d_pixamatch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("holds templates of recogniser `arcface_mobileface_128d_paddle_fastprelu`"), "{}", text(&out.stderr));
}

/// One enrolment with metadata nested 127 levels deep used to be acknowledged
/// and then make every later command on the gallery fail ("recursion limit
/// exceeded"). Now it is refused with exit 2 naming the field, nothing is
/// written, and the gallery keeps working.
#[test]
fn deeply_nested_metadata_is_refused_and_does_not_brick_the_gallery() {
    let gallery = obama_and_biden_gallery("deep-metadata");
    let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
    let out = visage(&["gallery", "enrol", "carol", &photo("biden_2.jpg"), "--gallery", &gallery, "--metadata", &deep]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("metadata") && stderr.contains("deep"), "the refusal names the field and the reason: {stderr}");
    // Still readable and writable; the refused identity is absent.
    let listed = ok(visage(&["gallery", "list", "--gallery", &gallery]));
    assert!(listed.contains("obama") && listed.contains("biden") && !listed.contains("carol"), "{listed}");
    let shallow = format!("{}1{}", "[".repeat(20), "]".repeat(20));
    ok(visage(&["gallery", "enrol", "carol", &photo("biden_2.jpg"), "--gallery", &gallery, "--metadata", &shallow]));
    assert!(ok(visage(&["gallery", "list", "--gallery", &gallery])).contains("carol"));
}

/// `visage serve` holds the embedded gallery's lock while it runs; a command
/// on the same gallery says so and gives up (exit 1, an environment problem)
/// instead of waiting silently forever.
#[test]
fn a_command_meeting_the_lock_of_visage_serve_says_so_and_gives_up() {
    let gallery = obama_and_biden_gallery("locked");
    let (child, _address) = common::start_serve(&["--gallery", &gallery]);
    let started = std::time::Instant::now();
    let out = visage(&["gallery", "enrol", "carol", &photo("biden_2.jpg"), "--gallery", &gallery]);
    let waited = started.elapsed();
    common::stop_serve(child);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("locked by another process") && stderr.contains("visage serve"), "{stderr}");
    assert!(waited < std::time::Duration::from_secs(60), "gave up only after {waited:?}");
    // Once the service is gone the same command works.
    ok(visage(&["gallery", "enrol", "carol", &photo("biden_2.jpg"), "--gallery", &gallery]));
}
