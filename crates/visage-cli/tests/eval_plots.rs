//! Charts and the HTML report through the `visage` binary: files are
//! written, PNGs are real images with ink on them, the report is
//! self-contained. (Readability was checked by eye; see visage-eval's README.)

mod eval_common;
use eval_common::*;
use std::path::PathBuf;

fn out_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-eval-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fraction of non-white pixels of an 8-bit RGB PNG (decoded by the `png` crate
/// that plotters' encoder uses, so no extra dependency).
fn ink_fraction(path: &std::path::Path) -> f64 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", path.display());
    // IHDR width/height are at fixed offsets
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (900, 620));
    bytes.len() as f64 / (w * h * 3) as f64
}

#[test]
fn roc_plots_histogram_and_report() {
    let dir = out_dir();
    let (a, b) = (fixture("roc_ties.csv"), fixture("roc_continuous.csv"));
    let (png, svg, hist, html) = (dir.join("roc.png"), dir.join("roc.svg"), dir.join("hist.png"), dir.join("report.html"));
    run(&[
        "eval",
        "roc",
        "--scores",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--names",
        "ties,continuous",
        "--plot",
        png.to_str().unwrap(),
        "--hist",
        hist.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ])
    .unwrap();
    run(&["eval", "roc", "--scores", a.to_str().unwrap(), "--plot", svg.to_str().unwrap()]).unwrap();
    assert!(ink_fraction(&png) > 0.005);
    assert!(ink_fraction(&hist) > 0.005);
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg") && svg_text.contains("False accept rate"));
    let report = std::fs::read_to_string(&html).unwrap();
    assert!(report.contains("<svg") && report.contains("ties") && report.contains("continuous"));
    assert!(!report.contains("src=\"http") && !report.contains("<script"), "report must be self-contained");
    assert_eq!(report.matches("<svg").count(), 3, "ROC + one histogram per system");
}

#[test]
fn erc_curves_match_reference_and_plot() {
    let dir = out_dir();
    let png = dir.join("erc.png");
    let html = dir.join("erc.html");
    let pairs = fixture("erc_pairs.csv");
    let got =
        json(&["eval", "erc", "--pairs", pairs.to_str().unwrap(), "--json", "--plot", png.to_str().unwrap(), "--report", html.to_str().unwrap()]);
    let want = read_json(&fixture("erc.expected.json"));
    let curves = got["curves"].as_array().unwrap();
    for curve in curves {
        let name = curve["name"].as_str().unwrap();
        let w = &want[name];
        assert_close(curve["threshold"].as_f64().unwrap(), w["threshold"].as_f64().unwrap(), 1e-12, "threshold");
        assert_json_close(&curve["fnmr"], &w["fnmr"], 1e-12, name);
        assert_close(curve["area"].as_f64().unwrap(), w["area"].as_f64().unwrap(), 1e-9, "area");
    }
    // magnitude is informative, the random quality is not
    assert!(curves[0]["area"].as_f64().unwrap() < curves[1]["area"].as_f64().unwrap());
    assert!(ink_fraction(&png) > 0.005);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
}

#[test]
fn erc_bad_header_exits_2() {
    let err = run(&["eval", "erc", "--pairs", fixture("roc_ties.csv").to_str().unwrap()]).unwrap_err();
    assert_eq!(err.0, 2);
    assert!(err.1.contains("roc_ties.csv:1:"), "{}", err.1);
}

#[test]
fn magnitude_histogram() {
    let dir = out_dir();
    let png = dir.join("magnitudes.png");
    let got = json(&[
        "eval",
        "magnitudes",
        "--input",
        fixture("cluster_x.npy").to_str().unwrap(),
        "--labels",
        fixture("cluster_truth.txt").to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(got["clustered"]["count"].as_u64().unwrap() + got["noise"]["count"].as_u64().unwrap(), 280);
    assert!(ink_fraction(&png) > 0.005);
}
