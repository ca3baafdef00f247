//! The self-contained HTML report: one file, every picture inlined (face
//! crops as JPEG, the heat-map as PNG, charts as SVG), no scripts, no
//! external styles — it opens anywhere and can be mailed or archived.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use image::RgbImage;
use visage_eval::plot::{histogram::HistogramChart, to_svg_string};
use visage_eval::report::escape;

use crate::heatmap::{css_gradient, similarity_heatmap, SCALE_HIGH, SCALE_LOW};
use crate::magnitude_figures::rho_text;
use crate::{Analysis, AnalyzeError};

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em;margin:1.4em 0 .4em}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .7em;text-align:right}\
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}\
.faces{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:112px;font-size:11px;text-align:center;color:#333}\
figure img{display:block;width:112px;height:112px;border:3px solid transparent}figure.low img{border-color:#d62728}\
figure.low figcaption{color:#d62728}figcaption{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
.legend{display:flex;align-items:center;gap:.5em;font-size:.9em}.legend span.bar{display:inline-block;width:240px;height:12px}\
p.note{color:#555;font-size:.9em}.chart svg{max-width:100%;height:auto}";

/// The whole report as one HTML string.
///
/// # Errors
/// [`AnalyzeError::Draw`] when a face crop, the heat-map or the histogram cannot be encoded.
pub fn render(analysis: &Analysis) -> Result<String, AnalyzeError> {
    let c = &analysis.collection;
    let mut html = String::new();
    let title = format!("visage analyze: {} photos, {} faces, {} persons", c.photos, c.faces.len(), analysis.persons());
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    overview(&mut html, analysis);
    persons(&mut html, analysis)?;
    low_quality(&mut html, analysis)?;
    heatmap(&mut html, analysis)?;
    magnitudes(&mut html, analysis)?;
    magnitude_figures(&mut html, analysis)?;
    failures(&mut html, analysis);
    settings(&mut html, analysis);
    html.push_str("<p class=\"note\">Made by visage analyze.</p></body></html>\n");
    Ok(html)
}

fn overview(html: &mut String, analysis: &Analysis) {
    let c = &analysis.collection;
    let t = &c.times;
    let low = analysis.low_quality.iter().filter(|&&f| f).count();
    let rate = if t.wall_s > 0.0 { c.photos as f64 / t.wall_s } else { 0.0 };
    let rows = [
        ("photos", c.photos.to_string()),
        ("photos with faces", c.photos_with_faces.to_string()),
        ("photos without a usable face", c.failures.len().to_string()),
        ("faces", c.faces.len().to_string()),
        ("persons", analysis.persons().to_string()),
        ("low-quality faces", low.to_string()),
        ("time (pipeline, wall)", format!("{:.2} s ({rate:.1} photos/s)", t.wall_s)),
        ("decode (summed over worker threads)", format!("{:.2} s", t.decode_s)),
        ("detect", format!("{:.2} s", t.detect_s)),
        (
            "… of which second looks (padded retries, landmark refinement)",
            format!("{:.2} s in {} extra detector passes", t.second_looks_s, t.second_look_passes),
        ),
        ("align", format!("{:.2} s", t.align_s)),
        (
            "embed",
            format!(
                "{:.2} s ({} recogniser pass{} per face{})",
                t.embed_s,
                t.recognizer_passes_per_face,
                if t.recognizer_passes_per_face == 1 { "" } else { "es" },
                if t.recognizer_passes_per_face == 2 { ": flip TTA" } else { "" }
            ),
        ),
    ];
    html.push_str("<h2>Overview</h2><table>");
    for (name, value) in rows {
        let _ = write!(html, "<tr><td>{}</td><td>{}</td></tr>", escape(name), escape(&value));
    }
    html.push_str("</table>\n");
}

fn persons(html: &mut String, analysis: &Analysis) -> Result<(), AnalyzeError> {
    let faces = &analysis.collection.faces;
    html.push_str("<h2>Persons</h2><p class=\"note\">Each group is one person as the recogniser sees it, faces ordered by quality (feature magnitude ‖x‖, largest first). Red frames mark low-quality faces.</p>\n");
    for (person, members) in analysis.faces_by_person().iter().enumerate() {
        let mut files: Vec<_> = members.iter().map(|&f| &faces[f].file).collect();
        files.sort();
        files.dedup();
        let mean = members.iter().map(|&f| faces[f].magnitude).sum::<f32>() / members.len() as f32;
        let _ = writeln!(
            html,
            "<h3>Person {} · {} face{} in {} photo{} · mean ‖x‖ {mean:.2}</h3>",
            person + 1,
            members.len(),
            plural(members.len()),
            files.len(),
            plural(files.len())
        );
        gallery(html, analysis, members)?;
    }
    Ok(())
}

fn low_quality(html: &mut String, analysis: &Analysis) -> Result<(), AnalyzeError> {
    let faces = &analysis.collection.faces;
    let mut flagged: Vec<usize> = (0..faces.len()).filter(|&f| analysis.low_quality[f]).collect();
    flagged.sort_by(|&a, &b| faces[a].magnitude.total_cmp(&faces[b].magnitude));
    let _ = writeln!(
        html,
        "<h2>Low-quality faces</h2><p class=\"note\">{} face{} with ‖x‖ below {:.2} ({}), worst first.</p>",
        flagged.len(),
        plural(flagged.len()),
        analysis.low_quality_below,
        escape(&analysis.settings.low_quality_rule)
    );
    if !flagged.is_empty() {
        gallery(html, analysis, &flagged)?;
    }
    Ok(())
}

fn heatmap(html: &mut String, analysis: &Analysis) -> Result<(), AnalyzeError> {
    let faces = &analysis.collection.faces;
    if faces.len() < 2 {
        return Ok(());
    }
    let groups = analysis.faces_by_person();
    let order: Vec<usize> = groups.iter().flatten().copied().collect();
    let boundaries: Vec<usize> = groups
        .iter()
        .scan(0, |start, g| {
            let at = *start;
            *start += g.len();
            Some(at)
        })
        .collect();
    let embeddings: Vec<&[f32]> = order.iter().map(|&f| faces[f].embedding.as_slice()).collect();
    let crops: Option<Vec<&RgbImage>> = order.iter().map(|&f| faces[f].crop.as_ref()).collect();
    let picture = similarity_heatmap(&embeddings, &boundaries, crops.as_deref());
    let _ = writeln!(
        html,
        "<h2>Similarity</h2><p class=\"note\">Cosine similarity of every pair of faces, in the order of the persons above (white lines separate persons). Bright blocks on the diagonal are persons; a bright block off it would be one person split in two.</p>\
<div class=\"legend\">{SCALE_LOW}<span class=\"bar\" style=\"background:{}\"></span>{SCALE_HIGH}</div>\
<p><img alt=\"similarity heat-map\" style=\"max-width:100%\" src=\"data:image/png;base64,{}\"></p>",
        css_gradient(),
        encode(&picture, image::ImageFormat::Png, "the heat-map")?
    );
    Ok(())
}

fn magnitudes(html: &mut String, analysis: &Analysis) -> Result<(), AnalyzeError> {
    let faces = &analysis.collection.faces;
    if faces.len() < 2 {
        return Ok(());
    }
    let values: Vec<f64> = faces.iter().map(|f| f64::from(f.magnitude)).collect();
    let bins = (faces.len() / 3).clamp(5, 40);
    let chart = HistogramChart::new("Feature magnitude ‖x‖ (quality)", "‖x‖", &[("faces", &values)], bins);
    let svg = to_svg_string(&chart).map_err(|e| AnalyzeError::Draw { what: "the magnitude histogram".into(), message: e.to_string() })?;
    let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
    let _ = writeln!(html, "<h2>Magnitudes</h2><div class=\"chart\">{body}</div>");
    Ok(())
}

/// MagFace's two figures: the mean face of each magnitude bin, and magnitude
/// against how central each face sits in its person.
fn magnitude_figures(html: &mut String, analysis: &Analysis) -> Result<(), AnalyzeError> {
    let Some(figures) = &analysis.magnitude_figures else { return Ok(()) };
    let row = figures.mean_face_picture()?;
    let svg = figures.centrality_svg()?;
    let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
    let _ = writeln!(
        html,
        "<h2>MagFace's figures</h2><h3>Mean face per magnitude bin</h3><p class=\"note\">Every face's aligned crop averaged with the others of its magnitude bin ({}), \
with the bin's range of ‖x‖, its count and mean magnitude. If magnitude is quality, the faces grow sharper from left to right.</p>\
<p><img alt=\"mean face per magnitude bin\" style=\"max-width:100%\" src=\"data:image/png;base64,{}\"></p>\
<h3>Magnitude against centrality in the person</h3><p class=\"note\">Left: each face's cosine to the mean direction of the other faces of its person \
(Spearman ρ {} over {} faces; persons of one face have none). Right: GCN-V's confidence over its {} most similar faces (ρ {} over {} faces). \
MagFace's claim: high-magnitude faces sit near their person's centre (ρ &gt; 0).</p><div class=\"chart\">{body}</div>",
        escape(&figures.binning.to_string()),
        encode(&row, image::ImageFormat::Png, "the mean faces")?,
        rho_text(figures.centre_cosine.spearman_rho),
        figures.centre_cosine.faces,
        figures.knn_confidence.k.unwrap_or(0),
        rho_text(figures.knn_confidence.spearman_rho),
        figures.knn_confidence.faces,
    );
    Ok(())
}

fn failures(html: &mut String, analysis: &Analysis) {
    let failures = &analysis.collection.failures;
    if failures.is_empty() {
        return;
    }
    html.push_str("<h2>Photos without a usable face</h2><table><tr><th>photo</th><th>reason</th></tr>");
    for failure in failures {
        let _ = write!(
            html,
            "<tr><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&failure.file.display().to_string()),
            escape(&failure.message)
        );
    }
    html.push_str("</table>\n");
}

fn settings(html: &mut String, analysis: &Analysis) {
    let s = &analysis.settings;
    let rows = [
        ("detector", s.detector.clone()),
        ("recogniser", s.recognizer.clone()),
        ("same person at cosine ≥", format!("{}", s.same_person_cosine)),
        ("persons formed by", s.grouping.clone()),
        ("low quality", s.low_quality_rule.clone()),
    ];
    html.push_str("<h2>Settings</h2><table>");
    for (name, value) in rows {
        let _ = write!(html, "<tr><td>{}</td><td style=\"text-align:left\">{}</td></tr>", escape(name), escape(&value));
    }
    html.push_str("</table>\n");
}

/// A row of face tiles with captions (magnitude and photo name).
fn gallery(html: &mut String, analysis: &Analysis, members: &[usize]) -> Result<(), AnalyzeError> {
    let faces = &analysis.collection.faces;
    html.push_str("<div class=\"faces\">");
    for &f in members {
        let face = &faces[f];
        let name = face.file.file_name().map_or_else(|| face.file.display().to_string(), |n| n.to_string_lossy().into_owned());
        let label = if face.face_in_photo > 0 { format!("{name} #{}", face.face_in_photo + 1) } else { name };
        let class = if analysis.low_quality[f] { " class=\"low\"" } else { "" };
        let picture = match &face.crop {
            Some(crop) => format!("<img alt=\"face\" src=\"data:image/jpeg;base64,{}\">", encode(crop, image::ImageFormat::Jpeg, "a face crop")?),
            None => String::new(),
        };
        let _ = write!(
            html,
            "<figure{class} title=\"{}\">{picture}<figcaption>‖x‖ {:.2}</figcaption><figcaption>{}</figcaption></figure>",
            escape(&face.file.display().to_string()),
            face.magnitude,
            escape(&label)
        );
    }
    html.push_str("</div>\n");
    Ok(())
}

/// An image as base64 in `format`.
fn encode(picture: &RgbImage, format: image::ImageFormat, what: &str) -> Result<String, AnalyzeError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, format).map_err(|e| AnalyzeError::Draw { what: what.into(), message: e.to_string() })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes.into_inner()))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Writes each person's montage (best face first, 8 tiles a row, low-quality faces
/// flagged) to `dir/person_NN.png`, `NN` the person's number from 01 as in the report
/// (used by `--montages`). Persons with no kept crop get no file. Returns the paths written.
///
/// # Errors
/// [`AnalyzeError::Write`] when `dir` cannot be created or a file written,
/// [`AnalyzeError::Draw`] when a montage cannot be drawn.
pub fn write_person_montages(analysis: &Analysis, dir: &Path) -> Result<Vec<std::path::PathBuf>, AnalyzeError> {
    let faces = &analysis.collection.faces;
    std::fs::create_dir_all(dir).map_err(|source| AnalyzeError::Write { path: dir.to_path_buf(), source })?;
    let mut written = Vec::new();
    for (person, members) in analysis.faces_by_person().iter().enumerate() {
        let tiles: Vec<crate::montage::Tile<'_>> = members
            .iter()
            .filter_map(|&f| {
                let crop = faces[f].crop.as_ref()?;
                Some(crate::montage::Tile { crop, caption: format!("{:.2}", faces[f].magnitude), flagged: analysis.low_quality[f] })
            })
            .collect();
        if tiles.is_empty() {
            continue;
        }
        let picture = crate::montage::montage(&tiles, 8)?;
        let path = dir.join(format!("person_{:02}.png", person + 1));
        crate::write_png(&picture, &path)?;
        written.push(path);
    }
    Ok(written)
}
