//! Parameter and FLOP counts of the published architectures against
//! (a) insightface's published figures, to the precision published, and
//! (b) exact numbers from independent PyTorch models
//! (`scripts/reference/backbones_reference.py` → `fixtures/backbone_counts.json`).

use std::collections::BTreeMap;

use serde::Deserialize;
use visage_backend::Cpu;
use visage_nn::{Arch, BackboneConfig, IResNetLayout, ModelInfo};

#[derive(Deserialize)]
struct Reference {
    params: u64,
    macs: u64,
    ptflops_pytorch_backend_total: u64,
}

fn references() -> BTreeMap<String, Reference> {
    let text = include_str!("fixtures/backbone_counts.json");
    serde_json::from_str(text).unwrap()
}

fn info(arch: Arch, layout: IResNetLayout, embedding_size: usize) -> ModelInfo {
    let config = BackboneConfig { layout, embedding_size, ..BackboneConfig::new(arch) };
    config.info::<Cpu>(&Default::default()).unwrap()
}

#[test]
fn counts_equal_pytorch_exactly() {
    let references = references();
    let mut cases = Vec::new();
    for arch in Arch::ALL {
        cases.push((format!("{}/insightface", arch.name()), arch, IResNetLayout::Insightface, 512));
        if arch.is_iresnet() && arch != Arch::Iresnet200 {
            cases.push((format!("{}/adaface", arch.name()), arch, IResNetLayout::Adaface, 512));
        }
    }
    cases.push(("mobilefacenet_128/insightface".into(), Arch::Mobilefacenet, IResNetLayout::Insightface, 128));
    assert_eq!(cases.len(), references.len(), "every reference entry is checked");
    for (key, arch, layout, embedding_size) in cases {
        let reference = &references[&key];
        let info = info(arch, layout, embedding_size);
        assert_eq!(info.params, reference.params, "{key}: parameters");
        assert_eq!(info.macs, reference.macs, "{key}: conv + FC MACs");
        // Neither side counts AdaFace's stride-only MaxPool shortcut (ptflops would).
        assert_eq!(info.flops, reference.ptflops_pytorch_backend_total, "{key}: ptflops total");
    }
}

/// arcface_torch's README: r18 2.6, r50 6.3, r100 12.1, r200 23.5 GFLOPs,
/// "mobilefacenet-0.45G"; parameters as quoted for its models: r50 43.6 M,
/// r100 65.2 M.
#[test]
fn counts_round_to_the_published_figures() {
    let giga = |arch, digits| format!("{:.*}", digits, info(arch, IResNetLayout::Insightface, 512).flops as f64 / 1e9);
    let mega = |arch| format!("{:.1}", info(arch, IResNetLayout::Insightface, 512).params as f64 / 1e6);
    assert_eq!(giga(Arch::Iresnet18, 1), "2.6");
    assert_eq!(giga(Arch::Iresnet50, 1), "6.3");
    assert_eq!(giga(Arch::Iresnet100, 1), "12.1");
    assert_eq!(giga(Arch::Iresnet200, 1), "23.5");
    assert_eq!(giga(Arch::Mobilefacenet, 2), "0.45");
    assert_eq!(mega(Arch::Iresnet50), "43.6");
    assert_eq!(mega(Arch::Iresnet100), "65.2");
}

#[test]
fn info_reports_input_and_feature_shapes_as_json() {
    let info = info(Arch::Iresnet50, IResNetLayout::Insightface, 512);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["arch"], "iresnet50");
    assert_eq!(json["layout"], "insightface");
    assert_eq!(json["params"], 43_590_848u64);
    assert!(json["flops"].is_u64() && json["macs"].is_u64());
    assert_eq!(json["input_shape"], serde_json::json!([1, 3, 112, 112]));
    assert_eq!(json["feature_dim"], 512);
}
