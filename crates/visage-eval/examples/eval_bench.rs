//! Benchmark driver for scripts/bench/eval_vs_sklearn.sh (not part of
//! `cargo test`). Loads the same `.npy` files as the scikit-learn side, times
//! only the computation, prints one JSON line and writes labels/results so the
//! script can check both sides agree.
//!
//! usage:
//!   eval_bench roc SCORES.npy LABELS.npy OUT.json
//!   eval_bench dbscan X.npy EPS MIN_SAMPLES OUT_LABELS.txt [f32]   (f32: the f32 screen, not the fastest)
//!   eval_bench ahc X.npy THRESHOLD OUT_LABELS.txt
//!   eval_bench roc-csv SCORES.csv OUT.json   (reading the CSV timed apart from the ROC; the calls `visage eval roc --json` makes)

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use ndarray::Array1;
use ndarray_npy::ReadNpyExt;
use visage_eval::cluster::dbscan::labels_from_neighbors;
use visage_eval::cluster::distance::Prepared;
use visage_eval::cluster::neighbors::{radius_neighbors_screened, Screen};
use visage_eval::cluster::{ahc, dbscan, AhcConfig, AhcStop, DbscanConfig, Linkage, Metric};
use visage_eval::io::embeddings::read_embeddings;
use visage_eval::io::labels::write_labels;
use visage_eval::io::scores_csv::read_scores_csv_pieces;
use visage_eval::roc::{roc_summary, roc_summary_of_pieces, LabelledScores, DEFAULT_FARS};

/// CPU seconds (user + system) this process has used so far, from
/// /proc/self/stat (Linux; USER_HZ = 100 ticks per second on x86-64).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("roc") => {
            let scores = Array1::<f64>::read_npy(File::open(&args[1]).unwrap()).unwrap();
            let labels = Array1::<u8>::read_npy(File::open(&args[2]).unwrap()).unwrap();
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let mut split = LabelledScores::default();
            for (&s, &l) in scores.iter().zip(labels.iter()) {
                if l == 1 {
                    split.genuine.push(s)
                } else {
                    split.impostor.push(s)
                }
            }
            let summary = roc_summary(&split, &DEFAULT_FARS);
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            std::fs::write(&args[3], serde_json::to_string(&summary.report()).unwrap()).unwrap();
            println!("{{\"task\":\"roc\",\"n\":{},\"seconds\":{secs:.4},\"cpu_seconds\":{cpu:.2}}}", scores.len());
        }
        Some("roc-csv") => {
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let pieces = read_scores_csv_pieces(Path::new(&args[1])).unwrap();
            let (read_secs, read_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            let summary = roc_summary_of_pieces(&pieces.iter().collect::<Vec<_>>(), &DEFAULT_FARS);
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            std::fs::write(&args[2], serde_json::to_string(&summary.report()).unwrap()).unwrap();
            let n: usize = pieces.iter().map(|p| p.genuine.len() + p.impostor.len()).sum();
            println!("{{\"task\":\"roc-csv\",\"n\":{n},\"read_seconds\":{read_secs:.4},\"read_cpu_seconds\":{read_cpu:.2},\"seconds\":{secs:.4},\"cpu_seconds\":{cpu:.2}}}");
        }
        Some("dbscan") => {
            let x = read_embeddings(Path::new(&args[1])).unwrap();
            let config = DbscanConfig { eps: args[2].parse().unwrap(), min_samples: args[3].parse().unwrap(), metric: Metric::Cosine };
            let screen = if args.get(5).map(String::as_str) == Some("f32") { Screen::F32 } else { Screen::Fastest };
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let labels = if screen == Screen::Fastest {
                dbscan(&x, &config)
            } else {
                let data = Prepared::new(&x, config.metric);
                labels_from_neighbors(&radius_neighbors_screened(&data, config.eps, screen), config.min_samples)
            };
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            write_labels(Path::new(&args[4]), &labels).unwrap();
            println!("{{\"task\":\"dbscan\",\"n\":{},\"seconds\":{secs:.4},\"cpu_seconds\":{cpu:.2}}}", x.nrows());
        }
        Some("ahc") => {
            let x = read_embeddings(Path::new(&args[1])).unwrap();
            let config = AhcConfig { linkage: Linkage::Average, metric: Metric::Cosine, stop: AhcStop::DistanceThreshold(args[2].parse().unwrap()) };
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let labels = ahc(&x, &config);
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
            write_labels(Path::new(&args[3]), &labels).unwrap();
            println!("{{\"task\":\"ahc\",\"n\":{},\"seconds\":{secs:.4},\"cpu_seconds\":{cpu:.2}}}", x.nrows());
        }
        _ => {
            eprintln!("usage: eval_bench roc|dbscan|ahc …");
            std::process::exit(2);
        }
    }
}
