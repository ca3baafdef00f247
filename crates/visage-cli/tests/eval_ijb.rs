//! `visage eval ijb` against the NumPy template pooling and scikit-learn ROC
//! of scripts/reference/eval_fixtures.py (tiny IJB-style meta layout),
//! through the `visage` binary.

mod eval_common;
use eval_common::*;

fn ijb(extra: &[&str]) -> serde_json::Value {
    let meta = fixture("ijb/meta");
    let feats = fixture("ijb/features.npy");
    let mut args = vec!["eval", "ijb", "--meta", meta.to_str().unwrap(), "--features", feats.to_str().unwrap(), "--far", "1e-3,1e-2,1e-1", "--json"];
    args.extend_from_slice(extra);
    json(&args)
}

#[test]
fn one_to_one_matches_reference_for_each_pooling() {
    let want = read_json(&fixture("ijb.expected.json"));
    assert_json_close(&ijb(&[])["verification"], &want["plain"], 1e-9, "plain");
    assert_json_close(&ijb(&["--norm-score"])["verification"], &want["norm_score"], 1e-9, "norm_score");
    assert_json_close(&ijb(&["--detector-score"])["verification"], &want["detector_score"], 1e-9, "detector_score");
}

#[test]
fn one_to_n_matches_reference() {
    let want = read_json(&fixture("ijb.expected.json"));
    let (g, p) = (fixture("ijb/meta/tiny_1N_gallery.csv"), fixture("ijb/meta/tiny_1N_probe.csv"));
    let got = ijb(&["--gallery", g.to_str().unwrap(), "--probe", p.to_str().unwrap(), "--fpir", "0.01,0.1"]);
    assert_json_close(&got["identification"], &want["identification"], 1e-9, "identification");
}

#[test]
fn feature_rows_must_match_faces() {
    let meta = fixture("ijb/meta");
    let err = run(&["eval", "ijb", "--meta", meta.to_str().unwrap(), "--features", fixture("kmeans_x.npy").to_str().unwrap()]).unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("kmeans_x.npy") && err.1.contains("faces"), "{}", err.1);
}
