//! The kernels against burn's own conv2d on `Autodiff<Flex>`: outputs and
//! both gradients, on every convolution shape of IResNet-18/50 and
//! MobileFaceNet (at batch 2) and on odd shapes.

use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

use super::*;

type Ad = Autodiff<Flex>;

/// Largest |kernels − burn| over the largest |burn|, for an output or gradient.
/// Measured over the shapes below: at most 1.0e-6 for the outputs, 0 for the
/// input gradients (the same products summed in the same order as burn's
/// transposed convolution) and 2.0e-6 for the weight gradients (f32 sums of
/// up to 2·112² terms in another order); depthwise: 0, 0 and 1.4e-6.
const TOLERANCE: f32 = 1e-5;

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(2_246_822_519)) >> 9) as f32 / (1u32 << 23) as f32 - 0.5).collect()
}

fn relative_error(ours: &TensorData, reference: &TensorData) -> f32 {
    let (ours, reference) = (ours.as_slice::<f32>().expect("f32"), reference.as_slice::<f32>().expect("f32"));
    assert_eq!(ours.len(), reference.len());
    let largest = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(reference).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(largest > 0.0, "a reference that is all zeros checks nothing");
    worst / largest
}

/// Output, input gradient and weight gradient of a conv2d on `path`, for
/// the loss `Σ conv(x, w) ⊙ r`.
fn run(path: ConvPath, x: &Tensor<Ad, 4>, weight: &Tensor<Ad, 4>, r: &Tensor<Ad, 4>, options: &ConvOptions<2>) -> [TensorData; 3] {
    with_conv_path(path, || {
        let output = conv2d(x.clone(), weight.clone(), None, options.clone());
        let grads = (output.clone() * r.clone()).sum().backward();
        [output.into_data(), x.grad(&grads).expect("input gradient").into_data(), weight.grad(&grads).expect("weight gradient").into_data()]
    })
}

/// (batch, C_in, C_out, H, kernel, stride, padding) and W → the three
/// relative errors; `depthwise`: groups = C_in = C_out.
fn compare(shape: (usize, usize, usize, usize, usize, usize, usize), width: usize, depthwise: bool) -> [f32; 3] {
    let (batch, channels_in, channels_out, height, kernel, stride, padding) = shape;
    let device = Default::default();
    let (groups, weight_in) = if depthwise { (channels_in, 1) } else { (1, channels_in) };
    let options = ConvOptions::new([stride, stride], [padding, padding], [1, 1], groups);
    let x =
        Tensor::<Ad, 4>::from_data(TensorData::new(values(batch * channels_in * height * width, 1), [batch, channels_in, height, width]), &device)
            .require_grad();
    let weight = Tensor::<Ad, 4>::from_data(
        TensorData::new(values(channels_out * weight_in * kernel * kernel, 2), [channels_out, weight_in, kernel, kernel]),
        &device,
    )
    .require_grad();
    let [out_h, out_w] = ConvGeometry::new(x.dims(), weight.dims(), &options).expect("a shape the kernels cover").output;
    let r =
        Tensor::<Ad, 4>::from_data(TensorData::new(values(batch * channels_out * out_h * out_w, 3), [batch, channels_out, out_h, out_w]), &device);
    let ours = run(ConvPath::Kernels, &x, &weight, &r, &options);
    let reference = run(ConvPath::Burn, &x, &weight, &r, &options);
    for (a, b) in ours.iter().zip(&reference) {
        assert_eq!(a.shape, b.shape, "{shape:?}");
    }
    [0, 1, 2].map(|i| relative_error(&ours[i], &reference[i]))
}

fn check_all(shapes: &[(usize, usize, usize, usize, usize, usize, usize)], depthwise: bool) {
    for &shape in shapes {
        let errors = compare(shape, shape.3, depthwise);
        assert!(errors.iter().all(|e| *e <= TOLERANCE), "{shape:?}: output, input gradient, weight gradient off by {errors:?} of the largest entry");
    }
}

/// IResNet-18 and -50 (insightface layout, 112×112 input) have the same set
/// of convolution shapes: the 3×3 stem, then per stage of width c after
/// width c′ at side h: conv1 3×3/1 c′→c at h, conv2 3×3/2 c→c at h, the
/// shortcut 1×1/2 c′→c at h, and in the other blocks 3×3/1 c→c at h/2.
#[test]
fn iresnet_layers_match_burn() {
    check_all(
        &[
            (2, 3, 64, 112, 3, 1, 1),
            (2, 64, 64, 112, 3, 1, 1),
            (2, 64, 64, 112, 3, 2, 1),
            (2, 64, 64, 112, 1, 2, 0),
            (2, 64, 64, 56, 3, 1, 1),
            (2, 64, 128, 56, 3, 1, 1),
            (2, 128, 128, 56, 3, 2, 1),
            (2, 64, 128, 56, 1, 2, 0),
            (2, 128, 128, 28, 3, 1, 1),
            (2, 128, 256, 28, 3, 1, 1),
            (2, 256, 256, 28, 3, 2, 1),
            (2, 128, 256, 28, 1, 2, 0),
            (2, 256, 256, 14, 3, 1, 1),
            (2, 256, 512, 14, 3, 1, 1),
            (2, 512, 512, 14, 3, 2, 1),
            (2, 256, 512, 14, 1, 2, 0),
            (2, 512, 512, 7, 3, 1, 1),
        ],
        false,
    );
}

/// MobileFaceNet (`mbf`, scale 2) outside its depthwise layers, which stay on
/// burn's path: the 3×3/2 stem and the 1×1 expansions and projections.
#[test]
fn mobilefacenet_layers_match_burn() {
    check_all(
        &[
            (2, 3, 128, 112, 3, 2, 1),
            (2, 128, 128, 56, 1, 1, 0),
            (2, 128, 128, 28, 1, 1, 0),
            (2, 128, 256, 28, 1, 1, 0),
            (2, 256, 256, 14, 1, 1, 0),
            (2, 256, 512, 14, 1, 1, 0),
            (2, 512, 256, 7, 1, 1, 0),
            (2, 256, 512, 7, 1, 1, 0),
        ],
        false,
    );
}

/// MobileFaceNet's depthwise layers: 3×3/1 and 3×3/2 at every width and
/// side it uses, and the 7×7 global depthwise conv (GDC) of the head.
#[test]
fn mobilefacenet_depthwise_layers_match_burn() {
    check_all(
        &[
            (2, 128, 128, 56, 3, 1, 1),
            (2, 128, 128, 56, 3, 2, 1),
            (2, 128, 128, 28, 3, 1, 1),
            (2, 256, 256, 28, 3, 2, 1),
            (2, 256, 256, 14, 3, 1, 1),
            (2, 512, 512, 14, 3, 2, 1),
            (2, 256, 256, 7, 3, 1, 1),
            (2, 512, 512, 7, 7, 1, 0),
        ],
        true,
    );
}

/// Sides of 1, odd sizes, channel counts that are not multiples of 8 or 16,
/// a single image (the products split over threads), non-square inputs,
/// stride 3 and a 5×5 kernel.
#[test]
fn odd_shapes_match_burn() {
    for (shape, width) in [
        ((1, 5, 7, 1, 3, 1, 1), 1),
        ((3, 13, 9, 1, 1, 1, 0), 1),
        ((2, 3, 17, 9, 3, 1, 1), 11),
        ((1, 19, 5, 7, 3, 2, 1), 5),
        ((4, 7, 33, 6, 1, 2, 0), 6),
        ((2, 6, 10, 10, 5, 3, 2), 13),
        ((5, 1, 1, 4, 2, 1, 0), 3),
    ] {
        let errors = compare(shape, width, false);
        assert!(errors.iter().all(|e| *e <= TOLERANCE), "{shape:?} × {width}: {errors:?}");
    }
}

/// What the kernels do not cover runs burn's conv2d: a grouped (2 groups)
/// and a dilated convolution give burn's numbers exactly, and `Flex`
/// without autodiff gives the kernels' forward pass.
#[test]
fn other_shapes_and_backends_take_their_own_path() {
    let device = Default::default();
    let x = Tensor::<Flex, 4>::from_data(TensorData::new(values(2 * 4 * 9 * 9, 1), [2, 4, 9, 9]), &device);
    let two_groups = Tensor::<Flex, 4>::from_data(TensorData::new(values(4 * 2 * 9, 2), [4, 2, 3, 3]), &device);
    let grouped = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
    let dilated = ConvOptions::new([1, 1], [2, 2], [2, 2], 1);
    let dense = Tensor::<Flex, 4>::from_data(TensorData::new(values(6 * 4 * 9, 2), [6, 4, 3, 3]), &device);
    for (weight, options) in [(&two_groups, &grouped), (&dense, &dilated)] {
        let ours = conv2d(x.clone(), weight.clone(), None, options.clone()).into_data();
        let reference = burn::tensor::module::conv2d(x.clone(), weight.clone(), None, options.clone()).into_data();
        assert_eq!(ours, reference);
    }
    let plain = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let ours = conv2d(x.clone(), dense.clone(), None, plain.clone()).into_data();
    let reference = burn::tensor::module::conv2d(x, dense, None, plain).into_data();
    assert!(relative_error(&ours, &reference) <= TOLERANCE);
}

#[test]
fn the_path_override_is_scoped() {
    let outer = conv_path();
    with_conv_path(ConvPath::Burn, || {
        assert_eq!(conv_path(), ConvPath::Burn);
        with_conv_path(ConvPath::Kernels, || assert_eq!(conv_path(), ConvPath::Kernels));
        assert_eq!(conv_path(), ConvPath::Burn);
    });
    assert_eq!(conv_path(), outer);
}
