//! Plain softmax: linear logits `x·w_j`, no normalisation, no scale, no margin.
//! The baseline the margin heads are measured against.

use serde::{Deserialize, Serialize};

/// Softmax takes no parameters: `{"kind": "softmax"}`, any other field is refused.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftmaxConfig {}
