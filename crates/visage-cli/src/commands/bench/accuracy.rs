//! `visage bench accuracy`: every chosen detector × recogniser × setting
//! run over the shared real photo sets, scored the same way, printed as the
//! table of `docs/accuracy.md` (and as JSON for the CI guard).
//!
//! Per set and chain:
//! - **found**: labelled photos in which the detector found a face;
//! - **verification**: every pair of labelled photos (largest face each);
//!   a photo without a face scores −1 against everything, so a missed face
//!   costs AUC instead of vanishing from it; AUC and TAR@FAR 10⁻³, 10⁻²;
//! - **threshold**: the cosine at FAR 10⁻³ (`--calibrate-far`) read off the
//!   *other* set's ROC (`faces_dev` calibrates `faces` and `faces_small`;
//!   `faces` calibrates `faces_dev`), so no threshold is judged on the
//!   photos it was chosen on;
//! - **1:N in group photos**: each identity is enrolled as the mean of its
//!   reference photos' unit embeddings; in each group photo whose members
//!   are named by its source, a member counts as identified when some face
//!   of the photo has the member as its best match at or above the
//!   threshold; in the photos the labels call distractors (nobody enrolled),
//!   every face matched at or above the threshold is a false identification;
//! - **analyze**: the labelled photos' faces grouped by person as `visage
//!   analyze` groups them (same threshold), scored with pairwise
//!   precision, recall and F against the identities.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use visage_analyze::{group_identities, GroupingRule, IdentityConfig};
use visage_eval::io::text::split_csv_line;
use visage_eval::metrics::cluster_scores;
use visage_eval::roc::{roc_summary, LabelledScores};
use visage_infer::{PhotoFace, PhotoOutcome};

use super::super::face_models::{expand_inputs, largest_face, DetectorArgs, RecognizerArgs};
use super::super::Failure;

#[derive(Debug, Args)]
pub struct AccuracyBenchArgs {
    /// The shared data folder holding faces/, faces_small/ and faces_dev/.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Chains to measure, each DETECTOR/RECOGNIZER[+SETTING…] with settings
    /// flip (flip test-time augmentation), pad (retry a photo without a face
    /// on a padded canvas), refine (landmarks re-detected on mirrored,
    /// rescaled crops), quality (quality-aware grouping); `default` is the
    /// default chain as `visage analyze` runs it.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    chains: Vec<String>,
    /// Sets to measure (folders under --data).
    #[arg(long, value_delimiter = ',', default_value = "faces,faces_small,faces_dev")]
    sets: Vec<String>,
    /// FAR at which the decision threshold is calibrated (on the other set).
    #[arg(long, default_value_t = 1e-3)]
    calibrate_far: f64,
    /// Write the results as JSON here.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long, value_name = "OUT.md")]
    markdown: Option<PathBuf>,
    /// Folder searched first for the ONNX files the configs name [default:
    /// --data's models/ when it exists (the shared models: SCRFD and the
    /// other recognisers), else the folders of $VISAGE_MODELS_DIR]; the
    /// bundled models come after it.
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

/// One chain: detector, recogniser and settings.
#[derive(Clone, Debug, Serialize)]
pub struct Chain {
    pub spec: String,
    pub detector: String,
    pub recognizer: String,
    /// `None`: as the configs (or `visage analyze`) decide by default.
    pub flip: Option<bool>,
    pub pad: Option<bool>,
    pub refine: Option<bool>,
    pub quality: Option<bool>,
}

impl Chain {
    pub fn parse(spec: &str) -> Result<Self, Failure> {
        let full = if spec == "default" { super::super::face_models::DEFAULT_CHAIN } else { spec };
        let mut parts = full.split('+');
        let models = parts.next().unwrap_or_default();
        let (detector, recognizer) =
            models.split_once('/').ok_or_else(|| Failure::bad_input(format!("chain `{spec}`: expected DETECTOR/RECOGNIZER[+SETTING…]")))?;
        // `default` keeps the configs' settings; a spelled-out chain has exactly the settings it lists.
        let listed = (spec != "default").then_some(false);
        let mut chain = Chain {
            spec: spec.to_string(),
            detector: detector.to_string(),
            recognizer: recognizer.to_string(),
            flip: listed,
            pad: listed,
            refine: listed,
            quality: listed,
        };
        for setting in parts {
            match setting {
                "flip" => chain.flip = Some(true),
                "pad" => chain.pad = Some(true),
                "refine" => chain.refine = Some(true),
                "quality" => chain.quality = Some(true),
                other => return Err(Failure::bad_input(format!("chain `{spec}`: unknown setting `{other}` (flip, pad, refine, quality)"))),
            }
        }
        Ok(chain)
    }
}

/// A labelled photo set.
struct PhotoSet {
    name: String,
    /// (photo, identity, is a reference for enrolment).
    labelled: Vec<(PathBuf, String, bool)>,
    /// (photo, named members); empty members = a distractor (nobody enrolled).
    groups: Vec<(PathBuf, Vec<String>)>,
}

/// The scores of one chain on one set.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SetScores {
    pub photos: usize,
    pub found: usize,
    pub auc: f64,
    pub tar_at_far_1e3: f64,
    pub tar_at_far_1e2: f64,
    /// Mean cosine of the same-person pairs, and the lowest same-person
    /// score minus the highest different-person score (positive: the set is
    /// separated by some threshold): finer than AUC where AUC is 1.
    pub genuine_mean: f64,
    pub margin: f64,
    /// Quality (MagFace's claim, ERC): FNMR at the FMR 10⁻² threshold of all
    /// pairs, before and after rejecting the 10 % of pairs whose lower
    /// magnitude is smallest, and the relative cut (1 − after/before).
    pub fnmr_at_fmr_1e2: f64,
    pub fnmr_after_rejecting_10pct: f64,
    pub quality_fnmr_cut: f64,
    /// The threshold this set is judged with, and where it was calibrated.
    pub threshold: f64,
    pub threshold_from: String,
    /// This set's own threshold at the calibration FAR (for the other sets).
    pub own_threshold: f64,
    pub members: usize,
    pub identified: usize,
    /// Mean over named members of the member's best cosine in the photo
    /// (finer than the count where every member is found).
    pub member_score: f64,
    pub distractor_faces: usize,
    pub false_identifications: usize,
    pub analyze_precision: f64,
    pub analyze_recall: f64,
    pub analyze_f: f64,
    pub persons: usize,
    pub identities: usize,
    /// `analyze`'s pairwise F with the grouping cut at each cosine of
    /// [`CUTS`]: where the cut should sit is chosen on one set, read on another.
    pub analyze_f_by_cut: Vec<(f64, f64)>,
    pub seconds: f64,
}

/// Grouping cuts swept for `analyze_f_by_cut`.
pub const CUTS: [f64; 7] = [0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60];

#[derive(Clone, Debug, Serialize)]
pub struct ChainScores {
    pub chain: Chain,
    pub sets: BTreeMap<String, SetScores>,
}

/// Faces found per photo of a set, by path.
struct Embedded {
    largest: BTreeMap<PathBuf, Vec<f32>>,
    /// The largest face's magnitude (its quality).
    magnitude: BTreeMap<PathBuf, f32>,
    all: BTreeMap<PathBuf, Vec<PhotoFace>>,
    seconds: f64,
}

impl AccuracyBenchArgs {
    pub fn run(&self) -> Result<(), Failure> {
        let chains: Vec<Chain> = self.chains.iter().map(|c| Chain::parse(c)).collect::<Result<_, _>>()?;
        let sets: Vec<PhotoSet> = self.sets.iter().map(|name| load_set(&self.data, name)).collect::<Result<_, _>>()?;
        let mut results = Vec::new();
        for chain in &chains {
            eprintln!("visage: measuring {}", chain.spec);
            results.push(self.measure(chain, &sets)?);
        }
        let markdown = markdown_table(&results, &self.sets);
        println!("{markdown}");
        if let Some(path) = &self.markdown {
            std::fs::write(path, &markdown).map_err(|e| Failure::other(format!("{}: cannot write: {e}", path.display())))?;
        }
        if let Some(path) = &self.json {
            let json = serde_json::to_string_pretty(&results).expect("scores serialise");
            std::fs::write(path, json).map_err(|e| Failure::other(format!("{}: cannot write: {e}", path.display())))?;
        }
        Ok(())
    }

    fn measure(&self, chain: &Chain, sets: &[PhotoSet]) -> Result<ChainScores, Failure> {
        let detector = DetectorArgs {
            detector: chain.detector.clone(),
            models_dir: self.models_dir.clone().or_else(|| Some(self.data.join("models")).filter(|d| d.is_dir())),
            max_faces: None,
            min_face_size: 0.0,
            max_pixels: visage_infer::DecodeOptions::default().max_pixels,
            strict: false,
            decode_threads: None,
            pad_retry: chain.pad,
            refine_landmarks: chain.refine,
        };
        let recognizer =
            RecognizerArgs { recognizer: chain.recognizer.clone(), flip_tta: chain.flip == Some(true), no_flip_tta: chain.flip == Some(false) };
        let mut pipeline = detector.pipeline(&recognizer, false, false)?;
        let grouping = match chain.quality {
            Some(true) => GroupingRule::QualityFirst,
            Some(false) => GroupingRule::AllAtOnce,
            None => GroupingRule::default(),
        };

        // Embed every set once; thresholds cross between sets afterwards.
        let mut embedded = Vec::new();
        for set in sets {
            let files: Vec<PathBuf> = set.labelled.iter().map(|(p, _, _)| p.clone()).chain(set.groups.iter().map(|(p, _)| p.clone())).collect();
            let started = Instant::now();
            let mut outcomes: Vec<PhotoOutcome> = Vec::new();
            pipeline.run(&files, |o| outcomes.push(o));
            let mut largest = BTreeMap::new();
            let mut magnitude = BTreeMap::new();
            let mut all = BTreeMap::new();
            for outcome in outcomes {
                if let Ok(photo) = outcome.result {
                    if let Some(face) = largest_face(photo.faces.clone()) {
                        largest.insert(outcome.path.clone(), unit(&face.embedding.embedding));
                        magnitude.insert(outcome.path.clone(), face.embedding.norm);
                    }
                    all.insert(outcome.path, photo.faces);
                }
            }
            embedded.push(Embedded { largest, magnitude, all, seconds: started.elapsed().as_secs_f64() });
        }

        // Verification per set, and each set's own threshold at the calibration FAR.
        let mut scores: Vec<SetScores> = Vec::new();
        for (set, faces) in sets.iter().zip(&embedded) {
            let mut s = SetScores { photos: set.labelled.len(), seconds: faces.seconds, ..SetScores::default() };
            s.found = set.labelled.iter().filter(|(p, _, _)| faces.largest.contains_key(p)).count();
            let mut pairs = LabelledScores::default();
            // (score, same person, pair quality = the lower magnitude; 0 without a face)
            let mut quality_pairs: Vec<(f64, bool, f32)> = Vec::new();
            for (i, (a, id_a, _)) in set.labelled.iter().enumerate() {
                for (b, id_b, _) in &set.labelled[i + 1..] {
                    let score = match (faces.largest.get(a), faces.largest.get(b)) {
                        (Some(x), Some(y)) => dot(x, y),
                        _ => -1.0,
                    };
                    let magnitude = |p: &PathBuf| faces.magnitude.get(p).copied().unwrap_or(0.0);
                    quality_pairs.push((score, id_a == id_b, magnitude(a).min(magnitude(b))));
                    if id_a == id_b {
                        pairs.genuine.push(score)
                    } else {
                        pairs.impostor.push(score)
                    }
                }
            }
            (s.fnmr_at_fmr_1e2, s.fnmr_after_rejecting_10pct) = fnmr_with_rejection(&mut quality_pairs, 1e-2, 0.10);
            s.quality_fnmr_cut = if s.fnmr_at_fmr_1e2 > 0.0 { 1.0 - s.fnmr_after_rejecting_10pct / s.fnmr_at_fmr_1e2 } else { 0.0 };
            pairs.check_both_classes().map_err(|e| Failure::bad_input(format!("set {}: {e}", set.name)))?;
            let roc = roc_summary(&pairs, &[1e-3, 1e-2, self.calibrate_far]);
            s.auc = roc.auc;
            s.genuine_mean = pairs.genuine.iter().sum::<f64>() / pairs.genuine.len() as f64;
            let lowest_genuine = pairs.genuine.iter().copied().fold(f64::INFINITY, f64::min);
            let highest_impostor = pairs.impostor.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            s.margin = lowest_genuine - highest_impostor;
            s.tar_at_far_1e3 = roc.tar_at_far[0].tar;
            s.tar_at_far_1e2 = roc.tar_at_far[1].tar;
            s.own_threshold = roc.tar_at_far[2].threshold;
            scores.push(s);
        }
        // Thresholds: faces_dev's for the others, else the first other set's.
        for i in 0..sets.len() {
            let from = calibration_source(sets, i);
            let (threshold, from_name) = match from {
                Some(j) => (scores[j].own_threshold, sets[j].name.clone()),
                None => (scores[i].own_threshold, format!("{} (in-sample: no other set)", sets[i].name)),
            };
            scores[i].threshold = threshold;
            scores[i].threshold_from = from_name;
        }

        // analyze groups at the recogniser config's cut when it has one.
        let analyze_cut = recognizer.config()?.cluster_cosine;
        let mut by_set = BTreeMap::new();
        for ((set, faces), mut s) in sets.iter().zip(&embedded).zip(scores) {
            let threshold = s.threshold as f32;
            identification(set, faces, threshold, &mut s);
            // Grouping the labelled photos' faces as `visage analyze` does.
            let found: Vec<(&PathBuf, &String)> =
                set.labelled.iter().filter(|(p, _, _)| faces.largest.contains_key(p)).map(|(p, id, _)| (p, id)).collect();
            let embeddings: Vec<&[f32]> = found.iter().map(|(p, _)| faces.largest[*p].as_slice()).collect();
            let magnitudes: Vec<f32> = found.iter().map(|(p, _)| faces.magnitude[*p]).collect();
            let mut ids: Vec<&String> = found.iter().map(|(_, id)| *id).collect();
            ids.sort();
            ids.dedup();
            let truth: Vec<i64> = found.iter().map(|(_, id)| ids.binary_search(id).expect("listed") as i64).collect();
            let group = |cut: f32| {
                let config = IdentityConfig { rule: grouping, ..IdentityConfig::new(cut) };
                group_identities(&embeddings, &magnitudes, &config)
            };
            s.analyze_f_by_cut = CUTS
                .iter()
                .map(|&cut| {
                    let pred: Vec<i64> = group(cut as f32).iter().map(|&p| p as i64).collect();
                    (cut, cluster_scores(&truth, &pred).pairwise_f)
                })
                .collect();
            let cut = analyze_cut.unwrap_or(threshold);
            let person = group(cut);
            let pred: Vec<i64> = person.iter().map(|&p| p as i64).collect();
            let c = cluster_scores(&truth, &pred);
            s.analyze_precision = c.pairwise_precision;
            s.analyze_recall = c.pairwise_recall;
            s.analyze_f = c.pairwise_f;
            s.persons = person.iter().max().map_or(0, |&p| p + 1);
            s.identities = ids.len();
            by_set.insert(set.name.clone(), s);
        }
        Ok(ChainScores { chain: chain.clone(), sets: by_set })
    }
}

/// Which set calibrates set `i`: a half set (`NAME.a`) the other half;
/// faces_dev for the others; for faces_dev the first other set.
fn calibration_source(sets: &[PhotoSet], i: usize) -> Option<usize> {
    let name = &sets[i].name;
    if let Some(base) = name.strip_suffix(".a").or_else(|| name.strip_suffix(".b")) {
        let other = if name.ends_with(".a") { format!("{base}.b") } else { format!("{base}.a") };
        if let Some(j) = sets.iter().position(|s| s.name == other) {
            return Some(j);
        }
    }
    if sets[i].name != "faces_dev" {
        if let Some(j) = sets.iter().position(|s| s.name == "faces_dev") {
            return Some(j);
        }
    }
    sets.iter().position(|s| s.name != sets[i].name)
}

/// FNMR at the threshold where the FMR of all pairs is `fmr`, over all
/// pairs and over the pairs left after rejecting the `reject` fraction with
/// the lowest quality (ties in quality broken by order, as an ERC does).
fn fnmr_with_rejection(pairs: &mut [(f64, bool, f32)], fmr: f64, reject: f64) -> (f64, f64) {
    let mut impostor: Vec<f64> = pairs.iter().filter(|p| !p.1).map(|p| p.0).collect();
    impostor.sort_by(|a, b| b.total_cmp(a));
    if impostor.is_empty() {
        return (0.0, 0.0);
    }
    // Accept score > t; the (fmr · N)-th highest impostor score is the threshold.
    let allowed = (fmr * impostor.len() as f64).floor() as usize;
    let threshold = impostor[allowed.min(impostor.len() - 1)];
    let fnmr = |kept: &[(f64, bool, f32)]| {
        let genuine: Vec<f64> = kept.iter().filter(|p| p.1).map(|p| p.0).collect();
        genuine.iter().filter(|&&s| s <= threshold).count() as f64 / genuine.len().max(1) as f64
    };
    let before = fnmr(pairs);
    pairs.sort_by(|a, b| a.2.total_cmp(&b.2));
    let cut = (reject * pairs.len() as f64).round() as usize;
    (before, fnmr(&pairs[cut..]))
}

/// 1:N in group photos: enrol the references, search every face of each group photo.
fn identification(set: &PhotoSet, faces: &Embedded, threshold: f32, s: &mut SetScores) {
    let mut templates: BTreeMap<&String, Vec<f32>> = BTreeMap::new();
    for (path, id, reference) in &set.labelled {
        if let (true, Some(e)) = (*reference, faces.largest.get(path)) {
            let t = templates.entry(id).or_insert_with(|| vec![0.0; e.len()]);
            t.iter_mut().zip(e).for_each(|(a, b)| *a += b);
        }
    }
    let templates: Vec<(&String, Vec<f32>)> = templates.into_iter().map(|(id, t)| (id, unit(&t))).collect();
    let best = |e: &[f32]| templates.iter().map(|(id, t)| (*id, dot(e, t) as f32)).max_by(|a, b| a.1.total_cmp(&b.1));
    let mut member_scores = Vec::new();
    for (path, members) in &set.groups {
        let units: Vec<Vec<f32>> = faces.all.get(path).into_iter().flatten().map(|f| unit(&f.embedding.embedding)).collect();
        let found: Vec<(&String, f32)> = units.iter().filter_map(|e| best(e)).collect();
        for member in members {
            if let Some((_, t)) = templates.iter().find(|(id, _)| *id == member) {
                member_scores.push(units.iter().map(|e| dot(e, t)).fold(-1.0, f64::max));
            }
        }
        if members.is_empty() {
            s.distractor_faces += found.len();
            s.false_identifications += found.iter().filter(|(_, score)| *score >= threshold).count();
        } else {
            s.members += members.len();
            s.identified += members.iter().filter(|m| found.iter().any(|(id, score)| id == m && *score >= threshold)).count();
        }
    }
    s.member_score = member_scores.iter().sum::<f64>() / member_scores.len().max(1) as f64;
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// Reads a set's photos and labels. `faces/` and `faces_small/`: one folder
/// per identity, group photos in `_multi/` with members from
/// `faces/labels.csv`'s `multi_face` column (`yes(a+b)`). `faces_dev/`:
/// `photos/<identity>/` (the references), `verify/<identity>/`, `groups/`
/// with members and distractors from its `labels.csv`.
///
/// `NAME.a` and `NAME.b` are the two halves of a set split by identity
/// (alternate identities in name order): one half to choose settings on,
/// the other to report them on.
fn load_set(data: &Path, name: &str) -> Result<PhotoSet, Failure> {
    let (base, half) = match name.rsplit_once('.') {
        Some((base, half @ ("a" | "b"))) => (base, Some(usize::from(half == "b"))),
        _ => (name, None),
    };
    let mut set = load_whole_set(data, base)?;
    set.name = name.to_string();
    if let Some(half) = half {
        let mut ids: Vec<String> = set.labelled.iter().map(|(_, id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        let keep = |id: &String| ids.binary_search(id).is_ok_and(|i| i % 2 == half);
        set.labelled.retain(|(_, id, _)| keep(id));
        set.groups = std::mem::take(&mut set.groups)
            .into_iter()
            .filter_map(|(photo, members)| {
                if members.is_empty() {
                    return Some((photo, members));
                }
                let kept: Vec<String> = members.into_iter().filter(|m| keep(m)).collect();
                (!kept.is_empty()).then_some((photo, kept))
            })
            .collect();
    }
    Ok(set)
}

fn load_whole_set(data: &Path, name: &str) -> Result<PhotoSet, Failure> {
    let root = data.join(name);
    if !root.is_dir() {
        return Err(Failure::bad_input(format!("{}: no such folder (give --data, the folder holding {name}/)", root.display())));
    }
    let mut set = PhotoSet { name: name.to_string(), labelled: Vec::new(), groups: Vec::new() };
    let identity_folders = |dir: &Path, reference: bool, out: &mut Vec<(PathBuf, String, bool)>| -> Result<(), Failure> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Failure::bad_input(format!("{}: cannot list: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('_')))
            .collect();
        entries.sort();
        for folder in entries {
            let id = folder.file_name().expect("listed").to_string_lossy().into_owned();
            for photo in expand_inputs(std::slice::from_ref(&folder))? {
                out.push((photo, id.clone(), reference));
            }
        }
        Ok(())
    };
    let dev_labels = root.join("photos").is_dir();
    if dev_labels {
        identity_folders(&root.join("photos"), true, &mut set.labelled)?;
        identity_folders(&root.join("verify"), false, &mut set.labelled)?;
        let known: Vec<String> = set.labelled.iter().map(|(_, id, _)| id.clone()).collect();
        for (path, members) in read_labels(&root.join("labels.csv"))? {
            let Some(file) = path.strip_prefix("groups/") else { continue };
            let photo = root.join("groups").join(file);
            if members.contains("distractor") {
                set.groups.push((photo, Vec::new()));
            } else if let Some(named) = named_members(members.split(" (").next().unwrap_or_default(), ';', &known) {
                set.groups.push((photo, named));
            }
        }
    } else {
        identity_folders(&root, true, &mut set.labelled)?;
        let known: Vec<String> = set.labelled.iter().map(|(_, id, _)| id.clone()).collect();
        // faces_small is faces resized: the labels live with faces/.
        let labels = data.join("faces").join("labels.csv");
        for row in read_csv(&labels)? {
            let (Some(path), Some(multi)) = (row.get("path"), row.get("multi_face")) else { continue };
            let Some(inner) = multi.strip_prefix("yes(").and_then(|m| m.strip_suffix(')')) else { continue };
            let Some(file) = path.strip_prefix("_multi/") else { continue };
            let photo = root.join("_multi").join(file);
            if let (true, Some(named)) = (photo.is_file(), named_members(inner, '+', &known)) {
                set.groups.push((photo, named));
            }
        }
    }
    if set.labelled.is_empty() {
        return Err(Failure::bad_input(format!("{}: no labelled photos", root.display())));
    }
    Ok(set)
}

/// `a;b;c` → the names when every one is an identity of the set.
fn named_members(text: &str, separator: char, known: &[String]) -> Option<Vec<String>> {
    let names: Vec<String> = text.split(separator).map(|s| s.trim().to_string()).collect();
    (!names.is_empty() && names.iter().all(|n| known.contains(n))).then_some(names)
}

/// faces_dev's labels: (path, identity_or_group_members).
fn read_labels(path: &Path) -> Result<Vec<(String, String)>, Failure> {
    Ok(read_csv(path)?.into_iter().filter_map(|row| Some((row.get("path")?.clone(), row.get("identity_or_group_members")?.clone()))).collect())
}

/// A small CSV reader (double-quoted fields, no embedded newlines): rows as header → value.
fn read_csv(path: &Path) -> Result<Vec<BTreeMap<String, String>>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::bad_input(format!("{}: cannot read: {e}", path.display())))?;
    let mut lines = text.lines();
    let header = split_csv_line(lines.next().unwrap_or_default());
    Ok(lines.map(|line| header.iter().cloned().zip(split_csv_line(line)).collect()).collect())
}

/// The table of docs/accuracy.md: one row per chain and set.
fn markdown_table(results: &[ChainScores], sets: &[String]) -> String {
    let mut out = String::from(
        "| chain | set | found | AUC | TAR@FAR 1e-3 | TAR@FAR 1e-2 | mean same-person cosine | margin | FNMR@FMR 1e-2 cut by rejecting 10 % lowest magnitude | threshold (from) | 1:N identified (mean member cosine) | false ids / distractor faces | analyze P / R / F (persons/ids) | s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        for set in sets {
            let Some(s) = r.sets.get(set) else { continue };
            out.push_str(&format!(
                "| `{}` | {set} | {}/{} | {:.4} | {:.3} | {:.3} | {:.3} | {:+.3} | {:.3} → {:.3} ({:.0} %) | {:.3} ({}) | {}/{} ({:.3}) | {}/{} | {:.3} / {:.3} / {:.3} ({}/{}) | {:.1} |\n",
                r.chain.spec,
                s.found,
                s.photos,
                s.auc,
                s.tar_at_far_1e3,
                s.tar_at_far_1e2,
                s.genuine_mean,
                s.margin,
                s.fnmr_at_fmr_1e2,
                s.fnmr_after_rejecting_10pct,
                100.0 * s.quality_fnmr_cut,
                s.threshold,
                s.threshold_from,
                s.identified,
                s.members,
                s.member_score,
                s.false_identifications,
                s.distractor_faces,
                s.analyze_precision,
                s.analyze_recall,
                s.analyze_f,
                s.persons,
                s.identities,
                s.seconds
            ));
        }
    }
    out.push_str("\nanalyze pairwise F by grouping cut (cosine):\n\n| chain | set |");
    for cut in CUTS {
        out.push_str(&format!(" {cut:.2} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(CUTS.len()));
    out.push('\n');
    for r in results {
        for set in sets {
            let Some(s) = r.sets.get(set) else { continue };
            out.push_str(&format!("| `{}` | {set} |", r.chain.spec));
            for (_, f) in &s.analyze_f_by_cut {
                out.push_str(&format!(" {f:.3} |"));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes_and_commas() {
        assert_eq!(split_csv_line(r#"a,"b, c",,"say ""hi""""#), vec!["a", "b, c", "", "say \"hi\""]);
    }

    #[test]
    fn chains_parse_and_refuse_unknown_settings() {
        let c = Chain::parse("scrfd/arcface_mobileface_128d_paddle+flip+pad").unwrap();
        assert_eq!(
            (c.detector.as_str(), c.recognizer.as_str(), c.flip, c.pad, c.refine),
            ("scrfd", "arcface_mobileface_128d_paddle", Some(true), Some(true), Some(false))
        );
        assert_eq!(Chain::parse("default").unwrap().flip, None);
        assert!(Chain::parse("scrfd/x+tta").unwrap_err().message.contains("unknown setting `tta`"));
        assert!(Chain::parse("scrfd").is_err());
    }

    #[test]
    fn rejection_counts_fnmr_at_the_fixed_threshold() {
        // 100 impostors at 0.00 … 0.99: FMR 1e-2 allows one above the threshold 0.98.
        let mut pairs: Vec<(f64, bool, f32)> = (0..100).map(|i| (f64::from(i) / 100.0, false, 10.0)).collect();
        // 10 genuine pairs: 4 below the threshold, 2 of those with the lowest quality.
        pairs.extend([(0.5, true, 1.0), (0.6, true, 2.0), (0.7, true, 10.0), (0.9, true, 10.0)]);
        pairs.extend((0..6).map(|_| (0.99, true, 10.0)));
        let (before, after) = fnmr_with_rejection(&mut pairs, 1e-2, 0.02);
        assert!((before - 0.4).abs() < 1e-12, "{before}");
        // 110 pairs, 2 % = 2 rejected: both low-quality genuine misses; 2 of 8 left miss.
        assert!((after - 0.25).abs() < 1e-12, "{after}");
    }

    #[test]
    fn members_only_when_all_are_known() {
        let known = vec!["a".to_string(), "b".to_string()];
        assert_eq!(named_members("a;b", ';', &known), Some(vec!["a".into(), "b".into()]));
        assert_eq!(named_members("a;c", ';', &known), None);
    }
}
