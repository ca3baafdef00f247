//! visage-eval's functions (no command line) against the reference
//! fixtures of scripts/reference/eval_fixtures.py: the `.bin` reader on files
//! written by real Python `pickle` (protocols 2 and 4), and k-means'
//! objective against scikit-learn's `KMeans` inertia. The same fixtures
//! drive the `visage eval` / `visage cluster` tests in crates/visage-cli.

use std::path::{Path, PathBuf};

use visage_eval::cluster::{kmeans, KmeansConfig, Metric};
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::verification_bin::read_verification_bin;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want}");
}

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
fn kmeans_inertia_equals_scikit_learn() {
    let x = read_embeddings(&fixture("kmeans_x.npy")).unwrap();
    let fit = kmeans(&x, &KmeansConfig::new(12, Metric::Cosine));
    let want_inertia = read_json(&fixture("cluster_cases.json"))["kmeans_cosine"]["inertia"].as_f64().unwrap();
    assert_close(fit.inertia, want_inertia, 1e-6 * want_inertia, "inertia");
}
