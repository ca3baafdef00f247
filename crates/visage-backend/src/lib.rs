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

#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;
use thiserror::Error;

/// burn's portable CPU backend.
pub type Cpu = burn::backend::Flex;
/// [`Cpu`] with reverse-mode autodiff, for training and gradient checks.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;

/// burn's CUDA backend (the `cuda` feature); call [`probe_cuda`] before first use,
/// since the runtime panics when the driver is missing.
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
/// [`Cuda`] with reverse-mode autodiff, for training on an NVIDIA GPU.
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<Cuda>;

/// libtorch on the CPU through burn-tch (the `tch` feature; needs PyTorch's libraries).
#[cfg(feature = "tch")]
pub type Torch = burn::backend::LibTorch;
/// [`Torch`] with reverse-mode autodiff: PyTorch's CPU kernels under burn's autodiff.
#[cfg(feature = "tch")]
pub type TorchAutodiff = burn::backend::Autodiff<Torch>;

mod cuda_probe;
pub use cuda_probe::probe_cuda;

/// A device named on the command line: `cpu`, `cuda`, `cuda:N` or `torch`.
///
/// Parsing ignores case and surrounding whitespace, and also accepts `gpu` (= `cuda:0`)
/// and `libtorch` (= `torch`); [`Display`](fmt::Display) writes the canonical form
/// (`cpu`, `cuda:N`, `torch`), so a parsed choice prints back as a valid argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's `flex` CPU backend ([`Cpu`]); the default.
    #[default]
    Cpu,
    /// An NVIDIA GPU through burn's CUDA backend (the `cuda` feature).
    Cuda {
        /// CUDA device ordinal, 0-based as the driver counts them (`cuda` alone means 0).
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

/// Why a device could not be parsed or used; each message tells the user what to do.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BackendError {
    /// The device name is none of `cpu`, `cuda`, `gpu`, `cuda:N`, `torch`, `libtorch`
    /// (holds the text as given).
    #[error("unknown device `{0}`: expected `cpu`, `cuda`, `cuda:N` or `torch`")]
    UnknownDevice(String),
    /// `torch` was chosen but this binary was built without the `tch` feature.
    #[error("this visage was built without libtorch; rebuild with `--features tch` (scripts/bench/tch.sh) to use `torch`")]
    TorchNotCompiled,
    /// A CUDA device was chosen but this binary was built without the `cuda` feature.
    #[error("this visage was built without CUDA support; rebuild with `cargo build --release --features cuda` to use `{0}`")]
    CudaNotCompiled(DeviceChoice),
    /// The NVIDIA driver could not be loaded or initialised (no driver, no GPU, or a
    /// driver error); holds the reason, including the CUDA error code where there is one.
    #[error("CUDA is not usable on this machine: {0}")]
    CudaUnavailable(String),
    /// The driver works but has no device with this ordinal.
    #[error("CUDA device {index} was requested but this machine has {count} CUDA device(s)")]
    NoSuchCudaDevice {
        /// The ordinal that was asked for.
        index: usize,
        /// How many CUDA devices the driver reports (valid ordinals are `0..count`).
        count: usize,
    },
}

impl BackendError {
    /// Whether the input is at fault (exit code 2 at the command line): a
    /// device name that means nothing, or a CUDA ordinal the machine does not
    /// have. A backend missing from this build or a GPU the driver cannot
    /// use is the environment's failure (exit code 1); the message says what
    /// to build or install.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, BackendError::UnknownDevice(_) | BackendError::NoSuchCudaDevice { .. })
    }
}

/// Work that runs on any autodiff backend; [`run_autodiff`] picks the backend.
///
/// Implement it for the job's inputs; the backend is a type parameter of [`run`](Self::run)
/// so the job is written once and monomorphised per backend.
pub trait AutodiffJob {
    /// What the job returns; must not mention the backend, since the caller does not know it.
    type Output;
    /// Does the work on backend `B`, placing tensors on `device`.
    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output;
}

/// Runs `job` on the chosen device, after checking that the device exists.
///
/// # Errors
/// [`BackendError::CudaNotCompiled`] / [`BackendError::TorchNotCompiled`] when the backend's
/// feature is off; for CUDA, whatever [`probe_cuda`] reports. The job itself is infallible
/// here: its own errors belong in [`AutodiffJob::Output`].
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
