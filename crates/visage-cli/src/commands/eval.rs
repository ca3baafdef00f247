//! `visage eval …`: evaluation from embeddings, scores and labels, no model
//! needed. Each subcommand reads its inputs, calls visage-eval and writes the
//! result to standard output; the `--json` forms are stable contracts.
//!
//! Exit codes (the same for `visage cluster`): 2 for any error of the
//! inputs as visage-eval reports it — unreadable, malformed or mismatched
//! files, and also a chart or HTML report that cannot be drawn or saved —
//! and for option values that do not fit; 1 when standard output (or a file
//! `visage cluster` writes) cannot be written.

use std::fmt::Display;
use std::io::Write;

use clap::Subcommand;
use serde::Serialize;
use visage_eval::EvalError;

use super::Failure;

mod clusters;
mod erc;
mod ijb;
pub(super) mod magnitude_figures;
mod magnitudes;
mod roc;
mod verify;

/// `visage eval …` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// ROC, AUC, EER and TAR@FAR of a scores CSV (`score,label`, 1 = same identity).
    Roc(roc::RocArgs),
    /// Compare predicted cluster labels with the true identities.
    Clusters(clusters::ClustersArgs),
    /// Error-versus-reject curves of face quality measures (MagFace's ERC).
    Erc(erc::ErcArgs),
    /// Feature-magnitude statistics and histogram of an embedding matrix.
    Magnitudes(magnitudes::MagnitudesArgs),
    /// MagFace's figures over photos: mean face per magnitude bin, magnitude against centrality in the cluster.
    MagnitudeFigures(magnitude_figures::MagnitudeFiguresArgs),
    /// insightface verification protocol (10-fold accuracy) from a `.bin` set or a pair list.
    Verify(verify::VerifyArgs),
    /// IJB-B/C-style templates: 1:1 TAR@FAR and 1:N CMC / TPIR@FPIR.
    Ijb(ijb::IjbArgs),
}

impl EvalCommand {
    pub fn run(&self) -> Result<(), Failure> {
        let out = &mut std::io::stdout().lock();
        match self {
            Self::Roc(args) => args.run(out),
            Self::Clusters(args) => args.run(out),
            Self::Erc(args) => args.run(out),
            Self::Magnitudes(args) => args.run(out),
            Self::MagnitudeFigures(args) => args.run(out),
            Self::Verify(args) => args.run(out),
            Self::Ijb(args) => args.run(out),
        }
    }
}

/// An error of visage-eval: bad input (exit 2) whatever its kind, a chart
/// that cannot be saved included. Deliberately not `Failure::from`, which
/// asks [`EvalError::is_bad_input`] and would turn some of these into exit 1:
/// the eval commands' exit codes are a contract scripts rely on.
pub(super) fn input(error: EvalError) -> Failure {
    Failure::bad_input(error.to_string())
}

/// Writing `what` failed (disk full, closed pipe, …): exit 1.
pub(super) fn cannot_write(what: impl Display) -> impl FnOnce(std::io::Error) -> Failure {
    move |source| Failure::other(format!("cannot write {what}: {source}"))
}

/// One line of text on standard output.
pub(super) fn print_line(out: &mut dyn Write, text: impl Display) -> Result<(), Failure> {
    writeln!(out, "{text}").map_err(cannot_write("stdout"))
}

/// `value` as pretty JSON on standard output.
pub(super) fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), Failure> {
    print_line(out, serde_json::to_string_pretty(value).expect("serialisable report"))
}

/// FAR targets (and `ijb`'s FPIR targets, under the same message) are
/// rates: finite, in [0, 1].
fn check_fars(fars: &[f64]) -> Result<(), Failure> {
    check_rates("--far", fars)
}

/// Every value of option `option` is a rate in [0, 1] (visage-eval's [`visage_eval::roc::check_rates`]).
fn check_rates(option: &str, rates: &[f64]) -> Result<(), Failure> {
    visage_eval::roc::check_rates(option, rates).map_err(input)
}
