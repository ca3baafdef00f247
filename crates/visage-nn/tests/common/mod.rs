//! What the integration tests share: the fixture folder and the tiny IResNet
//! that `scripts/reference/backbones_reference.py` and
//! `checkpoint_fixtures.py` build (blocks 2-1-1-1, widths 8-8-16-16, stem 8,
//! 16-d feature, 48 px input).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use visage_nn::{IResNetConfig, IResNetLayout};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn tiny_iresnet(layout: IResNetLayout) -> IResNetConfig {
    IResNetConfig {
        blocks_per_stage: [2, 1, 1, 1],
        stage_widths: [8, 8, 16, 16],
        stem_width: 8,
        embedding_size: 16,
        dropout: 0.0,
        input_size: 48,
        layout,
    }
}
