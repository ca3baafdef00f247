//! The gallery search benchmark without the CLI (same code as `visage bench
//! gallery`): `cargo run --release -p visage-lab --example gallery_bench [ROWS] [HNSW_ROWS]`.
//! Prints the report as JSON on stdout, progress on stderr.

use visage_lab::gallery_bench::{run, BenchSettings};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("ROWS and HNSW_ROWS are counts"));
    let mut settings = BenchSettings::default();
    if let Some(rows) = args.next() {
        settings.rows = rows;
    }
    if let Some(hnsw_rows) = args.next() {
        settings.hnsw_rows = hnsw_rows;
    }
    let report = run(&settings, |line| eprintln!("{line}"));
    println!("{}", serde_json::to_string_pretty(&report).expect("serialisable"));
}
