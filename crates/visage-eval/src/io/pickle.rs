//! A minimal Python pickle reader: just enough of the pickle virtual machine
//! (PEP 307 protocol 2, PEP 3154 protocol 4 framing and opcodes, plus the
//! protocol-0/1 string opcodes Python 2 wrote) to load plain containers of
//! bytes, strings, ints and bools — the shape of insightface's verification
//! `.bin` files. No code is ever executed: the only callables understood are
//! the two that Python 3 uses to pickle `bytes` at protocol 2
//! (`_codecs.encode(str, "latin1")` and `builtins.bytes()`); anything else
//! is refused with the opcode offset.

use std::collections::HashMap;
use std::rc::Rc;

/// A value produced by the pickle machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Bytes(Rc<Vec<u8>>),
    Str(Rc<String>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// `module.name`, only as a callable for REDUCE.
    Global(String, String),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Global(..) => "global",
        }
    }
}

/// Why a pickle could not be read; `offset` is the byte position of the opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pickle byte {}: {}", self.offset, self.message)
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl<'a> Machine<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { offset: self.op_at, message: message.into() })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return self.fail(format!("truncated: needs {n} more bytes"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else { return self.fail("unterminated text argument") };
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).or_else(|_| self.fail("text argument is not UTF-8"))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.fail("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else { return self.fail("no MARK on the stack") };
        if mark > self.stack.len() {
            return self.fail("MARK above the stack");
        }
        Ok(self.stack.split_off(mark))
    }

    fn push_bytes(&mut self, n: usize) -> Result<(), PickleError> {
        let b = self.take(n)?.to_vec();
        self.stack.push(Value::Bytes(Rc::new(b)));
        Ok(())
    }

    fn push_str(&mut self, n: usize) -> Result<(), PickleError> {
        let raw = self.take(n)?;
        let Ok(s) = std::str::from_utf8(raw) else { return self.fail("unicode string is not UTF-8") };
        self.stack.push(Value::Str(Rc::new(s.to_string())));
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        match self.stack.last_mut() {
            Some(Value::List(list)) => {
                list.extend(items);
                Ok(())
            }
            Some(other) => {
                let kind = other.kind();
                self.fail(format!("APPEND(S) onto a {kind}, expected a list"))
            }
            None => self.fail("APPEND(S) with an empty stack"),
        }
    }

    fn reduce(&mut self) -> Result<(), PickleError> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let Value::Tuple(args) = args else { return self.fail("REDUCE arguments are not a tuple") };
        let value = match (&callable, args.as_slice()) {
            (Value::Global(m, n), [Value::Str(s), Value::Str(enc)])
                if m == "_codecs" && n == "encode" && (enc.as_str() == "latin1" || enc.as_str() == "latin-1") =>
            {
                let mut out = Vec::with_capacity(s.len());
                for c in s.chars() {
                    let code = c as u32;
                    if code > 0xff {
                        return self.fail("latin1-encoded bytes hold a character above U+00FF");
                    }
                    out.push(code as u8);
                }
                Value::Bytes(Rc::new(out))
            }
            (Value::Global(m, n), []) if (m == "__builtin__" || m == "builtins") && n == "bytes" => Value::Bytes(Rc::new(Vec::new())),
            (Value::Global(m, n), _) => return self.fail(format!("refusing to call {m}.{n}: only plain containers of bytes/bool are read")),
            (other, _) => return self.fail(format!("REDUCE on a {}", other.kind())),
        };
        self.stack.push(value);
        Ok(())
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.fail(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME length: frames are only a buffering hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return self.fail("stack underflow in TUPLEn");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                b'I' => {
                    let text = self.line()?;
                    let value = match text {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        t => match t.parse() {
                            Ok(v) => Value::Int(v),
                            Err(_) => return self.fail(format!("bad INT `{t}`")),
                        },
                    };
                    self.stack.push(value);
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let raw = self.take(n)?;
                    if n > 8 {
                        return self.fail("LONG1 wider than 64 bits");
                    }
                    let mut buf = if raw.last().is_some_and(|&b| b & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    buf[..n].copy_from_slice(raw);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'C' | b'U' => {
                    let n = self.u8()? as usize;
                    self.push_bytes(n)?;
                }
                b'B' | b'T' => {
                    let n = self.u32()? as usize;
                    self.push_bytes(n)?;
                }
                0x8e => {
                    let n = self.u64()? as usize;
                    self.push_bytes(n)?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    self.push_str(n)?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    self.push_str(n)?;
                }
                0x8d => {
                    let n = self.u64()? as usize;
                    self.push_str(n)?;
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()? as u64;
                    self.memo_get(k)?;
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let (name, module) = (self.pop()?, self.pop()?);
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m.to_string(), n.to_string())),
                        _ => return self.fail("STACK_GLOBAL expects two strings"),
                    }
                }
                b'R' => self.reduce()?,
                other => return self.fail(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let Some(top) = self.stack.last() else { return self.fail("memo PUT with an empty stack") };
        // containers are memoised before they are filled; only a later GET of a
        // container would see the difference, which plain data does not do
        self.memo.insert(key, top.clone());
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => self.fail(format!("memo GET of unknown key {key}")),
        }
    }
}

/// Loads one pickled value.
pub fn load(data: &[u8]) -> Result<Value, PickleError> {
    Machine { data, pos: 0, op_at: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Python 2's `pickle.dumps((['ab', ''], [True, False]), 2)` writes:
    /// str as SHORT_BINSTRING, bools as NEWTRUE/NEWFALSE (bytes hand-assembled).
    #[test]
    fn python2_protocol2_layout() {
        let data = b"\x80\x02]q\x00(U\x02abq\x01U\x00q\x02e]q\x03(\x88\x89e\x86q\x04.";
        let v = load(data).unwrap();
        let Value::Tuple(items) = v else { panic!() };
        assert_eq!(items[0], Value::List(vec![Value::Bytes(Rc::new(b"ab".to_vec())), Value::Bytes(Rc::new(vec![]))]));
        assert_eq!(items[1], Value::List(vec![Value::Bool(true), Value::Bool(false)]));
    }

    #[test]
    fn protocol0_bools_and_refusals() {
        assert_eq!(load(b"I01\n.").unwrap(), Value::Bool(true));
        let err = load(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.").unwrap_err();
        assert!(err.message.contains("refusing to call os.system"), "{err}");
        assert!(load(b"\x80\x02]").unwrap_err().message.contains("truncated"));
    }
}
