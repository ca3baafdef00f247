//! The protobuf wire format, as far as ONNX's `ModelProto → GraphProto →
//! NodeProto / TensorProto` need it: a field reader and a writer. Field
//! numbers are onnx.proto3's.
//!
//! The reader is safe on any bytes: every length is checked against the
//! bytes of the enclosing message before it is used (a payload is a slice
//! of the input, never a copy sized by the file), varints stop at 10 bytes,
//! and messages are read to a fixed depth (model → graph → node → attribute
//! → tensor) by separate functions, so nothing recurses on the file's
//! nesting: subgraphs (`AttributeProto.g`, `If`/`Loop` bodies) are skipped
//! unread. A tensor's element count is a checked product that must match
//! its data.

use std::cell::Cell;
use std::collections::BTreeMap;

/// One field's payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the `(field number, payload)` pairs of one message.
pub struct Fields<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Fields<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.position) else {
                return Err(format!("message ends inside a varint at byte {}", self.position));
            };
            self.position += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.position))
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        let end = self.position.checked_add(length).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("field of {length} bytes runs past the message end (byte {})", self.position))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.position >= self.bytes.len() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let number = (key >> 3) as u32;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => Wire::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
                2 => {
                    let length = self.varint()? as usize;
                    Wire::Bytes(self.take(length)?)
                }
                5 => Wire::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
                other => return Err(format!("unsupported wire type {other} for field {number}")),
            };
            Ok((number, wire))
        })();
        if field.is_err() {
            self.position = self.bytes.len();
        }
        Some(field)
    }
}

/// Reads a repeated integer field, packed or not, into `into`.
pub fn push_varints(wire: Wire<'_>, into: &mut Vec<i64>) -> Result<(), String> {
    match wire {
        Wire::Varint(value) => into.push(value as i64),
        Wire::Bytes(packed) => {
            let mut reader = Fields::new(packed);
            while reader.position < packed.len() {
                into.push(reader.varint()? as i64);
            }
        }
        other => return Err(format!("expected an integer, found {other:?}")),
    }
    Ok(())
}

pub fn text(wire: Wire<'_>) -> Result<String, String> {
    match wire {
        Wire::Bytes(bytes) => String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_string()),
        other => Err(format!("expected a string, found {other:?}")),
    }
}

/// The most dimensions a tensor may have; ONNX Runtime's own kernels stop
/// far below (8 for most), and a dims list is printed in errors.
pub const MAX_TENSOR_RANK: usize = 64;

/// ONNX `TensorProto.DataType` values read here.
pub const FLOAT: i64 = 1;
pub const INT64: i64 = 7;
pub const FLOAT16: i64 = 10;
pub const DOUBLE: i64 = 11;
pub const BFLOAT16: i64 = 16;

/// A TensorProto: float types become f32; other types keep only their shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<usize>,
    pub data_type: i64,
    /// `None` for non-float data types.
    pub values: Option<Vec<f32>>,
}

pub fn read_tensor(bytes: &[u8]) -> Result<Tensor, String> {
    let mut dims = Vec::new();
    let mut tensor = Tensor::default();
    let mut raw: Option<&[u8]> = None;
    let mut float_data = Vec::new();
    let mut double_data = Vec::new();
    for field in Fields::new(bytes) {
        match field? {
            (1, wire) => push_varints(wire, &mut dims)?,
            (2, Wire::Varint(kind)) => tensor.data_type = kind as i64,
            (4, Wire::Fixed32(bits)) => float_data.push(f32::from_bits(bits)),
            (4, Wire::Bytes(packed)) => float_data.extend(packed.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            (8, wire) => tensor.name = text(wire)?,
            (9, Wire::Bytes(bytes)) => raw = Some(bytes),
            (10, Wire::Fixed64(bits)) => double_data.push(f64::from_bits(bits)),
            (10, Wire::Bytes(packed)) => double_data.extend(packed.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))),
            (14, Wire::Varint(1)) => return Err(format!("tensor '{}' keeps its data in an external file, which is not read", tensor.name)),
            _ => {}
        }
    }
    if dims.len() > MAX_TENSOR_RANK {
        return Err(format!("tensor '{}' has {} dimensions, more than {MAX_TENSOR_RANK}", tensor.name, dims.len()));
    }
    tensor.dims = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor '{}' has a negative dimension", tensor.name)))
        .collect::<Result<_, _>>()?;
    let count = tensor
        .dims
        .iter()
        .try_fold(1usize, |count, &dim| count.checked_mul(dim))
        .ok_or_else(|| format!("tensor '{}' has dims {:?}, more elements than any file holds", tensor.name, tensor.dims))?;
    let values: Option<Vec<f32>> = match (tensor.data_type, raw) {
        (FLOAT, Some(raw)) => Some(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        (FLOAT, None) => Some(float_data),
        (DOUBLE, Some(raw)) => Some(raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()),
        (DOUBLE, None) => Some(double_data.into_iter().map(|v| v as f32).collect()),
        (FLOAT16, Some(raw)) => Some(raw.chunks_exact(2).map(|b| crate::state_dict::f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()),
        (BFLOAT16, Some(raw)) => Some(raw.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect()),
        _ => None,
    };
    if let Some(values) = &values {
        if values.len() != count {
            return Err(format!("tensor '{}' has {} values for dims {:?} ({count})", tensor.name, values.len(), tensor.dims));
        }
    }
    tensor.values = values;
    Ok(tensor)
}

/// An attribute value, as far as the layers here use them.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Float(f32),
    Int(i64),
    Ints(Vec<i64>),
    Tensor(Tensor),
    Other,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub op_type: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: BTreeMap<String, Attribute>,
}

fn read_attribute(bytes: &[u8]) -> Result<(String, Attribute), String> {
    let (mut name, mut kind) = (String::new(), 0u64);
    let (mut float, mut int, mut ints, mut tensor) = (0f32, 0i64, Vec::new(), None);
    for field in Fields::new(bytes) {
        match field? {
            (1, wire) => name = text(wire)?,
            (2, Wire::Fixed32(bits)) => float = f32::from_bits(bits),
            (3, Wire::Varint(value)) => int = value as i64,
            (5, Wire::Bytes(bytes)) => tensor = Some(read_tensor(bytes)?),
            (8, wire) => push_varints(wire, &mut ints)?,
            (20, Wire::Varint(value)) => kind = value,
            _ => {}
        }
    }
    let value = match kind {
        1 => Attribute::Float(float),
        2 => Attribute::Int(int),
        4 => tensor.map(Attribute::Tensor).unwrap_or(Attribute::Other),
        7 => Attribute::Ints(ints),
        _ => Attribute::Other,
    };
    Ok((name, value))
}

fn read_node(bytes: &[u8]) -> Result<Node, String> {
    let mut node = Node::default();
    for field in Fields::new(bytes) {
        match field? {
            (1, wire) => node.inputs.push(text(wire)?),
            (2, wire) => node.outputs.push(text(wire)?),
            (3, wire) => node.name = text(wire)?,
            (4, wire) => node.op_type = text(wire)?,
            (5, Wire::Bytes(attribute)) => {
                let (name, value) = read_attribute(attribute)?;
                node.attributes.insert(name, value);
            }
            _ => {}
        }
    }
    Ok(node)
}

/// The parts of a model a weight import needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// In the file's order, which ONNX requires to be topological.
    pub nodes: Vec<Node>,
    pub initializers: BTreeMap<String, Tensor>,
    /// Float values copied out of initializers so far by [`Graph::values_of`],
    /// and the float values the initializers hold (counted on first use).
    copied: Cell<usize>,
    total: Cell<Option<usize>>,
}

impl Graph {
    /// A copy of `tensor`'s float values, counted: all copies together may
    /// hold at most twice the graph's float values (and 1 Mi besides). A
    /// weight read by two layers is fine; one large initializer named by
    /// every layer of a hostile graph would otherwise be copied hundreds of
    /// times over.
    pub fn values_of(&self, tensor: &Tensor) -> Option<Result<Vec<f32>, String>> {
        let values = tensor.values.as_ref()?;
        let total = self.total.get().unwrap_or_else(|| {
            let total = self.initializers.values().filter_map(|t| t.values.as_ref()).map(Vec::len).sum();
            self.total.set(Some(total));
            total
        });
        let budget = total.saturating_mul(2).saturating_add(1 << 20);
        let copied = self.copied.get().saturating_add(values.len());
        if copied > budget {
            return Some(Err(format!(
                "initializer '{}' copied once too often: the layers read {copied} weights out of a graph of {total}",
                tensor.name
            )));
        }
        self.copied.set(copied);
        Some(Ok(values.clone()))
    }
}

/// Parses a serialised ModelProto (field 7: its GraphProto).
pub fn read_model(bytes: &[u8]) -> Result<Graph, String> {
    let mut graph_bytes = None;
    for field in Fields::new(bytes) {
        if let (7, Wire::Bytes(graph)) = field? {
            graph_bytes = Some(graph);
        }
    }
    let graph_bytes = graph_bytes.ok_or("no graph in the model (not an ONNX ModelProto?)")?;
    let mut graph = Graph::default();
    for field in Fields::new(graph_bytes) {
        match field? {
            (1, Wire::Bytes(node)) => graph.nodes.push(read_node(node)?),
            (5, Wire::Bytes(tensor)) => {
                let tensor = read_tensor(tensor)?;
                graph.initializers.insert(tensor.name.clone(), tensor);
            }
            _ => {}
        }
    }
    // `Constant` nodes (PyTorch writes affine-free BatchNorm's fixed scale and
    // shift as such) count as initializers named by their output.
    for node in &graph.nodes {
        if let (Some(Attribute::Tensor(tensor)), Some(output)) = (node.attributes.get("value"), node.outputs.first()) {
            if node.op_type == "Constant" {
                graph.initializers.insert(output.clone(), Tensor { name: output.clone(), ..tensor.clone() });
            }
        }
    }
    Ok(graph)
}

/// Serialises protobuf fields into a byte buffer.
#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    fn raw_varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u64) {
        self.raw_varint(((field as u64) << 3) | wire_type);
    }

    pub fn varint(&mut self, field: u32, value: i64) -> &mut Self {
        self.key(field, 0);
        self.raw_varint(value as u64);
        self
    }

    pub fn float(&mut self, field: u32, value: f32) -> &mut Self {
        self.key(field, 5);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, field: u32, payload: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.raw_varint(payload.len() as u64);
        self.bytes.extend_from_slice(payload);
        self
    }

    pub fn string(&mut self, field: u32, text: &str) -> &mut Self {
        self.bytes(field, text.as_bytes())
    }

    /// A nested message built by `build`.
    pub fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) -> &mut Self {
        let mut inner = Writer::default();
        build(&mut inner);
        self.bytes(field, &inner.bytes)
    }
}

/// A FLOAT TensorProto (dims, data_type, name, raw_data).
pub fn write_tensor(writer: &mut Writer, field: u32, name: &str, dims: &[usize], values: &[f32]) {
    writer.message(field, |tensor| {
        for &dim in dims {
            tensor.varint(1, dim as i64);
        }
        tensor.varint(2, FLOAT).string(8, name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensor.bytes(9, &raw);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_tensor_reads_back() {
        let mut graph = Writer::default();
        write_tensor(&mut graph, 5, "fc.weight", &[2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-8, 300.0]);
        let mut model = Writer::default();
        model.varint(1, 7).bytes(7, &graph.bytes);
        let read = read_model(&model.bytes).unwrap();
        let tensor = &read.initializers["fc.weight"];
        assert_eq!(tensor.dims, [2, 3]);
        assert_eq!(tensor.values.as_deref(), Some(&[1.0, -2.0, 3.5, 0.0, 1e-8, 300.0][..]));
    }

    /// Hand-assembled wire bytes: `dims: [2]`, `data_type: FLOAT`, packed
    /// `float_data: [1.5, -2]`, `name: "w"` (float_data instead of raw_data).
    #[test]
    fn packed_float_data_is_read() {
        let bytes = [0x08, 0x02, 0x10, 0x01, 0x22, 0x08, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x42, 0x01, b'w'];
        let tensor = read_tensor(&bytes).unwrap();
        assert_eq!((tensor.name.as_str(), tensor.dims.as_slice()), ("w", &[2][..]));
        assert_eq!(tensor.values, Some(vec![1.5, -2.0]));
    }

    #[test]
    fn varints_of_every_length_round_trip() {
        for value in [0i64, 1, 127, 128, 300, 1 << 35, -1] {
            let mut writer = Writer::default();
            writer.varint(3, value);
            let (number, wire) = Fields::new(&writer.bytes).next().unwrap().unwrap();
            assert_eq!((number, wire), (3, Wire::Varint(value as u64)));
        }
    }

    #[test]
    fn truncated_messages_are_errors() {
        let mut graph = Writer::default();
        write_tensor(&mut graph, 5, "w", &[4], &[1.0; 4]);
        let mut model = Writer::default();
        model.bytes(7, &graph.bytes);
        let cut = &model.bytes[..model.bytes.len() - 3];
        assert!(read_model(cut).unwrap_err().contains("runs past the message end"));
        let mismatched = {
            let mut graph = Writer::default();
            graph.message(5, |t| {
                t.varint(1, 3).varint(2, FLOAT).string(8, "w").bytes(9, &[0; 8]);
            });
            graph.bytes
        };
        let mut model = Writer::default();
        model.bytes(7, &mismatched);
        assert!(read_model(&model.bytes).unwrap_err().contains("tensor 'w' has 2 values for dims [3]"));
    }
}
