//! `visage`: the command-line front of the workspace. Each subcommand parses its
//! arguments and calls a library crate; no logic lives here.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tensor work allocates and frees buffers of many megabytes per step; glibc
/// returns each to the kernel and page-faults it in again on the next step
/// (measured: ~40 % of a margin head's time at C = 10 000). mimalloc keeps them
/// (see [`keep_freed_memory`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's own environment variable for the purge delay; when it is set the
/// user's value stands.
const PURGE_DELAY_VARIABLE: &str = "MIMALLOC_PURGE_DELAY";

/// Keeps freed memory mapped for reuse instead of handing it back to the
/// kernel after mimalloc's purge delay (1 s by default in v3). A training
/// step frees its activations and gradients and allocates the same sizes
/// again a second later; with purging, every step page-faults (and the
/// kernel zeroes) them afresh: IResNet-18 at batch 8, init and 5 steps, took
/// 99 595 minor faults and 3.1 s of system time, against 970 and 0.6 s
/// without purging, at the same peak RSS (docs/perf/conv.md, "After the
/// kernels"). The process's resident memory stays at its peak instead of
/// shrinking after it, so `visage serve` does not do this.
/// `MIMALLOC_PURGE_DELAY=1000` restores the default.
fn keep_freed_memory() {
    if std::env::var_os(PURGE_DELAY_VARIABLE).is_none() {
        // SAFETY: mi_option_set stores an option value; mimalloc allows it at
        // any time from any thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3 headers
/// alike: the entry before `mi_option_use_numa_nodes`, which the Rust
/// bindings name as 16). The test `purge_delay_option_is_the_one_set` reads
/// the option's default in the bundled mimalloc v3 (1000 ms) through it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Face recognition with modern margin losses: ArcFace (with sub-centres),
/// MagFace and AdaFace. One embedding, three jobs: its direction is identity,
/// its magnitude is quality, its distribution clusters.
#[derive(Debug, Parser)]
#[command(name = "visage", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Margin heads (loss functions): evaluate a batch, check MagFace's theory, run a demo.
    #[command(subcommand)]
    Heads(commands::heads::HeadsCommand),
    /// Evaluation: ROC/TAR@FAR, cluster metrics, quality ERC, magnitudes, plots and reports.
    #[command(subcommand)]
    Eval(commands::eval::EvalCommand),
    /// Cluster embeddings (DBSCAN, agglomerative, k-means, L-GCN) into a labels file; `cluster train-lgcn` trains L-GCN.
    Cluster(commands::cluster::ClusterArgs),
    /// Speed against the reference tools, measured in the same run (prints ratios).
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Find faces in photos: boxes, scores and 5 landmarks (table, JSON or a drawing).
    Detect(commands::detect::DetectArgs),
    /// Detect, align and embed every face: embeddings (.npy) and a per-face index (CSV).
    Embed(commands::embed::EmbedArgs),
    /// Training data: pack a folder of aligned crops into train.rec/.idx, summarise a .rec.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// The main job: every face of a folder of photos embedded, scored for quality,
    /// grouped by person, in a self-contained HTML report.
    Analyze(commands::analyze::AnalyzeArgs),
    /// Are the faces in two photos the same person? Cosine similarity and each face's quality.
    Verify(commands::verify::VerifyArgs),
    /// Faces ranked by quality (feature magnitude), best first, with a montage.
    Quality(commands::quality::QualityArgs),
    /// Train a recogniser (any backbone × any margin head) from a train.toml; resumable.
    Train(commands::train::TrainArgs),
    /// Clean noisy training data with a sub-centre ArcFace run: drop samples far from their class's dominant sub-centre.
    Clean(commands::clean::CleanArgs),
    /// Face images carrying a given identity (a photo's, an embedding's, a random one), made
    /// from a recogniser's gradients and BatchNorm statistics alone.
    Synth(commands::synth::SynthArgs),
    /// Recognition backbones: architecture, parameters, FLOPs, input and feature shapes.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// Face models (detectors, recognisers): which are bundled, present or missing; sources, licences, hashes.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// A gallery of enrolled people: enrol, search (1:N), list, remove, export, import, calibrate.
    #[command(subcommand)]
    Gallery(commands::gallery::GalleryCommand),
    /// The HTTP service and web page over a gallery (REST + JSON, API keys, metrics); `serve keys` manages its keys.
    Serve(commands::serve::ServeCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A long-running service gives memory back after a burst; batch work keeps it.
    if !matches!(cli.command, Command::Serve(_)) {
        keep_freed_memory();
    }
    let result = match &cli.command {
        Command::Heads(command) => command.run(),
        Command::Bench(command) => command.run(),
        Command::Detect(args) => args.run(),
        Command::Embed(args) => args.run(),
        Command::Data(command) => command.run(),
        Command::Analyze(args) => args.run(),
        Command::Verify(args) => args.run(),
        Command::Quality(args) => args.run(),
        Command::Train(args) => args.run(),
        Command::Synth(args) => args.run(),
        Command::Clean(args) => args.run(),
        Command::Model(command) => command.run(),
        Command::Models(command) => command.run(),
        Command::Gallery(command) => command.run(),
        Command::Serve(command) => command.run(),
        Command::Eval(command) => command.run(),
        Command::Cluster(args) => args.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("visage: {}", shorten_lines(&failure.message));
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Longest line of an error message printed whole. Parsers quote the line
/// they stopped at; a hostile file's line can be megabytes long.
const MESSAGE_LINE_CHARS: usize = 300;

fn shorten_lines(message: &str) -> String {
    message
        .lines()
        .map(|line| match line.char_indices().nth(MESSAGE_LINE_CHARS) {
            Some((cut, _)) => format!("{}… ({} more characters)", &line[..cut], line[cut..].chars().count()),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_message_lines_are_cut_with_a_count() {
        let message = format!("bad.toml: parse error\n{}\nend", "é".repeat(MESSAGE_LINE_CHARS + 7));
        let shown = shorten_lines(&message);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "bad.toml: parse error");
        assert_eq!(lines[1], format!("{}… (7 more characters)", "é".repeat(MESSAGE_LINE_CHARS)));
        assert_eq!(lines[2], "end");
        assert_eq!(shorten_lines("short"), "short");
    }

    #[test]
    fn purge_delay_option_is_the_one_set() {
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let from_environment = std::env::var(PURGE_DELAY_VARIABLE).ok().and_then(|value| value.parse().ok());
        // Before: mimalloc v3's default (1000 ms, c_src/mimalloc/v3/src/options.c),
        // or the user's value.
        assert_eq!(get(), from_environment.unwrap_or(1000));
        keep_freed_memory();
        assert_eq!(get(), from_environment.unwrap_or(-1));
    }
}
