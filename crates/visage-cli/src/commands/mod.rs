//! One module per top-level subcommand.

pub mod analyze;
pub mod bench;
pub mod clean;
pub mod data;
pub mod detect;
pub mod embed;
mod face_models;
pub mod gallery;
pub mod heads;
pub mod model;
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
