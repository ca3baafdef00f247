//! `visage bench gallery`: exact top-k search against the measured memory
//! bandwidth, HNSW recall and speed, and optionally pgvector (visage-lab's
//! gallery_bench does the measuring; this module parses and prints).

use clap::Args;
use visage_gallery::HnswParams;
use visage_lab::gallery_bench::BenchSettings;

use crate::commands::Failure;

#[derive(Debug, Args)]
pub struct GalleryBenchArgs {
    /// Templates in the gallery (random unit vectors generated in memory).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    #[arg(long, default_value_t = 512)]
    dim: usize,
    #[arg(short = 'k', long = "top", default_value_t = 10)]
    k: usize,
    /// Timed single-query searches (each interleaved with a bandwidth pass).
    #[arg(long, default_value_t = 15)]
    queries: usize,
    /// Queries per pass in the batched measurement.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Rows of the HNSW comparison (its build is the slow part).
    #[arg(long, default_value_t = 20_000)]
    hnsw_rows: usize,
    #[arg(long, default_value_t = 200)]
    hnsw_queries: usize,
    #[arg(long, default_value_t = 100)]
    ef_construction: usize,
    #[arg(long, default_value_t = 100)]
    ef_search: usize,
    /// Also load the first --postgres-rows templates into a new gallery in
    /// this (empty) PostgreSQL database and time pgvector on the same kind of
    /// queries: exact, and its HNSW index at ef_search 40, 100 and 200.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    postgres_rows: usize,
    #[arg(long, default_value_t = 100)]
    postgres_queries: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl GalleryBenchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.rows == 0 || self.dim == 0 || self.k == 0 || self.queries == 0 || self.batch == 0 || self.hnsw_queries == 0 {
            return Err(Failure::bad_input("--rows, --dim, --top, --queries, --batch and --hnsw-queries must be positive"));
        }
        let settings = BenchSettings {
            rows: self.rows,
            dim: self.dim,
            k: self.k,
            queries: self.queries,
            batch: self.batch,
            hnsw_rows: self.hnsw_rows.max(self.k),
            hnsw_queries: self.hnsw_queries,
            hnsw: HnswParams { ef_construction: self.ef_construction, ef_search: self.ef_search.max(self.k), ..HnswParams::default() },
            seed: 1,
        };
        let report = visage_lab::gallery_bench::run(&settings, |line| eprintln!("visage: {line}"));
        #[cfg(not(feature = "postgres"))]
        if self.postgres.is_some() {
            return Err(Failure::bad_input("--postgres: this visage was built without the `postgres` feature"));
        }
        #[cfg(feature = "postgres")]
        let pgvector = match &self.postgres {
            Some(url) => {
                let settings = visage_lab::gallery_bench::pgvector::PgBenchSettings {
                    rows: self.postgres_rows.min(self.rows).max(self.k),
                    dim: self.dim,
                    k: self.k,
                    queries: self.postgres_queries.max(1),
                    ..Default::default()
                };
                Some(visage_lab::gallery_bench::pgvector::run(url, &settings, |line| eprintln!("visage: {line}")).map_err(Failure::from)?)
            }
            None => None,
        };
        if self.json {
            #[allow(unused_mut)]
            let mut value = serde_json::to_value(&report).expect("serialisable");
            #[cfg(feature = "postgres")]
            if let Some(pgvector) = &pgvector {
                value["pgvector"] = serde_json::to_value(pgvector).expect("serialisable");
            }
            println!("{}", serde_json::to_string_pretty(&value).expect("serialisable"));
            return Ok(());
        }
        let r = &report;
        println!("gallery search, {} × {} f32 ({:.2} GB), top-{}, {} threads", r.rows, r.dim, r.matrix_gb, r.k, r.threads);
        println!(
            "read bandwidth (sum over the matrix)  {:.2} GB/s  [{:.2}–{:.2}]",
            r.read_bandwidth_gbs.median, r.read_bandwidth_gbs.min, r.read_bandwidth_gbs.max
        );
        println!(
            "exact, 1 query per pass              {:.3} queries/s [{:.3}–{:.3}] = {:.2} GB/s = {:.0} % of median bandwidth ({:.0} % of the highest)",
            r.exact_qps.median,
            r.exact_qps.min,
            r.exact_qps.max,
            r.exact_gbs,
            100.0 * r.exact_bandwidth_fraction,
            100.0 * r.exact_fraction_of_peak_bandwidth
        );
        println!(
            "exact, {} queries per pass            {:.3} queries/s [{:.3}–{:.3}]",
            r.batch, r.exact_batched_qps.median, r.exact_batched_qps.min, r.exact_batched_qps.max
        );
        println!(
            "HNSW over {} rows (ef_search {}): recall@{} {:.4}, top-1 agreement {:.3}, {:.0} queries/s vs exact {:.1} queries/s ({:.1}×), build {:.1} s",
            r.hnsw_rows,
            r.hnsw_ef_search,
            r.k,
            r.hnsw_recall_at_k,
            r.hnsw_top1_agreement,
            r.hnsw_qps,
            r.exact_qps_on_hnsw_rows,
            r.hnsw_qps / r.exact_qps_on_hnsw_rows,
            r.hnsw_build_s
        );
        #[cfg(feature = "postgres")]
        if let Some(p) = &pgvector {
            println!(
                "pgvector over {} rows: load {:.1} s, HNSW build {:.1} s; exact {:.2} queries/s (recall@{} {:.4}) vs in-memory exact {:.1} queries/s",
                p.rows, p.load_s, p.index_build_s, p.exact_qps, p.k, p.exact_recall_at_k, p.embedded_exact_qps
            );
            for run in &p.hnsw {
                println!(
                    "pgvector HNSW ef_search {:>4}: {:.1} queries/s, recall@{} {:.4}, top-1 agreement {:.3}",
                    run.ef_search, run.qps, p.k, run.recall_at_k, run.top1_agreement
                );
            }
        }
        Ok(())
    }
}
