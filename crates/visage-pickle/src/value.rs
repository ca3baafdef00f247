//! What a pickle stream turns into: Python's plain values, the references
//! `torch.save` pickles tensors as, and opaque objects for the rest.
//!
//! Containers are shared, not copied: a memo GET or a DUP in the stream
//! pushes the same container again, as Python's unpickler does. A value is
//! therefore a directed acyclic graph, not a tree, and a hostile stream of a
//! few dozen bytes (DUP + TUPLE2, repeated) describes one whose tree
//! expansion has 2⁴⁰ nodes. Code that walks a [`Value`] must not expand it:
//! walk only the levels it expects, or keep a visited set. Dropping never
//! recurses (see [`Items`]), and nesting is at most [`MAX_DEPTH`](crate::MAX_DEPTH).

use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

/// A storage a tensor points into: `archive/data/<key>`, of `element_count` elements.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// The storage class's name, `FloatStorage`, `HalfStorage`, … (it gives the dtype).
    pub storage_type: String,
    /// The storage's name in the archive: its bytes are the member `data/<key>`
    /// under the archive's top folder.
    pub key: String,
    /// As the pickle declares it: nothing checks it against the archive here.
    pub element_count: u64,
}

/// A tensor view as `_rebuild_tensor_v2(storage, offset, size, stride, …)` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The storage the tensor views.
    pub storage: Rc<StorageRef>,
    /// In elements, not bytes.
    pub storage_offset: u64,
    /// The shape, one entry per dimension (at most [`MAX_TENSOR_RANK`](crate::MAX_TENSOR_RANK); empty for a scalar).
    pub size: Vec<u64>,
    /// Strides in elements, one per dimension (same length as `size`); nothing checks
    /// that the view stays inside the storage.
    pub stride: Vec<u64>,
}

/// One unpickled Python value. Containers and strings are reference-counted and
/// shared where the stream shares them (see the module docs: walk, do not expand).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python's `None`.
    None,
    /// A bool (also protocol 0's `I01` / `I00`, as Python 2 wrote `True` / `False`).
    Bool(bool),
    /// An int that fits 64 bits; a larger one makes the stream an error.
    Int(i64),
    /// A float (BINFLOAT: an IEEE 754 double).
    Float(f64),
    /// Shared: Python 3 pickles `bytes` at protocol 2 as a (memoised)
    /// latin-1 `str`, one per encoded image of a verification set.
    Str(Rc<String>),
    /// Shared for the same reason: every encoded image is memoised.
    Bytes(Rc<Vec<u8>>),
    /// A tuple's items, in order.
    Tuple(Items),
    /// A list's items, in order (including items APPENDed after the list was built).
    List(Items),
    /// Insertion order kept (OrderedDict and dict alike).
    Dict(Pairs),
    /// A `module.name` reference from GLOBAL / STACK_GLOBAL.
    Global {
        /// The module path, e.g. `torch._utils`.
        module: Rc<str>,
        /// The attribute in that module, e.g. `_rebuild_tensor_v2`.
        name: Rc<str>,
    },
    /// Shared, as every variant that holds more than a word is: a memo GET
    /// or DUP then costs the same whatever the value, and values stay small.
    /// A storage named by a `torch.save` persistent id.
    Storage(Rc<StorageRef>),
    /// A tensor rebuilt by `_rebuild_tensor(_v2)`; an `nn.Parameter` becomes its data tensor.
    Tensor(Rc<TensorRef>),
    /// The result of calling a callable this reader does not model (only
    /// with [`Unmodelled::Opaque`](crate::Unmodelled::Opaque)).
    Object {
        /// `module.name` of the callable (`builtins.set` / `builtins.frozenset` for sets,
        /// `<kind>` when the thing called was not a global).
        callable: Rc<str>,
    },
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

/// The items of a tuple or a list, shared between every place the stream
/// puts the container (memo GET, DUP). Read them as a slice; iterate an
/// owned one for the values (cloned where still shared).
///
/// Dropping is iterative: a derived drop of a chain nested a thousand deep
/// would recurse a thousand frames, which a small thread stack does not hold.
#[derive(Clone, Default)]
pub struct Items(Rc<Vec<Value>>);

/// The `(key, value)` pairs of a dict, shared and dropped as [`Items`] are.
#[derive(Clone, Default)]
pub struct Pairs(Rc<Vec<(Value, Value)>>);

impl From<Vec<Value>> for Items {
    fn from(values: Vec<Value>) -> Self {
        Items(Rc::new(values))
    }
}

impl From<Vec<(Value, Value)>> for Pairs {
    fn from(pairs: Vec<(Value, Value)>) -> Self {
        Pairs(Rc::new(pairs))
    }
}

impl Deref for Items {
    type Target = [Value];

    fn deref(&self) -> &[Value] {
        &self.0
    }
}

impl Deref for Pairs {
    type Target = [(Value, Value)];

    fn deref(&self) -> &[(Value, Value)] {
        &self.0
    }
}

impl PartialEq for Items {
    /// Shared items are equal without a walk (a shared DAG compared with itself stays cheap).
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0) || self.0[..] == other.0[..]
    }
}

impl PartialEq for Pairs {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0) || self.0[..] == other.0[..]
    }
}

/// The most container items one `{:?}` of a value prints: the tree a
/// shared value expands to can be exponential in the stream's length, so a
/// debug print (a log line, a test failure) stops after this many items.
pub const DEBUG_ITEMS: usize = 10_000;

thread_local! {
    /// The items the outermost `{:?}` under way on this thread may still
    /// print, and how deep in nested containers it is.
    static DEBUG_BUDGET: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Prints `entries` as a list while the budget of the outermost print lasts.
fn debug_bounded<T: fmt::Debug>(f: &mut fmt::Formatter<'_>, entries: &[T]) -> fmt::Result {
    let (depth, budget) = DEBUG_BUDGET.get();
    let budget = if depth == 0 { DEBUG_ITEMS } else { budget };
    DEBUG_BUDGET.set((depth + 1, budget));
    let mut list = f.debug_list();
    for entry in entries {
        let (depth, budget) = DEBUG_BUDGET.get();
        if budget == 0 {
            list.entries(std::iter::once(format_args!("…")));
            break;
        }
        DEBUG_BUDGET.set((depth, budget - 1));
        list.entry(entry);
    }
    let result = list.finish();
    let (depth, budget) = DEBUG_BUDGET.get();
    DEBUG_BUDGET.set((depth - 1, budget));
    result
}

impl fmt::Debug for Items {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_bounded(f, &self.0)
    }
}

impl fmt::Debug for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_bounded(f, &self.0)
    }
}

impl IntoIterator for Items {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;

    fn into_iter(mut self) -> Self::IntoIter {
        match Rc::get_mut(&mut self.0) {
            Some(values) => std::mem::take(values).into_iter(),
            None => Vec::clone(&self.0).into_iter(),
        }
    }
}

impl IntoIterator for Pairs {
    type Item = (Value, Value);
    type IntoIter = std::vec::IntoIter<(Value, Value)>;

    fn into_iter(mut self) -> Self::IntoIter {
        match Rc::get_mut(&mut self.0) {
            Some(pairs) => std::mem::take(pairs).into_iter(),
            None => Vec::clone(&self.0).into_iter(),
        }
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Pairs {
    type Item = &'a (Value, Value);
    type IntoIter = std::slice::Iter<'a, (Value, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        if let Some(values) = Rc::get_mut(&mut self.0) {
            if values.iter().any(is_container) {
                drop_flat(std::mem::take(values));
            }
        }
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        if let Some(pairs) = Rc::get_mut(&mut self.0) {
            if pairs.iter().any(|(key, value)| is_container(key) || is_container(value)) {
                drop_flat(std::mem::take(pairs).into_iter().flat_map(|(key, value)| [key, value]).collect());
            }
        }
    }
}

fn is_container(value: &Value) -> bool {
    matches!(value, Value::Tuple(_) | Value::List(_) | Value::Dict(_))
}

/// Drops `pending` and everything only it holds, one container at a time:
/// the children of a container no one else shares move onto the work list
/// before the (then empty) container is dropped.
fn drop_flat(mut pending: Vec<Value>) {
    while let Some(mut value) = pending.pop() {
        match &mut value {
            Value::Tuple(items) | Value::List(items) => {
                if let Some(children) = Rc::get_mut(&mut items.0) {
                    pending.append(children);
                }
            }
            Value::Dict(pairs) => {
                if let Some(children) = Rc::get_mut(&mut pairs.0) {
                    for (key, value) in children.drain(..) {
                        pending.push(key);
                        pending.push(value);
                    }
                }
            }
            _ => {}
        }
    }
}
