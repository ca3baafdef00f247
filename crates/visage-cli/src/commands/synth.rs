//! `visage synth`: face images that carry a given identity, generated
//! through a pretrained recogniser from its gradients and its BatchNorm
//! statistics alone (visage-synth; the ArcFace paper's generation).

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use serde::Serialize;
use visage_analyze::montage::{montage, Tile};
use visage_analyze::{write_atomically, write_png};
use visage_backend::{run_autodiff, AutodiffJob, DeviceChoice};
use visage_infer::{ModelFamily, Normalization, RgbImage};
use visage_nn::{Arch, Backbone, BackboneConfig, BackboneShape, CheckpointFamily};
use visage_synth::{embed_faces, synthesize, SynthConfig, SynthError};

use super::face_models::{largest_face, recognizer_config, registry, FaceModelArgs};
use super::Failure;

/// The bundled network synthesis runs through by default (the original
/// graph: its BatchNorms are kept as nodes, so their statistics are there).
const DEFAULT_MODEL: &str = "arcface_mobileface_128d_paddle.onnx";

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Targets: photos (the largest face is detected and aligned; with
    /// --aligned, 112×112 crops as they are) or `.npy` embeddings (`[E]` or `[N, E]`).
    targets: Vec<PathBuf>,
    /// Also synthesise this many random identities (uniformly random directions).
    #[arg(long, default_value_t = 0)]
    random: usize,
    /// One target per `.npy`: the mean direction of its rows (e.g. the
    /// embeddings of one cluster: "what does this cluster look like").
    #[arg(long)]
    mean: bool,
    /// A gallery (directory) whose enrolled identities' pooled templates are targets (with --identity).
    #[arg(long, value_name = "DIR")]
    gallery: Option<String>,
    /// An enrolled identity of --gallery to synthesise (repeatable).
    #[arg(long, value_name = "NAME", requires = "gallery")]
    identity: Vec<String>,
    /// Folder for the images, `grid.png` and `synth.json`.
    #[arg(long)]
    out: PathBuf,
    /// The network: an ONNX model (IResNet or MobileFaceNet, BatchNorms kept),
    /// a `.safetensors` from `visage model import`, or a `visage train`
    /// checkpoint or run folder [default: the bundled Paddle ArcFace MobileFaceNet].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Architecture of an ONNX --model (as `visage model info`).
    #[arg(long, default_value = "mbf")]
    arch: String,
    /// MobileFaceNet width multiplier of an ONNX --model.
    #[arg(long, default_value_t = 1)]
    width_scale: usize,
    /// Embedding size of an ONNX --model.
    #[arg(long, default_value_t = 128)]
    embedding_size: usize,
    /// Input convention of an ONNX or .safetensors --model: arcface, magface or adaface
    /// (a checkpoint carries its own).
    #[arg(long, default_value = "arcface")]
    normalization: String,
    /// Also embed targets and results with this recogniser (ONNX Runtime; a
    /// config name in models/ or a .toml path): does the identity transfer to a network that did not make the image?
    #[arg(long, value_name = "RECOGNIZER")]
    check_with: Option<String>,
    #[arg(long, default_value_t = SynthConfig::default().steps)]
    steps: usize,
    #[arg(long, default_value_t = SynthConfig::default().lr)]
    lr: f64,
    /// Weight of the BatchNorm-statistics prior (0: off).
    #[arg(long, default_value_t = SynthConfig::default().bn_weight)]
    bn_weight: f32,
    #[arg(long, default_value_t = SynthConfig::default().tv_weight)]
    tv_weight: f32,
    #[arg(long, default_value_t = SynthConfig::default().l2_weight)]
    l2_weight: f32,
    /// Largest random shift per step (pixels).
    #[arg(long, default_value_t = SynthConfig::default().jitter)]
    jitter: usize,
    /// No random mirroring.
    #[arg(long)]
    no_flip: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N (a build with `--features cuda`), or torch (libtorch on the CPU, `--features tch`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[command(flatten)]
    models: FaceModelArgs,
}

/// Under --check-with: a synthesised image's cosine to its own target's
/// face, and its mean cosine to the other targets' faces.
#[derive(Clone, Copy)]
struct Check {
    own: f32,
    others_mean: Option<f32>,
}

/// One target, before it is embedded by the network.
enum TargetSource {
    Face { name: String, crop: RgbImage },
    Embedding { name: String, values: Vec<f32> },
    Random { index: usize },
}

impl TargetSource {
    fn name(&self) -> String {
        match self {
            Self::Face { name, .. } | Self::Embedding { name, .. } => name.clone(),
            Self::Random { index } => format!("random-{index}"),
        }
    }
}

#[derive(Serialize)]
struct ResultJson {
    target: String,
    image: String,
    /// Cosine to the target under the network that made the image.
    cosine: f32,
    /// Cosine between the image and the target photo's face under --check-with.
    check_cosine: Option<f32>,
    /// Mean cosine between the image and the other targets' faces under
    /// --check-with: what an unrelated face scores, for comparison.
    check_cosine_others: Option<f32>,
}

#[derive(Serialize)]
struct SynthJson<'a> {
    model: String,
    settings: &'a SynthConfig,
    check_with: Option<String>,
    results: Vec<ResultJson>,
}

struct SynthJob<'a> {
    args: &'a SynthArgs,
    sources: Vec<TargetSource>,
}

struct Outcome {
    names: Vec<String>,
    images: Vec<RgbImage>,
    cosines: Vec<f32>,
    crops: Vec<Option<RgbImage>>,
}

impl AutodiffJob for SynthJob<'_> {
    type Output = Result<Outcome, Failure>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let (network, shape, normalization) = self.args.load_network::<B>(device)?;
        let inference = network.valid();
        let embedding_size = shape.embedding_size();
        let mut random = rand_directions(self.args.seed, embedding_size);
        let mut targets = Vec::new();
        for source in &self.sources {
            targets.push(match source {
                TargetSource::Face { crop, .. } => embed_faces(&inference, &normalization, std::slice::from_ref(crop), device).remove(0),
                TargetSource::Embedding { values, .. } => values.clone(),
                TargetSource::Random { .. } => random(),
            });
        }
        let config = self.args.synth_config();
        let bar = indicatif::ProgressBar::new(config.steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps [{elapsed_precise}, ETA {eta}] {msg}").expect("valid template"),
        );
        let synthesis = synthesize(&network, &shape, &normalization, &targets, &config, device, |report| {
            bar.set_position(report.step as u64 + 1);
            bar.set_message(format!("cosine {:.3} BN prior {:.3}", report.cosine, report.bn_prior));
        })
        .map_err(|e| match e {
            SynthError::Target { index, message } => Failure::bad_input(format!("{}: {message}", self.sources[index].name())),
            other => Failure::bad_input(other.to_string()),
        })?;
        bar.finish_and_clear();
        let crops = self.sources.iter().map(|s| if let TargetSource::Face { crop, .. } = s { Some(crop.clone()) } else { None }).collect();
        Ok(Outcome { names: self.sources.iter().map(TargetSource::name).collect(), images: synthesis.images, cosines: synthesis.cosines, crops })
    }
}

/// Random unit directions from a seeded generator (sums of uniforms are
/// close enough to Gaussian that the direction is uniform in practice).
fn rand_directions(seed: u64, size: usize) -> impl FnMut() -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5EED_D1CE);
    move || (0..size).map(|_| (0..12).map(|_| rng.random::<f32>()).sum::<f32>() - 6.0).collect()
}

impl SynthArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if self.targets.is_empty() && self.random == 0 && self.identity.is_empty() {
            return Err(Failure::bad_input("nothing to synthesise: give photos, .npy embeddings, --gallery DIR --identity NAME or --random N"));
        }
        let sources = self.target_sources()?;
        let outcome = run_autodiff(self.device, SynthJob { args: self, sources }).map_err(Failure::from)??;
        let check = self.check_cosines(&outcome)?;
        std::fs::create_dir_all(&self.out).map_err(|e| Failure::other(format!("cannot create {}: {e}", self.out.display())))?;
        let mut results = Vec::new();
        for (i, image) in outcome.images.iter().enumerate() {
            let file = format!("synth_{i:03}.png");
            write_png(image, &self.out.join(&file)).map_err(Failure::from)?;
            results.push(ResultJson {
                target: outcome.names[i].clone(),
                image: file,
                cosine: outcome.cosines[i],
                check_cosine: check.as_ref().and_then(|c| c[i].map(|c| c.own)),
                check_cosine_others: check.as_ref().and_then(|c| c[i].and_then(|c| c.others_mean)),
            });
        }
        let mut tiles = Vec::new();
        for (i, image) in outcome.images.iter().enumerate() {
            if let Some(crop) = &outcome.crops[i] {
                tiles.push(Tile { crop, caption: "target".into(), flagged: false });
            }
            tiles.push(Tile { crop: image, caption: format!("cos {:.2}", outcome.cosines[i]), flagged: false });
        }
        let columns = if outcome.crops.iter().any(Option::is_some) { 8 } else { 6 };
        let grid = montage(&tiles, columns).map_err(|e| Failure::other(e.to_string()))?;
        write_png(&grid, &self.out.join("grid.png")).map_err(Failure::from)?;
        let report = SynthJson {
            model: self.model_path()?.display().to_string(),
            settings: &self.synth_config(),
            check_with: self.check_with.clone(),
            results,
        };
        let json = serde_json::to_string_pretty(&report).expect("serialisable");
        write_atomically(&self.out.join("synth.json"), json.as_bytes()).map_err(Failure::from)?;
        for result in &report.results {
            let others = result.check_cosine_others.map(|c| format!(" (other targets' faces: {c:.3})")).unwrap_or_default();
            let check = result.check_cosine.map(|c| format!(", {c:.3} under --check-with{others}")).unwrap_or_default();
            println!("{} → {}: cosine {:.3}{check}", result.target, result.image, result.cosine);
        }
        eprintln!("visage: {} images, grid.png and synth.json in {}", report.results.len(), self.out.display());
        Ok(())
    }

    fn synth_config(&self) -> SynthConfig {
        SynthConfig {
            steps: self.steps,
            lr: self.lr,
            bn_weight: self.bn_weight,
            tv_weight: self.tv_weight,
            l2_weight: self.l2_weight,
            jitter: self.jitter,
            flip: !self.no_flip,
            seed: self.seed,
        }
    }

    fn model_path(&self) -> Result<PathBuf, Failure> {
        match &self.model {
            Some(path) => Ok(path.clone()),
            None => registry(None)?.locate(DEFAULT_MODEL, Path::new(DEFAULT_MODEL), None).map_err(Failure::from),
        }
    }

    /// The network on `B`, its shape and its input convention.
    fn load_network<B: AutodiffBackend>(&self, device: &B::Device) -> Result<(Backbone<B>, BackboneShape, Normalization), Failure> {
        let path = self.model_path()?;
        let bad_input = |e: &dyn std::fmt::Display| Failure::bad_input(format!("{}: {e}", path.display()));
        if path.is_dir() {
            let (backbone, state) = visage_train::checkpoint::load_backbone::<B>(&path, device).map_err(|e| bad_input(&e))?;
            let shape = state.config.backbone.shape().map_err(|e| bad_input(&e))?;
            return Ok((backbone, shape, state.config.data.normalization.normalization()));
        }
        if !path.is_file() {
            return Err(bad_input(&"no such file or folder"));
        }
        let normalization = parse_normalization(&self.normalization)?;
        // The architecture options are used only when the file does not record its own.
        let arch: Arch = self.arch.parse().map_err(|e| bad_input(&e))?;
        let width_scale = (arch == Arch::Mobilefacenet).then_some(self.width_scale);
        let config = BackboneConfig { embedding_size: self.embedding_size, width_scale, ..BackboneConfig::new(arch) };
        let (backbone, shape) = visage_nn::load_network::<B>(&path, &config, CheckpointFamily::Auto, device).map_err(|e| bad_input(&e))?;
        Ok((backbone, shape, normalization))
    }

    fn target_sources(&self) -> Result<Vec<TargetSource>, Failure> {
        let (embeddings, photos): (Vec<&PathBuf>, Vec<&PathBuf>) = self.targets.iter().partition(|p| has_extension(p, "npy"));
        let mut sources = Vec::new();
        if !photos.is_empty() {
            let files: Vec<PathBuf> = photos.into_iter().cloned().collect();
            let mut pipeline = self.models.pipeline(true)?;
            let mut found: Vec<Option<Result<RgbImage, String>>> = vec![None; files.len()];
            pipeline.run(&files, |outcome| {
                found[outcome.index] = Some(match outcome.result {
                    Ok(photo) => largest_face(photo.faces).and_then(|face| face.crop).ok_or_else(|| "no face found".to_string()),
                    Err(e) => Err(e.to_string()),
                });
            });
            let mut errors = Vec::new();
            for (file, result) in files.iter().zip(found) {
                match result {
                    Some(Ok(crop)) => sources.push(TargetSource::Face { name: file.display().to_string(), crop }),
                    Some(Err(e)) => errors.push(format!("{}: {e}", file.display())),
                    None => errors.push(format!("{}: not processed (a bug)", file.display())),
                }
            }
            if !errors.is_empty() {
                return Err(Failure::bad_input(errors.join("\n")));
            }
        }
        for path in embeddings {
            // visage-eval's reader checks the declared shape against the file's
            // size before allocating (a 100-byte header can claim 2^40 rows).
            let array: ndarray::ArrayD<f32> = visage_eval::io::embeddings::read_npy_file(path)
                .map_err(|e| if e.is_bad_input() { Failure::bad_input(e.to_string()) } else { Failure::other(e.to_string()) })?
                .mapv(|v| v as f32);
            let rows: Vec<Vec<f32>> = match array.ndim() {
                1 => vec![array.iter().copied().collect()],
                2 => array.outer_iter().map(|row| row.iter().copied().collect()).collect(),
                n => return Err(Failure::bad_input(format!("{}: expected [E] or [N, E], got {n} dimensions", path.display()))),
            };
            if self.mean {
                let name = format!("mean of {} ({} rows)", path.display(), rows.len());
                sources.push(TargetSource::Embedding { name, values: mean_direction(&rows) });
                continue;
            }
            let many = rows.len() > 1;
            for (i, values) in rows.into_iter().enumerate() {
                let name = if many { format!("{}[{i}]", path.display()) } else { path.display().to_string() };
                sources.push(TargetSource::Embedding { name, values });
            }
        }
        if let Some(gallery) = &self.gallery {
            let store = visage_gallery::GalleryLocation::parse(gallery).open(true).map_err(Failure::from)?;
            let recognizer = store.config().map_err(Failure::from)?.recognizer;
            eprintln!("visage: gallery templates come from `{recognizer}`: the target means something only if --model is that network");
            for name in &self.identity {
                let identity = store.get(name).map_err(|e| Failure::bad_input(format!("--identity {name}: {e}")))?;
                // The store's own location: a connection URL without its password.
                sources.push(TargetSource::Embedding { name: format!("{}:{name}", store.location()), values: identity.pooled_template() });
            }
        }
        sources.extend((0..self.random).map(|index| TargetSource::Random { index }));
        Ok(sources)
    }

    /// Under the --check-with recogniser: for each synthesised image, its
    /// cosine to its own target photo's face and the mean cosine to the
    /// other targets' faces (the chance level, measured in the same run).
    /// `None` for targets without a photo.
    fn check_cosines(&self, outcome: &Outcome) -> Result<Option<Vec<Option<Check>>>, Failure> {
        let Some(name) = &self.check_with else { return Ok(None) };
        let config = recognizer_config(name)?;
        let mut recognizer = self.models.detector.load_recognizer(&config, Some(false))?;
        let embed = |recognizer: &mut visage_infer::Recognizer, faces: &[RgbImage]| recognizer.embed(faces).map_err(Failure::from);
        let images = embed(&mut recognizer, &outcome.images)?;
        let with_crops: Vec<(usize, RgbImage)> = outcome.crops.iter().enumerate().filter_map(|(i, c)| c.clone().map(|c| (i, c))).collect();
        let crops = embed(&mut recognizer, &with_crops.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())?;
        let mut checks = vec![None; outcome.images.len()];
        for (k, (i, _)) in with_crops.iter().enumerate() {
            let own = images[*i].cosine(&crops[k]);
            let others: Vec<f32> = with_crops.iter().enumerate().filter(|(l, _)| *l != k).map(|(l, _)| images[*i].cosine(&crops[l])).collect();
            let others_mean = (!others.is_empty()).then(|| others.iter().sum::<f32>() / others.len() as f32);
            checks[*i] = Some(Check { own, others_mean });
        }
        Ok(Some(checks))
    }
}

/// The mean of the rows scaled to unit length (each row counts once,
/// whatever its magnitude).
fn mean_direction(rows: &[Vec<f32>]) -> Vec<f32> {
    let mut sum = vec![0f32; rows.first().map_or(0, Vec::len)];
    for row in rows {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        for (total, v) in sum.iter_mut().zip(row) {
            *total += v / norm;
        }
    }
    sum
}

fn parse_normalization(name: &str) -> Result<Normalization, Failure> {
    let family = match name {
        "arcface" => ModelFamily::Arcface,
        "magface" => ModelFamily::Magface,
        "adaface" => ModelFamily::Adaface,
        other => return Err(Failure::bad_input(format!("--normalization {other}: expected arcface, magface or adaface"))),
    };
    Ok(family.normalization())
}

fn has_extension(path: &Path, wanted: &str) -> bool {
    path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case(wanted))
}
