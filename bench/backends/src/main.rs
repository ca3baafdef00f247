//! IResNet-18 training-step benchmark for burn 0.21.0 backends.
//!
//! One backend per build, picked by cargo feature (`flex`, `flex-fast`,
//! `flex-v4`, `cpu`, `tch`, `cuda`). The network follows the insightface
//! IResNet layout:
//!
//! * stem: conv3x3(3->64, s1) + BN + PReLU, on 112x112 input;
//! * 4 stages of [2, 2, 2, 2] blocks, 64/128/256/512 channels, each stage
//!   starting with stride 2 (112 -> 56 -> 28 -> 14 -> 7);
//! * block: BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN, plus the
//!   shortcut (conv1x1(stride) + BN when the shape changes);
//! * head: BN2d -> flatten -> dropout -> Linear(512*7*7 -> 512) -> BN1d;
//! * a plain softmax cross-entropy classifier on the 512-d embedding.
//!
//! A step is forward + backward + SGD (momentum 0.9, weight decay 5e-4)
//! update. After warm-up steps it prints per-step timings and the median,
//! min and max, plus the median split into forward / backward / update.
//! `bench/backends/torch_step.py` does the same in PyTorch.

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PRelu, PReluConfig,
    PaddingConfig2d,
};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Int, Tensor};

#[cfg(feature = "tch")]
mod sel {
    pub type Inner = burn::backend::LibTorch;
    pub const NAME: &str = "tch (libtorch CPU)";
}
#[cfg(all(feature = "cpu", not(feature = "tch")))]
mod sel {
    pub type Inner = burn::backend::Cpu;
    pub const NAME: &str = "cpu (cubecl CPU)";
}
#[cfg(all(feature = "cuda", not(any(feature = "tch", feature = "cpu"))))]
mod sel {
    pub type Inner = burn::backend::Cuda;
    pub const NAME: &str = "cuda";
}
#[cfg(all(
    feature = "flex",
    not(any(feature = "tch", feature = "cpu", feature = "cuda"))
))]
mod sel {
    pub type Inner = burn::backend::Flex;
    #[cfg(feature = "flex-v4")]
    pub const NAME: &str = "flex (rayon+simd+x86-v4)";
    #[cfg(all(feature = "flex-fast", not(feature = "flex-v4")))]
    pub const NAME: &str = "flex (rayon+simd)";
    #[cfg(not(feature = "flex-fast"))]
    pub const NAME: &str = "flex (workspace features: no rayon/simd)";
}
#[cfg(not(any(feature = "flex", feature = "cpu", feature = "tch", feature = "cuda")))]
compile_error!("enable one backend feature: flex, flex-fast, flex-v4, cpu, tch or cuda");

type Ad = burn::backend::Autodiff<sel::Inner>;

fn conv3x3<B: Backend>(cin: usize, cout: usize, stride: usize, dev: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(dev)
}

fn bn<B: Backend>(c: usize, dev: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(c).with_epsilon(1e-5).init(dev)
}

#[derive(Module, Debug)]
struct Shortcut<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm<B>,
}

#[derive(Module, Debug)]
struct Block<B: Backend> {
    bn1: BatchNorm<B>,
    conv1: Conv2d<B>,
    bn2: BatchNorm<B>,
    prelu: PRelu<B>,
    conv2: Conv2d<B>,
    bn3: BatchNorm<B>,
    shortcut: Option<Shortcut<B>>,
}

impl<B: Backend> Block<B> {
    fn new(cin: usize, cout: usize, stride: usize, dev: &B::Device) -> Self {
        let shortcut = (stride != 1 || cin != cout).then(|| Shortcut {
            conv: Conv2dConfig::new([cin, cout], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(dev),
            bn: bn(cout, dev),
        });
        Self {
            bn1: bn(cin, dev),
            conv1: conv3x3(cin, cout, 1, dev),
            bn2: bn(cout, dev),
            prelu: PReluConfig::new().with_num_parameters(cout).init(dev),
            conv2: conv3x3(cout, cout, stride, dev),
            bn3: bn(cout, dev),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.shortcut {
            Some(s) => s.bn.forward(s.conv.forward(x.clone())),
            None => x.clone(),
        };
        let out = self.bn1.forward(x);
        let out = self.conv1.forward(out);
        let out = self.prelu.forward(self.bn2.forward(out));
        let out = self.bn3.forward(self.conv2.forward(out));
        out + identity
    }
}

#[derive(Module, Debug)]
struct IResNet<B: Backend> {
    conv1: Conv2d<B>,
    bn1: BatchNorm<B>,
    prelu: PRelu<B>,
    blocks: Vec<Block<B>>,
    bn2: BatchNorm<B>,
    dropout: Dropout,
    fc: Linear<B>,
    features: BatchNorm<B>,
}

impl<B: Backend> IResNet<B> {
    fn new(layers: [usize; 4], emb: usize, dropout: f64, dev: &B::Device) -> Self {
        let widths = [64, 128, 256, 512];
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (stage, &n) in layers.iter().enumerate() {
            for i in 0..n {
                let stride = if i == 0 { 2 } else { 1 };
                blocks.push(Block::new(cin, widths[stage], stride, dev));
                cin = widths[stage];
            }
        }
        Self {
            conv1: conv3x3(3, 64, 1, dev),
            bn1: bn(64, dev),
            prelu: PReluConfig::new().with_num_parameters(64).init(dev),
            blocks,
            bn2: bn(512, dev),
            dropout: DropoutConfig::new(dropout).init(),
            fc: LinearConfig::new(512 * 7 * 7, emb).init(dev),
            features: bn(emb, dev),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.prelu.forward(self.bn1.forward(self.conv1.forward(x)));
        for b in &self.blocks {
            x = b.forward(x);
        }
        let x = self.bn2.forward(x);
        let x: Tensor<B, 2> = x.flatten(1, 3);
        let x = self.dropout.forward(x);
        self.features.forward(self.fc.forward(x))
    }
}

#[derive(Module, Debug)]
struct Net<B: Backend> {
    backbone: IResNet<B>,
    classifier: Linear<B>,
}

struct Args {
    batch: usize,
    warmup: usize,
    steps: usize,
    classes: usize,
    dropout: f64,
}

fn parse_args() -> Args {
    let mut a = Args { batch: 8, warmup: 2, steps: 7, classes: 1000, dropout: 0.0 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("missing value for {k}")).clone();
        match k.as_str() {
            "--batch" => a.batch = v().parse().expect("--batch N"),
            "--warmup" => a.warmup = v().parse().expect("--warmup N"),
            "--steps" => a.steps = v().parse().expect("--steps N"),
            "--classes" => a.classes = v().parse().expect("--classes N"),
            "--dropout" => a.dropout = v().parse().expect("--dropout P"),
            "-h" | "--help" => {
                println!("bench-backends [--batch 8] [--warmup 2] [--steps 7] [--classes 1000] [--dropout 0.0]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) }
}

/// User + system CPU seconds of the whole process (all threads), from
/// /proc/self/stat (clock ticks of 1/100 s). Under contention from other
/// processes this is steadier than wall time; with spinning thread pools it
/// over-counts, so compare it at 1 thread (RAYON_NUM_THREADS=1, --threads 1).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); after "pid (comm)" they are at index 11, 12.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn sync<B: Backend>(dev: &B::Device) {
    B::sync(dev).expect("backend sync failed");
}

fn run<Bd: AutodiffBackend>(args: &Args, dev: &Bd::Device) {
    Bd::seed(dev, 42);
    let t0 = Instant::now();
    let mut net = Net::<Bd> {
        backbone: IResNet::new([2, 2, 2, 2], 512, args.dropout, dev),
        classifier: LinearConfig::new(512, args.classes).init(dev),
    };
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: 0.9, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: 5e-4 }))
        .init::<Bd, Net<Bd>>();
    let loss_fn = CrossEntropyLossConfig::new().init(dev);
    let x = Tensor::<Bd, 4>::random([args.batch, 3, 112, 112], Distribution::Normal(0.0, 1.0), dev);
    let y = Tensor::<Bd, 1, Int>::random([args.batch], Distribution::Uniform(0.0, args.classes as f64), dev);
    sync::<Bd>(dev);
    eprintln!(
        "params: {}  init: {:.2}s",
        Module::<Bd>::num_params(&net),
        t0.elapsed().as_secs_f64()
    );

    let (mut tot, mut fw, mut bw, mut up) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cpu = Vec::new();
    for step in 0..args.warmup + args.steps {
        let c0 = cpu_seconds();
        let t0 = Instant::now();
        let emb = net.backbone.forward(x.clone());
        let logits = net.classifier.forward(emb);
        let loss = loss_fn.forward(logits, y.clone());
        let loss_val: f32 = loss.clone().into_scalar().elem();
        let t1 = Instant::now();
        let grads = loss.backward();
        let grads = GradientsParams::from_grads::<Bd, _>(grads, &net);
        sync::<Bd>(dev);
        let t2 = Instant::now();
        net = optim.step(0.1, net, grads);
        sync::<Bd>(dev);
        let t3 = Instant::now();
        let c = cpu_seconds() - c0;
        let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
        let warm = step < args.warmup;
        eprintln!(
            "step {step:2}{} loss {loss_val:8.4}  total {:.3}s  fwd {:.3}s  bwd {:.3}s  sgd {:.3}s  cpu {c:.2}s",
            if warm { " (warm-up)" } else { "          " },
            s(t0, t3),
            s(t0, t1),
            s(t1, t2),
            s(t2, t3)
        );
        if !warm {
            tot.push(s(t0, t3));
            fw.push(s(t0, t1));
            bw.push(s(t1, t2));
            up.push(s(t2, t3));
            cpu.push(c);
        }
    }
    let min = tot.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = tot.iter().cloned().fold(0.0, f64::max);
    println!(
        "RESULT backend=\"{}\" batch={} steps={} median_s={:.3} min_s={:.3} max_s={:.3} fwd_s={:.3} bwd_s={:.3} sgd_s={:.3} cpu_s={:.2}",
        sel::NAME,
        args.batch,
        tot.len(),
        median(&tot),
        min,
        max,
        median(&fw),
        median(&bw),
        median(&up),
        median(&cpu)
    );
}

fn main() {
    let args = parse_args();
    eprintln!("backend: {}", sel::NAME);
    // Device creation is where a GPU backend without a driver fails; keep it
    // inside catch_unwind so the failure mode (panic vs. error) is visible.
    let dev = match std::panic::catch_unwind(|| {
        let dev = burn::tensor::Device::<Ad>::default();
        // Force the runtime/client to initialise.
        let t = Tensor::<Ad, 1>::ones([4], &dev);
        let _: f32 = t.sum().into_scalar().elem();
        dev
    }) {
        Ok(d) => d,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string panic>".into());
            eprintln!("DEVICE INIT PANICKED (caught): {msg}");
            std::process::exit(3);
        }
    };
    run::<Ad>(&args, &dev);
}
