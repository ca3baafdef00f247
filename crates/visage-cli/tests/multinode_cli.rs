//! `visage train --nodes N --node-rank R --coordinator HOST:PORT` through the
//! real binary, every node a process on 127.0.0.1: N processes with one
//! worker take the steps of one process with N workers (two: to the bit,
//! checkpoints included; four: to rounding), a resumed two-node run ends
//! where the straight run does, Partial FC's sampled head runs over nodes
//! as over workers, and a node that never arrives or is killed ends the
//! others' run with an error naming it, within the timeout.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use visage_backend::CpuAutodiff;
use visage_train::model::TrainModel;
use visage_train::optimizer::AnyOptimizer;
use visage_train::TrainConfig;

type B = CpuAutodiff;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-multinode-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny IResNet on the 355 held-out digits: 5 steps of 64 per epoch.
fn write_config(dir: &Path, name: &str, workers: usize, epochs: usize, extra: &str) -> PathBuf {
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/digits/heldout");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "out_dir = \"{name}\"\nepochs = {epochs}\nbatch_size = 64\ngrad_clip_norm = 5.0\n\
             [backbone]\narch = \"iresnet18\"\nembedding_size = 8\nblocks_per_stage = [1, 1, 1, 1]\nstage_widths = [4, 4, 4, 4]\nstem_width = 4\ninput_size = 32\n\
             [head]\nkind = \"arcface\"\ns = 16.0\nm = 0.2\n\
             [data]\nsource = \"{}\"\nflip = false\n\
             [checkpoint]\nevery_steps = 2\nkeep = 10\n\
             [parallel]\nworkers = {workers}\n{extra}",
            digits.display()
        ),
    )
    .unwrap();
    path
}

/// `count` ports nothing listens on now (held open together, so distinct),
/// never one handed to another test of this process: the tests run at the
/// same time, and a port released here is bound by a node only later.
fn free_ports(count: usize) -> Vec<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    let mut listeners = Vec::new();
    while listeners.len() < count {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if !handed_out.contains(&listener.local_addr().unwrap().port()) {
            listeners.push(listener);
        }
    }
    let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
    handed_out.extend(&ports);
    ports
}

fn visage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_visage"))
}

/// Starts node `rank` of `ports.len() - 1` nodes (`ports[0]`: the coordinator).
fn spawn_node(config: &Path, ports: &[u16], rank: usize, timeout_s: f64, extra: &[&str]) -> Child {
    let nodes = ports.len() - 1;
    visage()
        .args(["train", "--config", config.to_str().unwrap()])
        .args(["--nodes", &nodes.to_string(), "--node-rank", &rank.to_string()])
        .args(["--coordinator", &format!("127.0.0.1:{}", ports[0]), "--data-port", &ports[rank + 1].to_string()])
        .args(["--timeout-s", &timeout_s.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("visage starts")
}

/// Runs `nodes` nodes to the end; every one must succeed.
fn run_nodes(config: &Path, nodes: usize, extra: &[&str]) -> Vec<Output> {
    let ports = free_ports(nodes + 1);
    let children: Vec<Child> = (0..nodes).map(|rank| spawn_node(config, &ports, rank, 60.0, extra)).collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for (rank, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "node {rank} failed: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(&format!("node {rank} of {nodes}:")), "{}", text(&out.stderr));
    }
    outputs
}

fn run_alone(config: &Path) {
    let out = visage().args(["train", "--config", config.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The loss column of a run's metrics.csv, as written (6 decimals).
fn losses(run: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines().skip(1).map(|line| line.split(',').nth(3).unwrap().to_owned()).collect()
}

/// Every float of a checkpoint's model (weights, centres and BatchNorm's
/// running statistics), in visiting order.
fn checkpoint_values(config_path: &Path, step: u64) -> Vec<f32> {
    let config = TrainConfig::load(config_path).unwrap();
    checkpoint_dir_values(config_path, &config.out_dir.join(format!("checkpoints/step-{step:08}")))
}

/// [`checkpoint_values`] of the checkpoint folder `dir`.
fn checkpoint_dir_values(config_path: &Path, dir: &Path) -> Vec<f32> {
    let config = TrainConfig::load(config_path).unwrap();
    let device = Default::default();
    let fresh = TrainModel::<B>::init(&config.backbone.shape().unwrap(), 10, 1, 0, &device).unwrap();
    let (model, _, _) = visage_train::checkpoint::load(dir, fresh, AnyOptimizer::new(&config.optimizer), &device).unwrap();
    struct Collect(Vec<f32>);
    impl ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

fn max_relative_difference(a: &[String], b: &[String]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            (x - y).abs() / x.abs().max(1e-12)
        })
        .fold(0.0, f64::max)
}

#[test]
fn two_nodes_take_the_steps_of_one_process_with_two_workers_to_the_bit() {
    let root = scratch("two");
    let single = write_config(&root, "single", 2, 2, "");
    run_alone(&single);
    let nodes = write_config(&root, "nodes", 1, 2, "");
    run_nodes(&nodes, 2, &[]);

    let (expected, got) = (losses(&root.join("single")), losses(&root.join("nodes")));
    assert_eq!(expected.len(), 10);
    assert_eq!(got, expected, "loss per step, two nodes vs one process with two workers");
    let (a, b) = (checkpoint_values(&single, 10), checkpoint_values(&nodes, 10));
    assert_eq!(a.len(), b.len());
    let differing = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
    assert_eq!(differing, 0, "{differing} of {} checkpoint values differ in their bits", a.len());

    // Stopped after 3 steps and resumed, both nodes end where the straight run did.
    let resumed = write_config(&root, "resumed", 1, 2, "");
    run_nodes(&resumed, 2, &["--stop-after", "3"]);
    let outputs = run_nodes(&resumed, 2, &["--resume"]);
    assert!(text(&outputs[0].stderr).contains("resumed from"), "{}", text(&outputs[0].stderr));
    assert_eq!(losses(&root.join("resumed")), expected);
    let c = checkpoint_values(&resumed, 10);
    assert!(a.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()), "the resumed two-node run differs from the straight run");
}

#[test]
fn four_nodes_take_the_steps_of_one_process_with_four_workers() {
    let root = scratch("four");
    // lr 0.02: at 0.1 this tiny network amplifies the ring's rounding from
    // step to step past 1e-5 within the 5 steps; at 0.02 it stays at rounding.
    let slower = "[optimizer]\nkind = \"sgd\"\nlr = 0.02\n";
    let single = write_config(&root, "single", 4, 1, slower);
    run_alone(&single);
    let nodes = write_config(&root, "nodes", 1, 1, slower);
    run_nodes(&nodes, 4, &[]);
    let (expected, got) = (losses(&root.join("single")), losses(&root.join("nodes")));
    assert_eq!((expected.len(), got.len()), (5, 5));
    let worst = max_relative_difference(&expected, &got);
    assert!(worst <= 1e-5, "four nodes vs four workers: relative loss difference {worst:e}\n{expected:?}\n{got:?}");
    // The first step sums in the same order on both sides.
    assert_eq!(got[0], expected[0]);
}

#[test]
fn partial_fc_over_two_nodes_equals_two_workers() {
    let root = scratch("pfc");
    let extra = "[partial_fc]\nsample_rate = 0.5\nseed = 3\n";
    let single = write_config(&root, "single", 2, 1, extra);
    run_alone(&single);
    let nodes = write_config(&root, "nodes", 1, 1, extra);
    run_nodes(&nodes, 2, &[]);
    let (expected, got) = (losses(&root.join("single")), losses(&root.join("nodes")));
    assert_eq!(expected.len(), 5);
    assert_eq!(got, expected);
    let (a, b) = (checkpoint_values(&single, 5), checkpoint_values(&nodes, 5));
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "Partial FC: checkpoints differ");
}

/// A checkpoint's values split at the class centres: (backbone and
/// BatchNorm statistics, centres), the centres being the last `rows × 8`.
fn split_at_centres(values: &[f32], rows: usize) -> (&[f32], &[f32]) {
    values.split_at(values.len() - rows * 8)
}

/// [`write_config`] with the centres split (`[partial_fc] model_parallel`,
/// no sampling), CosFace and lr 0.02. At lr 0.1 this tiny network
/// amplifies a rounding difference from step to step, and ArcFace's target
/// logit jumps where θ + m crosses π (insightface's fallback branch), so a
/// last-bit difference there moves the loss far beyond rounding.
fn split_config(dir: &Path, name: &str, workers: usize, epochs: usize) -> PathBuf {
    let extra = "[partial_fc]\nsample_rate = 1.0\nmodel_parallel = true\n[optimizer]\nkind = \"sgd\"\nlr = 0.02\n";
    let path = write_config(dir, name, workers, epochs, extra);
    let text = std::fs::read_to_string(&path).unwrap().replace("kind = \"arcface\"", "kind = \"cosface\"");
    std::fs::write(&path, text).unwrap();
    path
}

/// `[partial_fc] model_parallel`: node 0 holds digits 0..5, node 1 digits
/// 5..10; each gathers the whole batch's features and the softmax over both
/// slices is all-reduced. One process with two workers gathers its workers'
/// features and runs the unsharded head over all ten centres: the same
/// head, so the same loss to rounding (the sum of exp adds in two parts).
#[test]
fn partial_fc_split_over_two_nodes_equals_the_unsharded_head() {
    let root = scratch("split");
    let single = split_config(&root, "single", 2, 2);
    run_alone(&single);
    let nodes = split_config(&root, "nodes", 1, 2);
    run_nodes(&nodes, 2, &[]);
    let (expected, got) = (losses(&root.join("single")), losses(&root.join("nodes")));
    assert_eq!((expected.len(), got.len()), (10, 10));
    let worst = max_relative_difference(&expected, &got);
    eprintln!("split over two nodes vs unsharded: worst relative loss difference {worst:e}\n{expected:?}\n{got:?}");
    assert!(worst <= 1e-5, "relative loss difference {worst:e}\n{expected:?}\n{got:?}");

    // Each node checkpointed its own slice; both hold the same backbone, to the bit.
    let unsplit = checkpoint_values(&single, 10);
    let node0 = checkpoint_values(&nodes, 10);
    let node1_dir = root.join("nodes/checkpoints/node-1/step-00000010");
    assert!(node1_dir.join("state.json").is_file(), "node 1 wrote no checkpoint of its slice");
    let state = std::fs::read_to_string(node1_dir.join("state.json")).unwrap();
    assert!(state.contains("\"first_class\": 5") && state.contains("\"total_classes\": 10"), "{state}");
    let node1 = checkpoint_dir_values(&nodes, &node1_dir);
    let ((backbone0, centres0), (backbone1, centres1)) = (split_at_centres(&node0, 5), split_at_centres(&node1, 5));
    assert!(backbone0.iter().zip(backbone1).all(|(a, b)| a.to_bits() == b.to_bits()), "the nodes' backbones differ");
    let (backbone, centres) = split_at_centres(&unsplit, 10);
    assert_eq!((backbone.len(), centres.len()), (backbone0.len(), centres0.len() + centres1.len()));

    // Stopped after 3 steps and resumed from each node's own checkpoint: the bits of the straight run.
    let resumed = split_config(&root, "resumed", 1, 2);
    run_nodes(&resumed, 2, &["--stop-after", "3"]);
    let outputs = run_nodes(&resumed, 2, &["--resume"]);
    assert!(text(&outputs[0].stderr).contains("resumed from"), "{}", text(&outputs[0].stderr));
    assert_eq!(losses(&root.join("resumed")), got);
    let again = (checkpoint_values(&resumed, 10), checkpoint_dir_values(&resumed, &root.join("resumed/checkpoints/node-1/step-00000010")));
    assert!(again.0.iter().zip(&node0).all(|(a, b)| a.to_bits() == b.to_bits()), "node 0's resumed checkpoint differs");
    assert!(again.1.iter().zip(&node1).all(|(a, b)| a.to_bits() == b.to_bits()), "node 1's resumed checkpoint differs");
}

/// With sampling (rate 0.5) each node samples its slice as Partial FC's
/// shard `rank`, a function of (seed, step, rank): a resumed run samples
/// what the straight run sampled. A slice's checkpoint is refused where the
/// whole head is needed, and by a process of another layout.
#[test]
fn sampled_split_partial_fc_resumes_to_the_bit_and_slices_are_checked() {
    let root = scratch("split-sampled");
    let extra = "[partial_fc]\nsample_rate = 0.5\nseed = 3\nmodel_parallel = true\n";
    let straight = write_config(&root, "straight", 1, 1, extra);
    run_nodes(&straight, 2, &[]);
    let resumed = write_config(&root, "resumed", 1, 1, extra);
    run_nodes(&resumed, 2, &["--stop-after", "3"]);
    run_nodes(&resumed, 2, &["--resume"]);
    let expected = losses(&root.join("straight"));
    assert_eq!(expected.len(), 5);
    assert_eq!(losses(&root.join("resumed")), expected);
    let (a, b) = (checkpoint_values(&straight, 5), checkpoint_values(&resumed, 5));
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "node 0's checkpoints differ");

    let device = Default::default();
    let err = visage_train::checkpoint::load_model::<B>(&root.join("straight"), &device).unwrap_err().to_string();
    assert!(err.contains("holds classes 0..5 of 10 only"), "{err}");
    assert!(visage_train::checkpoint::load_backbone::<B>(&root.join("straight"), &device).is_ok());
    // One process resuming node 0's slice: refused, naming both layouts.
    let out = visage().args(["train", "--config", straight.to_str().unwrap(), "--resume"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds classes 0..5 of 10 (node 0 of 2) but this process needs classes 0..10 of 10 (node 0 of 1)"), "{stderr}");
}

#[test]
fn a_node_that_never_arrives_stops_the_other_within_the_timeout() {
    let root = scratch("absent");
    let config = write_config(&root, "run", 1, 1, "");
    let ports = free_ports(3);
    let started = Instant::now();
    let out = spawn_node(&config, &ports, 0, 3.0, &[]).wait_with_output().unwrap();
    let waited = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("node 0 of 2: not all 2 nodes joined"), "{stderr}");
    assert!(waited < Duration::from_secs(30), "took {waited:?}");
    assert!(!root.join("run/metrics.csv").exists() || losses(&root.join("run")).is_empty());
}

#[test]
fn a_killed_node_stops_the_other_within_the_timeout() {
    let root = scratch("killed");
    // 40 epochs: long enough that node 0 is mid-run when node 1 is killed.
    let config = write_config(&root, "run", 1, 40, "");
    let ports = free_ports(3);
    let node0 = spawn_node(&config, &ports, 0, 5.0, &[]);
    let mut node1 = spawn_node(&config, &ports, 1, 5.0, &[]);
    let metrics = root.join("run/metrics.csv");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&metrics).map_or(0, |csv| csv.lines().count()) < 4 {
        assert!(Instant::now() < deadline, "the two nodes never took 3 steps");
        std::thread::sleep(Duration::from_millis(20));
    }
    node1.kill().unwrap();
    let killed_at = Instant::now();
    node1.wait().unwrap();
    let out = node0.wait_with_output().unwrap();
    let waited = killed_at.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("node 0 of 2: step "), "{stderr}");
    assert!(stderr.contains("another node"), "{stderr}");
    assert!(waited < Duration::from_secs(30), "node 0 took {waited:?} to stop");
    let steps = losses(&root.join("run")).len();
    assert!((3..200).contains(&steps), "{steps} steps logged");
}

#[test]
fn bad_node_flags_exit_2_naming_them() {
    let root = scratch("flags");
    let config = write_config(&root, "run", 1, 1, "");
    let config = config.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--nodes", "2"], "need --coordinator"),
        (&["--nodes", "2", "--node-rank", "2", "--coordinator", "127.0.0.1:29999"], "--node-rank 2 must be below --nodes 2"),
        (&["--nodes", "2", "--coordinator", "nowhere"], "--coordinator nowhere"),
        (&["--nodes", "3", "--coordinator", "127.0.0.1:29999"], "batch_size 64 must split evenly over 3 nodes"),
    ];
    for (flags, expected) in cases {
        let out = visage().args(["train", "--config", config]).args(flags).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(expected), "{flags:?}: {}", text(&out.stderr));
    }
}
