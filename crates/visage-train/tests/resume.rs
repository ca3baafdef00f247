//! A real (tiny) training run on the CPU backend: it learns, it resumes to
//! the bit after a stop, and a diverging run stops with the last good
//! checkpoint kept.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use visage_backend::CpuAutodiff;
use visage_train::model::TrainModel;
use visage_train::{train, RunOptions, TrainConfig, TrainError};

type B = CpuAutodiff;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 4 identities × 6 images, 32×32: each identity a colour and a stripe
/// direction, each image with its own deterministic noise.
fn synthetic_faces(root: &Path) -> PathBuf {
    let data = root.join("faces");
    let colours = [[200u8, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]];
    for (id, colour) in colours.iter().enumerate() {
        let dir = data.join(format!("id{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..6u32 {
            let image = RgbImage::from_fn(32, 32, |x, y| {
                let stripe = if id % 2 == 0 { (x / 4) % 2 } else { (y / 4) % 2 };
                let noise = ((x * 7 + y * 13 + k * 31) % 17) as u8;
                Rgb(colour.map(|c| c.saturating_sub(if stripe == 1 { 60 } else { 0 }).saturating_add(noise)))
            });
            image.save(dir.join(format!("{k}.png"))).unwrap();
        }
    }
    data
}

fn config(root: &Path, data: &Path, extra: &str) -> TrainConfig {
    let text = format!(
        "out_dir = \"{out}\"\nepochs = 2\nbatch_size = 8\nseed = 7\n\
         [backbone]\narch = \"iresnet18\"\nembedding_size = 16\nblocks_per_stage = [1, 1, 1, 1]\nstage_widths = [8, 8, 16, 16]\nstem_width = 8\ninput_size = 32\n\
         [head]\nkind = \"arcface\"\ns = 16.0\nm = 0.2\n\
         [data]\nsource = \"{data}\"\nthreads = 2\n\
         [optimizer]\nkind = \"sgd\"\nlr = 0.05\n\
         [checkpoint]\nevery_steps = 2\nkeep = 3\n{extra}",
        out = root.join("run").display(),
        data = data.display()
    );
    TrainConfig::parse(&text).unwrap()
}

fn device() -> burn::tensor::Device<B> {
    Default::default()
}

/// Every weight and running statistic of the newest checkpoint, as seen
/// through the network: eval-mode features of a fixed batch (which read all
/// backbone weights and BatchNorm statistics) and the class centres.
fn trained_values(config: &TrainConfig) -> (Vec<f32>, Vec<f32>) {
    use burn::module::AutodiffModule;
    let latest = visage_train::checkpoint::latest(&config.out_dir).expect("a checkpoint");
    let shape = config.backbone.shape().unwrap();
    let fresh = TrainModel::<B>::init(&shape, 4, 1, &device()).unwrap();
    let optimizer = visage_train::optimizer::AnyOptimizer::new(&config.optimizer, None);
    let (model, _, _) = visage_train::checkpoint::load(&latest, fresh, optimizer, &device()).unwrap();
    let model = model.valid();
    let input = burn::tensor::Tensor::<visage_backend::Cpu, 4>::from_data(
        burn::tensor::TensorData::new((0..2 * 3 * 32 * 32).map(|i| ((i % 23) as f32 - 11.0) / 11.0).collect::<Vec<f32>>(), [2, 3, 32, 32]),
        &device(),
    );
    let features = model.backbone.forward(input).into_data().to_vec::<f32>().unwrap();
    let centres = model.centres.val().into_data().to_vec::<f32>().unwrap();
    (features, centres)
}

#[test]
fn a_stopped_and_resumed_run_equals_an_uninterrupted_one() {
    let root = scratch("resume");
    let data = synthetic_faces(&root);

    let straight_root = root.join("straight");
    let straight = config(&straight_root, &data, "");
    let summary = train::<B>(&straight, &device(), &RunOptions::default(), |_| {}).unwrap();
    assert_eq!((summary.steps_done, summary.total_steps), (6, 6)); // 24 images / 8 = 3 steps × 2 epochs

    let stopped_root = root.join("stopped");
    let stopped = config(&stopped_root, &data, "");
    // Stop after 3 steps: mid-epoch 1, after the step-2 checkpoint; step 3 is lost and redone.
    let partial = train::<B>(&stopped, &device(), &RunOptions { resume: false, stop_after: Some(3) }, |_| {}).unwrap();
    assert_eq!(partial.steps_done, 3);
    let resumed = train::<B>(&stopped, &device(), &RunOptions { resume: true, stop_after: None }, |_| {}).unwrap();
    assert!(resumed.resumed_from.as_ref().unwrap().ends_with("step-00000002"), "{:?}", resumed.resumed_from);
    assert_eq!(resumed.steps_done, 6);

    let (straight_features, straight_centres) = trained_values(&straight);
    let (stopped_features, stopped_centres) = trained_values(&stopped);
    assert_eq!(straight_centres, stopped_centres, "centres differ");
    assert_eq!(straight_features, stopped_features, "backbone weights or BatchNorm statistics differ");
    assert!(straight_features.iter().all(|v| v.is_finite()) && straight_features.iter().any(|v| *v != 0.0));
    let log = |c: &TrainConfig| std::fs::read_to_string(c.out_dir.join("metrics.csv")).unwrap();
    let drop_speed = |text: String| text.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect::<Vec<_>>();
    assert_eq!(drop_speed(log(&straight)), drop_speed(log(&stopped)), "same losses step by step");
    assert_eq!(log(&stopped).lines().count(), 1 + 6, "no step logged twice");
}

#[test]
fn the_loss_falls_on_learnable_data() {
    let root = scratch("learn");
    let data = synthetic_faces(&root);
    let config = config(&root, &data, "").clone();
    let config = TrainConfig { epochs: 6, ..config };
    let mut losses = Vec::new();
    train::<B>(&config, &device(), &RunOptions::default(), |report| losses.push(report.loss)).unwrap();
    let first: f32 = losses[..3].iter().sum::<f32>() / 3.0;
    let last: f32 = losses[losses.len() - 3..].iter().sum::<f32>() / 3.0;
    assert!(last < 0.7 * first, "loss {first} → {last}: {losses:?}");
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let root = scratch("diverge");
    let data = synthetic_faces(&root);
    let text_config = config(&root, &data, "");
    let config = TrainConfig { optimizer: visage_train::config::OptimizerSection::Sgd { lr: 1e30, momentum: 0.9, weight_decay: 0.0 }, ..text_config };
    let error = train::<B>(&config, &device(), &RunOptions::default(), |_| {}).unwrap_err();
    let TrainError::Diverged { step, last_checkpoint, .. } = &error else { panic!("expected divergence, got {error}") };
    assert!(*step >= 1, "step {step}");
    if *step >= 2 {
        assert!(last_checkpoint.as_ref().is_some_and(|p| p.join("state.json").is_file()), "{error}");
    }
    assert!(error.to_string().contains("training diverged"), "{error}");
}

/// An insightface `.bin` (pickle protocol 3: a tuple of a list of encoded
/// images and a list of is-same flags) for `pairs` of PNG files.
fn write_bin(path: &Path, pairs: &[(PathBuf, PathBuf, bool)]) {
    let mut pickle = vec![0x80, 3, b']', b'('];
    for (a, b, _) in pairs {
        for file in [a, b] {
            let bytes = std::fs::read(file).unwrap();
            pickle.push(b'B');
            pickle.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            pickle.extend_from_slice(&bytes);
        }
    }
    pickle.extend_from_slice(b"e]("); // APPENDS, then the flags list
    pickle.extend(pairs.iter().map(|(_, _, same)| if *same { 0x88 } else { 0x89 }));
    pickle.extend_from_slice(&[b'e', 0x86, b'.']); // APPENDS, TUPLE2, STOP
    std::fs::write(path, pickle).unwrap();
}

#[test]
fn verification_sets_are_evaluated_during_training() {
    let root = scratch("verify");
    let data = synthetic_faces(&root);
    // 10 pairs: a photo with itself (same, distance 0) or with another identity's photo.
    let photo = |id: usize, k: usize| data.join(format!("id{id}/{k}.png"));
    let pairs: Vec<(PathBuf, PathBuf, bool)> =
        (0..10).map(|i| if i % 2 == 0 { (photo(i % 4, 0), photo(i % 4, 0), true) } else { (photo(i % 4, 1), photo((i + 1) % 4, 2), false) }).collect();
    let bin = root.join("tiny.bin");
    write_bin(&bin, &pairs);
    let extra = format!("[verification]\nsets = [\"{}\"]\nevery_steps = 2\nbatch_size = 4\n", bin.display());
    let config = config(&root, &data, &extra);
    let mut seen = Vec::new();
    visage_train::train_with_verification::<B>(&config, &device(), &RunOptions::default(), |_| {}, |set, step, accuracy| seen.push((set.to_string(), step, accuracy)))
        .unwrap();
    let steps: Vec<u64> = seen.iter().map(|(_, step, _)| *step).collect();
    assert_eq!(steps, vec![2, 4, 6]);
    assert!(seen.iter().all(|(set, _, accuracy)| set == "tiny" && *accuracy == 1.0), "{seen:?}");
    let log = std::fs::read_to_string(config.out_dir.join("verification.csv")).unwrap();
    assert_eq!(log.lines().next(), Some("step,set,accuracy_mean,accuracy_std"));
    assert_eq!(log.lines().count(), 4, "{log}");
}
