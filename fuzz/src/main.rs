//! The libFuzzer entry point for every target: `VISAGE_FUZZ_TARGET` names
//! the reader (see harness/mod.rs). One binary for all of them keeps the
//! instrumented build to a single link.

#![no_main]

#[path = "../harness/mod.rs"]
mod harness;
mod seeds;

use std::sync::OnceLock;

fn selected() -> fn(&[u8]) {
    static SELECTED: OnceLock<fn(&[u8])> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let name = std::env::var("VISAGE_FUZZ_TARGET").unwrap_or_default();
        match harness::target(&name) {
            Some(target) => target.run,
            None => {
                let names: Vec<&str> = harness::TARGETS.iter().map(|t| t.name).collect();
                eprintln!("VISAGE_FUZZ_TARGET={name:?} names no target; one of: {}", names.join(" "));
                std::process::exit(2);
            }
        }
    })
}

libfuzzer_sys::fuzz_target!(
    init: {
        if let Some(out) = std::env::var_os("VISAGE_FUZZ_MAKE_SEEDS") {
            seeds::make_seeds(std::path::Path::new(&out));
            seeds::make_image_seeds(std::path::Path::new(&out));
            seeds::make_model_seeds(std::path::Path::new(&out));
            std::process::exit(0);
        }
        selected();
    },
    |data: &[u8]| selected()(data)
);
