//! The gallery search benchmark (`visage bench gallery`): exact top-k over
//! `rows × dim` random unit templates generated in memory, against the
//! memory read bandwidth measured in the same run over the same buffer, and
//! HNSW recall@k and speed against exact search.
//!
//! Exact search of one query reads the whole matrix once, so its ceiling is
//! `matrix bytes / read bandwidth` per query; the fraction reported is
//! `(matrix bytes × queries/s) / bandwidth`. The bandwidth is the median
//! rate of a vectorised sum over the same matrix with the same rayon pool:
//! the same access pattern with (almost) no arithmetic.
//!
//! Uniform random unit vectors in 512 dimensions are the hardest case for a
//! graph index (every pair nearly orthogonal, no neighbourhood structure),
//! so the HNSW recall here is a floor, not what face templates get; the
//! top-1 agreement (what a decision uses) is reported beside recall@k.
//!
//! Queries are probes of enrolled people: a random gallery row plus as much
//! independent noise (cosine ≈ 0.7 to the row), the situation of a search
//! for someone enrolled. Every timing is repeated and the median reported
//! with its spread, since the machine may be shared.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use visage_gallery::hnsw::{recall_at_k, HnswIndex, HnswParams};
use visage_gallery::search::{Scored, TemplateMatrix};

/// What [`run`] generates and times; [`Default`] is `visage bench gallery`'s
/// defaults (1 000 000 × 512, top-10, 15 queries, batches of 8, HNSW over
/// 20 000 rows with 200 queries, seed 1).
#[derive(Clone, Debug)]
pub struct BenchSettings {
    /// Templates in the gallery matrix; it takes `rows × dim × 4` bytes of
    /// memory (2.05 GB at the defaults). Default 1 000 000.
    pub rows: usize,
    /// Values per template (f32). Default 512.
    pub dim: usize,
    /// Matches returned per query (top-k). Default 10.
    pub k: usize,
    /// Single-query searches timed (each a full pass), each paired with one
    /// bandwidth pass; at least 1. Default 15.
    pub queries: usize,
    /// Queries per pass in the batched measurement (timed 5 times). Default 8.
    pub batch: usize,
    /// Rows of the HNSW comparison (a prefix of the matrix; building is slow).
    /// Capped at `rows`. Default 20 000.
    pub hnsw_rows: usize,
    /// Probes searched both exactly and with HNSW for recall@k. Default 200.
    pub hnsw_queries: usize,
    /// The HNSW index's build and search settings; `ef_search` should be at least `k`.
    pub hnsw: HnswParams,
    /// Seed of the matrix; the timed probes use `seed + 1`, the HNSW probes
    /// `seed + 2`. Default 1.
    pub seed: u64,
}

impl Default for BenchSettings {
    fn default() -> Self {
        Self { rows: 1_000_000, dim: 512, k: 10, queries: 15, batch: 8, hnsw_rows: 20_000, hnsw_queries: 200, hnsw: HnswParams::default(), seed: 1 }
    }
}

/// Median and range of repeated measurements, in the measurement's unit.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    /// The middle value (the mean of the middle two for an even count).
    pub median: f64,
    /// The lowest value.
    pub min: f64,
    /// The highest value.
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Self { median, min: values[0], max: values[n - 1] }
    }
}

/// What [`run`] measured (the JSON of `visage bench gallery --json`). GB
/// are 10^9 bytes; rates are wall-clock.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Templates in the matrix.
    pub rows: usize,
    /// Values per template.
    pub dim: usize,
    /// Matches per query.
    pub k: usize,
    /// Threads of the rayon pool that generated, summed and searched.
    pub threads: usize,
    /// Size of the matrix, `rows × dim × 4` bytes, in GB.
    pub matrix_gb: f64,
    /// Seconds to generate the random matrix (in parallel).
    pub generate_s: f64,
    /// Read bandwidth of a sum over the matrix, GB/s, over `queries` passes
    /// interleaved with the exact searches.
    pub read_bandwidth_gbs: Spread,
    /// Exact single-query searches per second, one timing per query.
    pub exact_qps: Spread,
    /// Exact-search read rate (matrix bytes × queries/s), GB/s, median.
    pub exact_gbs: f64,
    /// `exact_gbs / median read bandwidth`.
    pub exact_bandwidth_fraction: f64,
    /// `exact_gbs / highest read bandwidth seen`: the conservative figure on a shared machine.
    pub exact_fraction_of_peak_bandwidth: f64,
    /// Exact searches per second with `batch` queries per pass, over 5 passes.
    pub exact_batched_qps: Spread,
    /// Queries per pass in the batched measurement.
    pub batch: usize,
    /// Rows the HNSW index holds (the first `hnsw_rows` of the matrix).
    pub hnsw_rows: usize,
    /// Seconds to build the HNSW index.
    pub hnsw_build_s: f64,
    /// The index's `ef_search` (candidate list while searching).
    pub hnsw_ef_search: usize,
    /// Fraction of the exact top-k ids that HNSW's top-k found, over the
    /// `hnsw_queries` probes (recall@k against exact search on the same rows), in [0, 1].
    pub hnsw_recall_at_k: f64,
    /// Fraction of queries whose best match HNSW found (what a decision uses).
    pub hnsw_top1_agreement: f64,
    /// HNSW searches per second, one query at a time over all the probes (one timed pass).
    pub hnsw_qps: f64,
    /// Exact single-query searches per second on the same `hnsw_rows` and probes (one timed pass).
    pub exact_qps_on_hnsw_rows: f64,
}

/// SplitMix64: a fast, seedable generator for benchmark data (quality is
/// irrelevant here; speed and reproducibility are not).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [−1, 1).
fn uniform(state: &mut u64) -> f32 {
    (splitmix(state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

fn normalise(row: &mut [f32]) {
    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
    row.iter_mut().for_each(|x| *x /= norm);
}

/// `rows` random unit vectors (uniform direction up to the cube's bias), in parallel.
pub fn random_unit_matrix(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut values = vec![0.0f32; rows * dim];
    values.par_chunks_mut(dim * 1024).enumerate().for_each(|(chunk, block)| {
        let mut state = seed ^ (chunk as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        for row in block.chunks_exact_mut(dim) {
            row.iter_mut().for_each(|x| *x = uniform(&mut state));
            normalise(row);
        }
    });
    values
}

/// Probes: row `r` plus noise of the same norm, renormalised (cosine ≈ 0.7 to the row).
fn probes(matrix: &TemplateMatrix, count: usize, rows: usize, seed: u64) -> Vec<f32> {
    let dim = matrix.dim();
    let mut state = seed;
    let mut out = Vec::with_capacity(count * dim);
    for _ in 0..count {
        let source = (splitmix(&mut state) % rows as u64) as usize;
        let mut noise: Vec<f32> = (0..dim).map(|_| uniform(&mut state)).collect();
        normalise(&mut noise);
        let start = out.len();
        out.extend(matrix.row(source).iter().zip(&noise).map(|(r, n)| r + n));
        normalise(&mut out[start..]);
    }
    out
}

/// Sum of every value, 16 lanes, over rayon chunks: the read-bandwidth probe.
fn parallel_sum(values: &[f32]) -> f32 {
    values
        .par_chunks(1 << 20)
        .map(|chunk| {
            let mut lanes = [0.0f32; 16];
            let (blocks, rest) = chunk.as_chunks::<16>();
            for block in blocks {
                for (lane, value) in lanes.iter_mut().zip(block) {
                    *lane += value;
                }
            }
            lanes.iter().sum::<f32>() + rest.iter().sum::<f32>()
        })
        .sum()
}

/// Runs the benchmark; `progress` gets a line per stage. Holds the whole
/// matrix in memory (`rows × dim × 4` bytes) until the HNSW stage, which
/// copies its prefix. Panics when `settings.queries` is 0 (no timing to
/// take a median of).
pub fn run(settings: &BenchSettings, mut progress: impl FnMut(&str)) -> BenchReport {
    let BenchSettings { rows, dim, k, .. } = *settings;
    let started = Instant::now();
    let values = random_unit_matrix(rows, dim, settings.seed);
    let matrix = TemplateMatrix::from_rows(dim, values, (0..rows as u64).collect());
    let generate_s = started.elapsed().as_secs_f64();
    let bytes = (rows * dim * 4) as f64;
    progress(&format!("generated {rows} × {dim} unit templates ({:.2} GB) in {generate_s:.1} s", bytes / 1e9));

    let queries = probes(&matrix, settings.queries.max(settings.batch), rows, settings.seed + 1);
    let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();

    // Warm-up: pages faulted in, caches and frequency settled.
    std::hint::black_box(parallel_sum(matrix.values()));
    std::hint::black_box(matrix.top_k(&queries[..1], k));

    // Bandwidth and exact search interleaved, so both see the same machine load.
    let mut bandwidth = Vec::new();
    let mut exact_rates = Vec::new();
    for query in queries.iter().take(settings.queries) {
        let t = Instant::now();
        std::hint::black_box(parallel_sum(matrix.values()));
        bandwidth.push(bytes / t.elapsed().as_secs_f64() / 1e9);
        let t = Instant::now();
        std::hint::black_box(matrix.top_k(&[query], k));
        exact_rates.push(1.0 / t.elapsed().as_secs_f64());
    }
    let read_bandwidth_gbs = Spread::of(bandwidth);
    let exact_qps = Spread::of(exact_rates);
    let exact_gbs = bytes * exact_qps.median / 1e9;
    progress(&format!(
        "read bandwidth {:.1} GB/s; exact top-{k}: {:.2} queries/s = {exact_gbs:.1} GB/s ({:.0} % of bandwidth)",
        read_bandwidth_gbs.median,
        exact_qps.median,
        100.0 * exact_gbs / read_bandwidth_gbs.median
    ));

    let batch = &queries[..settings.batch];
    let batched: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(matrix.top_k(batch, k));
            batch.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    let exact_batched_qps = Spread::of(batched);
    progress(&format!("exact, {} queries per pass: {:.2} queries/s", settings.batch, exact_batched_qps.median));

    // HNSW on a prefix of the rows.
    let hnsw_rows = settings.hnsw_rows.min(rows);
    let subset = TemplateMatrix::from_rows(dim, matrix.values()[..hnsw_rows * dim].to_vec(), (0..hnsw_rows as u64).collect());
    drop(matrix);
    let t = Instant::now();
    let index = HnswIndex::build(&subset, settings.hnsw);
    let hnsw_build_s = t.elapsed().as_secs_f64();
    progress(&format!("HNSW over {hnsw_rows} rows built in {hnsw_build_s:.1} s"));
    let hnsw_queries = probes(&subset, settings.hnsw_queries, hnsw_rows, settings.seed + 2);
    let hnsw_queries: Vec<&[f32]> = hnsw_queries.chunks_exact(dim).collect();
    let t = Instant::now();
    let exact: Vec<Vec<Scored>> = hnsw_queries.iter().map(|q| subset.top_k(&[q], k).remove(0)).collect();
    let exact_qps_on_hnsw_rows = hnsw_queries.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let approximate: Vec<Vec<Scored>> = hnsw_queries.iter().map(|q| index.search(q, k)).collect();
    let hnsw_qps = hnsw_queries.len() as f64 / t.elapsed().as_secs_f64();
    let hnsw_recall_at_k = recall_at_k(&exact, &approximate);
    let top1_agree = exact.iter().zip(&approximate).filter(|(e, a)| e.first().map(|h| h.id) == a.first().map(|h| h.id)).count();
    let hnsw_top1_agreement = top1_agree as f64 / exact.len() as f64;
    progress(&format!(
        "HNSW recall@{k} {hnsw_recall_at_k:.3} (top-1 agreement {hnsw_top1_agreement:.3}) at {hnsw_qps:.0} queries/s vs exact {exact_qps_on_hnsw_rows:.1} queries/s on the same {hnsw_rows} rows"
    ));

    BenchReport {
        rows,
        dim,
        k,
        threads: rayon::current_num_threads(),
        matrix_gb: bytes / 1e9,
        generate_s,
        exact_gbs,
        exact_bandwidth_fraction: exact_gbs / read_bandwidth_gbs.median,
        exact_fraction_of_peak_bandwidth: exact_gbs / read_bandwidth_gbs.max,
        read_bandwidth_gbs,
        exact_qps,
        exact_batched_qps,
        batch: settings.batch,
        hnsw_rows,
        hnsw_build_s,
        hnsw_ef_search: settings.hnsw.ef_search,
        hnsw_recall_at_k,
        hnsw_top1_agreement,
        hnsw_qps,
        exact_qps_on_hnsw_rows,
    }
}

/// The pgvector comparison (`visage bench gallery --postgres URL`): the
/// first `rows` templates of the same random matrix loaded into a new
/// PostgreSQL gallery (one import transaction, the HNSW index built after
/// the load), the same kind of probes, pgvector's exact search and its HNSW
/// index at several `ef_search`, judged against the in-memory exact top-k.
#[cfg(feature = "postgres")]
pub mod pgvector {
    use super::*;
    use visage_gallery::config::{DecisionThreshold, GalleryConfig};
    use visage_gallery::model::{Identity, QualityPolicy, Template};
    use visage_gallery::postgres::PostgresStore;
    use visage_gallery::store::{GalleryStore, ImportConflict, Match};

    /// What [`run`] loads and times; [`Default`]: 100 000 × 512,
    /// top-10, 100 queries, `ef_search` 40, 100 and 200, seed 1.
    #[derive(Clone, Debug)]
    pub struct PgBenchSettings {
        /// Templates loaded: the first `rows` of the benchmark's random matrix
        /// for the same seed. Default 100 000.
        pub rows: usize,
        /// Values per template; the new gallery is created with it. Default 512.
        pub dim: usize,
        /// Matches per query. Default 10.
        pub k: usize,
        /// Probes timed in each search mode, one statement each. Default 100.
        pub queries: usize,
        /// HNSW runs, one per `ef_search`.
        pub ef_search: Vec<usize>,
        /// Seed of the matrix; the probes use `seed + 2`. Default 1.
        pub seed: u64,
    }

    impl Default for PgBenchSettings {
        fn default() -> Self {
            Self { rows: 100_000, dim: 512, k: 10, queries: 100, ef_search: vec![40, 100, 200], seed: 1 }
        }
    }

    /// pgvector's HNSW index searched at one `ef_search`.
    #[derive(Clone, Debug, Serialize)]
    pub struct PgHnswRun {
        /// pgvector's `hnsw.ef_search` asked for in this run (candidate list
        /// while searching; the store raises it to `k` and caps it at 1000).
        pub ef_search: usize,
        /// Queries per second, one query per statement over all the probes
        /// after one warm-up query (client round trip included).
        pub qps: f64,
        /// Fraction of the in-memory exact top-k ids found, in [0, 1].
        pub recall_at_k: f64,
        /// Fraction of queries whose exact best match came first.
        pub top1_agreement: f64,
    }

    /// What [`run`] measured (`"pgvector"` in `visage bench gallery --json`).
    #[derive(Clone, Debug, Serialize)]
    pub struct PgBenchReport {
        /// Templates loaded.
        pub rows: usize,
        /// Values per template.
        pub dim: usize,
        /// Matches per query.
        pub k: usize,
        /// Probes timed in each search mode.
        pub queries: usize,
        /// Seconds to import every row as one identity, in one transaction,
        /// with the search index dropped.
        pub load_s: f64,
        /// Seconds to build pgvector's HNSW index after the load (pgvector's
        /// defaults m 16, ef_construction 64; cosine; `maintenance_work_mem` 4 GB).
        pub index_build_s: f64,
        /// pgvector exact search (`ORDER BY <#>`, sequential scan), one query per statement.
        pub exact_qps: f64,
        /// Its recall@k against the in-memory exact search (1 up to float ties).
        pub exact_recall_at_k: f64,
        /// The in-memory exact search on the same rows, for scale.
        pub embedded_exact_qps: f64,
        /// One run per `ef_search` of the settings, in their order.
        pub hnsw: Vec<PgHnswRun>,
    }

    /// Rows are loaded as identities `r{row}`: back to the matrix's ids (row + 1).
    fn as_scored(matches: &[Vec<Match>]) -> Vec<Vec<Scored>> {
        let id = |name: &str| name[1..].parse::<u64>().expect("bench identity names are r<row>") + 1;
        matches.iter().map(|m| m.iter().map(|m| Scored { id: id(&m.name), score: m.score }).collect()).collect()
    }

    fn top1(exact: &[Vec<Scored>], other: &[Vec<Scored>]) -> f64 {
        let agree = exact.iter().zip(other).filter(|(e, a)| e.first().map(|h| h.id) == a.first().map(|h| h.id)).count();
        agree as f64 / exact.len() as f64
    }

    /// Runs the comparison in the (empty) database at `url`; `progress` gets a
    /// line per stage. Errors are the store's: the database cannot be reached,
    /// already holds a gallery, or a statement fails.
    pub fn run(url: &str, settings: &PgBenchSettings, mut progress: impl FnMut(&str)) -> visage_gallery::Result<PgBenchReport> {
        let PgBenchSettings { rows, dim, k, queries, .. } = *settings;
        let matrix = TemplateMatrix::from_rows(dim, random_unit_matrix(rows, dim, settings.seed), (1..=rows as u64).collect());
        let probe_values = probes(&matrix, queries, rows, settings.seed + 2);
        let probe_refs: Vec<&[f32]> = probe_values.chunks_exact(dim).collect();
        let t = Instant::now();
        let exact: Vec<Vec<Scored>> = probe_refs.iter().map(|q| matrix.top_k(&[q], k).remove(0)).collect();
        let embedded_exact_qps = queries as f64 / t.elapsed().as_secs_f64();

        let config = GalleryConfig::new(dim, "bench", QualityPolicy::default(), DecisionThreshold::manual(0.5)?);
        let store = PostgresStore::create(url, config.clone())?;
        store.drop_search_index()?;
        let identities: Vec<Identity> = (0..rows)
            .map(|row| Identity {
                id: row as u64 + 1,
                name: format!("r{row}"),
                metadata: serde_json::Value::Null,
                templates: vec![Template { embedding: matrix.row(row).to_vec(), magnitude: 1.0, source: String::new() }],
            })
            .collect();
        drop(matrix);
        let export = visage_gallery::store::GalleryExport { format: visage_gallery::store::EXPORT_FORMAT.to_string(), config, identities };
        let t = Instant::now();
        store.import(&export, ImportConflict::Fail)?;
        let load_s = t.elapsed().as_secs_f64();
        drop(export);
        progress(&format!("pgvector: loaded {rows} × {dim} in one transaction in {load_s:.1} s"));
        let t = Instant::now();
        store.execute(&format!("SET maintenance_work_mem = '4GB'; {} ", visage_gallery::postgres::schema::create_search_index()))?;
        let index_build_s = t.elapsed().as_secs_f64();
        store.execute("VACUUM ANALYZE visage_identities")?;
        progress(&format!("pgvector: HNSW index (m 16, ef_construction 64, cosine) built in {index_build_s:.1} s"));

        store.search(&probe_refs[..1], k)?; // warm the cache
        let t = Instant::now();
        let mut pg_exact = Vec::with_capacity(queries);
        for query in &probe_refs {
            pg_exact.extend(store.search(&[query], k)?);
        }
        let exact_qps = queries as f64 / t.elapsed().as_secs_f64();
        let exact_recall_at_k = recall_at_k(&exact, &as_scored(&pg_exact));
        progress(&format!(
            "pgvector exact: {exact_qps:.2} queries/s, recall@{k} {exact_recall_at_k:.4} vs in-memory exact {embedded_exact_qps:.1} queries/s"
        ));
        let mut hnsw = Vec::new();
        for &ef_search in &settings.ef_search {
            let params = HnswParams { ef_search, ..HnswParams::default() };
            store.search_approximate(&probe_refs[..1], k, params)?;
            let t = Instant::now();
            let mut found = Vec::with_capacity(queries);
            for query in &probe_refs {
                found.extend(store.search_approximate(&[query], k, params)?);
            }
            let qps = queries as f64 / t.elapsed().as_secs_f64();
            let found = as_scored(&found);
            let run = PgHnswRun { ef_search, qps, recall_at_k: recall_at_k(&exact, &found), top1_agreement: top1(&exact, &found) };
            progress(&format!(
                "pgvector HNSW ef_search {ef_search}: {qps:.1} queries/s, recall@{k} {:.4}, top-1 agreement {:.3}",
                run.recall_at_k, run.top1_agreement
            ));
            hnsw.push(run);
        }
        Ok(PgBenchReport { rows, dim, k, queries, load_s, index_build_s, exact_qps, exact_recall_at_k, embedded_exact_qps, hnsw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_rows_are_unit_and_probes_are_near_their_source() {
        let (rows, dim) = (2000, 256);
        let values = random_unit_matrix(rows, dim, 5);
        for row in values.chunks_exact(dim) {
            assert!((row.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        }
        let matrix = TemplateMatrix::from_rows(dim, values, (0..rows as u64).collect());
        let probe = probes(&matrix, 1, rows, 9);
        let best = matrix.top_k(&[&probe], 2);
        // Row + equal-norm independent noise: cosine (1 + r·n)/√(2 + 2r·n) ≈ 1/√2
        // to its source; unrelated 256-d rows have cosines of σ = 1/16, so the
        // runner-up stays below ≈ 0.3.
        assert!((best[0][0].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.1, "{:?}", best[0]);
        assert!(best[0][1].score < 0.3, "{:?}", best[0]);
        assert_eq!(Spread::of(vec![3.0, 1.0, 2.0, 10.0]).median, 2.5);
    }
}
