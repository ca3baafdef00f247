//! A reader of the subset of Python's pickle format that visage meets:
//! protocols 0–5 as far as plain data needs them (PEP 307 protocol 2,
//! PEP 3154 protocol 4 framing and opcodes, the protocol-0/1 `INT` and
//! string opcodes Python 2 wrote), dicts and `collections.OrderedDict`,
//! and what `torch.save` writes for a checkpoint: persistent storage ids
//! and tensors rebuilt by `torch._utils._rebuild_tensor_v2`.
//!
//! Two kinds of file are read with it: insightface's verification `.bin`
//! sets (a tuple of a list of encoded images and a list of bools, see
//! [`Options::PLAIN_DATA`]) and the `data.pkl` of a `torch.save` archive
//! ([`Options::TORCH`]).
//!
//! Nothing is executed: a `GLOBAL` only names a callable, and `REDUCE` or
//! `NEWOBJ` build a value only for the few callables modelled here
//! (`OrderedDict`/`dict`, torch's tensor and parameter rebuilders, and the
//! two that Python 3 uses to pickle `bytes` at protocol 2,
//! `_codecs.encode(str, "latin1")` and `builtins.bytes()`). Any other
//! callable yields an opaque [`Value::Object`] or an error, as
//! [`Options::unmodelled`] says. Every error names the byte offset of the
//! opcode that failed.
//!
//! The stream is outside input, so the reader is bounded in every direction
//! (the limits below): each length operand is checked against the bytes
//! left before anything is allocated; memo GET and DUP share a value instead
//! of copying it, so a few bytes cannot describe an exponential tree; work
//! and memory are linear in the stream's length; and nothing recurses on the
//! stream's nesting, dropping a value included.

#![warn(missing_docs)]

mod machine;
mod value;

pub use machine::element_steps_on_this_thread;
pub use value::{Items, Pairs, StorageRef, TensorRef, Value, DEBUG_ITEMS};

/// The deepest nesting of containers read. Python's pickler recurses into
/// containers and stops at its recursion limit (1000 by default), so no file
/// `pickle.dump` wrote is deeper; a state dict is about 5 deep.
pub const MAX_DEPTH: usize = 1000;

/// The most values one stream may produce (every stack entry pushed, memo
/// fetches, DUPs and memo stores included): 4 Mi, a few hundred MB at
/// most. A verification `.bin` holds ~20 k, a state dict about 15 per
/// tensor, so a face model's checkpoint some 30 k.
pub const MAX_VALUES: usize = 1 << 22;

/// The most memo entries one stream may store: 1 Mi. An entry costs about
/// 100 bytes in the memo's table, and a one-byte MEMOIZE opcode makes one.
/// Python memoises each container and string once: a verification `.bin`
/// stores ~12 k, a face model's checkpoint some 20 k.
pub const MAX_MEMO: usize = 1 << 20;

/// The most dimensions a pickled tensor may have (PyTorch's own kernels
/// stop at 25).
pub const MAX_TENSOR_RANK: usize = 64;

/// How a Python 2 `str` (BINSTRING, SHORT_BINSTRING) is read; Python 3's
/// `pickle.load(…, encoding=…)` takes the same decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Python2Str {
    /// As `encoding="bytes"`: always [`Value::Bytes`] (insightface loads
    /// its `.bin` sets so: the strings are encoded images).
    Bytes,
    /// As `encoding="utf-8"` (torch.load's default): [`Value::Str`], or
    /// [`Value::Bytes`] where the bytes are not UTF-8.
    TextIfUtf8,
}

/// What a value this reader does not model becomes: the call of a callable
/// it does not know (REDUCE, NEWOBJ), a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmodelled {
    /// An opaque [`Value::Object`] naming the callable, so the optimiser
    /// state, Lightning's hyper-parameter objects and other extras of a
    /// checkpoint parse without being understood.
    Opaque,
    /// An error naming the callable: for files that hold plain data only.
    Refuse,
}

/// The decisions a caller makes about one kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How BINSTRING / SHORT_BINSTRING operands are decoded.
    pub python2_str: Python2Str,
    /// What calling a callable that is not modelled here (or building a set) yields.
    pub unmodelled: Unmodelled,
}

impl Options {
    /// `torch.save` checkpoints, read as `torch.load` reads them.
    pub const TORCH: Options = Options { python2_str: Python2Str::TextIfUtf8, unmodelled: Unmodelled::Opaque };
    /// Containers of bytes, strings, numbers and bools (insightface's
    /// verification `.bin`, read as `pickle.load(f, encoding="bytes")`);
    /// anything else is refused.
    pub const PLAIN_DATA: Options = Options { python2_str: Python2Str::Bytes, unmodelled: Unmodelled::Refuse };
}

/// Why a pickle stream could not be read: the byte offset of the opcode and
/// the problem. Always a fault of the stream (bad input), never of the
/// environment: the reader does no I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pickle byte {offset}: {problem}")]
pub struct PickleError {
    /// Byte offset, from the start of the stream, of the opcode that failed
    /// (for a stream that ends too early: of the opcode it ends inside, or the
    /// stream's length when it ends between opcodes).
    pub offset: usize,
    /// What is wrong, in words (no offset; [`Display`](std::fmt::Display) adds it).
    pub problem: String,
}

/// Parses one pickled value (the whole stream up to its STOP); bytes after the
/// STOP are not looked at.
///
/// # Errors
/// [`PickleError`] for a truncated or malformed stream, an unsupported opcode, a
/// refused callable (with [`Unmodelled::Refuse`]), or a stream past one of the limits
/// ([`MAX_DEPTH`], [`MAX_VALUES`], [`MAX_MEMO`], [`MAX_TENSOR_RANK`]).
pub fn parse(bytes: &[u8], options: Options) -> Result<Value, PickleError> {
    machine::Machine::new(bytes, options).run()
}
