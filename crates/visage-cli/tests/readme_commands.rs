//! The README's commands, run as written. Every command line of README.md's
//! shell blocks (```sh, ```bash, ```shell or a bare ```; `\` continuations
//! joined, trailing `# comments` stripped) is either run here or listed in
//! `NOT_RUN` with the reason and the test that covers it instead.
//!
//! A command is run with the test-built `visage` (the quick start's `cargo
//! run --release -p visage-cli -- …` too), in README order, in a scratch
//! folder holding copies of `examples/` and `models/`: the README's relative
//! paths resolve there, and every output, including the training configs'
//! `out_dir = "../../runs/…"`, lands in the scratch folder, never in the
//! repository. Later commands of a block use earlier ones' outputs (`train
//! curves runs/digits-magface`). Each must exit 0 and write every file it
//! names: the values of the output flags, a training config's run folder, the
//! keys file of `serve keys add`.
//!
//! The list cannot rot: `every_readme_command_is_run_or_listed` fails when
//! the README gains a command that is neither run nor listed, and when a
//! listed command leaves the README.
//!
//! The blocks with `visage train --config` (two 10-epoch digit runs) run in
//! `readme_training_commands_run`, beside the other blocks' test. Measured in
//! the dev profile on 2 shared cores: 95 s for the whole file (the two
//! trainings 52 s and 26 s, `magnitude-demo` 11 s, the nine other commands
//! 16 s together).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use visage_train::TrainConfig;

/// README commands this test does not run: the command as the README writes
/// it (comment stripped, spaces collapsed), and why not / what covers it.
const NOT_RUN: &[(&str, &str)] = &[
    ("cargo test --workspace", "the test suite this test is part of; .ci/run runs it"),
    (
        "pip install ./python",
        "installs into the caller's Python; scripts/python/test.sh (run by .ci/run) installs ./python the same way into a fresh venv and runs python/tests",
    ),
    (
        "visage eval magnitude-figures PHOTOS… --out DIR --edges 24,26,28,30,32,34,36 --labels L.txt",
        "placeholders (PHOTOS…, DIR, L.txt); magnitude_figures_cli::eval_magnitude_figures_on_the_bundled_photos runs --edges and --labels on the bundled photos",
    ),
    (
        "visage train --config train.toml --nodes 2 --node-rank 0 --coordinator 10.0.0.1:29500",
        "two machines (10.0.0.1 is an example address, train.toml a placeholder); \
         multinode_cli::two_nodes_take_the_steps_of_one_process_with_two_workers_to_the_bit runs two nodes on 127.0.0.1",
    ),
    (
        "visage train --config train.toml --nodes 2 --node-rank 1 --coordinator 10.0.0.1:29500",
        "the other node of the command above; the same multinode_cli test",
    ),
    (
        "visage serve --gallery people",
        "a server: runs until stopped, on the fixed port 8080; serve_cli::keys_guard_a_served_directory_gallery serves a gallery \
         with keys from `serve keys add --gallery` on a free port and stops it with SIGTERM",
    ),
    (
        "curl -H \"X-API-Key: $KEY\" -H \"Content-Type: image/jpeg\" --data-binary @obama_1.jpg \"localhost:8080/v1/enrol?name=Obama\"",
        "needs the server above and a key in $KEY; serve_cli::keys_guard_a_served_directory_gallery posts the same enrolment",
    ),
    (
        "curl -H \"X-API-Key: $KEY\" -H \"Content-Type: image/jpeg\" --data-binary @obama_2.jpg \"localhost:8080/v1/search?k=3\"",
        "needs the server above and a key in $KEY; serve_cli::keys_guard_a_served_directory_gallery posts the same search",
    ),
    (
        "visage gallery enrol obama obama_1.jpg --gallery postgres://visage:PASSWORD@db.example:5432/faces",
        "an example server (db.example, PASSWORD); gallery_postgres_cli::gallery_commands_on_postgres_match_the_embedded_gallery \
         enrols into a throwaway local PostgreSQL + pgvector",
    ),
    (
        "visage serve --gallery postgres://visage:PASSWORD@db.example:5432/faces",
        "an example server, and a server that runs until stopped; gallery_postgres_cli::serve_uses_a_postgres_gallery",
    ),
    (
        "visage model export runs/faces-finetune-magface --out tuned.onnx",
        "needs the run of examples/train/faces_finetune_magface.toml on ../shared/data, which no README command makes; \
         visage-lab's tests/finetune_faces.rs trains that config and model_import_export_cli::export_of_a_train_checkpoint_runs_like_its_backbone \
         exports a train run",
    ),
    (
        "cargo build --release -p visage-cli --features cuda",
        "a second full release build; .ci/run runs `cargo check -p visage-cli --features cuda` (every build script, all the CUDA code type-checked)",
    ),
    (
        "scripts/bench/tch.sh",
        "downloads PyTorch 2.9.0 from PyPI, builds visage-tch against its libtorch and times it (not in CI; docs/benchmarks.md has its output)",
    ),
    (
        "LD_LIBRARY_PATH=bench/backends/.venv/lib/python3.11/site-packages/torch/lib target/release/visage-tch train --config train.toml --device torch",
        "needs scripts/bench/tch.sh's build and libtorch; train.toml is a placeholder",
    ),
];

/// Fence languages whose lines are shell commands.
const SHELL_LANGUAGES: &[&str] = &["", "sh", "bash", "shell"];

/// Flags whose value is a file or folder the command writes.
const OUTPUT_FLAGS: &[&str] =
    &["--out", "--report", "--montage", "--montages", "--index", "--draw", "--image", "--plot", "--detection-plot", "--verification-plot"];

/// Repository folders the README's relative paths point into, copied into the scratch folder.
const COPIED: &[&str] = &["examples", "models"];

/// Characters a command run without a shell cannot mean as written.
const SHELL_SYNTAX: &[char] = &['\'', '"', '$', '`', '*', '?', '|', '&', ';', '<', '>', '(', ')', '{', '}', '[', ']', '~', '…'];

/// A command that hangs (a server added without `NOT_RUN`) fails instead of stalling CI.
const COMMAND_LIMIT: Duration = Duration::from_secs(20 * 60);

struct ReadmeCommand {
    /// README.md line where the command starts.
    line: usize,
    text: String,
}

struct Block {
    commands: Vec<ReadmeCommand>,
}

enum Plan<'a> {
    /// `visage` with these arguments.
    Run(Vec<&'a str>),
    NotRun,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn readme_blocks() -> Vec<Block> {
    shell_blocks(&std::fs::read_to_string(repo().join("README.md")).unwrap())
}

/// The command lines of a Markdown file's shell blocks, block by block.
fn shell_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    // The open block, and whether it is a shell block.
    let mut open: Option<(bool, Block)> = None;
    // A command continued by a trailing `\`: its first line and its text so far.
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let number = index + 1;
        if let Some(language) = line.trim_start().strip_prefix("```") {
            match open.take() {
                None => open = Some((SHELL_LANGUAGES.contains(&language.trim()), Block { commands: Vec::new() })),
                Some((shell, block)) => {
                    assert!(pending.is_none(), "README.md:{number}: the block ends after a `\\` continuation");
                    if shell {
                        blocks.push(block);
                    }
                }
            }
            continue;
        }
        let Some((true, block)) = open.as_mut() else { continue };
        let code = strip_comment(line);
        let (code, continued) = match code.trim_end().strip_suffix('\\') {
            Some(code) => (code, true),
            None => (code, false),
        };
        let (start, mut text) = pending.take().unwrap_or((number, String::new()));
        text.push(' ');
        text.push_str(code);
        if continued {
            pending = Some((start, text));
            continue;
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            block.commands.push(ReadmeCommand { line: start, text });
        }
    }
    assert!(open.is_none(), "README.md: a code block is never closed");
    blocks
}

/// `line` without its shell comment: from a `#` that starts a word outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return &line[..at],
            None => {}
        }
        previous = c;
    }
    line
}

/// The arguments of `visage` in `visage ARGS…` or `cargo run … -p visage-cli … -- ARGS…`.
fn visage_args(command: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = command.split(' ').collect();
    match words.as_slice() {
        ["visage", args @ ..] => Some(args.to_vec()),
        ["cargo", "run", rest @ ..] => {
            let separator = rest.iter().position(|word| *word == "--")?;
            let selects_visage = rest[..separator].windows(2).any(|pair| matches!(pair, ["-p" | "--package", "visage-cli"] | ["--bin", "visage"]));
            selects_visage.then(|| rest[separator + 1..].to_vec())
        }
        _ => None,
    }
}

/// Whether and how the test runs a README command; `Err` says why it can do neither.
fn plan(command: &str) -> Result<Plan<'_>, String> {
    if NOT_RUN.iter().any(|(listed, _)| *listed == command) {
        return Ok(Plan::NotRun);
    }
    let Some(args) = visage_args(command) else {
        return Err("not a `visage …` or `cargo run -p visage-cli -- …` command".into());
    };
    if let Some(syntax) = args.iter().flat_map(|arg| arg.chars()).find(|c| SHELL_SYNTAX.contains(c)) {
        return Err(format!("`{syntax}` is shell syntax or a placeholder, which a run without a shell cannot mean as written"));
    }
    Ok(Plan::Run(args))
}

fn is_training(args: &[&str]) -> bool {
    args.first() == Some(&"train") && args.contains(&"--config")
}

/// A block whose commands include a training run (the ignored test's share).
fn trains(block: &Block) -> bool {
    block.commands.iter().any(|command| matches!(plan(&command.text), Ok(Plan::Run(args)) if is_training(&args)))
}

fn value_of<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.windows(2).find(|pair| pair[0] == flag).map(|pair| pair[1])
}

/// The files and folders a command names as its output, under `work`.
fn named_outputs(args: &[&str], work: &Path) -> Vec<PathBuf> {
    let mut outputs: Vec<PathBuf> = args
        .windows(2)
        .filter(|pair| OUTPUT_FLAGS.contains(&pair[0]) || (pair[0] == "--json" && pair[1].ends_with(".json")))
        .map(|pair| work.join(pair[1]))
        .collect();
    if is_training(args) {
        let config = work.join(value_of(args, "--config").unwrap());
        outputs.push(TrainConfig::load(&config).unwrap_or_else(|e| panic!("{}: {e}", config.display())).out_dir);
    }
    if args.starts_with(&["serve", "keys", "add"]) {
        if let Some(gallery) = value_of(args, "--gallery") {
            outputs.push(work.join(format!("{gallery}.serve/keys.json")));
        }
    }
    outputs
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn is_non_empty(path: &Path) -> bool {
    if path.is_dir() {
        std::fs::read_dir(path).unwrap().next().is_some()
    } else {
        std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
    }
}

/// Runs the runnable commands of `blocks` in README order in one scratch
/// folder; returns how many ran.
fn run_blocks<'a>(blocks: impl Iterator<Item = &'a Block>, name: &str) -> usize {
    let root = std::env::temp_dir().join(format!("visage-readme-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (work, logs) = (root.join("work"), root.join("logs"));
    std::fs::create_dir_all(&logs).unwrap();
    for dir in COPIED {
        copy_tree(&repo().join(dir), &work.join(dir));
    }
    let work = work.canonicalize().unwrap();
    let started = Instant::now();
    let mut ran = 0;
    for command in blocks.flat_map(|block| &block.commands) {
        let Ok(Plan::Run(args)) = plan(&command.text) else { continue };
        run_as_written(command, &args, &work, &logs.join(ran.to_string()));
        ran += 1;
    }
    eprintln!("{ran} README commands in {:.1} s", started.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&root).unwrap();
    ran
}

fn run_as_written(command: &ReadmeCommand, args: &[&str], work: &Path, log: &Path) {
    let outputs = named_outputs(args, work);
    let (stdout, stderr) = (log.with_extension("stdout"), log.with_extension("stderr"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > COMMAND_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("README.md:{}: `{}` still ran after {COMMAND_LIMIT:?}", command.line, command.text);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = started.elapsed().as_secs_f64();
    let printed = || {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read(&stdout), read(&stderr))
    };
    assert!(status.success(), "README.md:{}: `{}` exited with {status}\n{}", command.line, command.text, printed());
    for output in &outputs {
        let written = output
            .canonicalize()
            .unwrap_or_else(|_| panic!("README.md:{}: `{}` did not write {}\n{}", command.line, command.text, output.display(), printed()));
        assert!(written.starts_with(work), "README.md:{}: `{}` wrote {} outside the scratch folder", command.line, command.text, written.display());
        assert!(is_non_empty(&written), "README.md:{}: `{}` wrote an empty {}", command.line, command.text, written.display());
    }
    eprintln!("README.md:{}: {seconds:.1} s, {} outputs: {}", command.line, outputs.len(), command.text);
}

#[test]
fn every_readme_command_is_run_or_listed() {
    let blocks = readme_blocks();
    let commands: Vec<&ReadmeCommand> = blocks.iter().flat_map(|block| &block.commands).collect();
    let mut problems: Vec<String> = commands
        .iter()
        .filter_map(|command| plan(&command.text).err().map(|why| (command, why)))
        .map(|(command, why)| format!("README.md:{}: `{}`: {why}; make it runnable or add it to NOT_RUN with the reason", command.line, command.text))
        .collect();
    for (i, (listed, _)) in NOT_RUN.iter().enumerate() {
        if !commands.iter().any(|command| command.text == *listed) {
            problems.push(format!("NOT_RUN lists `{listed}`, which README.md no longer has: take it off the list"));
        }
        if NOT_RUN[..i].iter().any(|(earlier, _)| earlier == listed) {
            problems.push(format!("NOT_RUN lists `{listed}` twice"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Each of the two runs below has commands to run: neither can pass by running nothing.
    let runnable = |training: bool| {
        blocks
            .iter()
            .filter(|block| trains(block) == training)
            .flat_map(|block| &block.commands)
            .filter(|command| matches!(plan(&command.text), Ok(Plan::Run(_))))
            .count()
    };
    assert!(runnable(false) > 0 && runnable(true) > 0, "quick commands {}, training commands {}", runnable(false), runnable(true));
}

#[test]
fn the_parser_joins_continuations_and_strips_comments() {
    let markdown = "text\n```sh\nvisage a b   # says # things\n# a comment line\n\n```\n```python\nvisage not a command\n```\n\
                    ```\nvisage train x \\\n    --y z.png   # out\ncurl \"a # b\" # c\n```\n";
    let blocks = shell_blocks(markdown);
    let texts: Vec<Vec<(usize, &str)>> = blocks.iter().map(|block| block.commands.iter().map(|c| (c.line, c.text.as_str())).collect()).collect();
    assert_eq!(texts, vec![vec![(3, "visage a b")], vec![(11, "visage train x --y z.png"), (13, "curl \"a # b\"")]]);
    assert_eq!(visage_args("cargo run --release -p visage-cli -- analyze x --report r.html"), Some(vec!["analyze", "x", "--report", "r.html"]));
    assert_eq!(visage_args("cargo run -p visage-lab --example pgserver"), None);
    assert!(matches!(plan("visage detect PHOTO… --json"), Err(why) if why.contains('…')));
    let work = Path::new("/w");
    assert_eq!(
        named_outputs(&["detect", "a.jpg", "--json", "--draw", "out.png"], work),
        vec![work.join("out.png")],
        "a bare --json prints to stdout"
    );
    assert_eq!(named_outputs(&["analyze", "d", "--json", "s.json", "--report", "r.html"], work), vec![work.join("s.json"), work.join("r.html")]);
}

#[test]
fn readme_commands_run() {
    let blocks = readme_blocks();
    let ran = run_blocks(blocks.iter().filter(|block| !trains(block)), "quick");
    assert!(ran > 0);
}

#[test]
fn readme_training_commands_run() {
    let blocks = readme_blocks();
    let ran = run_blocks(blocks.iter().filter(|block| trains(block)), "training");
    assert!(ran > 0);
}

/// `cargo test -p CRATE --test NAME` and `cargo run -p CRATE --example NAME`
/// cited in the README, docs/ and the crates' READMEs name files that exist.
#[test]
fn cited_tests_and_examples_exist() {
    let root = repo();
    let mut documents = vec![root.join("README.md")];
    for dir in ["docs", "crates"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            documents.push(if path.is_dir() { path.join("README.md") } else { path });
        }
    }
    documents.retain(|path| path.extension().is_some_and(|e| e == "md") && path.is_file());
    let mut cited = 0;
    let mut missing = Vec::new();
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        // Inline code outside fenced blocks; a span may run over a line break.
        let mut fenced = false;
        let prose: Vec<&str> = text
            .lines()
            .filter(|line| {
                let fence = line.trim_start().starts_with("```");
                fenced ^= fence;
                !fenced && !fence
            })
            .collect();
        for span in prose.join("\n").split('`').skip(1).step_by(2) {
            let words: Vec<&str> = span.split_whitespace().collect();
            if words.first() != Some(&"cargo") {
                continue;
            }
            let Some(package) = value_of(&words, "-p") else { continue };
            for (flag, folder) in [("--test", "tests"), ("--example", "examples")] {
                let Some(name) = value_of(&words, flag) else { continue };
                cited += 1;
                let dir = root.join("crates").join(package).join(folder);
                if !dir.join(format!("{name}.rs")).is_file() && !dir.join(name).join("main.rs").is_file() {
                    missing.push(format!(
                        "{}: `{}`: no {}/{name}.rs",
                        document.strip_prefix(&root).unwrap().display(),
                        words.join(" "),
                        dir.display()
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(cited > 3, "only {cited} cited tests found: is the span parser broken?");
}
