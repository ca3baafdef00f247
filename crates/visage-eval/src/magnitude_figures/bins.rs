//! Faces binned by feature magnitude, and the mean face of each bin.
//!
//! Bins are given by their interior edges `e₀ < e₁ < … < e_{k−1}`: bin 0 is
//! `‖x‖ < e₀`, bin `i` is `e_{i−1} ≤ ‖x‖ < e_i`, the last is `‖x‖ ≥ e_{k−1}`
//! — open at both ends, as in MagFace's figure (`< 24`, `24–26`, …, `≥ 36`),
//! so every finite magnitude falls in exactly one bin. The paper's fixed
//! edges suit its own model only (magnitudes 20–40); another recogniser's
//! magnitudes may live in 5–12, so by default the edges come from the data.

use image::{Rgb, RgbImage};
use serde::Serialize;

use crate::EvalError;

/// How the edges of the magnitude bins are chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Binning {
    /// `bins` bins holding (about) equally many faces: the edges are the
    /// `i / bins` quantiles of the magnitudes (linear interpolation between
    /// order statistics, NumPy's default `np.quantile`). Every bin's mean
    /// face averages about as many crops, so the row compares like with like.
    Quantile {
        /// Number of bins (≥ 1).
        bins: usize,
    },
    /// `bins` bins of equal width between the smallest and largest magnitude
    /// (the paper's layout; the outer bins may hold few faces).
    EqualWidth {
        /// Number of bins (≥ 1).
        bins: usize,
    },
    /// Interior edges given by the user (finite, strictly increasing): `k`
    /// edges make `k + 1` bins. MagFace's figure is `[24, 26, …, 36]`.
    Edges {
        /// The edges.
        edges: Vec<f64>,
    },
}

impl Default for Binning {
    /// Eight bins, as in MagFace's figure, of equal counts.
    fn default() -> Self {
        Binning::Quantile { bins: 8 }
    }
}

impl std::fmt::Display for Binning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Binning::Quantile { bins } => write!(f, "{bins} bins of equal counts (magnitude quantiles)"),
            Binning::EqualWidth { bins } => write!(f, "{bins} bins of equal width over the observed magnitudes"),
            Binning::Edges { edges } => {
                let shown: Vec<String> = edges.iter().map(|e| e.to_string()).collect();
                write!(f, "edges given: {}", shown.join(", "))
            }
        }
    }
}

impl Binning {
    /// Checks the parameters alone: at least one bin; given edges finite and
    /// strictly increasing.
    ///
    /// # Errors
    /// [`EvalError::Invalid`] saying what is wrong.
    pub fn check(&self) -> Result<(), EvalError> {
        match self {
            Binning::Quantile { bins: 0 } | Binning::EqualWidth { bins: 0 } => {
                Err(EvalError::Invalid("the number of magnitude bins must be at least 1".into()))
            }
            Binning::Edges { edges } => {
                if let Some(bad) = edges.iter().find(|e| !e.is_finite()) {
                    return Err(EvalError::Invalid(format!("magnitude bin edge {bad} is not a finite number")));
                }
                if let Some(pair) = edges.windows(2).find(|p| p[1] <= p[0]) {
                    return Err(EvalError::Invalid(format!("magnitude bin edges must increase strictly: {} then {}", pair[0], pair[1])));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The interior edges for these `magnitudes` (non-finite ones ignored).
    /// Quantile edges may repeat when many magnitudes are equal; the bins
    /// between repeated edges are then empty, and the partition still holds.
    ///
    /// # Errors
    /// [`EvalError::Invalid`] from [`Binning::check`], or when edges are to
    /// come from the data and no magnitude is finite.
    pub fn edges(&self, magnitudes: &[f64]) -> Result<Vec<f64>, EvalError> {
        self.check()?;
        let mut sorted: Vec<f64> = magnitudes.iter().copied().filter(|m| m.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let (bins, from_data) = match self {
            Binning::Edges { edges } => return Ok(edges.clone()),
            Binning::Quantile { bins } => (*bins, true),
            Binning::EqualWidth { bins } => (*bins, false),
        };
        let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
            return Err(EvalError::Invalid("no finite magnitude to choose bin edges from".into()));
        };
        Ok((1..bins)
            .map(|i| {
                let q = i as f64 / bins as f64;
                if from_data {
                    quantile(&sorted, q)
                } else {
                    lo + q * (hi - lo)
                }
            })
            .collect())
    }
}

/// The `q` quantile of sorted values, linear between order statistics
/// (NumPy's `np.quantile(…, method="linear")`).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let below = h.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (h - below as f64) * (sorted[above] - sorted[below])
}

/// One magnitude bin and the faces in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MagnitudeBin {
    /// Inclusive lower edge; `None` for the first bin (no lower bound).
    pub lower: Option<f64>,
    /// Exclusive upper edge; `None` for the last bin (no upper bound).
    pub upper: Option<f64>,
    /// Indices of the faces in the bin, ascending.
    pub members: Vec<usize>,
    /// Mean magnitude of the members; `None` for an empty bin.
    pub mean_magnitude: Option<f64>,
}

impl MagnitudeBin {
    /// The bin's range as the figure heads it: `< 24.0`, `24.0–26.0`, `≥ 36.0`
    /// (`all` when there is a single bin), with `decimals` decimals.
    pub fn range_label(&self, decimals: usize) -> String {
        match (self.lower, self.upper) {
            (None, None) => "all".into(),
            (None, Some(u)) => format!("< {u:.decimals$}"),
            (Some(l), None) => format!("≥ {l:.decimals$}"),
            (Some(l), Some(u)) => format!("{l:.decimals$}–{u:.decimals$}"),
        }
    }
}

/// The bin of a magnitude under interior `edges`: the number of edges at or
/// below it. `None` for a non-finite magnitude (it belongs to no bin).
pub fn bin_of(magnitude: f64, edges: &[f64]) -> Option<usize> {
    magnitude.is_finite().then(|| edges.partition_point(|&e| e <= magnitude))
}

/// The faces of `magnitudes` (index = face) in `edges.len() + 1` bins. Each
/// finite magnitude is in exactly one bin; non-finite ones are in none.
pub fn bin_magnitudes(magnitudes: &[f64], edges: &[f64]) -> Vec<MagnitudeBin> {
    let mut bins: Vec<MagnitudeBin> = (0..=edges.len())
        .map(|i| MagnitudeBin { lower: i.checked_sub(1).map(|j| edges[j]), upper: edges.get(i).copied(), members: Vec::new(), mean_magnitude: None })
        .collect();
    for (face, &m) in magnitudes.iter().enumerate() {
        if let Some(b) = bin_of(m, edges) {
            bins[b].members.push(face);
        }
    }
    for bin in &mut bins {
        if !bin.members.is_empty() {
            bin.mean_magnitude = Some(bin.members.iter().map(|&f| magnitudes[f]).sum::<f64>() / bin.members.len() as f64);
        }
    }
    bins
}

/// The pixel-wise mean of equally sized crops, each channel rounded to the
/// nearest grey level (halves up): exact integer arithmetic, so the result
/// does not depend on the order of the crops. `None` for no crops.
///
/// # Errors
/// [`EvalError::Invalid`] when the crops differ in size.
pub fn mean_image(crops: &[&RgbImage]) -> Result<Option<RgbImage>, EvalError> {
    let Some(first) = crops.first() else { return Ok(None) };
    let (w, h) = first.dimensions();
    if let Some(other) = crops.iter().find(|c| c.dimensions() != (w, h)) {
        return Err(EvalError::Invalid(format!("cannot average crops of {w}×{h} and {}×{} pixels", other.width(), other.height())));
    }
    let mut sums = vec![0u64; (w * h * 3) as usize];
    for crop in crops {
        for (s, &v) in sums.iter_mut().zip(crop.as_raw()) {
            *s += u64::from(v);
        }
    }
    let n = crops.len() as u64;
    let pixels: Vec<u8> = sums.iter().map(|&s| ((2 * s + n) / (2 * n)) as u8).collect();
    Ok(Some(RgbImage::from_raw(w, h, pixels).expect("buffer of w × h × 3")))
}

/// A flat grey crop of the given size: the tile of an empty bin.
pub fn empty_tile(width: u32, height: u32) -> RgbImage {
    RgbImage::from_pixel(width, height, Rgb([225, 225, 225]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_edges_match_numpy() {
        // np.quantile([9, 3, 7, 1, 5, 11, 13, 15], [0.25, 0.5, 0.75]) = [4.5, 8.0, 11.5]
        let m = [9.0, 3.0, 7.0, 1.0, 5.0, 11.0, 13.0, 15.0];
        assert_eq!(Binning::Quantile { bins: 4 }.edges(&m).unwrap(), vec![4.5, 8.0, 11.5]);
        // np.quantile([1, 2, 4], 1/3) = 1.6666…: h = 2/3 between 1 and 2.
        let e = Binning::Quantile { bins: 3 }.edges(&[4.0, 1.0, 2.0]).unwrap();
        assert!((e[0] - 5.0 / 3.0).abs() < 1e-12 && (e[1] - 8.0 / 3.0).abs() < 1e-12, "{e:?}");
        // One bin: no edges.
        assert!(Binning::Quantile { bins: 1 }.edges(&m).unwrap().is_empty());
    }

    #[test]
    fn equal_width_edges_span_the_observed_range() {
        // 5 … 12 in 4 bins of width 1.75, a NaN ignored.
        let e = Binning::EqualWidth { bins: 4 }.edges(&[12.0, 5.0, f64::NAN, 8.0]).unwrap();
        assert_eq!(e, vec![6.75, 8.5, 10.25]);
    }

    #[test]
    fn bad_binnings_are_refused() {
        assert!(Binning::Quantile { bins: 0 }.edges(&[1.0]).is_err());
        assert!(Binning::Edges { edges: vec![24.0, 24.0] }.check().is_err());
        assert!(Binning::Edges { edges: vec![26.0, 24.0] }.check().is_err());
        assert!(Binning::Edges { edges: vec![f64::INFINITY] }.check().is_err());
        assert!(Binning::EqualWidth { bins: 3 }.edges(&[f64::NAN]).is_err());
    }

    #[test]
    fn bins_partition_the_faces() {
        // MagFace's edges; values on an edge go to the bin above it.
        let edges: Vec<f64> = (0..7).map(|i| 24.0 + 2.0 * i as f64).collect();
        let m = [23.9, 24.0, 25.0, 36.0, 40.0, 30.5, 12.0, 35.99, f64::NAN, 26.0];
        let bins = bin_magnitudes(&m, &edges);
        assert_eq!(bins.len(), 8);
        let members: Vec<Vec<usize>> = bins.iter().map(|b| b.members.clone()).collect();
        assert_eq!(members, vec![vec![0, 6], vec![1, 2], vec![9], vec![], vec![5], vec![], vec![7], vec![3, 4]]);
        // Every finite magnitude in exactly one bin, the NaN in none.
        let mut all: Vec<usize> = members.concat();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5, 6, 7, 9]);
        assert_eq!(bins[0].mean_magnitude, Some((23.9 + 12.0) / 2.0));
        assert_eq!(bins[3].mean_magnitude, None);
        assert_eq!((bins[0].lower, bins[0].upper), (None, Some(24.0)));
        assert_eq!((bins[7].lower, bins[7].upper), (Some(36.0), None));
        assert_eq!(bins[0].range_label(0), "< 24");
        assert_eq!(bins[2].range_label(1), "26.0–28.0");
        assert_eq!(bins[7].range_label(0), "≥ 36");
        // Quantile bins of 8 distinct values: two a bin.
        let m: Vec<f64> = vec![9.0, 3.0, 7.0, 1.0, 5.0, 11.0, 13.0, 15.0];
        let edges = Binning::Quantile { bins: 4 }.edges(&m).unwrap();
        let counts: Vec<usize> = bin_magnitudes(&m, &edges).iter().map(|b| b.members.len()).collect();
        assert_eq!(counts, vec![2, 2, 2, 2]);
    }

    #[test]
    fn mean_image_is_the_rounded_pixel_average() {
        // Three 2×1 crops; by hand, pixel (0,0): R (10+11+13)/3 = 11.33 → 11,
        // G (0+1+1)/3 = 0.67 → 1, B (255+255+254)/3 = 254.67 → 255;
        // pixel (1,0): R (1+2+0)/3 = 1 → 1, G (100+101+101)/3 = 100.67 → 101, B (7+8+8)/3 = 7.67 → 8.
        let a = RgbImage::from_raw(2, 1, vec![10, 0, 255, 1, 100, 7]).unwrap();
        let b = RgbImage::from_raw(2, 1, vec![11, 1, 255, 2, 101, 8]).unwrap();
        let c = RgbImage::from_raw(2, 1, vec![13, 1, 254, 0, 101, 8]).unwrap();
        let mean = mean_image(&[&a, &b, &c]).unwrap().unwrap();
        assert_eq!(mean.as_raw(), &vec![11, 1, 255, 1, 101, 8]);
        // Halves round up: (10 + 11) / 2 = 10.5 → 11.
        let d = RgbImage::from_raw(1, 1, vec![10, 10, 10]).unwrap();
        let e = RgbImage::from_raw(1, 1, vec![11, 10, 10]).unwrap();
        assert_eq!(mean_image(&[&d, &e]).unwrap().unwrap().as_raw(), &vec![11, 10, 10]);
        assert_eq!(mean_image(&[]).unwrap(), None);
        assert!(mean_image(&[&a, &d]).is_err(), "sizes differ");
    }
}
