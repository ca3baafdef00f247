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
    let fresh = TrainModel::<B>::init(&shape, 4, 1, 7, &device()).unwrap();
    let optimizer = visage_train::optimizer::AnyOptimizer::new(&config.optimizer);
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

/// Trains 6 steps straight, and 3 steps + resume (from the step-2
/// checkpoint) in another folder; the two must end bit-identical.
fn assert_resume_is_exact(name: &str, extra: &str) {
    let root = scratch(name);
    let data = synthetic_faces(&root);

    let straight_root = root.join("straight");
    let straight = config(&straight_root, &data, extra);
    let summary = train::<B>(&straight, &device(), &RunOptions::default(), |_| {}).unwrap();
    assert_eq!((summary.steps_done, summary.total_steps), (6, 6)); // 24 images / 8 = 3 steps × 2 epochs

    let stopped_root = root.join("stopped");
    let stopped = config(&stopped_root, &data, extra);
    // Stop after 3 steps: mid-epoch 1, after the step-2 checkpoint; step 3 is lost and redone.
    let partial = train::<B>(&stopped, &device(), &RunOptions { resume: false, stop_after: Some(3), ..RunOptions::default() }, |_| {}).unwrap();
    assert_eq!(partial.steps_done, 3);
    let resumed = train::<B>(&stopped, &device(), &RunOptions { resume: true, stop_after: None, ..RunOptions::default() }, |_| {}).unwrap();
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
fn a_stopped_and_resumed_run_equals_an_uninterrupted_one() {
    assert_resume_is_exact("resume", "");
}

#[test]
fn a_two_worker_run_resumes_exactly_too() {
    assert_resume_is_exact("resume-parallel", "[parallel]\nworkers = 2\n");
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
    let pairs: Vec<(PathBuf, PathBuf, bool)> = (0..10)
        .map(|i| if i % 2 == 0 { (photo(i % 4, 0), photo(i % 4, 0), true) } else { (photo(i % 4, 1), photo((i + 1) % 4, 2), false) })
        .collect();
    let bin = root.join("tiny.bin");
    write_bin(&bin, &pairs);
    let extra = format!("[verification]\nsets = [\"{}\"]\nevery_steps = 2\nbatch_size = 4\n", bin.display());
    let config = config(&root, &data, &extra);
    let mut seen = Vec::new();
    visage_train::train_with_verification::<B>(
        &config,
        &device(),
        &RunOptions::default(),
        |_| {},
        |set, step, accuracy| seen.push((set.to_string(), step, accuracy)),
    )
    .unwrap();
    let steps: Vec<u64> = seen.iter().map(|(_, step, _)| *step).collect();
    assert_eq!(steps, vec![2, 4, 6]);
    assert!(seen.iter().all(|(set, _, accuracy)| set == "tiny" && *accuracy == 1.0), "{seen:?}");
    let log = std::fs::read_to_string(config.out_dir.join("verification.csv")).unwrap();
    assert_eq!(log.lines().next(), Some("step,set,accuracy_mean,accuracy_std"));
    assert_eq!(log.lines().count(), 4, "{log}");
}

/// Two workers, each given the same 4 samples, take the step one worker
/// takes on those samples twice over: BatchNorm's statistics of a doubled
/// batch equal the half's, and each shard's loss is weighted by 1/2, so the
/// summed gradient equals the single worker's. Checked on every parameter
/// after an SGD step with momentum and weight decay.
#[test]
fn two_workers_take_the_one_worker_step() {
    use burn::tensor::{Tensor, TensorData};
    use visage_heads::{HeadConfig, MarginHead};
    use visage_train::config::OptimizerSection;
    use visage_train::optimizer::AnyOptimizer;
    use visage_train::parallel::{combine, shard_gradients, sum_gradients, Shard};

    let root = scratch("parallel");
    let data = synthetic_faces(&root);
    let config = config(&root, &data, "");
    let shape = config.backbone.shape().unwrap();
    let model = TrainModel::<B>::init(&shape, 4, 1, 7, &device()).unwrap();
    let head_config: HeadConfig = serde_json::from_str(r#"{"kind": "arcface", "s": 16.0, "m": 0.2}"#).unwrap();
    let head = MarginHead::new(head_config).unwrap();
    let pixels: Vec<f32> = (0..4 * 3 * 32 * 32).map(|i| (((i * 7919) % 255) as f32 - 127.5) / 127.5).collect();
    let labels = vec![0usize, 1, 2, 3];
    let images = |copies: usize| {
        let data: Vec<f32> = (0..copies).flat_map(|_| pixels.iter().copied()).collect();
        Tensor::<B, 4>::from_data(TensorData::new(data, [4 * copies, 3, 32, 32]), &device())
    };
    let sgd = OptimizerSection::Sgd { lr: 0.1, momentum: 0.9, weight_decay: 5e-4 };

    // One worker on the doubled batch.
    let mut single_head = head.clone();
    let doubled: Vec<usize> = labels.iter().chain(&labels).copied().collect();
    let features = model.clone().backbone.forward(images(2));
    let loss = single_head.forward(features, model.centres.val(), &doubled).unwrap().loss;
    let single_loss: f32 = loss.clone().into_scalar();
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
    let single = AnyOptimizer::new(&sgd).step(0.1, model.clone(), grads);

    // Two workers, one copy each.
    let shards = (0..2).map(|_| Shard { device: device(), images: images(1), labels: labels.clone() }).collect();
    let parallel = shard_gradients(&model, &head, None, shards, 8, 0).unwrap();
    let loss = combine(&parallel.shards, &mut head.clone()).loss;
    assert!((loss - single_loss).abs() < 1e-5 * single_loss.abs().max(1.0), "loss {loss} vs {single_loss}");
    let summed = sum_gradients(&model, &parallel.grads, &device(), false);
    let parallel = AnyOptimizer::new(&sgd).step(0.1, model.clone(), summed);

    // Every trainable parameter (BatchNorm's running statistics are not
    // trained: each worker's forward pass updates them, see parallel.rs).
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            let tensor = param.val();
            if tensor.is_require_grad() {
                self.0.extend(tensor.into_data().to_vec::<f32>().unwrap());
            }
        }
    }
    let values = |m: &TrainModel<B>| {
        let mut collect = Collect(Vec::new());
        burn::module::Module::visit(m, &mut collect);
        collect.0
    };
    let (a, b) = (values(&single), values(&parallel));
    let before = values(&model);
    assert_eq!(a.len(), b.len());
    let moved = a.iter().zip(&before).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let differ = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "the step changed the weights ({moved})");
    assert!(differ < 1e-5 * moved.max(1.0), "two workers differ from one by {differ} (step size {moved})");
}
