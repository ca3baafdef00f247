//! The `visage heads eval` contract: one batch given as JSON (head, embeddings,
//! weights, labels, optional AdaFace state) in; loss, both gradients of the
//! batch-mean loss and the updated state out. Checked field by field so a bad
//! case is refused with the name of the field at fault.

use burn::tensor::{backend::AutodiffBackend, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::config::HeadConfig;
use crate::error::HeadError;
use crate::head::{host_values, MarginHead};
use crate::heads::adaface::AdaFaceState;

/// One batch to evaluate, as read from JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadCase {
    pub head: HeadConfig,
    /// `B×D` raw features.
    pub embeddings: Vec<Vec<f64>>,
    /// `rows×D` class centres (`rows = C·K`).
    pub weights: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
    /// AdaFace's running statistics before this batch (default μ = 20, σ = 100).
    pub state: Option<AdaFaceState>,
}

/// What one batch produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadCaseResult {
    pub loss: f64,
    pub grad_embeddings: Vec<Vec<f64>>,
    pub grad_weights: Vec<Vec<f64>>,
    /// AdaFace's running statistics after this batch's update.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<AdaFaceState>,
}

#[derive(Debug, Error)]
pub enum CaseError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("field `{field}`: {reason}")]
    Field { field: String, reason: String },
    #[error(transparent)]
    Head(#[from] HeadError),
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> CaseError {
    CaseError::Field { field: field.into(), reason: reason.into() }
}

const FIELDS: [&str; 5] = ["head", "embeddings", "weights", "labels", "state"];

impl HeadCase {
    pub fn from_json(text: &str) -> Result<Self, CaseError> {
        let value: Value = serde_json::from_str(text)?;
        let Value::Object(object) = value else {
            return Err(field_error("(top level)", "expected a JSON object"));
        };
        if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(field_error(unknown.as_str(), format!("unknown field; expected one of {}", FIELDS.join(", "))));
        }
        let get = |name: &str| object.get(name).ok_or_else(|| field_error(name, "missing"));
        let head: HeadConfig = parse_head(get("head")?)?;
        let embeddings = matrix("embeddings", get("embeddings")?)?;
        let weights = matrix("weights", get("weights")?)?;
        let labels = labels(get("labels")?)?;
        let state = match object.get("state") {
            None | Some(Value::Null) => None,
            Some(value) => {
                if !matches!(head, HeadConfig::AdaFace(_)) {
                    return Err(field_error("state", format!("only the adaface head has state, this case is {}", head.kind())));
                }
                let state: AdaFaceState =
                    serde_json::from_value(value.clone()).map_err(|e| field_error("state", e.to_string()))?;
                if !(state.batch_mean.is_finite() && state.batch_std.is_finite()) {
                    return Err(field_error("state", "batch_mean and batch_std must be finite"));
                }
                Some(state)
            }
        };
        let case = Self { head, embeddings, weights, labels, state };
        case.check_shapes()?;
        Ok(case)
    }

    fn check_shapes(&self) -> Result<(), CaseError> {
        let dim = self.embeddings[0].len();
        if self.weights[0].len() != dim {
            return Err(field_error(
                "weights",
                format!("rows have {} values but embeddings rows have {dim}", self.weights[0].len()),
            ));
        }
        if self.labels.len() != self.embeddings.len() {
            return Err(field_error(
                "labels",
                format!("{} labels for {} embeddings", self.labels.len(), self.embeddings.len()),
            ));
        }
        let per_class = self.head.centres_per_class();
        if !self.weights.len().is_multiple_of(per_class) {
            return Err(field_error(
                "weights",
                format!("{} rows is not a multiple of k = {per_class} (rows = classes × k)", self.weights.len()),
            ));
        }
        let classes = self.weights.len() / per_class;
        if let Some((i, label)) = self.labels.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(field_error(format!("labels[{i}]"), format!("{label} is out of range: there are {classes} classes")));
        }
        Ok(())
    }

    /// Runs the batch on backend `B` (with autodiff) and reads back both gradients.
    pub fn evaluate<B: AutodiffBackend>(&self, device: &B::Device) -> Result<HeadCaseResult, CaseError> {
        let mut head = MarginHead::new(self.head)?;
        if let Some(state) = self.state {
            head.set_adaface_state(state);
        }
        let embeddings = to_tensor::<B>(&self.embeddings, device).require_grad();
        let weights = to_tensor::<B>(&self.weights, device).require_grad();
        let output = head.forward(embeddings.clone(), weights.clone(), &self.labels)?;
        let gradients = output.loss.backward();
        let grad = |t: &Tensor<B, 2>, rows: usize| -> Vec<Vec<f64>> {
            match t.grad(&gradients) {
                Some(g) => rows_of(host_values(g), rows),
                None => vec![vec![0.0; self.embeddings[0].len()]; rows],
            }
        };
        Ok(HeadCaseResult {
            loss: host_values(output.loss)[0],
            grad_embeddings: grad(&embeddings, self.embeddings.len()),
            grad_weights: grad(&weights, self.weights.len()),
            state: head.adaface_state(),
        })
    }
}

fn parse_head(value: &Value) -> Result<HeadConfig, CaseError> {
    let kind = value.get("kind").and_then(Value::as_str).ok_or_else(|| {
        field_error("head.kind", format!("missing; expected one of {}", HeadConfig::KINDS.join(", ")))
    })?;
    if !HeadConfig::KINDS.contains(&kind) {
        return Err(field_error("head.kind", format!("unknown head `{kind}`; expected one of {}", HeadConfig::KINDS.join(", "))));
    }
    serde_json::from_value(value.clone()).map_err(|e| field_error("head", e.to_string()))
}

fn matrix(name: &str, value: &Value) -> Result<Vec<Vec<f64>>, CaseError> {
    let rows = value.as_array().ok_or_else(|| field_error(name, "expected an array of rows"))?;
    if rows.is_empty() {
        return Err(field_error(name, "is empty"));
    }
    let mut matrix = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().ok_or_else(|| field_error(format!("{name}[{i}]"), "expected an array of numbers"))?;
        let mut values = Vec::with_capacity(row.len());
        for (j, x) in row.iter().enumerate() {
            let x = x.as_f64().ok_or_else(|| field_error(format!("{name}[{i}][{j}]"), format!("expected a number, got {x}")))?;
            if !x.is_finite() {
                return Err(field_error(format!("{name}[{i}][{j}]"), "is not finite"));
            }
            values.push(x);
        }
        if let Some(first) = matrix.first().map(Vec::len) {
            if values.len() != first {
                return Err(field_error(
                    format!("{name}[{i}]"),
                    format!("ragged: has {} values but {name}[0] has {first}", values.len()),
                ));
            }
        } else if values.is_empty() {
            return Err(field_error(format!("{name}[0]"), "is empty"));
        }
        matrix.push(values);
    }
    Ok(matrix)
}

fn labels(value: &Value) -> Result<Vec<usize>, CaseError> {
    let items = value.as_array().ok_or_else(|| field_error("labels", "expected an array of integers"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_u64()
                .map(|l| l as usize)
                .ok_or_else(|| field_error(format!("labels[{i}]"), format!("expected a non-negative integer, got {item}")))
        })
        .collect()
}

fn to_tensor<B: AutodiffBackend>(rows: &[Vec<f64>], device: &B::Device) -> Tensor<B, 2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

fn rows_of(flat: Vec<f64>, rows: usize) -> Vec<Vec<f64>> {
    let cols = flat.len() / rows;
    flat.chunks(cols).map(<[f64]>::to_vec).collect()
}
