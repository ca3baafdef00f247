//! Class centres imprinted from a pretrained backbone's features (weight
//! imprinting, Qi et al., CVPR 2018): each centre starts as the normalised
//! mean of its class's normalised features. A fine-tuning run that starts
//! from pretrained weights with random centres spends its first steps
//! undoing a head that disagrees with the backbone (every sample looks
//! equally hard, so MagFace's magnitude gradient carries no quality signal);
//! imprinted centres make a sample's difficulty its real distance from its
//! class from the first step.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use visage_data::{DecodeOptions, FaceSource, Normalization};
use visage_image::RgbImage;
use visage_nn::Backbone;

use crate::error::{Result, TrainError};
use crate::verification::embed;

/// Where a run's class centres start (`init_centres` in train.toml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CentreInit {
    /// N(0, 0.01²), as arcface_torch (training from scratch).
    #[default]
    Random,
    /// The class means of the (pretrained) backbone's features on the
    /// training images, unaugmented, in eval mode; every sub-centre of a
    /// class starts at its class mean.
    ClassMeans,
}

/// `[classes·K, D]` centres: row `c·K + j` is class `c`'s normalised mean
/// feature, and the classes without a sample (a class `visage clean`
/// emptied keeps its label): their rows are zero, and the caller keeps its
/// own (random) start for them. `source_path` names the source in errors.
#[allow(clippy::too_many_arguments)]
pub fn class_mean_centres<B: Backend>(
    backbone: &Backbone<B>,
    source: &dyn FaceSource,
    source_path: &Path,
    classes: usize,
    centres_per_class: usize,
    normalization: Normalization,
    side: u32,
    batch: usize,
    device: &B::Device,
) -> Result<(Array2<f64>, Vec<usize>)> {
    let decode = DecodeOptions::default();
    let mut sums: Option<Array2<f64>> = None;
    let mut counts = vec![0usize; classes];
    let mut pending: Vec<(RgbImage, usize)> = Vec::with_capacity(batch);
    let mut flush = |pending: &mut Vec<(RgbImage, usize)>, sums: &mut Option<Array2<f64>>| {
        if pending.is_empty() {
            return;
        }
        let images: Vec<RgbImage> = pending.iter().map(|(image, _)| image.clone()).collect();
        let features = embed(backbone, &images, normalization, false, batch, device);
        let sums = sums.get_or_insert_with(|| Array2::zeros((classes, features.ncols())));
        for (row, (_, label)) in features.rows().into_iter().zip(pending.iter()) {
            let norm = row.dot(&row).sqrt().max(1e-12);
            sums.row_mut(*label).scaled_add(1.0 / norm, &row);
            counts[*label] += 1;
        }
        pending.clear();
    };
    for index in 0..source.len() {
        let sample = source.load(index, &decode).map_err(TrainError::from)?;
        let image = if sample.image.dimensions() == (side, side) {
            sample.image
        } else {
            image::imageops::resize(&sample.image, side, side, image::imageops::FilterType::Triangle)
        };
        let label = sample.label as usize;
        if label >= classes {
            return Err(TrainError::Config {
                path: source_path.to_path_buf(),
                message: format!("sample {index} has label {label}, the source {classes} classes"),
            });
        }
        pending.push((image, label));
        if pending.len() == batch.max(1) {
            flush(&mut pending, &mut sums);
        }
    }
    flush(&mut pending, &mut sums);
    let sums = sums.ok_or_else(|| TrainError::Config { path: source_path.to_path_buf(), message: "the data source is empty".into() })?;
    let empty: Vec<usize> = (0..classes).filter(|&class| counts[class] == 0).collect();
    let mut centres = Array2::zeros((classes * centres_per_class, sums.ncols()));
    for (class, row) in sums.rows().into_iter().enumerate().filter(|(class, _)| counts[*class] > 0) {
        let norm = row.dot(&row).sqrt().max(1e-12);
        for j in 0..centres_per_class {
            centres.row_mut(class * centres_per_class + j).assign(&(&row / norm));
        }
    }
    Ok((centres, empty))
}

/// The centres as a tensor on `device`.
pub fn centres_tensor<B: Backend>(centres: &Array2<f64>, device: &B::Device) -> Tensor<B, 2> {
    let values: Vec<f32> = centres.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, [centres.nrows(), centres.ncols()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_backend::Cpu;
    use visage_data::{LabelledImage, Result as DataResult};
    use visage_nn::{BackboneShape, IResNetConfig, IResNetLayout};

    /// Four 32×32 images, classes 0, 1, 0, 1.
    struct Four;

    impl FaceSource for Four {
        fn len(&self) -> usize {
            4
        }
        fn num_classes(&self) -> Option<usize> {
            Some(2)
        }
        fn load(&self, index: usize, _: &DecodeOptions) -> DataResult<LabelledImage> {
            let image = RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8 ^ (index as u8 * 61), (y * 8) as u8, (index * 50) as u8]));
            Ok(LabelledImage { image, label: (index % 2) as u32 })
        }
    }

    #[test]
    fn centres_are_the_normalised_means_of_normalised_features() {
        let shape = BackboneShape::IResNet(IResNetConfig {
            blocks_per_stage: [1, 1, 1, 1],
            stage_widths: [8, 8, 8, 8],
            stem_width: 8,
            embedding_size: 6,
            dropout: 0.0,
            input_size: 32,
            layout: IResNetLayout::Insightface,
        });
        let device = Default::default();
        let backbone = shape.init::<Cpu>(&device).unwrap();
        let normalization = Normalization::ARCFACE;
        // batch 3: the second flush holds one image
        let (centres, empty) = class_mean_centres(&backbone, &Four, Path::new("four"), 2, 2, normalization, 32, 3, &device).unwrap();
        assert!(empty.is_empty());
        assert_eq!(centres.dim(), (4, 6));
        let images: Vec<RgbImage> = (0..4).map(|i| Four.load(i, &DecodeOptions::default()).unwrap().image).collect();
        let features = embed(&backbone, &images, normalization, false, 4, &device);
        let unit = |v: ndarray::Array1<f64>| &v / v.dot(&v).sqrt();
        for class in 0..2 {
            let mean = unit(features.row(class).to_owned()) + unit(features.row(class + 2).to_owned());
            let expected = unit(mean);
            for j in 0..2 {
                let row = centres.row(class * 2 + j);
                let error = row.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(error < 1e-5, "class {class} sub-centre {j}: {row} vs {expected}");
            }
        }
        let error = class_mean_centres(&backbone, &Four, Path::new("four"), 1, 1, normalization, 32, 3, &device).unwrap_err().to_string();
        assert!(error.contains("four") && error.contains("label 1"), "{error}");
        // A third class without samples (as `visage clean` can leave): its rows stay zero and are named.
        let (centres, empty) = class_mean_centres(&backbone, &Four, Path::new("four"), 3, 2, normalization, 32, 3, &device).unwrap();
        assert_eq!(empty, vec![2]);
        assert!(centres.rows().into_iter().skip(4).all(|row| row.iter().all(|&v| v == 0.0)));
        assert!(centres.rows().into_iter().take(4).all(|row| (row.dot(&row) - 1.0).abs() < 1e-9));
    }
}
