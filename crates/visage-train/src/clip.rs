//! Gradient clipping as arcface_torch does it:
//! `clip_grad_norm_(backbone.parameters(), max_norm)` — one L2 norm over *all*
//! the backbone's gradients together, and every gradient scaled by
//! `max_norm / (norm + 1e-6)` when that is below 1. The class centres are not
//! clipped (arcface_torch keeps them in a separate optimiser group).
//!
//! burn's own `GradientClippingConfig::Norm` clips each parameter on its own,
//! which changes the direction of the update; this is why visage does not use it.
//! With several workers the norm is that of the *summed* gradient (what the
//! optimiser applies); scaling each worker's share by the same factor scales
//! the sum by it.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

/// Sums the squares of the (worker-summed) gradients of `module`'s parameters.
struct SquaredNorm<'a, 'g, B: AutodiffBackend> {
    grads: &'a [&'g mut GradientsParams],
    device: B::Device,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, '_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = crate::parallel::summed_gradient::<B, D>(self.grads.iter().map(|grads| &**grads), param.id, &self.device) {
            let squares = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

/// Multiplies the gradients of `module`'s parameters by `factor`.
struct Scale<'a, 'g> {
    grads: &'a mut [&'g mut GradientsParams],
    factor: f32,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, '_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        for grads in self.grads.iter_mut() {
            if let Some(grad) = grads.remove::<B::InnerBackend, D>(param.id) {
                grads.register::<B::InnerBackend, D>(param.id, grad.mul_scalar(self.factor));
            }
        }
    }
}

/// Multiplies every gradient of `module`'s parameters in `grads` by `factor`.
pub fn scale_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &mut GradientsParams, factor: f32) {
    module.visit(&mut Scale { grads: &mut [grads], factor });
}

/// Clips the gradients of `module`'s parameters (one entry of `grads` per
/// worker) to a global L2 norm of `max_norm`, and returns the norm before
/// clipping (0 when `module` has no gradient).
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut [&mut GradientsParams],
    max_norm: f32,
    device: &B::Device,
) -> f32 {
    let mut norm = SquaredNorm::<B> { grads, device: device.clone(), total: None };
    module.visit(&mut norm);
    let total: f32 = match norm.total {
        Some(squares) => squares.sqrt().into_scalar().elem(),
        None => return 0.0,
    };
    // PyTorch's clip coefficient, clamped to 1 (never scales up).
    let factor = max_norm / (total + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::module::Module;
    use burn::tensor::TensorData;
    use visage_backend::Cpu;

    type Ad = Autodiff<Cpu>;

    #[derive(Module, Debug)]
    struct Two<B: burn::tensor::backend::Backend> {
        a: Param<Tensor<B, 1>>,
        b: Param<Tensor<B, 2>>,
    }

    fn model(device: &burn::tensor::Device<Ad>) -> Two<Ad> {
        Two {
            a: Param::from_tensor(Tensor::from_data(TensorData::from([1.0f32, -2.0]), device)),
            b: Param::from_tensor(Tensor::from_data(TensorData::from([[0.5f32, 1.0], [-1.5, 2.0]]), device)),
        }
    }

    /// loss = 3·Σa + Σ(b ⊙ w): gradients 3 and w, known by hand.
    fn gradients(model: &Two<Ad>, device: &burn::tensor::Device<Ad>) -> GradientsParams {
        let w = Tensor::<Ad, 2>::from_data(TensorData::from([[4.0f32, 0.0], [0.0, 12.0]]), device);
        let loss = model.a.val().sum().mul_scalar(3.0) + (model.b.val() * w).sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<Ad, D>>) -> Vec<f32> {
        grads.get::<Cpu, D>(param.id).unwrap().into_data().to_vec().unwrap()
    }

    /// ‖(3, 3, 4, 0, 0, 12)‖ = √178 ≈ 13.342; clipping to 5 scales every
    /// gradient by 5/√178, which keeps their direction (per-parameter clipping
    /// would not).
    #[test]
    fn one_norm_over_all_parameters() {
        let device = Default::default();
        let model = model(&device);
        let mut grads = gradients(&model, &device);
        let norm = clip_global_norm(&model, &mut [&mut grads], 5.0, &device);
        assert!((norm - 178f32.sqrt()).abs() < 1e-5, "norm {norm}");
        let factor = 5.0 / (178f32.sqrt() + 1e-6);
        let expect_a = [3.0 * factor, 3.0 * factor];
        let expect_b = [4.0 * factor, 0.0, 0.0, 12.0 * factor];
        for (got, want) in values(&grads, &model.a).iter().zip(expect_a).chain(values(&grads, &model.b).iter().zip(expect_b)) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    /// Below the limit nothing changes.
    #[test]
    fn small_gradients_are_left_alone() {
        let device = Default::default();
        let model = model(&device);
        let mut grads = gradients(&model, &device);
        clip_global_norm(&model, &mut [&mut grads], 20.0, &device);
        assert_eq!(values(&grads, &model.b), vec![4.0, 0.0, 0.0, 12.0]);
    }

    /// Two workers with the same gradients: the summed gradient has norm
    /// 2·√178, and each worker's share is scaled so that the sum has norm 5.
    #[test]
    fn the_norm_of_the_workers_sum() {
        let device = Default::default();
        let model = model(&device);
        let (mut first, mut second) = (gradients(&model, &device), gradients(&model, &device));
        let norm = clip_global_norm(&model, &mut [&mut first, &mut second], 5.0, &device);
        assert!((norm - 2.0 * 178f32.sqrt()).abs() < 1e-4, "norm {norm}");
        let summed: f32 = values(&first, &model.a).iter().chain(&values(&first, &model.b)).map(|g| (2.0 * g).powi(2)).sum();
        assert!((summed.sqrt() - 5.0).abs() < 1e-4, "clipped sum norm {}", summed.sqrt());
    }
}
