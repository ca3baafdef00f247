//! `visage heads …`: the margin heads from the command line.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand};
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_heads::case::{CaseError, HeadCase, HeadCaseResult};
use visage_heads::heads::magface::MagFaceConfig;
use visage_heads::magface_theory::{self, NegativeClasses};

use super::Failure;

#[derive(Debug, Subcommand)]
pub enum HeadsCommand {
    /// Evaluate one batch: read {"head", "embeddings", "weights", "labels", "state"?}
    /// as JSON and print {"loss", "grad_embeddings", "grad_weights", "state"?}.
    ///
    /// Gradients are of the batch-mean loss. `head.kind` is one of softmax, normface,
    /// sphereface, cosface, arcface, combined, subcenter, magface, adaface; its
    /// parameters (s, m, easy_margin, m1, m2, m3, k, l_a, u_a, l_m, u_m, lambda_g, h,
    /// t_alpha, eps) default to docs/spec/heads.md. `weights` has one row per class, or
    /// classes × k rows for subcenter. `state` ({"batch_mean", "batch_std"}) is
    /// AdaFace's running statistics before the batch. Bad input exits with code 2.
    ///
    /// Example: visage heads eval --input examples/heads/demo_batch.json
    Eval(EvalArgs),
    /// Check MagFace's convergence conditions numerically and show the optimal
    /// magnitude a* rising as the target angle falls.
    MagfaceCheck(MagfaceCheckArgs),
    /// Run every head on a bundled example batch and print what each one does.
    Demo(DemoArgs),
}

impl HeadsCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Eval(args) => args.run(),
            Self::MagfaceCheck(args) => args.run(),
            Self::Demo(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The case file (JSON); `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// Where to compute: cpu, cuda, cuda:N or torch (see `visage train --help`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

struct EvaluateCase(HeadCase);

impl AutodiffJob for EvaluateCase {
    type Output = Result<HeadCaseResult, CaseError>;
    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        self.0.evaluate::<B>(device)
    }
}

fn read_input(path: &PathBuf) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| Failure::bad_input(format!("reading standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| Failure::bad_input(format!("{}: {e}", path.display())))
}

fn device(text: &str) -> Result<DeviceChoice, Failure> {
    text.parse().map_err(|e: visage_backend::BackendError| Failure::bad_input(format!("--device: {e}")))
}

impl EvalArgs {
    fn run(&self) -> Result<(), Failure> {
        let device = device(&self.device)?;
        let text = read_input(&self.input)?;
        let source = if self.input.as_os_str() == "-" { "standard input".to_string() } else { self.input.display().to_string() };
        let in_file = |e: CaseError| Failure::bad_input(format!("{source}: {e}"));
        let case = HeadCase::from_json(&text).map_err(in_file)?;
        let result = run_autodiff(device, EvaluateCase(case)).map_err(Failure::from)?.map_err(in_file)?;
        let json = serde_json::to_string(&result).map_err(|e| Failure::other(e.to_string()))?;
        println!("{json}");
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct MagfaceCheckArgs {
    #[arg(long, default_value_t = MagFaceConfig::default().s)]
    s: f64,
    #[arg(long, default_value_t = MagFaceConfig::default().l_a)]
    l_a: f64,
    #[arg(long, default_value_t = MagFaceConfig::default().u_a)]
    u_a: f64,
    /// Margin at l_a, radians.
    #[arg(long, default_value_t = MagFaceConfig::default().l_m)]
    l_m: f64,
    /// Margin at u_a, radians.
    #[arg(long, default_value_t = MagFaceConfig::default().u_m)]
    u_m: f64,
    #[arg(long, default_value_t = MagFaceConfig::default().lambda_g)]
    lambda_g: f64,
    /// Apply the margin for every angle (arcface's fallback branch) instead of only where cos θ > 0.
    #[arg(long)]
    no_easy_margin: bool,
    /// Target angles to sweep, in degrees (default: 9 angles from 90° − u_m down to 5°).
    #[arg(long, value_delimiter = ',')]
    theta: Vec<f64>,
    /// Number of non-target classes in the per-sample loss.
    #[arg(long, default_value_t = NegativeClasses::default().count)]
    negatives: usize,
    /// Cosine of every non-target class to the sample.
    #[arg(long, default_value_t = NegativeClasses::default().cos)]
    negative_cos: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl MagfaceCheckArgs {
    fn run(&self) -> Result<(), Failure> {
        let config = MagFaceConfig {
            s: self.s,
            l_a: self.l_a,
            u_a: self.u_a,
            l_m: self.l_m,
            u_m: self.u_m,
            lambda_g: self.lambda_g,
            easy_margin: !self.no_easy_margin,
        };
        if !(config.l_a > 0.0 && config.u_a > config.l_a && config.u_m > config.l_m && config.s > 0.0) {
            return Err(Failure::bad_input("need 0 < l_a < u_a, l_m < u_m and s > 0"));
        }
        if !(-1.0..=1.0).contains(&self.negative_cos) {
            return Err(Failure::bad_input(format!("--negative-cos {} is not a cosine", self.negative_cos)));
        }
        if let Some(bad) = self.theta.iter().find(|t| !(0.0..180.0).contains(*t)) {
            return Err(Failure::bad_input(format!("--theta {bad}: angles must lie in [0, 180) degrees")));
        }
        let negatives = NegativeClasses { count: self.negatives, cos: self.negative_cos };
        report_magface(&config, &self.theta, negatives, self.json)
    }
}

/// Prints the condition checks and the a* sweep; fails (exit 2) when a condition
/// or the monotonicity does not hold, so scripts can use it as a gate.
fn report_magface(config: &MagFaceConfig, thetas: &[f64], negatives: NegativeClasses, json: bool) -> Result<(), Failure> {
    let checks = magface_theory::check_conditions(config);
    let thetas = if thetas.is_empty() { magface_theory::default_thetas_deg(config, 9) } else { thetas.to_vec() };
    let sweep = magface_theory::sweep(config, &thetas, negatives);
    let monotone = magface_theory::is_monotone(&sweep);
    let all_hold = checks.iter().all(|c| c.holds);
    if json {
        let report = serde_json::json!({
            "config": config, "conditions": checks, "negatives": negatives,
            "sweep": sweep, "monotone": monotone, "all_conditions_hold": all_hold,
        });
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Failure::other(e.to_string()))?);
    } else {
        println!("MagFace conditions (Meng et al. 2021, §3.3) for {config:?}:");
        for check in &checks {
            println!("  [{}] {:<48} {}", if check.holds { "ok" } else { "FAIL" }, check.condition, check.detail);
        }
        println!("\nOptimal magnitude a* of the per-sample loss ({} non-target classes at cos {}):", negatives.count, negatives.cos);
        println!("  {:>9}  {:>9}  {:>10}  {:>9}", "θ (deg)", "a*", "m(a*) rad", "loss");
        for m in &sweep {
            let note = if m.in_theorem_domain { "" } else { "  (θ > 90° − u_m: outside the theorem)" };
            println!("  {:>9.2}  {:>9.3}  {:>10.4}  {:>9.4}{note}", m.theta_deg, m.a_star, m.margin_rad, m.loss);
        }
        if monotone {
            println!("\na* never decreases as θ falls: easier samples get larger magnitudes (Theorem 2).");
        } else {
            println!("\na* DECREASES somewhere as θ falls: the theorem's conditions are not met.");
        }
    }
    if all_hold && monotone {
        Ok(())
    } else {
        Err(Failure::bad_input("these MagFace parameters break the paper's conditions (see above)"))
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A case file to run every head on (default: the bundled example batch).
    #[arg(long)]
    input: Option<PathBuf>,
}

/// The bundled example batch: 6 faces' features (norms 4–90) over 4 classes.
const DEMO_BATCH: &str = include_str!("../../../../examples/heads/demo_batch.json");

impl DemoArgs {
    fn run(&self) -> Result<(), Failure> {
        let text = match &self.input {
            Some(path) => read_input(path)?,
            None => DEMO_BATCH.to_string(),
        };
        let base = HeadCase::from_json(&text).map_err(Failure::from)?;
        let feature_norms: Vec<String> = base.embeddings.iter().map(|x| format!("{:.0}", x.iter().map(|v| v * v).sum::<f64>().sqrt())).collect();
        println!(
            "Every margin head on one batch: {} features (norms {}) and {} centre rows.\n",
            base.embeddings.len(),
            feature_norms.join(", "),
            base.weights.len()
        );
        println!("  {:<10} {:>10} {:>12} {:>12}  parameters (defaults of docs/spec/heads.md)", "head", "loss", "|dL/dx|", "|dL/dW|");
        for kind in visage_heads::HeadConfig::KINDS {
            // Combined margins have no defaults in the spec; show insightface's (1, 0.3, 0.2).
            let head = match kind {
                "combined" => serde_json::json!({"kind": kind, "m1": 1.0, "m2": 0.3, "m3": 0.2}),
                _ => serde_json::json!({"kind": kind}),
            };
            let mut case = base.clone();
            case.head = serde_json::from_value(head).map_err(|e| Failure::other(e.to_string()))?;
            let result = run_autodiff(DeviceChoice::Cpu, EvaluateCase(case.clone()))
                .map_err(Failure::from)?
                .map_err(|e| Failure::bad_input(format!("{kind}: {e}")))?;
            let norm = |m: &[Vec<f64>]| m.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
            let params = serde_json::to_string(&case.head).unwrap_or_default();
            println!("  {:<10} {:>10.4} {:>12.5} {:>12.5}  {params}", kind, result.loss, norm(&result.grad_embeddings), norm(&result.grad_weights));
        }
        println!("\nMagFace's theory for its default parameters:\n");
        report_magface(&MagFaceConfig::default(), &[], NegativeClasses::default(), false)
    }
}
