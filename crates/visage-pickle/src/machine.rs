//! The pickle virtual machine: one opcode at a time onto a stack of values
//! and MARKs, with a memo of copies.

use std::collections::HashMap;
use std::rc::Rc;

use crate::{Options, PickleError, Python2Str, StorageRef, TensorRef, Unmodelled, Value};

/// A stack entry: a value or the MARK that TUPLE/SETITEMS/APPENDS pop back to.
enum Slot {
    Mark,
    Value(Value),
}

pub(crate) struct Machine<'a> {
    bytes: &'a [u8],
    options: Options,
    position: usize,
    /// Offset of the opcode being executed, for errors.
    opcode_at: usize,
    stack: Vec<Slot>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    pub(crate) fn new(bytes: &'a [u8], options: Options) -> Self {
        Machine { bytes, options, position: 0, opcode_at: 0, stack: Vec::new(), memo: HashMap::new() }
    }

    fn error(&self, problem: impl Into<String>) -> PickleError {
        PickleError { offset: self.opcode_at, problem: problem.into() }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], PickleError> {
        let end = self.position.checked_add(count).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(format!(
                "truncated: stream ends inside an operand ({count} bytes wanted, {} left)",
                self.bytes.len() - self.position
            )));
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
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
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

    fn push(&mut self, value: Value) {
        self.stack.push(Slot::Value(value));
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Slot::Value(value)) => Ok(value),
            Some(Slot::Mark) => Err(self.error("expected a value on the stack, found a MARK")),
            None => Err(self.error("stack underflow")),
        }
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.opcode_at;
        match self.stack.last_mut() {
            Some(Slot::Value(value)) => Ok(value),
            _ => Err(PickleError { offset: at, problem: "expected a value on the stack".into() }),
        }
    }

    /// The values above the topmost MARK, which is removed.
    fn pop_to_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.stack.iter().rposition(|slot| matches!(slot, Slot::Mark)) else {
            return Err(self.error("no MARK on the stack"));
        };
        let values = self
            .stack
            .drain(mark + 1..)
            .map(|slot| match slot {
                Slot::Value(value) => value,
                Slot::Mark => unreachable!("the topmost mark is at `mark`"),
            })
            .collect();
        self.stack.pop();
        Ok(values)
    }

    fn memo_get(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self.memo.get(&index).cloned().ok_or_else(|| self.error(format!("memo entry {index} was never stored")))?;
        self.push(value);
        Ok(())
    }

    /// Containers are memoised before they are filled; only a later GET of
    /// a container would see the difference, which plain data and state
    /// dicts do not do.
    fn memo_put(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Result<(), PickleError> {
        if !pairs.len().is_multiple_of(2) {
            return Err(self.error("SETITEMS with an odd number of values"));
        }
        let kind = match self.top()? {
            Value::Dict(items) => {
                let mut pairs = pairs.into_iter();
                while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
                    match items.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => items.push((key, value)),
                    }
                }
                return Ok(());
            }
            // Items set on an opaque object are dropped: nothing here reads them.
            Value::Object { .. } => return Ok(()),
            other => other.kind(),
        };
        Err(self.error(format!("SETITEM(S) onto a {kind}, expected a dict")))
    }

    fn append(&mut self, values: Vec<Value>) -> Result<(), PickleError> {
        let kind = match self.top()? {
            Value::List(items) => {
                items.extend(values);
                return Ok(());
            }
            // A list subclass or an object with `extend`: its items are not needed.
            Value::Object { .. } => return Ok(()),
            other => other.kind(),
        };
        Err(self.error(format!("APPEND(S) onto a {kind}, expected a list")))
    }

    /// A value this reader does not model, made by `callable`.
    fn unmodelled(&self, callable: String) -> Result<Value, PickleError> {
        match self.options.unmodelled {
            Unmodelled::Opaque => Ok(Value::Object { callable }),
            Unmodelled::Refuse => Err(self.error(format!("refusing to call {callable}: only plain data is read here, nothing is executed"))),
        }
    }

    /// `callable(*args)` for the few callables plain data and a state dict are built from.
    fn call(&self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global { module, name } = &callable else {
            return self.unmodelled(format!("<{}>", callable.kind()));
        };
        let args = match args {
            Value::Tuple(args) => args,
            other => return Err(self.error(format!("{module}.{name} called with {} arguments, not a tuple", other.kind()))),
        };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") | ("builtins", "dict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
            // How Python 3 pickles `bytes` at protocol 2.
            ("_codecs", "encode") => match args.as_slice() {
                [Value::Str(text), Value::Str(encoding)] if matches!(encoding.as_str(), "latin1" | "latin-1") => self.latin1(text),
                _ => self.unmodelled(format!("{module}.{name}")),
            },
            ("builtins" | "__builtin__", "bytes") if args.is_empty() => Ok(Value::Bytes(Rc::default())),
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => self.rebuild_tensor(args),
            // nn.Parameter: (data, requires_grad, backward_hooks)
            ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
                args.into_iter().next().ok_or_else(|| self.error("_rebuild_parameter without arguments"))
            }
            _ => self.unmodelled(format!("{module}.{name}")),
        }
    }

    /// `_codecs.encode(text, "latin1")`: one byte per character.
    fn latin1(&self, text: &str) -> Result<Value, PickleError> {
        let bytes = text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| self.error("latin1-encoded bytes hold a character above U+00FF")))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Value::Bytes(Rc::new(bytes)))
    }

    fn rebuild_tensor(&self, args: Vec<Value>) -> Result<Value, PickleError> {
        let bad = |what: &str| self.error(format!("_rebuild_tensor_v2: {what}"));
        let mut args = args.into_iter();
        let storage = match args.next() {
            Some(Value::Storage(storage)) => storage,
            _ => return Err(bad("first argument is not a storage")),
        };
        let storage_offset = match args.next() {
            Some(Value::Int(offset)) if offset >= 0 => offset as u64,
            _ => return Err(bad("storage offset is not a non-negative int")),
        };
        let dims = |value: Option<Value>, what: &str| -> Result<Vec<u64>, PickleError> {
            match value {
                Some(Value::Tuple(items)) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::Int(n) if n >= 0 => Ok(n as u64),
                        _ => Err(bad(&format!("{what} holds a non-integer"))),
                    })
                    .collect(),
                _ => Err(bad(&format!("{what} is not a tuple"))),
            }
        };
        let size = dims(args.next(), "size")?;
        let stride = dims(args.next(), "stride")?;
        if size.len() != stride.len() {
            return Err(bad("size and stride differ in rank"));
        }
        Ok(Value::Tensor(TensorRef { storage, storage_offset, size, stride }))
    }

    /// BINPERSID: torch's id is `('storage', StorageClass, key, location, numel)`.
    fn persistent_load(&self, id: Value) -> Result<Value, PickleError> {
        let Value::Tuple(fields) = id else {
            return Err(self.error(format!("persistent id is a {}, not a tuple", id.kind())));
        };
        match fields.as_slice() {
            [Value::Str(tag), Value::Global { name, .. }, Value::Str(key), _location, Value::Int(count)] if tag.as_str() == "storage" && *count >= 0 => {
                Ok(Value::Storage(StorageRef { storage_type: name.clone(), key: key.to_string(), element_count: *count as u64 }))
            }
            _ => Err(self.error("persistent id is not torch's ('storage', type, key, location, numel)")),
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
                    // FRAME: a length hint only
                    self.u64()?;
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    // POP
                    self.stack.pop();
                }
                b'1' => {
                    // POP_MARK
                    self.pop_to_mark()?;
                }
                b'2' => {
                    // DUP
                    let value = self.top()?.clone();
                    self.push(value);
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'I' => {
                    // INT (protocol 0): decimal digits; Python 2 wrote True and False as 01 and 00
                    let digits = self.line()?;
                    let value = match digits.as_str() {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => Value::Int(digits.parse().map_err(|_| self.error(format!("INT operand `{digits}` is not a 64-bit integer")))?),
                    };
                    self.push(value);
                }
                b'K' => {
                    let n = self.u8()?;
                    self.push(Value::Int(n as i64));
                }
                b'M' => {
                    let n = self.u16()?;
                    self.push(Value::Int(n as i64));
                }
                b'J' => {
                    let n = self.u32()? as i32;
                    self.push(Value::Int(n as i64));
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
                    self.push(Value::Int(value));
                }
                b'G' => {
                    // BINFLOAT: big-endian f64
                    let bits: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
                    self.push(Value::Float(f64::from_be_bytes(bits)));
                }
                b'X' | 0x8c | 0x8d => {
                    // BINUNICODE / SHORT_BINUNICODE / BINUNICODE8
                    let length = match opcode {
                        b'X' => self.u32()? as usize,
                        0x8c => self.u8()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let text = self.text(length)?;
                    self.push(Value::Str(Rc::new(text)));
                }
                b'T' | b'U' => {
                    // BINSTRING / SHORT_BINSTRING: a Python 2 str, bytes or text as the options say
                    let length = if opcode == b'T' { self.u32()? as usize } else { self.u8()? as usize };
                    let raw = self.take(length)?.to_vec();
                    self.push(match self.options.python2_str {
                        Python2Str::Bytes => Value::Bytes(Rc::new(raw)),
                        Python2Str::TextIfUtf8 => match String::from_utf8(raw) {
                            Ok(text) => Value::Str(Rc::new(text)),
                            Err(error) => Value::Bytes(Rc::new(error.into_bytes())),
                        },
                    });
                }
                b'B' | b'C' | 0x8e => {
                    // BINBYTES / SHORT_BINBYTES / BINBYTES8
                    let length = match opcode {
                        b'B' => self.u32()? as usize,
                        b'C' => self.u8()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let raw = self.take(length)?.to_vec();
                    self.push(Value::Bytes(Rc::new(raw)));
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    // TUPLE1 / TUPLE2 / TUPLE3
                    let count = (opcode - 0x84) as usize;
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items));
                }
                b']' => self.push(Value::List(Vec::new())),
                b'l' => {
                    let items = self.pop_to_mark()?;
                    self.push(Value::List(items));
                }
                b'a' => {
                    let value = self.pop()?;
                    self.append(vec![value])?;
                }
                b'e' => {
                    let values = self.pop_to_mark()?;
                    self.append(values)?;
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b'd' => {
                    let pairs = self.pop_to_mark()?;
                    self.push(Value::Dict(Vec::new()));
                    self.set_items(pairs)?;
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
                    self.push(set);
                }
                0x90 => {
                    // ADDITEMS: set contents are not needed
                    self.pop_to_mark()?;
                }
                0x91 => {
                    // FROZENSET
                    self.pop_to_mark()?;
                    let set = self.unmodelled("builtins.frozenset".into())?;
                    self.push(set);
                }
                b'c' => {
                    // GLOBAL
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global { module, name });
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.push(Value::Global { module: Rc::unwrap_or_clone(module), name: Rc::unwrap_or_clone(name) })
                        }
                        _ => return Err(self.error("STACK_GLOBAL operands are not strings")),
                    }
                }
                b'R' => {
                    // REDUCE
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.call(callable, args)?;
                    self.push(value);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let value = self.call(class, args)?;
                    self.push(value);
                }
                0x92 => {
                    // NEWOBJ_EX: cls, args, kwargs
                    self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let value = self.call(class, args)?;
                    self.push(value);
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
                    self.push(value);
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
        assert_eq!(value.get("b"), Some(&Value::List(vec![Value::Float(2.5), Value::Bool(true), Value::None])));
    }

    /// `pickle.dumps({'n': -300, 'big': 2**40, 't': (1, 'x')}, protocol=4)`.
    #[test]
    fn protocol_4_frames_short_strings_and_longs() {
        let bytes = b"\x80\x04\x95(\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01n\x94J\xd4\xfe\xff\xff\x8c\x03big\x94\x8a\x06\x00\x00\x00\x00\x00\x01\x8c\x01t\x94K\x01\x8c\x01x\x94\x86\x94u.";
        let value = parse(bytes, Options::TORCH).unwrap();
        assert_eq!(value.get("n"), Some(&Value::Int(-300)));
        assert_eq!(value.get("big"), Some(&Value::Int(1 << 40)));
        assert_eq!(value.get("t"), Some(&Value::Tuple(vec![Value::Int(1), Value::Str(Rc::new("x".into()))])));
    }

    #[test]
    fn negative_long1_and_memo_reuse() {
        // hand-assembled: LONG1 of 0xff (−1), memoised and fetched twice into a tuple
        let bytes = b"\x80\x02\x8a\x01\xffq\x00h\x00h\x00\x87.";
        assert_eq!(parse(bytes, Options::TORCH).unwrap(), Value::Tuple(vec![Value::Int(-1); 3]));
    }

    #[test]
    fn truncated_and_unknown_streams_name_the_offset() {
        let error = parse(b"\x80\x02X\x05\x00\x00\x00ab", Options::TORCH).unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(error.problem.contains("ends inside an operand"), "{error}");
        let error = parse(b"\x80\x02K\x01", Options::TORCH).unwrap_err();
        assert!(error.problem.contains("before STOP"), "{error}");
        // EXT1 (an index into the copyreg extension registry, which nothing here has);
        // INT, the opcode this case used before the readers merged, is now read
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
        assert_eq!(items[0], Value::List(vec![Value::Bytes(Rc::new(b"ab".to_vec())), Value::Bytes(Rc::new(vec![]))]));
        assert_eq!(items[1], Value::List(vec![Value::Bool(true), Value::Bool(false)]));
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
