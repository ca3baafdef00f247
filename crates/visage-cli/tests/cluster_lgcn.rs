//! `visage cluster train-lgcn` and `visage cluster --method lgcn` through the
//! binary, on the held-out real-face embeddings of visage-train's fixtures
//! (scripts/lgcn/train_default.sh), and their refusals of bad input.

mod eval_common;
use eval_common::*;

use std::path::{Path, PathBuf};

fn lgcn_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../visage-train/tests/fixtures").join(name)
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("visage-lgcn-{}-{name}", std::process::id()))
}

fn scores(truth: &Path, pred: &Path) -> serde_json::Value {
    json(&["eval", "clusters", "--truth", truth.to_str().unwrap(), "--pred", pred.to_str().unwrap(), "--json"])
}

#[test]
fn bundled_model_clusters_held_out_faces() {
    let (x, truth, out) = (lgcn_fixture("lgcn_heldout_faces.npy"), lgcn_fixture("lgcn_heldout_faces.labels"), temp("bundled.txt"));
    let stdout = run(&["cluster", "--method", "lgcn", "--input", x.to_str().unwrap(), "--output", out.to_str().unwrap()]).unwrap();
    assert!(stdout.starts_with("83 faces → 22 clusters, 0 noise"), "{stdout}");
    let s = scores(&truth, &out);
    // measured 1.0 (pairwise F, BCubed F, NMI)
    assert!(s["pairwise_f"].as_f64().unwrap() >= 0.95, "{s}");
    assert!(s["nmi"].as_f64().unwrap() >= 0.97, "{s}");
}

#[test]
fn train_then_cluster_with_the_trained_model() {
    let (x, truth) = (lgcn_fixture("lgcn_heldout_faces.npy"), lgcn_fixture("lgcn_heldout_faces.labels"));
    let (model, out) = (temp("model.safetensors"), temp("trained.txt"));
    #[rustfmt::skip]
    let args = ["cluster", "train-lgcn", "--embeddings", x.to_str().unwrap(), "--labels", truth.to_str().unwrap(),
        "--out", model.to_str().unwrap(), "--synthetic-scenes", "4", "--mixed-scenes", "2", "--validation-scenes", "1", "--epochs", "2"];
    let stdout = run(&args).unwrap();
    assert!(stdout.contains("epoch 2: loss") && stdout.contains("link threshold 0.50"), "{stdout}");
    run(&["cluster", "--method", "lgcn", "--model", model.to_str().unwrap(), "--input", x.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .unwrap();
    // trained on these very faces: nearly every link right
    let s = scores(&truth, &out);
    assert!(s["pairwise_f"].as_f64().unwrap() >= 0.8, "{s}");
    // the same seed gives the same model
    let again = temp("model-again.safetensors");
    let mut args = args;
    args[7] = again.to_str().unwrap();
    run(&args).unwrap();
    assert_eq!(std::fs::read(&model).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn bad_input_exits_2_and_names_it() {
    let x = lgcn_fixture("lgcn_heldout_faces.npy");
    let out = temp("unused.txt");
    let cluster = |extra: &[&str]| {
        let mut args = vec!["cluster", "--method", "lgcn", "--input", x.to_str().unwrap(), "--output", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&args).unwrap_err()
    };
    let missing = temp("no-such-model.safetensors");
    let (code, message) = cluster(&["--model", missing.to_str().unwrap()]);
    assert!(code == 2 && message.contains("no-such-model.safetensors"), "{code} {message}");
    let garbage = temp("garbage.safetensors");
    std::fs::write(&garbage, b"not a model").unwrap();
    let (code, message) = cluster(&["--model", garbage.to_str().unwrap()]);
    assert!(code == 2 && message.contains("garbage.safetensors") && message.contains("safetensors"), "{code} {message}");
    let (code, message) = cluster(&["--metric", "euclidean"]);
    assert!(code == 2 && message.contains("cosine"), "{code} {message}");
    let (code, message) = cluster(&["--link-threshold", "1.5"]);
    assert!(code == 2 && message.contains("--link-threshold"), "{code} {message}");
    // embeddings of another width than the model's
    let narrow = fixture("cluster_x.npy");
    let (code, message) = run(&["cluster", "--method", "lgcn", "--input", narrow.to_str().unwrap(), "--output", out.to_str().unwrap()]).unwrap_err();
    assert!(code == 2 && message.contains("cluster_x.npy") && message.contains("128-d"), "{code} {message}");
    // L-GCN's flags with another method
    let (code, message) =
        run(&["cluster", "--method", "ahc", "--threshold", "0.5", "--model", "m", "--input", x.to_str().unwrap(), "--output", out.to_str().unwrap()])
            .unwrap_err();
    assert!(code == 2 && message.contains("--method lgcn"), "{code} {message}");
    // training: labels that do not fit the embeddings
    let short = temp("short.labels");
    std::fs::write(&short, "0\n1\n").unwrap();
    let model = temp("never.safetensors");
    #[rustfmt::skip]
    let (code, message) = run(&["cluster", "train-lgcn", "--embeddings", x.to_str().unwrap(), "--labels", short.to_str().unwrap(), "--out", model.to_str().unwrap()]).unwrap_err();
    assert!(code == 2 && message.contains("short.labels") && message.contains("2 labels for the 83 rows"), "{code} {message}");
    let bad = temp("bad.labels");
    std::fs::write(&bad, "zero\n").unwrap();
    let (code, message) =
        run(&["cluster", "train-lgcn", "--embeddings", x.to_str().unwrap(), "--labels", bad.to_str().unwrap(), "--out", model.to_str().unwrap()])
            .unwrap_err();
    assert!(code == 2 && message.contains("bad.labels:1"), "{code} {message}");
    // one identity: nothing to fit synthetic identities to
    let one = temp("one.labels");
    std::fs::write(&one, "0\n".repeat(83)).unwrap();
    let (code, message) =
        run(&["cluster", "train-lgcn", "--embeddings", x.to_str().unwrap(), "--labels", one.to_str().unwrap(), "--out", model.to_str().unwrap()])
            .unwrap_err();
    assert!(code == 2 && message.contains("two or more identities"), "{code} {message}");
    assert!(!model.exists());
    // the old interface still asks for its flags
    let (code, message) = run(&["cluster", "--input", x.to_str().unwrap(), "--output", out.to_str().unwrap()]).unwrap_err();
    assert!(code == 2 && message.contains("--method"), "{code} {message}");
}
