//! `visage train`, `visage train curves` and `visage train magnitude-demo`
//! through the real binary: a tiny network trained for a few steps on the
//! committed digits, its curves drawn, its checkpoint degraded and measured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).args(args).output().expect("visage runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-train-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn digits(split: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/digits").join(split)
}

#[test]
fn train_then_curves_then_magnitude_demo() {
    let root = scratch("demo");
    // The 355 held-out digits as a 5-step training set: fast, and enough for a checkpoint.
    let config = root.join("tiny.toml");
    std::fs::write(
        &config,
        format!(
            "out_dir = \"run\"\nepochs = 1\nbatch_size = 64\n\
             [backbone]\narch = \"iresnet18\"\nembedding_size = 8\nblocks_per_stage = [1, 1, 1, 1]\nstage_widths = [4, 4, 4, 4]\nstem_width = 4\ninput_size = 32\n\
             [head]\nkind = \"magface\"\ns = 16.0\nl_a = 1.0\nu_a = 8.0\nlambda_g = 20.0\n\
             [data]\nsource = \"{}\"\nflip = false\n",
            digits("heldout").display()
        ),
    )
    .unwrap();
    let out = visage(&["train", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("5 of 5 steps done"), "{}", text(&out.stderr));
    let run = root.join("run");

    let (html, png) = (root.join("curves.html"), root.join("curves.png"));
    let out = visage(&["train", "curves", run.to_str().unwrap(), "--out", html.to_str().unwrap(), "--image", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&html).unwrap().matches("<svg").count(), 4);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);

    let (report, plot) = (root.join("demo.html"), root.join("demo.svg"));
    let out = visage(&[
        "train",
        "magnitude-demo",
        run.to_str().unwrap(),
        "--heldout",
        digits("heldout").to_str().unwrap(),
        "--steps",
        "1",
        "--out",
        report.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let result = &json[0];
    assert_eq!((result["head"].as_str(), result["steps_done"].as_u64(), result["heldout_images"].as_u64()), (Some("magface"), Some(5), Some(355)));
    let ladders = result["ladders"].as_array().unwrap();
    let names: Vec<&str> = ladders.iter().map(|l| l["degradation"].as_str().unwrap()).collect();
    assert_eq!(names, ["blur", "noise", "occlusion"]);
    for ladder in ladders {
        let levels = ladder["levels"].as_array().unwrap();
        assert_eq!(levels.len(), 2, "clean + 1 step");
        assert_eq!(levels[0]["severity"], 0.0);
        // Severity 0 is the same clean images for every degradation.
        assert_eq!(levels[0], ladders[0]["levels"][0]);
        assert!((-1.0..=1.0).contains(&ladder["spearman_rho"].as_f64().unwrap()));
    }
    assert!(std::fs::read_to_string(&report).unwrap().contains("Feature magnitude as held-out images degrade"));
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_input_exits_2_naming_it() {
    let out = visage(&["train"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--config"), "{}", text(&out.stderr));

    let missing = std::env::temp_dir().join("visage-train-cli-no-such-run");
    let out = visage(&["train", "curves", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-run"), "{}", text(&out.stderr));

    let out = visage(&["train", "magnitude-demo", missing.to_str().unwrap(), "--heldout", digits("heldout").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no checkpoint here"), "{}", text(&out.stderr));
}
