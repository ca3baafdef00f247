//! Sub-centre cleaning end to end on a real (tiny) run: a `subcenter` head
//! trained on synthetic identities with some labels flipped on purpose, then
//! `clean` over the folder and over the same data packed as RecordIO. The
//! flipped samples must be found far better than a random drop would, every
//! output must be there and parse, training must continue with K = 1 on the
//! cleaned folder, and bad inputs must fail (or be skipped) naming the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use visage_backend::{Cpu, CpuAutodiff};
use visage_data::{pack_folder, ImageFolder, PackOptions, RecordDataset};
use visage_train::clean::{clean, read_dropped_csv, CleanOptions, CleanSummary, DataFormat};
use visage_train::{train, RunOptions, TrainConfig};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-clean-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const IDENTITIES: usize = 4;
const PER_IDENTITY: u32 = 12;

/// Identity `id`'s `k`-th image: a colour and a stripe direction per
/// identity, deterministic noise per image.
fn face(id: usize, k: u32) -> RgbImage {
    let colours = [[200u8, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]];
    RgbImage::from_fn(32, 32, |x, y| {
        let stripe = if id.is_multiple_of(2) { (x / 4) % 2 } else { (y / 4) % 2 };
        let noise = ((x * 7 + y * 13 + k * 31 + id as u32 * 5) % 23) as u8;
        Rgb(colours[id].map(|c| c.saturating_sub(if stripe == 1 { 60 } else { 0 }).saturating_add(noise)))
    })
}

/// The folder with images 0 and 1 of each identity filed under the next
/// identity (2 of 12 per class flipped, 8 of 48 in all). Returns the folder
/// and the paths of the flipped files.
fn noisy_faces(root: &Path) -> (PathBuf, BTreeSet<PathBuf>) {
    let data = root.join("faces");
    let mut flipped = BTreeSet::new();
    for id in 0..IDENTITIES {
        std::fs::create_dir_all(data.join(format!("id{id}"))).unwrap();
    }
    for id in 0..IDENTITIES {
        for k in 0..PER_IDENTITY {
            let filed_under = if k < 2 { (id + 1) % IDENTITIES } else { id };
            let path = data.join(format!("id{filed_under}/from{id}-{k:02}.png"));
            face(id, k).save(&path).unwrap();
            if filed_under != id {
                flipped.insert(path);
            }
        }
    }
    (data, flipped)
}

fn config(out: &Path, data: &Path, head: &str, epochs: u64) -> TrainConfig {
    let text = format!(
        "out_dir = \"{out}\"\nepochs = {epochs}\nbatch_size = 16\nseed = 11\n\
         [backbone]\narch = \"iresnet18\"\nembedding_size = 16\nblocks_per_stage = [1, 1, 1, 1]\nstage_widths = [8, 8, 16, 16]\nstem_width = 8\ninput_size = 32\n\
         [head]\n{head}\n\
         [data]\nsource = \"{data}\"\nthreads = 2\nflip = false\n\
         [optimizer]\nkind = \"sgd\"\nlr = 0.05\n\
         [checkpoint]\nevery_steps = 1000\nkeep = 1\n",
        out = out.display(),
        data = data.display()
    );
    TrainConfig::parse(&text).unwrap()
}

fn device() -> burn::tensor::Device<Cpu> {
    Default::default()
}

fn options() -> CleanOptions {
    CleanOptions { batch_size: 20, ..CleanOptions::default() }
}

#[test]
fn subcenter_cleaning_finds_flipped_labels_in_folders_and_recordio() {
    let root = scratch("flipped");
    let (data, flipped) = noisy_faces(&root);
    let run = root.join("subcenter");
    let subcenter = config(&run, &data, "kind = \"subcenter\"\ns = 16.0\nm = 0.3\nk = 3", 12);
    train::<CpuAutodiff>(&subcenter, &device(), &RunOptions::default(), |_| {}).unwrap();

    // --- folder in, folder out
    let out = root.join("cleaned");
    let mut calls = 0;
    let report = clean::<Cpu>(&run, &data, &out, &options(), &device(), |done, total| {
        calls += 1;
        assert!(done <= total && total == 48);
    })
    .unwrap();
    assert!(calls >= 3, "progress after each batch of 20: {calls}");
    let summary = &report.summary;
    assert_eq!((summary.samples, summary.kept + summary.dropped, summary.subcentres_per_class), (48, 48, 3));
    assert_eq!(summary.format, DataFormat::Folder);

    // Flipped labels as noise detection: a random drop of the same size would
    // have precision 8/48 ≈ 0.17 and recall dropped/48.
    let dropped: BTreeSet<PathBuf> = report.dropped.iter().map(|d| PathBuf::from(&d.sample)).collect();
    let hits = dropped.intersection(&flipped).count();
    let precision = hits as f64 / dropped.len().max(1) as f64;
    let recall = hits as f64 / flipped.len() as f64;
    eprintln!("dropped {} of 48: precision {precision:.2}, recall {recall:.2}; classes {:?}", dropped.len(), summary.classes);
    assert!(precision >= 0.5, "precision {precision} (chance 0.17); dropped {dropped:?}");
    assert!(recall >= 0.5, "recall {recall}; dropped {dropped:?}");

    // dropped.csv parses back to what was returned; summary.json to the summary.
    let csv = read_dropped_csv(&out.join("dropped.csv")).unwrap();
    assert_eq!(csv.len(), summary.dropped);
    for (row, returned) in csv.iter().zip(&report.dropped) {
        assert_eq!((&row.sample, row.label, row.index), (&returned.sample, returned.label, returned.index));
        assert!((row.angle_deg - returned.angle_deg).abs() < 1e-3 && row.angle_deg > 75.0, "{row:?}");
        assert_eq!(row.class, format!("id{}", row.label));
    }
    let parsed: CleanSummary = serde_json::from_str(&std::fs::read_to_string(&report.summary_json).unwrap()).unwrap();
    assert_eq!((parsed.kept, parsed.dropped, parsed.classes.len()), (summary.kept, summary.dropped, IDENTITIES));
    for class in &parsed.classes {
        assert_eq!(class.samples, 12);
        assert_eq!(class.kept + class.dropped, 12);
        assert_eq!(class.nearest_counts.iter().sum::<usize>(), 12);
        assert!(class.dominant_share >= 1.0 / 3.0 && class.nearest_counts[class.dominant_subcentre] == *class.nearest_counts.iter().max().unwrap());
    }
    // The cleaned folder: the same classes, exactly the kept files.
    let cleaned = ImageFolder::scan(&out.join("data")).unwrap();
    assert_eq!(cleaned.class_names(), ImageFolder::scan(&data).unwrap().class_names());
    assert_eq!(cleaned.len(), summary.kept);
    let kept_names: BTreeSet<String> =
        cleaned.images().iter().map(|i| i.path.strip_prefix(out.join("data")).unwrap().display().to_string()).collect();
    for path in &dropped {
        assert!(!kept_names.contains(&path.strip_prefix(&data).unwrap().display().to_string()));
    }
    // One montage per class that dropped something, a real PNG.
    let with_drops: BTreeSet<String> = report.dropped.iter().map(|d| d.class.clone()).collect();
    for class in &with_drops {
        let picture = image::open(out.join("montages").join(format!("{class}.png"))).unwrap();
        assert!(picture.width() >= 64 && picture.height() >= 64);
    }
    assert_eq!(std::fs::read_dir(out.join("montages")).unwrap().count(), with_drops.len());

    // --- RecordIO in, RecordIO out: the same decisions.
    let rec = root.join("rec/train.rec");
    std::fs::create_dir_all(rec.parent().unwrap()).unwrap();
    pack_folder(&ImageFolder::scan(&data).unwrap(), &rec, &PackOptions::default(), |_, _| {}).unwrap();
    let rec_out = root.join("cleaned-rec");
    let rec_report = clean::<Cpu>(&run, &rec, &rec_out, &options(), &device(), |_, _| {}).unwrap();
    assert_eq!(rec_report.summary.format, DataFormat::Recordio);
    // Packing re-encodes PNG as JPEG (quality 95): angles move a little, so
    // compare the decisions, which sit far from the threshold here.
    let indices = |r: &visage_train::clean::CleanReport| r.dropped.iter().map(|d| d.index).collect::<BTreeSet<_>>();
    assert_eq!(indices(&rec_report), indices(&report));
    assert!(rec_report.dropped.iter().all(|d| d.sample.contains("train.rec#key")));
    let cleaned_rec = RecordDataset::open(&rec_out.join("train.rec")).unwrap();
    assert_eq!((cleaned_rec.len(), cleaned_rec.num_classes()), (rec_report.summary.kept, Some(IDENTITIES)));

    // --- training continues with K = 1 on the cleaned folder.
    let arc_run = root.join("arcface-clean");
    let arc = config(&arc_run, &out.join("data"), "kind = \"arcface\"\ns = 16.0\nm = 0.3", 1);
    let summary_k1 = train::<CpuAutodiff>(&arc, &device(), &RunOptions::default(), |_| {}).unwrap();
    assert!(summary_k1.steps_done >= 1 && summary_k1.last_loss.is_finite());

    // --- bad inputs.
    // A K = 1 checkpoint: refused, naming its state.json and the head.
    let error = clean::<Cpu>(&arc_run, &data, &root.join("x"), &options(), &device(), |_, _| {}).unwrap_err().to_string();
    assert!(error.contains("state.json") && error.contains("arcface") && error.contains("subcenter"), "{error}");
    // Other classes than the checkpoint's: refused, naming the folder.
    let fewer = root.join("fewer");
    for id in 0..3 {
        std::fs::create_dir_all(fewer.join(format!("id{id}"))).unwrap();
        face(id, 0).save(fewer.join(format!("id{id}/a.png"))).unwrap();
    }
    let error = clean::<Cpu>(&run, &fewer, &root.join("x"), &options(), &device(), |_, _| {}).unwrap_err().to_string();
    assert!(error.contains("fewer") && error.contains("3 identity folders") && error.contains("4 classes"), "{error}");
    // Same count, other names.
    std::fs::create_dir_all(fewer.join("zz")).unwrap();
    face(3, 0).save(fewer.join("zz/a.png")).unwrap();
    let error = clean::<Cpu>(&run, &fewer, &root.join("x"), &options(), &device(), |_, _| {}).unwrap_err().to_string();
    assert!(error.contains("\"zz\"") && error.contains("\"id3\""), "{error}");
    // An unreadable image: reported and skipped, the rest cleaned.
    let broken = data.join("id2/zz-broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let with_broken = clean::<Cpu>(&run, &data, &root.join("cleaned-broken"), &options(), &device(), |_, _| {}).unwrap();
    assert_eq!(with_broken.summary.unreadable.len(), 1);
    assert_eq!(with_broken.summary.unreadable[0].sample, broken.display().to_string());
    assert!(with_broken.summary.unreadable[0].reason.contains("zz-broken.png"), "{:?}", with_broken.summary.unreadable);
    assert_eq!((with_broken.summary.samples, with_broken.summary.dropped), (48, summary.dropped));

    let _ = std::fs::remove_dir_all(&root);
}
