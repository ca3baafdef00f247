//! What a pickle stream turns into: Python's plain values, the references
//! `torch.save` pickles tensors as, and opaque objects for the rest.

use std::rc::Rc;

/// A storage a tensor points into: `archive/data/<key>`, of `element_count` elements.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// The storage class's name, `FloatStorage`, `HalfStorage`, … (it gives the dtype).
    pub storage_type: String,
    pub key: String,
    pub element_count: u64,
}

/// A tensor view as `_rebuild_tensor_v2(storage, offset, size, stride, …)` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    /// In elements, not bytes.
    pub storage_offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Shared because memoised values are copies: Python 3 pickles `bytes`
    /// at protocol 2 as a (memoised) latin-1 `str`, one per encoded image of
    /// a verification set.
    Str(Rc<String>),
    /// Shared for the same reason: every encoded image is memoised.
    Bytes(Rc<Vec<u8>>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Insertion order kept (OrderedDict and dict alike).
    Dict(Vec<(Value, Value)>),
    /// A `module.name` reference from GLOBAL / STACK_GLOBAL.
    Global { module: String, name: String },
    Storage(StorageRef),
    Tensor(TensorRef),
    /// The result of calling a callable this reader does not model (only
    /// with [`Unmodelled::Opaque`](crate::Unmodelled::Opaque)).
    Object { callable: String },
}

impl Value {
    /// The value of a string key in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| matches!(k, Value::Str(s) if s.as_str() == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The Python type's name, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global { .. } => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
            Value::Object { .. } => "object",
        }
    }
}
