//! Which faces are low quality. The magnitude `‖x‖` of a MagFace- or
//! AdaFace-trained feature falls as a face gets blurrier, more occluded or
//! more profile; other recognisers' magnitudes correlate more loosely. With
//! no calibrated threshold for an arbitrary model, the default flags
//! magnitudes that are outliers on the low side of this very collection.

/// How to decide that a face is low quality.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LowQualityRule {
    /// Magnitude below this value (a threshold calibrated for the model).
    Below(f32),
    /// Magnitude more than `z` robust standard deviations below the median:
    /// `median − z · 1.4826 · MAD` (1.4826 · MAD estimates σ for normal data
    /// and, unlike σ itself, is not pulled down by the outliers it looks for).
    RobustOutlier {
        /// How many robust standard deviations below the median (default 2).
        z: f32,
    },
}

impl Default for LowQualityRule {
    fn default() -> Self {
        Self::RobustOutlier { z: 2.0 }
    }
}

impl std::fmt::Display for LowQualityRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Below(t) => write!(f, "magnitude below {t}"),
            Self::RobustOutlier { z } => write!(f, "magnitude below median − {z} × 1.4826 × MAD"),
        }
    }
}

/// One flag per magnitude (`true` = strictly below the threshold) and the threshold
/// it was compared with. The robust rule on no magnitudes gives no flags and a NaN
/// threshold.
pub fn flag_low_quality(magnitudes: &[f32], rule: LowQualityRule) -> (Vec<bool>, f32) {
    let threshold = match rule {
        LowQualityRule::Below(t) => t,
        LowQualityRule::RobustOutlier { z } => {
            if magnitudes.is_empty() {
                return (Vec::new(), f32::NAN);
            }
            let m = median(magnitudes.to_vec());
            let mad = median(magnitudes.iter().map(|v| (v - m).abs()).collect());
            m - z * 1.4826 * mad
        }
    };
    (magnitudes.iter().map(|&m| m < threshold).collect(), threshold)
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_outliers_by_hand() {
        // median 20, |deviations| = 0,1,1,2,12 → MAD 1; threshold 20 − 2·1.4826 = 17.0348.
        let magnitudes = [20.0, 21.0, 19.0, 22.0, 8.0];
        let (flags, threshold) = flag_low_quality(&magnitudes, LowQualityRule::RobustOutlier { z: 2.0 });
        assert!((threshold - 17.0348).abs() < 1e-4, "{threshold}");
        assert_eq!(flags, vec![false, false, false, false, true]);
        // Even count: median of 18, 19, 20, 21 = 19.5.
        let (_, threshold) = flag_low_quality(&[18.0, 21.0, 19.0, 20.0], LowQualityRule::RobustOutlier { z: 0.0 });
        assert_eq!(threshold, 19.5);
    }

    #[test]
    fn absolute_threshold() {
        let (flags, threshold) = flag_low_quality(&[5.0, 15.0, 10.0], LowQualityRule::Below(10.0));
        assert_eq!((flags, threshold), (vec![true, false, false], 10.0));
    }
}
