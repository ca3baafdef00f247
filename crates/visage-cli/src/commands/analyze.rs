//! `visage analyze DIR --report out.html`: the main job. Every face of every
//! photo is detected, aligned and embedded; its magnitude is its quality;
//! faces are grouped by person; the report shows it all.

use std::path::PathBuf;

use clap::Args;
use visage_analyze::{Analysis, FaceCollection, GroupingRule, IdentityConfig, LowQualityRule, Settings};

use super::eval::magnitude_figures::FigureArgs;
use super::face_models::{expand_inputs, progress_bar, same_person_cosine, DetectorArgs, RecognizerArgs, Tally};
use super::Failure;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Photos, or folders of photos (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The self-contained HTML report to write.
    #[arg(long, value_name = "OUT.html")]
    report: PathBuf,
    /// Also write the analysis as JSON (faces, persons, failures, timings).
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Also write one montage PNG per person into this folder.
    #[arg(long, value_name = "DIR")]
    montages: Option<PathBuf>,
    /// Groups of faces are one person while their mean cosine similarity is at
    /// least this [default: the recogniser config's `cluster_cosine`, else its
    /// `same_person_cosine`].
    #[arg(long, value_name = "COSINE")]
    same_person_cosine: Option<f32>,
    /// How faces become persons: `quality-first` clusters the confident
    /// faces (magnitude ≥ 0.8 × median) and attaches weak ones only where
    /// unambiguous; `all-at-once` clusters every face together.
    #[arg(long, value_name = "RULE", default_value = "quality-first", value_parser = ["quality-first", "all-at-once"])]
    grouping: String,
    /// Flag faces whose magnitude is below this (a threshold calibrated for
    /// the model) instead of the default outlier rule.
    #[arg(long, value_name = "MAGNITUDE")]
    min_magnitude: Option<f32>,
    /// Outlier rule: flag magnitudes more than Z robust standard deviations below the median.
    #[arg(long, value_name = "Z", default_value_t = 2.0)]
    low_quality_z: f32,
    /// MagFace's figures in the report: magnitude bins and kNN confidence.
    #[command(flatten)]
    figures: FigureArgs,
    #[command(flatten)]
    recognizer: RecognizerArgs,
    #[command(flatten)]
    detector: DetectorArgs,
}

impl AnalyzeArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let files = expand_inputs(&self.inputs)?;
        if files.is_empty() {
            return Err(Failure::bad_input(format!("no photos (JPEG, PNG, WebP, BMP) in {}", display_list(&self.inputs))));
        }
        let config = self.recognizer.config()?;
        let figure_options = self.figures.options()?;
        // The grouping cut: the flag, else the config's cluster_cosine, else its pair threshold.
        let same_person = same_person_cosine(self.same_person_cosine.or(config.cluster_cosine), &config)?;
        let mut pipeline = self.detector.pipeline(&self.recognizer, false, true)?;

        let mut tally = Tally::default();
        let bar = progress_bar(files.len() as u64, "analysing");
        let collection = FaceCollection::gather(&mut pipeline, &files, |outcome| {
            bar.suspend(|| tally.record(outcome));
            bar.inc(1);
        });
        bar.finish_and_clear();

        let grouping = if self.grouping == "all-at-once" { GroupingRule::AllAtOnce } else { GroupingRule::QualityFirst };
        let rule = match self.min_magnitude {
            Some(threshold) => LowQualityRule::Below(threshold),
            None => LowQualityRule::RobustOutlier { z: self.low_quality_z },
        };
        let settings = Settings {
            detector: self.detector.detector_name(),
            recognizer: config.name.clone(),
            same_person_cosine: same_person,
            grouping: grouping.to_string(),
            low_quality_rule: rule.to_string(),
        };
        let identity = IdentityConfig { rule: grouping, ..IdentityConfig::new(same_person) };
        let analysis = Analysis::new(collection, &identity, rule, settings, &figure_options).map_err(super::eval::input)?;
        let write_failed = |e: visage_analyze::AnalyzeError| Failure::other(e.to_string());
        analysis.write_report(&self.report).map_err(write_failed)?;
        if let Some(json) = &self.json {
            analysis.write_summary(json).map_err(write_failed)?;
        }
        if let Some(dir) = &self.montages {
            visage_analyze::report::write_person_montages(&analysis, dir).map_err(write_failed)?;
        }
        let c = &analysis.collection;
        let low = analysis.low_quality.iter().filter(|&&f| f).count();
        eprintln!(
            "visage: {} photos → {} faces, {} persons, {low} low-quality faces ({} photos without a usable face) in {:.1} s; report: {}",
            c.photos,
            c.faces.len(),
            analysis.persons(),
            c.failures.len(),
            c.times.wall_s,
            self.report.display()
        );
        tally.finish(self.detector.strict)
    }
}

fn display_list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
