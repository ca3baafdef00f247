//! The bundled L-GCN model on real faces it was not trained on: the
//! embeddings of ../shared/data/faces (22 people, 83 photos, default
//! recogniser), written with the model by scripts/lgcn/train_default.sh,
//! which trains on faces_dev only.

use std::path::Path;

use visage_backend::Cpu;
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::labels::read_labels;
use visage_eval::metrics::cluster_scores;
use visage_train::lgcn::{cluster, LgcnModel};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn bundled_model_clusters_held_out_faces() {
    let device = Default::default();
    let model = LgcnModel::<Cpu>::bundled(&device).expect("the bundled model loads");
    assert_eq!(model.settings.network.input_dim, 128);
    assert!(model.parameters() < 100_000, "{} parameters", model.parameters());
    let x = read_embeddings(&fixture("lgcn_heldout_faces.npy")).unwrap();
    let truth = read_labels(&fixture("lgcn_heldout_faces.labels")).unwrap();
    let labels = cluster(&model.network, &x, &model.settings.ips, &model.settings.merge, &device);
    let scores = cluster_scores(&truth, &labels);
    // measured: pairwise F 1.0000, BCubed F 1.0000, NMI 1.0000 (every person one cluster)
    assert!(scores.pairwise_f >= 0.95, "pairwise F {:.4}", scores.pairwise_f);
    assert!(scores.bcubed_f >= 0.95, "BCubed F {:.4}", scores.bcubed_f);
    assert!(scores.nmi >= 0.97, "NMI {:.4}", scores.nmi);
}

#[test]
fn model_file_round_trips() {
    let device = Default::default();
    let model = LgcnModel::<Cpu>::bundled(&device).unwrap();
    let bytes = model.to_bytes().unwrap();
    let again = LgcnModel::<Cpu>::from_bytes(&bytes, Path::new("again"), &device).unwrap();
    assert_eq!(again.settings, model.settings);
    assert_eq!(again.to_bytes().unwrap(), bytes);
    let broken = LgcnModel::<Cpu>::from_bytes(&bytes[..bytes.len() / 2], Path::new("half.safetensors"), &device).unwrap_err();
    assert!(broken.is_bad_input() && broken.to_string().starts_with("half.safetensors: "), "{broken}");
}
