//! The pickle virtual machine: one opcode at a time onto a stack of cells
//! and marks.
//!
//! Containers live in an arena while the stream can still fill them, and the
//! stack, the memo and other containers hold their index: a memo GET or a
//! DUP shares the container instead of copying it, and an APPEND after a GET
//! reaches the same list, as in Python. STOP turns the arena into shared
//! [`Value`]s bottom-up, without recursion, checking the nesting depth and
//! refusing a container that contains itself.
//!
//! Work and memory are linear in the stream: each opcode pushes at most one
//! cell (at most [`MAX_VALUES`] in all), the few callables modelled here read
//! a bounded number of their arguments, and what is copied out of shared
//! strings is charged against a budget of a few times the stream's length.

use std::collections::HashMap;
use std::rc::Rc;

use crate::{Options, PickleError, Python2Str, StorageRef, TensorRef, Unmodelled, Value, MAX_DEPTH, MAX_MEMO, MAX_TENSOR_RANK, MAX_VALUES};

/// A value on the stack, in the memo or in a container: finished, or a
/// container of the arena (`Value` cells never hold containers).
enum Cell {
    Value(Value),
    Node(usize),
}

thread_local! {
    /// Cells cloned and dict keys compared by this thread's parses.
    static ELEMENT_STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_step() {
    ELEMENT_STEPS.set(ELEMENT_STEPS.get().wrapping_add(1));
}

/// How many cells (stack, memo and container entries) this thread's parses
/// have cloned, plus how many dict keys they have compared: the element-level
/// work a memo GET, DUP, call or SETITEM does, so tests can bound it by the
/// stream's length instead of timing it. Sharing clones one cell per GET or
/// DUP and a dict finds a key in about one comparison; copying a memoised
/// container clones every cell of it, and a dict that scanned its keys would
/// compare each new key with all before it.
pub fn element_steps_on_this_thread() -> u64 {
    ELEMENT_STEPS.get()
}

impl Clone for Cell {
    fn clone(&self) -> Self {
        count_step();
        match self {
            Cell::Value(value) => Cell::Value(value.clone()),
            Cell::Node(index) => Cell::Node(*index),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Tuple,
    List,
    Dict,
}

impl Shape {
    fn kind(self) -> &'static str {
        match self {
            Shape::Tuple => "tuple",
            Shape::List => "list",
            Shape::Dict => "dict",
        }
    }
}

/// A container still open to the stream.
struct Node {
    shape: Shape,
    /// A tuple's or list's items; a dict's keys and values, alternating.
    cells: Vec<Cell>,
    /// A dict's scalar keys → the number of their pair, so that setting a key
    /// again replaces its value in constant time, as Python's dict does.
    keys: HashMap<Key, usize>,
    /// 1 + the depth of the deepest child when the container was last
    /// filled: a lower bound that refuses deep streams early; the conversion
    /// at STOP computes the true depth.
    depth: usize,
}

/// A dict key compared as Python compares it, for the key types plain data
/// and state dicts use (`True == 1`, `2.0 == 2`); other keys are not merged.
#[derive(Eq)]
enum Key {
    None,
    Int(i64),
    Str(Rc<String>),
    Bytes(Rc<Vec<u8>>),
}

impl PartialEq for Key {
    /// As derived, counted by [`element_steps_on_this_thread`].
    fn eq(&self, other: &Self) -> bool {
        count_step();
        match (self, other) {
            (Key::None, Key::None) => true,
            (Key::Int(a), Key::Int(b)) => a == b,
            (Key::Str(a), Key::Str(b)) => a == b,
            (Key::Bytes(a), Key::Bytes(b)) => a == b,
            _ => false,
        }
    }
}

impl std::hash::Hash for Key {
    /// As derived (written out because `PartialEq` is).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Key::None => {}
            Key::Int(n) => n.hash(state),
            Key::Str(s) => s.hash(state),
            Key::Bytes(b) => b.hash(state),
        }
    }
}

impl Key {
    fn of(cell: &Cell) -> Option<Key> {
        let Cell::Value(value) = cell else { return None };
        Some(match value {
            Value::None => Key::None,
            Value::Bool(b) => Key::Int(*b as i64),
            Value::Int(n) => Key::Int(*n),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Key::Int(*f as i64),
            Value::Str(s) => Key::Str(s.clone()),
            Value::Bytes(b) => Key::Bytes(b.clone()),
            _ => return None,
        })
    }
}

/// Bytes a stream may have copied out of its shared strings (latin-1
/// decoding, global and storage names), per byte of the stream: an honest
/// stream copies each string about once; one that fetches a long memoised
/// string a million times to copy it does not.
const COPIES_PER_STREAM_BYTE: usize = 8;
/// The copy budget every stream has, however short.
const COPY_ALLOWANCE: usize = 1 << 20;

pub(crate) struct Machine<'a> {
    bytes: &'a [u8],
    options: Options,
    position: usize,
    /// Offset of the opcode being executed, for errors.
    opcode_at: usize,
    stack: Vec<Cell>,
    /// The stack's length at each MARK (Python 3's metastack): the values
    /// below the topmost mark are out of reach until it is popped.
    marks: Vec<usize>,
    memo: HashMap<u32, Cell>,
    nodes: Vec<Node>,
    /// Cells pushed and memoised so far, against [`MAX_VALUES`].
    pushed: usize,
    /// Bytes copied out of shared strings so far, and the budget.
    copied: usize,
    copy_budget: usize,
}

impl<'a> Machine<'a> {
    pub(crate) fn new(bytes: &'a [u8], options: Options) -> Self {
        Machine {
            bytes,
            options,
            position: 0,
            opcode_at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            nodes: Vec::new(),
            pushed: 0,
            copied: 0,
            copy_budget: bytes.len().saturating_mul(COPIES_PER_STREAM_BYTE).saturating_add(COPY_ALLOWANCE),
        }
    }

    fn error(&self, problem: impl Into<String>) -> PickleError {
        PickleError { offset: self.opcode_at, problem: problem.into() }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], PickleError> {
        let end = self.position.checked_add(count).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(
                self.error(format!("truncated: stream ends inside an operand ({count} bytes wanted, {} left)", self.bytes.len() - self.position))
            );
        };
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// A length operand: `take` then checks it against the bytes left.
    fn length(value: u64) -> usize {
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    fn text(&mut self, length: usize) -> Result<String, PickleError> {
        let raw = self.take(length)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.error("string is not UTF-8"))
    }

    /// A newline-terminated operand (GLOBAL's module and name, INT's digits).
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.position..];
        let Some(length) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.error("truncated: stream ends inside a newline-terminated operand"));
        };
        let text = self.text(length)?;
        self.position += 1;
        Ok(text)
    }

    /// Counts `bytes` copied out of a shared string against the budget.
    fn charge(&mut self, bytes: usize) -> Result<(), PickleError> {
        self.copied = self.copied.saturating_add(bytes);
        if self.copied > self.copy_budget {
            return Err(self.error(format!(
                "the stream copies more than {} bytes out of its strings ({COPIES_PER_STREAM_BYTE} per stream byte): \
                 memoised strings fetched again and again, not plain data",
                self.copy_budget
            )));
        }
        Ok(())
    }

    fn push(&mut self, cell: Cell) -> Result<(), PickleError> {
        self.count_value()?;
        self.stack.push(cell);
        Ok(())
    }

    /// Counts one more value held (pushed or memoised) against [`MAX_VALUES`].
    fn count_value(&mut self) -> Result<(), PickleError> {
        self.pushed += 1;
        if self.pushed > MAX_VALUES {
            return Err(self.error(format!("more than {MAX_VALUES} values: not a file this reader takes")));
        }
        Ok(())
    }

    fn push_value(&mut self, value: Value) -> Result<(), PickleError> {
        self.push(Cell::Value(value))
    }

    /// The stack's length at the topmost mark (0 without one).
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Cell, PickleError> {
        if self.stack.len() > self.floor() {
            if let Some(cell) = self.stack.pop() {
                return Ok(cell);
            }
        }
        Err(self.error(if self.marks.is_empty() { "stack underflow" } else { "expected a value on the stack, found a MARK" }))
    }

    fn top(&self) -> Result<&Cell, PickleError> {
        match self.stack.last() {
            Some(cell) if self.stack.len() > self.floor() => Ok(cell),
            _ => Err(self.error("expected a value on the stack")),
        }
    }

    /// The values above the topmost MARK, which is removed.
    fn pop_to_mark(&mut self) -> Result<Vec<Cell>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.error("no MARK on the stack"));
        };
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn kind(&self, cell: &Cell) -> &'static str {
        match cell {
            Cell::Value(value) => value.kind(),
            Cell::Node(index) => self.nodes[*index].shape.kind(),
        }
    }

    fn depth_of(&self, cell: &Cell) -> usize {
        match cell {
            Cell::Value(_) => 0,
            Cell::Node(index) => self.nodes[*index].depth,
        }
    }

    fn too_deep(&self) -> PickleError {
        self.error(format!("containers nested more than {MAX_DEPTH} deep (Python's pickler itself stops at its recursion limit)"))
    }

    /// A new container holding `cells` (a dict's keys and values alternate).
    fn new_node(&mut self, shape: Shape, cells: Vec<Cell>) -> Result<Cell, PickleError> {
        let depth = 1 + cells.iter().map(|cell| self.depth_of(cell)).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        self.nodes.push(Node { shape, cells: Vec::new(), keys: HashMap::new(), depth });
        let index = self.nodes.len() - 1;
        match shape {
            Shape::Dict => self.insert_pairs(index, cells)?,
            _ => self.nodes[index].cells = cells,
        }
        Ok(Cell::Node(index))
    }

    /// Raises node `index`'s depth for `children` about to be put in it.
    fn deepen(&mut self, index: usize, children: &[Cell]) -> Result<(), PickleError> {
        let deepest = children.iter().map(|cell| self.depth_of(cell)).max().unwrap_or(0);
        let depth = self.nodes[index].depth.max(deepest + 1);
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        self.nodes[index].depth = depth;
        Ok(())
    }

    fn insert_pairs(&mut self, index: usize, cells: Vec<Cell>) -> Result<(), PickleError> {
        if !cells.len().is_multiple_of(2) {
            return Err(self.error("SETITEMS with an odd number of values"));
        }
        self.deepen(index, &cells)?;
        let node = &mut self.nodes[index];
        let mut cells = cells.into_iter();
        while let (Some(key), Some(value)) = (cells.next(), cells.next()) {
            let pair = node.cells.len() / 2;
            match Key::of(&key) {
                Some(scalar) => match node.keys.get(&scalar) {
                    Some(&existing) => node.cells[2 * existing + 1] = value,
                    None => {
                        node.keys.insert(scalar, pair);
                        node.cells.push(key);
                        node.cells.push(value);
                    }
                },
                None => {
                    node.cells.push(key);
                    node.cells.push(value);
                }
            }
        }
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), PickleError> {
        let cell = self.memo.get(&index).cloned().ok_or_else(|| self.error(format!("memo entry {index} was never stored")))?;
        self.push(cell)
    }

    fn memo_put(&mut self, index: u32) -> Result<(), PickleError> {
        self.count_value()?;
        let cell = self.top()?.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err(self.error(format!("more than {MAX_MEMO} memo entries: not a file this reader takes")));
        }
        self.memo.insert(index, cell);
        Ok(())
    }

    fn set_items(&mut self, cells: Vec<Cell>) -> Result<(), PickleError> {
        let kind = match self.top()? {
            Cell::Node(index) if self.nodes[*index].shape == Shape::Dict => return self.insert_pairs(*index, cells),
            // Items set on an opaque object are dropped: nothing here reads them.
            Cell::Value(Value::Object { .. }) => return Ok(()),
            other => self.kind(other),
        };
        Err(self.error(format!("SETITEM(S) onto a {kind}, expected a dict")))
    }

    fn append(&mut self, cells: Vec<Cell>) -> Result<(), PickleError> {
        let kind = match self.top()? {
            &Cell::Node(index) if self.nodes[index].shape == Shape::List => {
                self.deepen(index, &cells)?;
                self.nodes[index].cells.extend(cells);
                return Ok(());
            }
            // A list subclass or an object with `extend`: its items are not needed.
            Cell::Value(Value::Object { .. }) => return Ok(()),
            other => self.kind(other),
        };
        Err(self.error(format!("APPEND(S) onto a {kind}, expected a list")))
    }

    /// A value this reader does not model, made by `callable`.
    fn unmodelled(&mut self, callable: String) -> Result<Cell, PickleError> {
        match self.options.unmodelled {
            Unmodelled::Opaque => {
                self.charge(callable.len())?;
                Ok(Cell::Value(Value::Object { callable: callable.into() }))
            }
            Unmodelled::Refuse => {
                // a name from the stream can be megabytes long: the message shows its start
                let shown: String = callable.chars().take(200).collect();
                let more = if shown.len() < callable.len() { "…" } else { "" };
                Err(self.error(format!("refusing to call {shown}{more}: only plain data is read here, nothing is executed")))
            }
        }
    }

    /// The cells of the tuple `args` (of any length: only what a modelled
    /// callable needs is read of it, so a huge memoised tuple passed again
    /// and again costs nothing).
    fn tuple_cells(&self, args: &Cell, what: &str) -> Result<&[Cell], PickleError> {
        match args {
            Cell::Node(index) if self.nodes[*index].shape == Shape::Tuple => Ok(&self.nodes[*index].cells),
            other => Err(self.error(format!("{what} called with {} arguments, not a tuple", self.kind(other)))),
        }
    }

    /// `callable(*args)` for the few callables plain data and a state dict are built from.
    fn call(&mut self, callable: Cell, args: Cell) -> Result<Cell, PickleError> {
        let Cell::Value(Value::Global { module, name }) = &callable else {
            let kind = self.kind(&callable);
            return self.unmodelled(format!("<{kind}>"));
        };
        let (module, name) = (module.clone(), name.clone());
        let qualified = || format!("{module}.{name}");
        let args = self.tuple_cells(&args, &qualified())?;
        match (&*module, &*name) {
            ("collections", "OrderedDict") | ("builtins", "dict") if args.is_empty() => self.new_node(Shape::Dict, Vec::new()),
            // How Python 3 pickles `bytes` at protocol 2.
            ("_codecs", "encode") => match args {
                [Cell::Value(Value::Str(text)), Cell::Value(Value::Str(encoding))] if matches!(encoding.as_str(), "latin1" | "latin-1") => {
                    let text = text.clone();
                    self.latin1(&text)
                }
                _ => self.unmodelled(qualified()),
            },
            ("builtins" | "__builtin__", "bytes") if args.is_empty() => Ok(Cell::Value(Value::Bytes(Rc::default()))),
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                let value = self.rebuild_tensor(args)?;
                Ok(Cell::Value(value))
            }
            // nn.Parameter: (data, requires_grad, backward_hooks)
            ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
                args.first().cloned().ok_or_else(|| self.error("_rebuild_parameter without arguments"))
            }
            _ => self.unmodelled(qualified()),
        }
    }

    /// `_codecs.encode(text, "latin1")`: one byte per character.
    fn latin1(&mut self, text: &str) -> Result<Cell, PickleError> {
        self.charge(text.len())?;
        let bytes = text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| self.error("latin1-encoded bytes hold a character above U+00FF")))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Cell::Value(Value::Bytes(Rc::new(bytes))))
    }

    fn rebuild_tensor(&self, args: &[Cell]) -> Result<Value, PickleError> {
        let bad = |what: &str| self.error(format!("_rebuild_tensor_v2: {what}"));
        let storage = match args.first() {
            Some(Cell::Value(Value::Storage(storage))) => storage.clone(),
            _ => return Err(bad("first argument is not a storage")),
        };
        let storage_offset = match args.get(1) {
            Some(Cell::Value(Value::Int(offset))) if *offset >= 0 => *offset as u64,
            _ => return Err(bad("storage offset is not a non-negative int")),
        };
        let dims = |cell: Option<&Cell>, what: &str| -> Result<Vec<u64>, PickleError> {
            let items = match cell {
                Some(Cell::Node(index)) if self.nodes[*index].shape == Shape::Tuple => &self.nodes[*index].cells,
                _ => return Err(bad(&format!("{what} is not a tuple"))),
            };
            if items.len() > MAX_TENSOR_RANK {
                return Err(bad(&format!("{what} has {} dimensions, more than {MAX_TENSOR_RANK}", items.len())));
            }
            items
                .iter()
                .map(|item| match item {
                    Cell::Value(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
                    _ => Err(bad(&format!("{what} holds something other than a non-negative int"))),
                })
                .collect()
        };
        let size = dims(args.get(2), "size")?;
        let stride = dims(args.get(3), "stride")?;
        if size.len() != stride.len() {
            return Err(bad("size and stride differ in rank"));
        }
        Ok(Value::Tensor(Rc::new(TensorRef { storage, storage_offset, size, stride })))
    }

    /// BINPERSID: torch's id is `('storage', StorageClass, key, location, numel)`.
    fn persistent_load(&mut self, id: Cell) -> Result<Cell, PickleError> {
        let fields = self.tuple_cells(&id, "persistent id").map_err(|_| self.error(format!("persistent id is a {}, not a tuple", self.kind(&id))))?;
        let storage = match fields {
            [Cell::Value(Value::Str(tag)), Cell::Value(Value::Global { name, .. }), Cell::Value(Value::Str(key)), _location, Cell::Value(Value::Int(count))]
                if tag.as_str() == "storage" && *count >= 0 =>
            {
                StorageRef { storage_type: name.to_string(), key: key.to_string(), element_count: *count as u64 }
            }
            _ => return Err(self.error("persistent id is not torch's ('storage', type, key, location, numel)")),
        };
        self.charge(storage.storage_type.len() + storage.key.len())?;
        Ok(Cell::Value(Value::Storage(Rc::new(storage))))
    }

    /// The value of `root` with every container of the arena it reaches
    /// turned into a shared [`Value`], children first, by an explicit walk.
    fn finish(&mut self, root: Cell) -> Result<Value, PickleError> {
        let root = match root {
            Cell::Value(value) => return Ok(value),
            Cell::Node(index) => index,
        };
        // per node: its value and depth once built
        let mut built: Vec<Option<(Value, usize)>> = (0..self.nodes.len()).map(|_| None).collect();
        let mut entered = vec![false; self.nodes.len()];
        // the walk's path from the root: (node, its next child to look at)
        let mut path = vec![(root, 0usize)];
        entered[root] = true;
        while let Some(&(node, mut next)) = path.last() {
            let cells = &self.nodes[node].cells;
            let mut descend = None;
            while next < cells.len() {
                if let Cell::Node(child) = cells[next] {
                    if built[child].is_none() {
                        if entered[child] {
                            return Err(self.error("a container holds itself: not plain data"));
                        }
                        descend = Some(child);
                        break;
                    }
                }
                next += 1;
            }
            if let Some(last) = path.last_mut() {
                last.1 = next;
            }
            if let Some(child) = descend {
                if path.len() >= MAX_DEPTH {
                    return Err(self.too_deep());
                }
                entered[child] = true;
                path.push((child, 0));
                continue;
            }
            path.pop();
            let cells = std::mem::take(&mut self.nodes[node].cells);
            let mut depth = 1;
            let mut values = Vec::with_capacity(cells.len());
            for cell in cells {
                values.push(match cell {
                    Cell::Value(value) => value,
                    Cell::Node(child) => match &built[child] {
                        Some((value, child_depth)) => {
                            depth = depth.max(child_depth + 1);
                            value.clone()
                        }
                        None => return Err(self.error("a container holds itself: not plain data")),
                    },
                });
            }
            if depth > MAX_DEPTH {
                return Err(self.too_deep());
            }
            let value = match self.nodes[node].shape {
                Shape::Tuple => Value::Tuple(values.into()),
                Shape::List => Value::List(values.into()),
                Shape::Dict => {
                    let mut pairs = Vec::with_capacity(values.len() / 2);
                    let mut values = values.into_iter();
                    while let (Some(key), Some(value)) = (values.next(), values.next()) {
                        pairs.push((key, value));
                    }
                    Value::Dict(pairs.into())
                }
            };
            built[node] = Some((value, depth));
        }
        match built[root].take() {
            Some((value, _)) => Ok(value),
            None => Err(self.error("the stream's value could not be built")),
        }
    }

    pub(crate) fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.opcode_at = self.position;
            let opcode = self.u8().map_err(|_| self.error("truncated: stream ends before STOP"))?;
            match opcode {
                0x80 => {
                    // PROTO
                    let version = self.u8()?;
                    if version > 5 {
                        return Err(self.error(format!("pickle protocol {version} is newer than 5")));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only; nothing is allocated for it
                    self.u64()?;
                }
                b'.' => {
                    // STOP
                    let root = self.pop()?;
                    return self.finish(root);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    // POP: the top value, or the topmost MARK when it is on top
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else if self.marks.pop().is_none() {
                        return Err(self.error("stack underflow"));
                    }
                }
                b'1' => {
                    // POP_MARK
                    self.pop_to_mark()?;
                }
                b'2' => {
                    // DUP: the same value again (a container is shared, not copied)
                    let cell = self.top()?.clone();
                    self.push(cell)?;
                }
                b'N' => self.push_value(Value::None)?,
                0x88 => self.push_value(Value::Bool(true))?,
                0x89 => self.push_value(Value::Bool(false))?,
                b'I' => {
                    // INT (protocol 0): decimal digits; Python 2 wrote True and False as 01 and 00
                    let digits = self.line()?;
                    let value = match digits.as_str() {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => Value::Int(digits.parse().map_err(|_| {
                            let shown: String = digits.chars().take(40).collect();
                            self.error(format!("INT operand `{shown}` is not a 64-bit integer"))
                        })?),
                    };
                    self.push_value(value)?;
                }
                b'K' => {
                    let n = self.u8()?;
                    self.push_value(Value::Int(n as i64))?;
                }
                b'M' => {
                    let n = self.u16()?;
                    self.push_value(Value::Int(n as i64))?;
                }
                b'J' => {
                    let n = self.u32()? as i32;
                    self.push_value(Value::Int(n as i64))?;
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: little-endian two's complement of n bytes
                    let length = if opcode == 0x8a { self.u8()? as usize } else { self.u32()? as usize };
                    let raw = self.take(length)?;
                    if length > 8 {
                        return Err(self.error(format!("integer of {length} bytes does not fit 64 bits")));
                    }
                    let mut value: i64 = 0;
                    for (index, byte) in raw.iter().enumerate() {
                        value |= (*byte as i64) << (8 * index);
                    }
                    if length > 0 && length < 8 && raw[length - 1] & 0x80 != 0 {
                        value -= 1i64 << (8 * length);
                    }
                    self.push_value(Value::Int(value))?;
                }
                b'G' => {
                    // BINFLOAT: big-endian f64
                    let b = self.take(8)?;
                    self.push_value(Value::Float(f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])))?;
                }
                b'X' | 0x8c | 0x8d => {
                    // BINUNICODE / SHORT_BINUNICODE / BINUNICODE8
                    let length = match opcode {
                        b'X' => self.u32()? as usize,
                        0x8c => self.u8()? as usize,
                        _ => Self::length(self.u64()?),
                    };
                    let text = self.text(length)?;
                    self.push_value(Value::Str(Rc::new(text)))?;
                }
                b'T' | b'U' => {
                    // BINSTRING / SHORT_BINSTRING: a Python 2 str, bytes or text as the options say
                    let length = if opcode == b'T' { self.u32()? as usize } else { self.u8()? as usize };
                    let raw = self.take(length)?.to_vec();
                    let value = match self.options.python2_str {
                        Python2Str::Bytes => Value::Bytes(Rc::new(raw)),
                        Python2Str::TextIfUtf8 => match String::from_utf8(raw) {
                            Ok(text) => Value::Str(Rc::new(text)),
                            Err(error) => Value::Bytes(Rc::new(error.into_bytes())),
                        },
                    };
                    self.push_value(value)?;
                }
                b'B' | b'C' | 0x8e => {
                    // BINBYTES / SHORT_BINBYTES / BINBYTES8
                    let length = match opcode {
                        b'B' => self.u32()? as usize,
                        b'C' => self.u8()? as usize,
                        _ => Self::length(self.u64()?),
                    };
                    let raw = self.take(length)?.to_vec();
                    self.push_value(Value::Bytes(Rc::new(raw)))?;
                }
                b')' => {
                    let tuple = self.new_node(Shape::Tuple, Vec::new())?;
                    self.push(tuple)?;
                }
                b't' => {
                    let items = self.pop_to_mark()?;
                    let tuple = self.new_node(Shape::Tuple, items)?;
                    self.push(tuple)?;
                }
                0x85..=0x87 => {
                    // TUPLE1 / TUPLE2 / TUPLE3
                    let count = (opcode - 0x84) as usize;
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let tuple = self.new_node(Shape::Tuple, items)?;
                    self.push(tuple)?;
                }
                b']' => {
                    let list = self.new_node(Shape::List, Vec::new())?;
                    self.push(list)?;
                }
                b'l' => {
                    let items = self.pop_to_mark()?;
                    let list = self.new_node(Shape::List, items)?;
                    self.push(list)?;
                }
                b'a' => {
                    let value = self.pop()?;
                    self.append(vec![value])?;
                }
                b'e' => {
                    let values = self.pop_to_mark()?;
                    self.append(values)?;
                }
                b'}' => {
                    let dict = self.new_node(Shape::Dict, Vec::new())?;
                    self.push(dict)?;
                }
                b'd' => {
                    let pairs = self.pop_to_mark()?;
                    let dict = self.new_node(Shape::Dict, pairs)?;
                    self.push(dict)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                b'u' => {
                    let pairs = self.pop_to_mark()?;
                    self.set_items(pairs)?;
                }
                0x8f => {
                    // EMPTY_SET
                    let set = self.unmodelled("builtins.set".into())?;
                    self.push(set)?;
                }
                0x90 => {
                    // ADDITEMS: set contents are not needed
                    self.pop_to_mark()?;
                    self.top()?;
                }
                0x91 => {
                    // FROZENSET
                    self.pop_to_mark()?;
                    let set = self.unmodelled("builtins.frozenset".into())?;
                    self.push(set)?;
                }
                b'c' => {
                    // GLOBAL
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push_value(Value::Global { module: module.into(), name: name.into() })?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Cell::Value(Value::Str(module)), Cell::Value(Value::Str(name))) => {
                            self.charge(module.len() + name.len())?;
                            self.push_value(Value::Global { module: module.as_str().into(), name: name.as_str().into() })?;
                        }
                        _ => return Err(self.error("STACK_GLOBAL operands are not strings")),
                    }
                }
                b'R' => {
                    // REDUCE
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.call(callable, args)?;
                    self.push(value)?;
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let value = self.call(class, args)?;
                    self.push(value)?;
                }
                0x92 => {
                    // NEWOBJ_EX: cls, args, kwargs
                    self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let value = self.call(class, args)?;
                    self.push(value)?;
                }
                b'b' => {
                    // BUILD: object state (OrderedDict `_metadata`, object attributes): not needed
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    // BINPERSID
                    let id = self.pop()?;
                    let value = self.persistent_load(id)?;
                    self.push(value)?;
                }
                b'q' => {
                    let index = self.u8()? as u32;
                    self.memo_put(index)?;
                }
                b'r' => {
                    let index = self.u32()?;
                    self.memo_put(index)?;
                }
                0x94 => {
                    // MEMOIZE
                    let index = self.memo.len() as u32;
                    self.memo_put(index)?;
                }
                b'h' => {
                    let index = self.u8()? as u32;
                    self.memo_get(index)?;
                }
                b'j' => {
                    let index = self.u32()?;
                    self.memo_get(index)?;
                }
                other => {
                    return Err(self.error(format!("unsupported pickle opcode 0x{other:02x} ('{}')", (other as char).escape_default())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use crate::{parse, Options, Value};

    // ---- torch.save checkpoints (Options::TORCH) ----

    /// `pickle.dumps(OrderedDict(a=1, b=[2.5, True, None]), protocol=2)` from CPython 3.11.
    #[test]
    fn protocol_2_ordered_dict_with_mixed_values() {
        let bytes = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03]q\x04(G@\x04\x00\x00\x00\x00\x00\x00\x88Neu.";
        let value = parse(bytes, Options::TORCH).unwrap();
        assert_eq!(value.get("a"), Some(&Value::Int(1)));
        assert_eq!(value.get("b"), Some(&Value::List(vec![Value::Float(2.5), Value::Bool(true), Value::None].into())));
    }

    /// `pickle.dumps({'n': -300, 'big': 2**40, 't': (1, 'x')}, protocol=4)`.
    #[test]
    fn protocol_4_frames_short_strings_and_longs() {
        let bytes = b"\x80\x04\x95(\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01n\x94J\xd4\xfe\xff\xff\x8c\x03big\x94\x8a\x06\x00\x00\x00\x00\x00\x01\x8c\x01t\x94K\x01\x8c\x01x\x94\x86\x94u.";
        let value = parse(bytes, Options::TORCH).unwrap();
        assert_eq!(value.get("n"), Some(&Value::Int(-300)));
        assert_eq!(value.get("big"), Some(&Value::Int(1 << 40)));
        assert_eq!(value.get("t"), Some(&Value::Tuple(vec![Value::Int(1), Value::Str(Rc::new("x".into()))].into())));
    }

    #[test]
    fn negative_long1_and_memo_reuse() {
        // hand-assembled: LONG1 of 0xff (−1), memoised and fetched twice into a tuple
        let bytes = b"\x80\x02\x8a\x01\xffq\x00h\x00h\x00\x87.";
        assert_eq!(parse(bytes, Options::TORCH).unwrap(), Value::Tuple(vec![Value::Int(-1); 3].into()));
    }

    #[test]
    fn truncated_and_unknown_streams_name_the_offset() {
        let error = parse(b"\x80\x02X\x05\x00\x00\x00ab", Options::TORCH).unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(error.problem.contains("ends inside an operand"), "{error}");
        let error = parse(b"\x80\x02K\x01", Options::TORCH).unwrap_err();
        assert!(error.problem.contains("before STOP"), "{error}");
        // EXT1 (an index into the copyreg extension registry, which nothing here has)
        // stands for an opcode the reader does not support
        let error = parse(b"\x80\x02\x82\x01.", Options::TORCH).unwrap_err();
        assert!(error.to_string().contains("unsupported pickle opcode 0x82"), "{error}");
    }

    #[test]
    fn unknown_callables_become_opaque_objects() {
        // `n = argparse.Namespace(); n.a = 1; pickle.dumps(n, protocol=2)`: NEWOBJ, then BUILD state
        let bytes = b"\x80\x02cargparse\nNamespace\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00aq\x03K\x01sb.";
        assert_eq!(parse(bytes, Options::TORCH).unwrap(), Value::Object { callable: "argparse.Namespace".into() });
    }

    // ---- insightface verification .bin sets (Options::PLAIN_DATA) ----

    /// What Python 2's `pickle.dumps((['ab', ''], [True, False]), 2)` writes:
    /// str as SHORT_BINSTRING, bools as NEWTRUE/NEWFALSE (bytes hand-assembled).
    #[test]
    fn python2_protocol2_layout() {
        let data = b"\x80\x02]q\x00(U\x02abq\x01U\x00q\x02e]q\x03(\x88\x89e\x86q\x04.";
        let v = parse(data, Options::PLAIN_DATA).unwrap();
        let Value::Tuple(items) = v else { panic!() };
        assert_eq!(items[0], Value::List(vec![Value::Bytes(Rc::new(b"ab".to_vec())), Value::Bytes(Rc::new(vec![]))].into()));
        assert_eq!(items[1], Value::List(vec![Value::Bool(true), Value::Bool(false)].into()));
    }

    #[test]
    fn protocol0_bools_and_refusals() {
        assert_eq!(parse(b"I01\n.", Options::PLAIN_DATA).unwrap(), Value::Bool(true));
        let err = parse(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.", Options::PLAIN_DATA).unwrap_err();
        assert!(err.problem.contains("refusing to call os.system"), "{err}");
        assert!(parse(b"\x80\x02]", Options::PLAIN_DATA).unwrap_err().problem.contains("truncated"));
    }

    // ---- where the two options differ, and what both share ----

    #[test]
    fn python2_str_is_text_for_torch_and_bytes_for_plain_data() {
        let data = b"\x80\x02U\x02ab.";
        assert_eq!(parse(data, Options::TORCH).unwrap(), Value::Str(Rc::new("ab".into())));
        assert_eq!(parse(data, Options::PLAIN_DATA).unwrap(), Value::Bytes(Rc::new(b"ab".to_vec())));
        // not UTF-8: bytes either way
        assert_eq!(parse(b"\x80\x02U\x01\xff.", Options::TORCH).unwrap(), Value::Bytes(Rc::new(vec![0xff])));
    }

    /// `pickle.dumps(b'\xe9a', protocol=2)` and `pickle.dumps(b'', protocol=2)` from CPython 3.
    #[test]
    fn python3_bytes_at_protocol_2_under_both_options() {
        let latin1 = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00\xc3\xa9aq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
        let empty = b"\x80\x02c__builtin__\nbytes\nq\x00)Rq\x01.";
        for options in [Options::TORCH, Options::PLAIN_DATA] {
            assert_eq!(parse(latin1, options).unwrap(), Value::Bytes(Rc::new(vec![0xe9, b'a'])));
            assert_eq!(parse(empty, options).unwrap(), Value::Bytes(Rc::new(Vec::new())));
        }
    }

    /// `pickle.dumps({'s', 't'}, protocol=4)`: a set is opaque for torch, refused as plain data.
    #[test]
    fn sets_are_unmodelled() {
        let data = b"\x80\x04\x95\r\x00\x00\x00\x00\x00\x00\x00\x8f\x94(\x8c\x01t\x94\x8c\x01s\x94\x90.";
        assert_eq!(parse(data, Options::TORCH).unwrap(), Value::Object { callable: "builtins.set".into() });
        let err = parse(data, Options::PLAIN_DATA).unwrap_err();
        assert_eq!(err.offset, 11);
        assert!(err.problem.contains("refusing to call builtins.set"), "{err}");
    }

    #[test]
    fn appending_to_a_non_list_is_refused() {
        // hand-assembled: an empty tuple, then APPEND
        let err = parse(b"\x80\x02)K\x01a.", Options::TORCH).unwrap_err();
        assert_eq!(err.offset, 5);
        assert!(err.problem.contains("APPEND(S) onto a tuple"), "{err}");
    }
}
