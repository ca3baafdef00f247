//! Reproducible parameter draws.
//!
//! burn's CPU backend has one random generator per process, and burn draws a
//! parameter's initial value lazily, on first use. Two initialisations in one
//! process (parallel tests, a sweep, a trainer and its evaluation) would
//! otherwise interleave their draws, reseed each other mid-way, or draw in the
//! first forward pass wherever that runs. Everything in visage that seeds that
//! generator goes through [`with_backend_rng`], and a network drawn under it is
//! [`materialize`]d before the lock is released.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Runs `draw` with the backend's random generator seeded to `seed` and held
/// for it alone (one process-wide lock).
pub fn with_backend_rng<B: Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    B::seed(device, seed);
    draw()
}

/// Draws every lazily initialised parameter of `module` now, in module order
/// (call it inside [`with_backend_rng`]).
pub fn materialize<B: Backend, M: Module<B>>(module: &M) {
    struct Touch;
    impl<B: Backend> ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}
