//! `visage`: the command-line front of the workspace. Each subcommand parses its
//! arguments and calls a library crate; no logic lives here.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Face recognition with modern margin losses: ArcFace (with sub-centres),
/// MagFace and AdaFace. One embedding, three jobs: its direction is identity,
/// its magnitude is quality, its distribution clusters.
#[derive(Debug, Parser)]
#[command(name = "visage", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Margin heads (loss functions): evaluate a batch, check MagFace's theory, run a demo.
    #[command(subcommand)]
    Heads(commands::heads::HeadsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Heads(command) => command.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("visage: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
