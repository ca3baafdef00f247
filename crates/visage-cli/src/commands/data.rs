//! `visage data pack FOLDER --out train.rec --aligned` and `visage data info
//! FILE.rec`: insightface RecordIO training sets (visage-data).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use visage_data::recordio::{IndexSource, RecordDataset};
use visage_data::{pack_folder, ImageFolder, PackOptions};

use super::Failure;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Pack a folder of aligned face crops (one sub-folder per identity) into
    /// insightface's train.rec + train.idx.
    ///
    /// Identities get labels 0, 1, … in sorted folder-name order (as
    /// torchvision's ImageFolder); images are stored as they are: JPEG bytes
    /// copied, other formats JPEG-encoded. Both files are written under
    /// temporary names and renamed at the end. Files that cannot be decoded
    /// are listed and left out.
    Pack(PackArgs),
    /// Summarise a .rec: records, insightface's id range, the first labels.
    Info(InfoArgs),
}

impl DataCommand {
    pub fn run(&self) -> Result<(), Failure> {
        match self {
            Self::Pack(args) => args.run(),
            Self::Info(args) => args.run(),
        }
    }
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Folder with one sub-folder of images per identity.
    folder: PathBuf,
    /// The .rec to write; the .idx goes beside it.
    #[arg(long, value_name = "train.rec")]
    out: PathBuf,
    /// The images are aligned crops already (required: detecting and aligning
    /// while packing is not implemented yet).
    #[arg(long)]
    aligned: bool,
    /// JPEG quality for inputs that are not JPEG already.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Exit with status 2 when any file was left out.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The .rec file (its .idx is used when it is beside it).
    file: PathBuf,
    /// How many image labels to list.
    #[arg(long, default_value_t = 10)]
    first: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl PackArgs {
    pub fn run(&self) -> Result<(), Failure> {
        if !self.aligned {
            return Err(Failure::bad_input(
                "detecting and aligning faces while packing is not implemented yet: pass --aligned for a folder of aligned 112×112 crops",
            ));
        }
        let folder = ImageFolder::scan(&self.folder)?;
        let bar = ProgressBar::new(folder.len() as u64).with_style(
            ProgressStyle::with_template("{spinner} packing {pos}/{len} images [{bar:40}] {elapsed_precise} (eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let options = PackOptions { jpeg_quality: self.quality, ..PackOptions::default() };
        let report = pack_folder(&folder, &self.out, &options, |done, _| bar.set_position(done as u64));
        bar.finish_and_clear();
        let report = report?;
        for (path, why) in &report.skipped {
            eprintln!("skipped {}: {why}", path.display());
        }
        println!(
            "{}: {} images of {} identities ({} JPEG copied, {} re-encoded at quality {}), {} skipped; index {}",
            self.out.display(),
            report.images_written,
            report.identities,
            report.jpeg_copied,
            report.reencoded,
            self.quality,
            report.skipped.len(),
            visage_data::recordio::index_path_for(&self.out).display()
        );
        let sizes: Vec<String> = report.sizes.iter().map(|((w, h), n)| format!("{w}×{h}: {n}")).collect();
        println!("image sizes: {}", sizes.join(", "));
        if report.sizes.iter().any(|((w, h), _)| (*w, *h) != (112, 112)) {
            eprintln!("note: not every image is 112×112; the training loader resizes such crops to 112×112");
        }
        if self.strict && !report.skipped.is_empty() {
            return Err(Failure::bad_input(format!("--strict: {} files were left out", report.skipped.len())));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct InfoJson {
    file: String,
    bytes: u64,
    /// The .idx used, or null when the file was walked record by record.
    index: Option<String>,
    corrupt_regions: usize,
    records: usize,
    images: usize,
    id_range: Option<[u64; 2]>,
    identities: Option<u64>,
    first_labels: Vec<Option<u32>>,
}

impl InfoArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let dataset = RecordDataset::open(&self.file)?;
        let records = dataset.records();
        let (index, corrupt_regions) = match records.index_source() {
            IndexSource::IdxFile(path) => (Some(path.display().to_string()), 0),
            IndexSource::Scanned { corrupt_regions, .. } => (None, *corrupt_regions),
        };
        let mut first_labels = Vec::new();
        for i in 0..self.first.min(dataset.len()) {
            match dataset.read_image(i) {
                Ok(record) => first_labels.push(Some(record.label)),
                Err(e) => {
                    eprintln!("unreadable: {e}");
                    first_labels.push(None);
                }
            }
        }
        let range = dataset.identity_range();
        let info = InfoJson {
            file: self.file.display().to_string(),
            bytes: records.file_len(),
            index,
            corrupt_regions,
            records: records.len(),
            images: dataset.len(),
            id_range: range.map(|r| [r.id_start, r.id_end]),
            identities: range.map(|r| r.num_identities()),
            first_labels,
        };
        if self.json {
            println!("{}", serde_json::to_string(&info).map_err(|e| Failure::other(e.to_string()))?);
            return Ok(());
        }
        println!("file        {} ({} bytes)", info.file, info.bytes);
        match &info.index {
            Some(path) => println!("index       {path}"),
            None => println!("index       none: walked the file ({corrupt_regions} corrupt stretches stepped over)"),
        }
        println!("records     {}", info.records);
        println!("images      {}", info.images);
        match range {
            Some(r) => println!("identities  {} (header id range {}..{})", r.num_identities(), r.id_start, r.id_end),
            None => println!("identities  unknown (no insightface header record 0; every record is an image)"),
        }
        let labels: Vec<String> = info.first_labels.iter().map(|l| l.map_or("?".to_string(), |l| l.to_string())).collect();
        println!("first labels {}", labels.join(" "));
        Ok(())
    }
}
