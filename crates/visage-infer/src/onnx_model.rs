//! One ONNX model behind ONNX Runtime, with its input and output names and
//! shapes read from the model itself: callers ask the model what it wants
//! (a fixed batch of 1, a dynamic batch, 112×112 or 640×640) instead of
//! hard-coding it.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD};
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{InferError, Result};
use crate::onnxruntime::environment;

/// A model input or output: its name and dimensions (`None` where the model
/// leaves a dimension dynamic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name the graph gives it.
    pub name: String,
    /// One entry per axis; `None` for a dynamic (symbolic or -1) dimension.
    pub dims: Vec<Option<usize>>,
}

/// A loaded ONNX Runtime session with its input and output specs. Running
/// needs `&mut self`: one model serves one thread at a time.
pub struct OnnxModel {
    path: PathBuf,
    /// The intra-op thread count it was loaded with (`None`: ONNX Runtime's default).
    intra_threads: Option<usize>,
    session: Session,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

/// With the `cuda` feature, sessions ask for ONNX Runtime's CUDA execution
/// provider. It exists only in a GPU build of the library (the
/// `onnxruntime-gpu` wheel, given through `ORT_DYLIB_PATH`); with the CPU
/// library, or without a GPU, ONNX Runtime logs that it is unavailable and
/// the session runs on the CPU.
#[cfg(feature = "cuda")]
fn with_gpu(builder: ort::session::builder::SessionBuilder) -> ort::Result<ort::session::builder::SessionBuilder> {
    builder.with_execution_providers([ort::ep::CUDA::default().build()]).map_err(ort::Error::from)
}

#[cfg(not(feature = "cuda"))]
fn with_gpu(builder: ort::session::builder::SessionBuilder) -> ort::Result<ort::session::builder::SessionBuilder> {
    Ok(builder)
}

impl OnnxModel {
    /// Loads the model at `path` (ONNX Runtime is located or fetched on first use).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with_threads(path, None)
    }

    /// [`Self::load`] with ONNX Runtime's intra-op thread count set (`None`:
    /// its default, one per physical core). Benchmarks set it so both sides
    /// of a comparison use the same number of threads.
    pub fn load_with_threads(path: &Path, intra_threads: Option<usize>) -> Result<Self> {
        if !path.is_file() {
            return Err(InferError::model(path, "model file not found"));
        }
        let env = environment()?;
        let session = Session::builder(&env)
            // ONNX Runtime's idle intra-op workers busy-wait for the next
            // run by default. visage runs a detector and a recogniser session
            // beside its decode threads, and perf showed that spinning at ~23 %
            // of `visage analyze`'s CPU; without it analyze ran 1.96-2.17x as
            // many photos/s on 2 cores (docs/benchmarks.md).
            .and_then(|builder| builder.with_intra_op_spinning(false).map_err(ort::Error::from))
            .and_then(|builder| match intra_threads {
                Some(threads) => builder.with_intra_threads(threads).map_err(ort::Error::from),
                None => Ok(builder),
            })
            .and_then(with_gpu)
            .and_then(|mut builder| builder.commit_from_file(path))
            .map_err(|e| InferError::model(path, format!("ONNX Runtime cannot load the model: {e}")))?;
        let spec = |outlet: &ort::value::Outlet| -> Result<TensorSpec> {
            let shape = outlet
                .dtype()
                .tensor_shape()
                .ok_or_else(|| InferError::model(path, format!("`{}` is not a tensor ({})", outlet.name(), outlet.dtype())))?;
            Ok(TensorSpec { name: outlet.name().to_string(), dims: shape.iter().map(|&d| usize::try_from(d).ok()).collect() })
        };
        let inputs = session.inputs().iter().map(spec).collect::<Result<_>>()?;
        let outputs = session.outputs().iter().map(spec).collect::<Result<_>>()?;
        Ok(Self { path: path.to_path_buf(), intra_threads, session, inputs, outputs })
    }

    /// A second session on the same file with `intra_threads` (`None`: ONNX
    /// Runtime's default), for another thread to run the same model on.
    pub fn reload_with_threads(&self, intra_threads: Option<usize>) -> Result<Self> {
        Self::load_with_threads(&self.path, intra_threads)
    }

    /// The intra-op thread count it was loaded with (`None`: ONNX Runtime's default).
    pub fn intra_threads(&self) -> Option<usize> {
        self.intra_threads
    }

    /// The ONNX file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The graph's inputs, in its order.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// The graph's outputs, in its order (the order [`Self::run_f32`] returns them in).
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// Runs a single-input model on a float32 tensor and returns every output,
    /// in the model's order.
    pub fn run_f32(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
        if self.inputs.len() != 1 {
            return Err(InferError::model(&self.path, format!("expected one input, the model has {}", self.inputs.len())));
        }
        let path = &self.path;
        let fail = |e: ort::Error| InferError::model(path, format!("inference failed: {e}"));
        let tensor = TensorRef::from_array_view(input).map_err(fail)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(fail)?;
        outputs
            .iter()
            .map(|(name, value)| {
                value
                    .try_extract_array::<f32>()
                    .map(|view| view.to_owned())
                    .map_err(|e| InferError::model(path, format!("output `{name}` is not float32: {e}")))
            })
            .collect()
    }
}
