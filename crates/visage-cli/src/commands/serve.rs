//! `visage serve`: the HTTP service and web page over a gallery
//! (visage-serve does the work), and `visage serve keys …` to manage its API keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use visage_gallery::GalleryLocation;
use visage_infer::DecodeOptions;
use visage_serve::{ModelSpec, Scope, ServeOptions};

use super::face_models::{registry, DEFAULT_RECOGNIZER};
use super::Failure;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServeCommand {
    #[command(subcommand)]
    command: Option<ServeSubcommand>,
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum ServeSubcommand {
    /// API keys: add (printed once), list, remove.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The gallery: a directory (created for the recogniser when absent) or a postgres:// URL.
    #[arg(long, value_name = "DIR|URL", required = true)]
    gallery: Option<String>,
    /// Address to listen on (use 0.0.0.0:PORT to accept other machines).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The service's own files: thumbnails, and the keys file by default [default: GALLERY.serve beside the gallery].
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The API keys file [default: STATE/keys.json].
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Serve reads (detect, embed, verify, quality, search, list) without a key; writes still need one.
    #[arg(long)]
    public_read: bool,
    /// Model workers, each with its own ONNX Runtime sessions [default: cores, at most 4].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// ONNX Runtime threads per worker [default: cores / workers].
    #[arg(long, value_name = "N")]
    intra_threads: Option<usize>,
    /// Photos waiting for a worker before requests get 503 + Retry-After.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// Requests served at once before new ones get 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_in_flight: usize,
    /// Largest request body, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 20)]
    max_body_mib: usize,
    /// Refuse photos above this many pixels (read from the header, before decoding).
    #[arg(long, default_value_t = visage_serve::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Seconds before an unanswered request gets 503.
    #[arg(long, value_name = "S", default_value_t = 30)]
    timeout_s: u64,
    /// Seconds a client has to send a whole request head; also how long an idle keep-alive connection is kept.
    #[arg(long, value_name = "S", default_value_t = visage_serve::DEFAULT_HEADER_READ_TIMEOUT_S)]
    header_timeout_s: u64,
    /// Seconds a client may read nothing of its answer before its connection is closed.
    #[arg(long, value_name = "S", default_value_t = visage_serve::DEFAULT_HEADER_READ_TIMEOUT_S)]
    write_timeout_s: u64,
    /// Connections open at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = visage_serve::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Refuse (422) a photo with more faces than this.
    #[arg(long, value_name = "N", default_value_t = visage_serve::DEFAULT_MAX_FACES_PER_PHOTO)]
    max_faces_per_photo: usize,
    /// Refuse (422) a request whose photos hold more faces than this in all.
    #[arg(long, value_name = "N", default_value_t = visage_serve::DEFAULT_MAX_FACES_PER_REQUEST)]
    max_faces_per_request: usize,
    /// Face detector: yunet, scrfd, a config name in models/ or a .toml path.
    #[arg(long, default_value = "yunet")]
    detector: String,
    /// Folder with the ONNX files the configs name [default: $VISAGE_MODELS_DIR, the repository's models/, shared/data/models].
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Ignore faces narrower or shorter than this (photo pixels).
    #[arg(long, default_value_t = 0.0)]
    min_face_size: f32,
    /// Recogniser: a config name in models/ or a .toml path (must be the gallery's).
    #[arg(long, default_value = DEFAULT_RECOGNIZER)]
    recognizer: String,
    /// Flip test-time augmentation.
    #[arg(long)]
    flip_tta: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once (only its SHA-256 is stored).
    Add {
        #[command(flatten)]
        file: KeysFileArgs,
        /// read: detect, embed, verify, quality, search, list; write: also enrol and delete.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// Who or what the key is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// The keys (id, scope, label, creation time; never the keys themselves).
    List {
        #[command(flatten)]
        file: KeysFileArgs,
    },
    /// Revoke a key by its id (a running service notices the change).
    Remove {
        /// The id `keys list` shows.
        id: String,
        #[command(flatten)]
        file: KeysFileArgs,
    },
}

#[derive(Debug, Args)]
struct KeysFileArgs {
    /// The keys file.
    #[arg(long, value_name = "FILE", required_unless_present = "gallery")]
    keys: Option<PathBuf>,
    /// Or the gallery, for its default keys file (GALLERY.serve/keys.json).
    #[arg(long, value_name = "DIR|URL")]
    gallery: Option<String>,
}

impl KeysFileArgs {
    fn path(&self) -> PathBuf {
        match (&self.keys, &self.gallery) {
            (Some(path), _) => path.clone(),
            (None, Some(gallery)) => visage_serve::default_state_dir(&GalleryLocation::parse(gallery)).join("keys.json"),
            (None, None) => unreachable!("clap requires --keys or --gallery"),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScopeArg {
    Read,
    Write,
}

impl ServeCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match &self.command {
            Some(ServeSubcommand::Keys(keys)) => keys.run(),
            None => self.args.run(),
        }
    }
}

impl KeysCommand {
    fn run(&self) -> Result<(), Failure> {
        match self {
            KeysCommand::Add { file, scope, label } => {
                let scope = match scope {
                    ScopeArg::Read => Scope::Read,
                    ScopeArg::Write => Scope::Write,
                };
                let path = file.path();
                let (key, entry) = visage_serve::add_key(&path, scope, label)?;
                eprintln!("visage: added {} key {} to {} (shown once: store it now)", entry.scope, entry.id, path.display());
                println!("{key}");
                Ok(())
            }
            KeysCommand::List { file } => {
                let keys = visage_serve::read_keys(&file.path())?;
                println!("id\tscope\tcreated_unix_s\tlabel");
                for key in keys {
                    println!("{}\t{}\t{}\t{}", key.id, key.scope, key.created_unix_s, key.label);
                }
                Ok(())
            }
            KeysCommand::Remove { id, file } => {
                let removed = visage_serve::remove_key(&file.path(), id)?;
                println!("removed {} key {} ({})", removed.scope, removed.id, removed.label);
                Ok(())
            }
        }
    }
}

impl ServeArgs {
    fn models(&self) -> Result<ModelSpec, Failure> {
        // The CLI's model lookup (names, --models-dir, the bundled models), shared with detect/embed/gallery.
        let registry = registry(self.models_dir.as_deref())?;
        let recognizer = registry.recognizer_config(&self.recognizer).map_err(Failure::from)?;
        let detector = registry.detector_config(&self.detector).map_err(Failure::from)?;
        Ok(ModelSpec {
            detector_dir: registry.model_dir(&detector.name, &detector.file, detector.source.as_deref()).map_err(Failure::from)?,
            recognizer_dir: registry.model_dir(&recognizer.name, &recognizer.file, recognizer.source.as_deref()).map_err(Failure::from)?,
            detector,
            recognizer,
            flip_tta: self.flip_tta,
            min_face_size: self.min_face_size,
        })
    }

    fn run(&self) -> Result<(), Failure> {
        let gallery = GalleryLocation::parse(self.gallery.as_deref().expect("clap requires --gallery"));
        let mut options = ServeOptions::new(gallery);
        if let Some(state) = &self.state {
            options.keys_file = state.join("keys.json");
            options.state_dir = state.clone();
        }
        if let Some(keys) = &self.keys {
            options.keys_file = keys.clone();
        }
        options.public_read = self.public_read;
        if let Some(workers) = self.workers {
            options.pool.workers = workers.max(1);
        }
        options.pool.intra_threads = self.intra_threads;
        options.pool.queue_capacity = self.queue.max(1);
        options.pool.decode = DecodeOptions { max_pixels: self.max_pixels };
        options.max_in_flight = self.max_in_flight.max(1);
        options.max_body_bytes = self.max_body_mib.max(1) << 20;
        options.request_timeout = Duration::from_secs(self.timeout_s.max(1));
        options.header_read_timeout = Duration::from_secs(self.header_timeout_s.max(1));
        options.write_stall_timeout = Duration::from_secs(self.write_timeout_s.max(1));
        options.max_connections = self.max_connections.max(1);
        options.max_faces_per_photo = self.max_faces_per_photo.max(1);
        options.max_faces_per_request = self.max_faces_per_request.max(1);
        let models = self.models()?;
        let keys = visage_serve::read_keys(&options.keys_file)?;
        if keys.is_empty() {
            eprintln!(
                "visage: no API keys in {} yet: every {} needs one. Create one with\n  visage serve keys add --keys {} --scope write",
                options.keys_file.display(),
                if self.public_read { "write" } else { "request but /, /health, /metrics and /openapi.json" },
                options.keys_file.display()
            );
        }
        let (workers, queue) = (options.pool.workers, options.pool.queue_capacity);
        visage_serve::run_until_signal(options, &models, self.listen, |address| {
            eprintln!(
                "visage: serving on http://{address}/ ({workers} model workers, queue {queue}); ctrl-c or SIGTERM stops after the requests in flight"
            );
        })?;
        eprintln!("visage: stopped");
        Ok(())
    }
}
