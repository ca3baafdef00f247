//! Checks, through the driver API, that an NVIDIA driver and the requested GPU
//! exist before burn's CUDA runtime is touched: the runtime panics when it
//! cannot load the driver, and a user deserves a sentence instead.

use crate::BackendError;

/// `Ok(())` when CUDA device `index` can be used.
#[cfg(feature = "cuda")]
pub fn probe_cuda(index: usize) -> Result<(), BackendError> {
    type CuInit = unsafe extern "C" fn(flags: u32) -> i32;
    type CuDeviceGetCount = unsafe extern "C" fn(count: *mut i32) -> i32;
    // SAFETY: libcuda.so.1 is the NVIDIA driver library; cuInit and
    // cuDeviceGetCount have these C signatures in every driver since CUDA 2.0,
    // take no pointers but the out-parameter, and may be called repeatedly.
    unsafe {
        let library = libloading::Library::new("libcuda.so.1")
            .map_err(|e| BackendError::CudaUnavailable(format!("the NVIDIA driver library libcuda.so.1 could not be loaded ({e})")))?;
        let init: libloading::Symbol<CuInit> =
            library.get(b"cuInit\0").map_err(|e| BackendError::CudaUnavailable(format!("libcuda.so.1 has no cuInit ({e})")))?;
        let status = init(0);
        if status != 0 {
            return Err(BackendError::CudaUnavailable(format!("cuInit failed with CUDA error code {status} (no usable GPU?)")));
        }
        let device_count: libloading::Symbol<CuDeviceGetCount> =
            library.get(b"cuDeviceGetCount\0").map_err(|e| BackendError::CudaUnavailable(format!("libcuda.so.1 has no cuDeviceGetCount ({e})")))?;
        let mut count = 0i32;
        let status = device_count(&mut count);
        if status != 0 {
            return Err(BackendError::CudaUnavailable(format!("cuDeviceGetCount failed with CUDA error code {status}")));
        }
        if index >= count as usize {
            return Err(BackendError::NoSuchCudaDevice { index, count: count as usize });
        }
    }
    Ok(())
}

/// Without the `cuda` feature no CUDA device can be used.
#[cfg(not(feature = "cuda"))]
pub fn probe_cuda(index: usize) -> Result<(), BackendError> {
    Err(BackendError::CudaNotCompiled(crate::DeviceChoice::Cuda { index }))
}
