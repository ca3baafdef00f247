//! One module per top-level subcommand.

pub mod analyze;
pub mod bench;
pub mod clean;
pub mod cluster;
pub mod data;
pub mod detect;
pub mod embed;
pub mod eval;
mod face_models;
pub mod gallery;
pub mod heads;
pub mod model;
pub mod models;
pub mod quality;
pub mod serve;
pub mod synth;
pub mod train;
pub mod verify;

/// A command's failure: the message for stderr and the process exit code
/// (2 = the input was bad, 1 = anything else).
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 2 }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 1 }
    }
}

/// A library error that knows whether the caller's input was at fault; each
/// library's error type answers through its own `is_bad_input`.
pub trait InputFault: std::fmt::Display {
    /// True when the input was bad (exit code 2), false for the machine's or
    /// the environment's failures (exit code 1).
    fn is_bad_input(&self) -> bool;
}

macro_rules! input_fault {
    ($($error:ty),* $(,)?) => {
        $(impl InputFault for $error {
            fn is_bad_input(&self) -> bool {
                <$error>::is_bad_input(self)
            }
        })*
    };
}

input_fault!(
    visage_backend::BackendError,
    visage_heads::HeadError,
    visage_heads::case::CaseError,
    visage_image::ImageError,
    visage_infer::InferError,
    visage_data::DataError,
    visage_nn::NnError,
    visage_train::TrainError,
    visage_eval::EvalError,
    visage_gallery::GalleryError,
    visage_analyze::AnalyzeError,
    visage_synth::SynthError,
    visage_serve::ServeError,
);

/// The one mapping of library errors to exit codes: `?` on any library
/// result in a command gives exit code 2 for bad input and 1 otherwise, with
/// the library's message (which names the file or field).
impl<E: InputFault> From<E> for Failure {
    fn from(error: E) -> Self {
        Self { exit_code: if error.is_bad_input() { 2 } else { 1 }, message: error.to_string() }
    }
}
