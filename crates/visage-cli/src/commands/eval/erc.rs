//! `visage eval erc`: error-versus-reject curves of face quality measures
//! (MagFace's ERC), as text, JSON, a chart and an HTML report.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use visage_eval::erc::{erc_curves, ErcCurve, DEFAULT_TARGET_FMR};
use visage_eval::io::erc_csv::read_erc_csv;
use visage_eval::plot::{self, erc::ErcChart};
use visage_eval::report::{write_html, Section};

use super::{input, print_json, print_line};
use crate::commands::Failure;

/// Arguments of `visage eval erc`.
#[derive(Debug, Args)]
pub struct ErcArgs {
    /// CSV `score,label,<q>_1,<q>_2[,<r>_1,<r>_2 …]`: one quality measure per
    /// column pair (both faces of the pair); all measures go on one chart.
    #[arg(long)]
    pairs: PathBuf,
    /// FMR at which the threshold is fixed on the unfiltered set.
    #[arg(long, default_value_t = DEFAULT_TARGET_FMR)]
    target_fmr: f64,
    /// Print the curves as JSON.
    #[arg(long)]
    json: bool,
    /// ERC chart, `.svg` or `.png`.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Self-contained HTML report.
    #[arg(long)]
    report: Option<PathBuf>,
}

impl ErcArgs {
    pub fn run(&self, out: &mut dyn Write) -> Result<(), Failure> {
        if !(self.target_fmr > 0.0 && self.target_fmr <= 1.0) {
            return Err(Failure::bad_input(format!("--target-fmr {}: expected a rate in (0, 1]", self.target_fmr)));
        }
        let pairs = read_erc_csv(&self.pairs).map_err(input)?;
        let curves = erc_curves(&pairs, self.target_fmr);
        self.charts(&curves).map_err(input)?;
        if self.json {
            print_json(out, &serde_json::json!({ "target_fmr": self.target_fmr, "curves": curves }))
        } else {
            for c in &curves {
                print_line(
                    out,
                    format!(
                        "{}: ERC area {:.6}, FNMR {:.4} → {:.4} (threshold {:.6})",
                        c.name,
                        c.area,
                        c.fnmr[0],
                        c.fnmr[c.fnmr.len() - 1],
                        c.threshold
                    ),
                )?;
            }
            Ok(())
        }
    }

    /// The `--plot` and `--report` files that were asked for.
    fn charts(&self, curves: &[ErcCurve]) -> visage_eval::Result<()> {
        let chart = ErcChart { title: format!("Error versus reject (FMR = {:e})", self.target_fmr), curves };
        if let Some(path) = &self.plot {
            plot::save(&chart, path)?;
        }
        if let Some(path) = &self.report {
            let rows = curves
                .iter()
                .map(|c| {
                    let at = |r: f64| c.fractions.iter().position(|&f| (f - r).abs() < 1e-9).map(|i| format!("{:.4}", c.fnmr[i])).unwrap_or_default();
                    vec![c.name.clone(), format!("{:.6}", c.area), at(0.0), at(0.1), at(0.3), at(0.5)]
                })
                .collect();
            let header = ["quality", "area", "FNMR 0%", "FNMR 10%", "FNMR 30%", "FNMR 50%"].map(String::from).to_vec();
            let section = Section::new("Quality: error versus reject")
                .with_table(header, rows)
                .with_note("Pair quality = min of the two faces; threshold fixed on all pairs at the target FMR; the lowest-quality genuine pairs are rejected first.")
                .with_chart(&chart)?;
            write_html(path, "visage quality report", &[section])?;
        }
        Ok(())
    }
}
