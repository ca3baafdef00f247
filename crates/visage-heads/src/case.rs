//! The `visage heads eval` contract: one batch given as JSON (head, embeddings,
//! weights, labels, optional AdaFace state, optional Partial FC) in; loss,
//! both gradients of the batch-mean loss, the updated state and the classes
//! Partial FC kept out. Checked field by field so a bad
//! case is refused with the name of the field at fault.

use burn::tensor::{backend::AutodiffBackend, Tensor, TensorData};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::config::HeadConfig;
use crate::error::HeadError;
use crate::head::{host_values, CentreShard, MarginHead};
use crate::heads::adaface::AdaFaceState;
use crate::partial_fc::{PartialFc, PartialFcConfig};

/// One batch to evaluate, as read from JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadCase {
    /// The head and its parameters (the `head` object, tagged by `kind`).
    pub head: HeadConfig,
    /// `B×D` raw features (non-empty, rectangular, finite, within f32 range).
    pub embeddings: Vec<Vec<f64>>,
    /// `rows×D` class centres (`rows = C·K`).
    pub weights: Vec<Vec<f64>>,
    /// `B` class indices, each in `0..C`.
    pub labels: Vec<usize>,
    /// AdaFace's running statistics before this batch (default μ = 20, σ = 100).
    pub state: Option<AdaFaceState>,
    /// Partial FC over the class centres, when given.
    pub partial_fc: Option<CasePartialFc>,
}

/// The `partial_fc` object of a case: the class centres split into shards
/// (default: one) and either the kept classes given (`sampled`, so an
/// independent reference can check the result) or Partial FC's sampler
/// (`sample_rate`, `seed`, `step`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePartialFc {
    /// Fraction of each shard's classes kept (default 0.1), when `sampled` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// Seed of the sampler (default 0), when `sampled` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Training step the sample is drawn for (default 0), when `sampled` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// Classes per shard, in order, summing to the case's classes (default: one shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<usize>>,
    /// The kept classes (global ids, ascending, every label among them), instead of sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<Vec<usize>>,
}

/// What one batch produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadCaseResult {
    /// Batch-mean loss (computed in f32, widened to f64).
    pub loss: f64,
    /// `∂loss/∂embeddings`, `B×D`.
    pub grad_embeddings: Vec<Vec<f64>>,
    /// `∂loss/∂weights`, `rows×D`.
    pub grad_weights: Vec<Vec<f64>>,
    /// AdaFace's running statistics after this batch's update.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<AdaFaceState>,
    /// With Partial FC: the classes kept (ascending); the other classes' weight rows get zero gradient.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sampled_classes: Option<Vec<usize>>,
}

/// Why a case was refused or could not be evaluated.
#[derive(Debug, Error)]
pub enum CaseError {
    /// The text is not well-formed JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field is missing, unknown, repeated, of the wrong type or inconsistent with another.
    #[error("field `{field}`: {reason}")]
    Field {
        /// Path of the field at fault, e.g. `labels[3]`, `embeddings[2][5]`, `head.kind`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The head refused its parameters or the batch.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The inputs were accepted but the result overflowed float32.
    #[error("{0}")]
    NotFinite(String),
}

impl CaseError {
    /// Always the case's fault (exit code 2 at the command line): malformed
    /// JSON, a bad field, parameters or a batch the head refuses, or values
    /// whose result overflows float32.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

fn field_error(field: impl Into<String>, reason: impl Into<String>) -> CaseError {
    CaseError::Field { field: field.into(), reason: reason.into() }
}

const FIELDS: [&str; 6] = ["head", "embeddings", "weights", "labels", "state", "partial_fc"];

impl HeadCase {
    /// Parses and checks a case. The matrices and labels are read straight
    /// into `f64`/`usize` vectors (8 bytes a number) rather than through a
    /// generic JSON tree (~32 bytes a number plus the text), so memory stays
    /// in proportion to the input; nesting is bounded by serde_json's limit
    /// of 128 levels and a value nested where a number belongs is refused
    /// without being descended into.
    ///
    /// # Errors
    /// [`CaseError::Json`] for malformed JSON, [`CaseError::Field`] for the first field at
    /// fault (the head's parameter ranges are checked later, by [`evaluate`](Self::evaluate)).
    pub fn from_json(text: &str) -> Result<Self, CaseError> {
        if !text.trim_start().starts_with('{') {
            // Still report malformed JSON as such (empty input, garbage).
            serde_json::from_str::<serde::de::IgnoredAny>(text)?;
            return Err(field_error("(top level)", "expected a JSON object"));
        }
        let found = std::cell::RefCell::new(None);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = serde::Deserializer::deserialize_map(&mut deserializer, CaseVisitor { field_error: &found })
            .and_then(|raw| deserializer.end().map(|()| raw));
        let raw = match (parsed, found.into_inner()) {
            (_, Some(error)) => return Err(error),
            (Err(e), None) => return Err(CaseError::Json(e)),
            (Ok(raw), None) => raw,
        };
        let missing = |name: &str| field_error(name, "missing");
        let head: HeadConfig = parse_head(raw.head.as_ref().ok_or_else(|| missing("head"))?)?;
        let embeddings = raw.embeddings.ok_or_else(|| missing("embeddings"))?;
        let weights = raw.weights.ok_or_else(|| missing("weights"))?;
        let labels = raw.labels.ok_or_else(|| missing("labels"))?;
        let state = match raw.state {
            None | Some(Value::Null) => None,
            Some(value) => {
                if !matches!(head, HeadConfig::AdaFace(_)) {
                    return Err(field_error("state", format!("only the adaface head has state, this case is {}", head.kind())));
                }
                let state: AdaFaceState = serde_json::from_value(value).map_err(|e| field_error("state", e.to_string()))?;
                if !(state.batch_mean.is_finite() && state.batch_std.is_finite()) {
                    return Err(field_error("state", "batch_mean and batch_std must be finite"));
                }
                Some(state)
            }
        };
        let partial_fc = match raw.partial_fc {
            None | Some(Value::Null) => None,
            Some(value) => Some(serde_json::from_value::<CasePartialFc>(value).map_err(|e| field_error("partial_fc", e.to_string()))?),
        };
        let case = Self { head, embeddings, weights, labels, state, partial_fc };
        case.check_shapes()?;
        case.check_partial_fc()?;
        Ok(case)
    }

    fn check_partial_fc(&self) -> Result<(), CaseError> {
        let Some(partial) = &self.partial_fc else { return Ok(()) };
        let classes = self.weights.len() / self.head.centres_per_class();
        if let Some(shards) = &partial.shards {
            if shards.is_empty() || shards.contains(&0) || shards.iter().sum::<usize>() != classes {
                return Err(field_error("partial_fc.shards", format!("{shards:?}: expected positive class counts summing to the {classes} classes")));
            }
        }
        if let Some(sampled) = &partial.sampled {
            if partial.sample_rate.is_some() || partial.seed.is_some() || partial.step.is_some() {
                return Err(field_error("partial_fc.sampled", "give either the sampled classes or sample_rate/seed/step, not both"));
            }
            if !sampled.windows(2).all(|w| w[0] < w[1]) {
                return Err(field_error("partial_fc.sampled", "the classes must be ascending and distinct"));
            }
            if let Some(&class) = sampled.iter().find(|&&c| c >= classes) {
                return Err(field_error("partial_fc.sampled", format!("class {class} is out of range: there are {classes} classes")));
            }
            if let Some((i, label)) = self.labels.iter().enumerate().find(|(_, l)| sampled.binary_search(l).is_err()) {
                return Err(field_error("partial_fc.sampled", format!("labels[{i}] = {label} is not among them: every positive class is kept")));
            }
            let sizes = partial.shards.clone().unwrap_or_else(|| vec![classes]);
            let mut first = 0;
            for (index, size) in sizes.into_iter().enumerate() {
                if !sampled.iter().any(|c| (first..first + size).contains(c)) {
                    return Err(field_error(
                        "partial_fc.sampled",
                        format!("shard {index} (classes {first}..{}) keeps no class: every shard keeps at least one", first + size),
                    ));
                }
                first += size;
            }
        } else {
            PartialFc::new(self.partial_fc_config())?;
        }
        Ok(())
    }

    fn partial_fc_config(&self) -> PartialFcConfig {
        let defaults = PartialFcConfig::default();
        let partial = self.partial_fc.as_ref();
        PartialFcConfig {
            sample_rate: partial.and_then(|p| p.sample_rate).unwrap_or(defaults.sample_rate),
            seed: partial.and_then(|p| p.seed).unwrap_or(defaults.seed),
            ..defaults
        }
    }

    fn check_shapes(&self) -> Result<(), CaseError> {
        let dim = self.embeddings[0].len();
        if self.weights[0].len() != dim {
            return Err(field_error("weights", format!("rows have {} values but embeddings rows have {dim}", self.weights[0].len())));
        }
        if self.labels.len() != self.embeddings.len() {
            return Err(field_error("labels", format!("{} labels for {} embeddings", self.labels.len(), self.embeddings.len())));
        }
        let per_class = self.head.centres_per_class();
        if !self.weights.len().is_multiple_of(per_class) {
            return Err(field_error("weights", format!("{} rows is not a multiple of k = {per_class} (rows = classes × k)", self.weights.len())));
        }
        let classes = self.weights.len() / per_class;
        if let Some((i, label)) = self.labels.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(field_error(format!("labels[{i}]"), format!("{label} is out of range: there are {classes} classes")));
        }
        Ok(())
    }

    /// Runs the batch on backend `B` (with autodiff) and reads back both gradients.
    /// The inputs are converted to `f32` first.
    ///
    /// # Errors
    /// [`CaseError::Head`] for invalid parameters or a batch the head refuses,
    /// [`CaseError::NotFinite`] when the loss or a gradient overflows.
    pub fn evaluate<B: AutodiffBackend>(&self, device: &B::Device) -> Result<HeadCaseResult, CaseError> {
        let mut head = MarginHead::new(self.head)?;
        if let Some(state) = self.state {
            head.set_adaface_state(state);
        }
        let embeddings = to_tensor::<B>(&self.embeddings, device).require_grad();
        let weights = to_tensor::<B>(&self.weights, device).require_grad();
        let (loss, sampled_classes) = match &self.partial_fc {
            None => (head.forward(embeddings.clone(), weights.clone(), &self.labels)?.loss, None),
            Some(partial) => {
                let per_class = self.head.centres_per_class();
                let classes = self.weights.len() / per_class;
                let sizes = partial.shards.clone().unwrap_or_else(|| vec![classes]);
                let mut shards = Vec::with_capacity(sizes.len());
                let mut first_class = 0;
                for size in sizes {
                    let rows = first_class * per_class..(first_class + size) * per_class;
                    shards.push(CentreShard { centres: weights.clone().slice([rows, 0..self.weights[0].len()]), first_class });
                    first_class += size;
                }
                let output = match &partial.sampled {
                    Some(sampled) => {
                        let kept = shards
                            .iter()
                            .map(|shard| {
                                let end = shard.first_class + shard.centres.dims()[0] / per_class;
                                sampled.iter().copied().filter(|c| (shard.first_class..end).contains(c)).collect()
                            })
                            .collect();
                        PartialFc::forward_with_classes(&mut head, embeddings.clone(), &shards, &self.labels, kept)?
                    }
                    None => PartialFc::new(self.partial_fc_config())?.forward(
                        &mut head,
                        embeddings.clone(),
                        &shards,
                        &self.labels,
                        partial.step.unwrap_or(0),
                    )?,
                };
                let kept: Vec<usize> = output.sampled.iter().flat_map(|s| s.classes.iter().copied()).collect();
                (output.output.loss, Some(kept))
            }
        };
        let gradients = loss.backward();
        let grad = |t: &Tensor<B, 2>, rows: usize| -> Vec<Vec<f64>> {
            match t.grad(&gradients) {
                Some(g) => rows_of(host_values(g), rows),
                None => vec![vec![0.0; self.embeddings[0].len()]; rows],
            }
        };
        let result = HeadCaseResult {
            loss: host_values(loss)[0],
            grad_embeddings: grad(&embeddings, self.embeddings.len()),
            grad_weights: grad(&weights, self.weights.len()),
            state: head.adaface_state(),
            sampled_classes,
        };
        // JSON has no NaN: a non-finite number would be written as `null`
        // and read back as a missing value, so it is an error here instead.
        let finite = |m: &[Vec<f64>]| m.iter().flatten().all(|x| x.is_finite());
        if !result.loss.is_finite() {
            return Err(CaseError::NotFinite(format!("the loss is {} (inputs this large overflow float32)", result.loss)));
        }
        if !finite(&result.grad_embeddings) || !finite(&result.grad_weights) {
            return Err(CaseError::NotFinite("a gradient is not finite (inputs this large overflow float32)".into()));
        }
        Ok(result)
    }
}

fn parse_head(value: &Value) -> Result<HeadConfig, CaseError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| field_error("head.kind", format!("missing; expected one of {}", HeadConfig::KINDS.join(", "))))?;
    if !HeadConfig::KINDS.contains(&kind) {
        return Err(field_error("head.kind", format!("unknown head `{kind}`; expected one of {}", HeadConfig::KINDS.join(", "))));
    }
    serde_json::from_value(value.clone()).map_err(|e| field_error("head", e.to_string()))
}

/// The visitor methods of a seed that wants an array: every other JSON type
/// ends in the seed's `wrong_type` error without being read further.
macro_rules! not_an_array {
    ($de:lifetime) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(self.wrong_type())
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(self.wrong_type())
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(self.wrong_type())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(self.wrong_type())
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(self.wrong_type())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Err(self.wrong_type())
        }
        fn visit_map<A: MapAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.wrong_type())
        }
    };
}

/// The top-level fields as read, before their cross-checks.
#[derive(Default)]
struct RawCase {
    head: Option<Value>,
    embeddings: Option<Vec<Vec<f64>>>,
    weights: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<usize>>,
    state: Option<Value>,
    partial_fc: Option<Value>,
}

/// Where a visitor leaves the field error it found: serde's own error type
/// carries only a message, and the caller wants [`CaseError::Field`].
type FieldSlot<'a> = &'a std::cell::RefCell<Option<CaseError>>;

fn refuse<E: serde::de::Error>(slot: FieldSlot<'_>, field: impl Into<String>, reason: impl Into<String>) -> E {
    let error = field_error(field, reason);
    let message = error.to_string();
    slot.borrow_mut().get_or_insert(error);
    E::custom(message)
}

struct CaseVisitor<'a> {
    field_error: FieldSlot<'a>,
}

impl<'de> Visitor<'de> for CaseVisitor<'_> {
    type Value = RawCase;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCase, A::Error> {
        let slot = self.field_error;
        let mut raw = RawCase::default();
        while let Some(key) = map.next_key::<String>()? {
            let seen = match key.as_str() {
                "head" => raw.head.replace(map.next_value()?).is_some(),
                "embeddings" => raw.embeddings.replace(map.next_value_seed(MatrixSeed { name: "embeddings", slot })?).is_some(),
                "weights" => raw.weights.replace(map.next_value_seed(MatrixSeed { name: "weights", slot })?).is_some(),
                "labels" => raw.labels.replace(map.next_value_seed(LabelsSeed { slot })?).is_some(),
                "state" => raw.state.replace(map.next_value()?).is_some(),
                "partial_fc" => raw.partial_fc.replace(map.next_value()?).is_some(),
                unknown => return Err(refuse(slot, unknown, format!("unknown field; expected one of {}", FIELDS.join(", ")))),
            };
            if seen {
                return Err(refuse(slot, key, "given twice"));
            }
        }
        Ok(raw)
    }
}

/// A non-empty, rectangular array of arrays of numbers.
struct MatrixSeed<'a> {
    name: &'static str,
    slot: FieldSlot<'a>,
}

impl MatrixSeed<'_> {
    fn wrong_type<E: serde::de::Error>(&self) -> E {
        refuse(self.slot, self.name, "expected an array of rows")
    }
}

impl<'de> DeserializeSeed<'de> for MatrixSeed<'_> {
    type Value = Vec<Vec<f64>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MatrixSeed<'_> {
    type Value = Vec<Vec<f64>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (name, slot) = (self.name, self.slot);
        let mut matrix: Vec<Vec<f64>> = Vec::new();
        loop {
            let row = RowSeed { name, row: matrix.len(), width: matrix.first().map(Vec::len), slot };
            match seq.next_element_seed(row)? {
                Some(values) => matrix.push(values),
                None => break,
            }
        }
        if matrix.is_empty() {
            return Err(refuse(slot, name, "is empty"));
        }
        Ok(matrix)
    }

    not_an_array!('de);
}

/// One row: numbers only, as many as the first row has.
struct RowSeed<'a> {
    name: &'static str,
    row: usize,
    /// Length of row 0, once read.
    width: Option<usize>,
    slot: FieldSlot<'a>,
}

impl RowSeed<'_> {
    fn wrong_type<E: serde::de::Error>(&self) -> E {
        refuse(self.slot, format!("{}[{}]", self.name, self.row), "expected an array of numbers")
    }
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Vec<f64>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (name, row, slot) = (self.name, self.row, self.slot);
        let mut values = Vec::with_capacity(self.width.unwrap_or(0));
        loop {
            let number = NumberSeed { field: || format!("{name}[{row}][{}]", values.len()), slot };
            match seq.next_element_seed(number)? {
                Some(x) => values.push(x),
                None => break,
            }
        }
        match self.width {
            Some(first) if values.len() != first => {
                Err(refuse(slot, format!("{name}[{row}]"), format!("ragged: has {} values but {name}[0] has {first}", values.len())))
            }
            None if values.is_empty() => Err(refuse(slot, format!("{name}[0]"), "is empty")),
            _ => Ok(values),
        }
    }

    not_an_array!('de);
}

/// One finite number; anything else is refused with the field's path.
struct NumberSeed<'a, F: Fn() -> String> {
    field: F,
    slot: FieldSlot<'a>,
}

impl<'de, F: Fn() -> String> DeserializeSeed<'de> for NumberSeed<'_, F> {
    type Value = f64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: Fn() -> String> Visitor<'de> for NumberSeed<'_, F> {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number")
    }

    /// The head computes in float32: a value beyond its range would become
    /// infinity there and the loss NaN, so it is refused here by name.
    fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<f64, E> {
        if !x.is_finite() {
            Err(refuse(self.slot, (self.field)(), "is not finite"))
        } else if x.abs() > f64::from(f32::MAX) {
            Err(refuse(self.slot, (self.field)(), format!("{x:e} is beyond float32's range (±3.4e38), the precision the head computes in")))
        } else {
            Ok(x)
        }
    }

    fn visit_i64<E: serde::de::Error>(self, x: i64) -> Result<f64, E> {
        Ok(x as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, x: u64) -> Result<f64, E> {
        Ok(x as f64)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<f64, E> {
        Err(refuse(self.slot, (self.field)(), format!("expected a number, got {}", Value::from(shortened(text)))))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<f64, E> {
        Err(refuse(self.slot, (self.field)(), format!("expected a number, got {b}")))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<f64, E> {
        Err(refuse(self.slot, (self.field)(), "expected a number, got null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<f64, A::Error> {
        Err(refuse(self.slot, (self.field)(), "expected a number, got an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<f64, A::Error> {
        Err(refuse(self.slot, (self.field)(), "expected a number, got an object"))
    }
}

/// Class indices: non-negative integers.
struct LabelsSeed<'a> {
    slot: FieldSlot<'a>,
}

impl LabelsSeed<'_> {
    fn wrong_type<E: serde::de::Error>(&self) -> E {
        refuse(self.slot, "labels", "expected an array of integers")
    }
}

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_> {
    type Value = Vec<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_> {
    type Value = Vec<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of integers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let slot = self.slot;
        let mut labels = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            // Every item is a scalar or refused here, so the Value stays a word.
            let label = item.as_u64().and_then(|l| usize::try_from(l).ok()).ok_or_else(|| {
                let shown = match &item {
                    Value::Array(_) => "an array".to_string(),
                    Value::Object(_) => "an object".to_string(),
                    Value::String(s) => Value::from(shortened(s)).to_string(),
                    other => other.to_string(),
                };
                refuse::<A::Error>(slot, format!("labels[{}]", labels.len()), format!("expected a non-negative integer, got {shown}"))
            })?;
            labels.push(label);
        }
        Ok(labels)
    }

    not_an_array!('de);
}

/// At most 64 characters of a string for a message.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(64) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

fn to_tensor<B: AutodiffBackend>(rows: &[Vec<f64>], device: &B::Device) -> Tensor<B, 2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

fn rows_of(flat: Vec<f64>, rows: usize) -> Vec<Vec<f64>> {
    let cols = flat.len() / rows;
    flat.chunks(cols).map(<[f64]>::to_vec).collect()
}
