//! The one place that names concrete burn backends. Everything trainable in
//! visage is generic over `burn::tensor::backend::Backend`; commands pick a
//! device here and hand a generic job to [`run_autodiff`], so adding a backend
//! touches this crate only.
//!
//! The CPU backend is burn's `flex` (see `docs/benchmarks.md` for why). CUDA is
//! behind the `cuda` feature: it compiles on machines without a CUDA toolkit,
//! and on a machine without an NVIDIA driver or GPU it reports a clear error
//! instead of panicking inside the runtime. The `tch` feature adds libtorch
//! on the CPU (`--device torch`): PyTorch's own kernels under burn's autodiff,
//! for training on a CPU; it needs PyTorch's libraries at build and run time
//! (`scripts/bench/tch.sh`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;
use thiserror::Error;

/// burn's portable CPU backend.
pub type Cpu = burn::backend::Flex;
/// [`Cpu`] with reverse-mode autodiff, for training and gradient checks.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<Cuda>;

#[cfg(feature = "tch")]
pub type Torch = burn::backend::LibTorch;
#[cfg(feature = "tch")]
pub type TorchAutodiff = burn::backend::Autodiff<Torch>;

mod cuda_probe;
pub use cuda_probe::probe_cuda;

/// A device named on the command line: `cpu`, `cuda`, `cuda:N` or `torch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda {
        index: usize,
    },
    /// The CPU through libtorch (the `tch` feature).
    Torch,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda { index } => write!(f, "cuda:{index}"),
            Self::Torch => write!(f, "torch"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = BackendError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda { index: 0 }),
            "torch" | "libtorch" => Ok(Self::Torch),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(|index| Self::Cuda { index })
                .ok_or_else(|| BackendError::UnknownDevice(text.to_string())),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum BackendError {
    #[error("unknown device `{0}`: expected `cpu`, `cuda`, `cuda:N` or `torch`")]
    UnknownDevice(String),
    #[error("this visage was built without libtorch; rebuild with `--features tch` (scripts/bench/tch.sh) to use `torch`")]
    TorchNotCompiled,
    #[error("this visage was built without CUDA support; rebuild with `cargo build --release --features cuda` to use `{0}`")]
    CudaNotCompiled(DeviceChoice),
    #[error("CUDA is not usable on this machine: {0}")]
    CudaUnavailable(String),
    #[error("CUDA device {index} was requested but this machine has {count} CUDA device(s)")]
    NoSuchCudaDevice { index: usize, count: usize },
}

/// Work that runs on any autodiff backend; [`run_autodiff`] picks the backend.
pub trait AutodiffJob {
    type Output;
    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output;
}

/// Runs `job` on the chosen device, after checking that the device exists.
pub fn run_autodiff<J: AutodiffJob>(choice: DeviceChoice, job: J) -> Result<J::Output, BackendError> {
    match choice {
        DeviceChoice::Cpu => Ok(job.run::<CpuAutodiff>(&Default::default())),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda { index } => {
            probe_cuda(index)?;
            let device = burn::backend::cuda::CudaDevice::new(index);
            Ok(job.run::<CudaAutodiff>(&device))
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda { .. } => Err(BackendError::CudaNotCompiled(choice)),
        #[cfg(feature = "tch")]
        DeviceChoice::Torch => Ok(job.run::<TorchAutodiff>(&burn::backend::libtorch::LibTorchDevice::Cpu)),
        #[cfg(not(feature = "tch"))]
        DeviceChoice::Torch => Err(BackendError::TorchNotCompiled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("CUDA".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda { index: 0 });
        assert_eq!("cuda:3".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda { index: 3 });
        assert_eq!("torch".parse::<DeviceChoice>().unwrap(), DeviceChoice::Torch);
        assert!(matches!("tpu".parse::<DeviceChoice>(), Err(BackendError::UnknownDevice(_))));
        assert!(matches!("cuda:x".parse::<DeviceChoice>(), Err(BackendError::UnknownDevice(_))));
    }

    #[test]
    fn cuda_without_support_or_driver_is_an_error_not_a_panic() {
        struct Nothing;
        impl AutodiffJob for Nothing {
            type Output = ();
            fn run<B: AutodiffBackend>(self, _: &B::Device) {}
        }
        // CI has no GPU: either the feature is off, or the probe finds no driver/device.
        if probe_cuda(0).is_err() || !cfg!(feature = "cuda") {
            let err = run_autodiff(DeviceChoice::Cuda { index: 0 }, Nothing).unwrap_err();
            assert!(!err.to_string().is_empty());
        }
        assert!(run_autodiff(DeviceChoice::Cpu, Nothing).is_ok());
    }
}
