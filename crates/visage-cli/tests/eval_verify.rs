//! `visage eval verify` and the `.bin` reader against the NumPy
//! re-statement of insightface's protocol and files written by real Python
//! `pickle` (protocols 2 and 4) — scripts/reference/eval_fixtures.py.

mod common;
use common::*;
use visage_eval::io::verification_bin::read_verification_bin;

#[test]
fn bin_reader_reads_python_pickles() {
    let want = read_json(&fixture("verify_bin.expected.json"));
    for proto in [2, 4] {
        let set = read_verification_bin(&fixture(&format!("verify_p{proto}.bin"))).unwrap();
        assert_eq!(set.images.len() as u64, want["n_images"].as_u64().unwrap());
        let lengths: Vec<u64> = set.images.iter().map(|b| b.len() as u64).collect();
        let want_lengths: Vec<u64> = want["lengths"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(lengths, want_lengths, "protocol {proto}");
        for (img, first) in set.images.iter().zip(want["first_bytes"].as_array().unwrap()) {
            let first: Vec<u8> = first.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
            assert_eq!(&img[..first.len()], first.as_slice());
        }
        let issame: Vec<bool> = want["issame"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        assert_eq!(set.issame, issame);
    }
}

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
