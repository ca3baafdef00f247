//! `visage eval verify` against the NumPy re-statement of insightface's
//! protocol, on `.bin` sets written by real Python `pickle` (protocols 2
//! and 4) and on a pair list — scripts/reference/eval_fixtures.py — through
//! the `visage` binary. (The `.bin` reader itself: visage-eval's
//! tests/library_reference.rs.)

mod eval_common;
use eval_common::*;

#[test]
fn ten_fold_accuracy_matches_reference_from_bin_and_pairs() {
    let want = read_json(&fixture("verify.expected.json"));
    let emb = fixture("verify_emb.npy");
    let flip = fixture("verify_emb_flip.npy");
    for source in [["--bin", "verify_p4.bin"], ["--pairs", "verify_pairs.txt"]] {
        let got = json(&[
            "eval",
            "verify",
            "--embeddings",
            emb.to_str().unwrap(),
            "--flip-embeddings",
            flip.to_str().unwrap(),
            source[0],
            fixture(source[1]).to_str().unwrap(),
            "--json",
        ]);
        assert_json_close(&got, &want, 1e-12, source[1]);
    }
}

#[test]
fn verify_bad_inputs_exit_2() {
    let err = run(&["eval", "verify", "--embeddings", fixture("kmeans_x.npy").to_str().unwrap(), "--bin", fixture("roc_ties.csv").to_str().unwrap()])
        .unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("roc_ties.csv") && err.1.contains("pickle"), "{}", err.1);
    // 600 images in the set, 260 rows of embeddings
    let err =
        run(&["eval", "verify", "--embeddings", fixture("kmeans_x.npy").to_str().unwrap(), "--bin", fixture("verify_p2.bin").to_str().unwrap()])
            .unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("rows"), "{}", err.1);
}
