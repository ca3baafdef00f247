//! One conv2d layer, forward + backward on `Autodiff<Flex>`, on either path:
//! what `docs/perf/conv.md` measures with callgrind and `perf stat`.
//!
//! `cargo run --release -p visage-kernels --example conv_layer -- \
//!   <kernels|burn> <batch> <C_in> <C_out> <side> <kernel> <stride> <padding> [repeats]`

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};
use visage_kernels::{conv2d, with_conv_path, ConvPath};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: conv_layer <kernels|burn> <batch> <C_in> <C_out> <side> <kernel> <stride> <padding> [repeats]";
    let path = match args.first().map(String::as_str) {
        Some("kernels") => ConvPath::Kernels,
        Some("burn") => ConvPath::Burn,
        _ => panic!("{usage}"),
    };
    let n: Vec<usize> = args[1..].iter().map(|a| a.parse().expect(usage)).collect();
    let [batch, channels_in, channels_out, side, kernel, stride, padding] = n[..7].try_into().expect(usage);
    let repeats = n.get(7).copied().unwrap_or(1);
    let device = Default::default();
    let x = Tensor::<Autodiff<Flex>, 4>::random([batch, channels_in, side, side], Distribution::Default, &device).require_grad();
    let weight = Tensor::<Autodiff<Flex>, 4>::random([channels_out, channels_in, kernel, kernel], Distribution::Default, &device).require_grad();
    let options = ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1);
    for _ in 0..repeats {
        let start = Instant::now();
        let (forward_s, backward_s) = with_conv_path(path, || {
            let output = conv2d(x.clone(), weight.clone(), None, options.clone());
            let _ = output.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data();
            let forward_s = start.elapsed().as_secs_f64();
            let grads = output.sum().backward();
            let _ = weight.grad(&grads).map(|g| g.into_data());
            (forward_s, start.elapsed().as_secs_f64() - forward_s)
        });
        println!("forward {forward_s:.4} s  backward {backward_s:.4} s");
    }
}
