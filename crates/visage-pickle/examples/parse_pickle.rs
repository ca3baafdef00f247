//! Parses one pickle file and prints what it holds at the top or why it is
//! refused: a way to time the reader on a hostile file (`/usr/bin/time -v`).
//!
//! `cargo run -p visage-pickle --example parse_pickle -- FILE [torch|plain]`

use std::process::ExitCode;

use visage_pickle::{parse, Options, Value};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: parse_pickle FILE [torch|plain]");
        return ExitCode::from(2);
    };
    let options = match args.get(1).map(String::as_str) {
        None | Some("torch") => Options::TORCH,
        Some("plain") => Options::PLAIN_DATA,
        Some(other) => {
            eprintln!("options must be torch or plain, not {other}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::from(1);
        }
    };
    match parse(&bytes, options) {
        Ok(value) => {
            let items = match &value {
                Value::Tuple(items) | Value::List(items) => items.len(),
                Value::Dict(pairs) => pairs.len(),
                _ => 1,
            };
            println!("{path}: a {} of {items} item(s)", value.kind());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{path}: {error}");
            ExitCode::from(2)
        }
    }
}
