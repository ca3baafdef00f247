//! ONNX models as the weight import reads them: a serialised `ModelProto`
//! decoded by prost into the generated [`onnx_pb`](super::onnx_pb) types,
//! then checked and reduced to a [`Graph`] — nodes in file order, float
//! initializers by name, attributes by name. Export builds the same generated
//! types ([`tensor_proto`]) and lets prost encode them.
//!
//! The reader is safe on any bytes:
//! - prost checks every declared length against the bytes left in the
//!   enclosing message before it reads or allocates anything, and stops
//!   varints at 10 bytes; a decode error names the field path
//!   (`ModelProto.graph > GraphProto.initializer > …`), see [`read_model`].
//! - The generated types are a subset of `onnx.proto` with no recursive
//!   message: subgraphs (`AttributeProto.g`, `If`/`Loop` bodies) and every
//!   other field outside it are skipped unread, so a file's nesting never
//!   becomes recursion here (prost's own limit of 100 levels bounds the
//!   nested groups it skips; checked on a 64 KiB stack).
//! - A tensor's rank is at most [`MAX_TENSOR_RANK`], its element count is a
//!   checked product, and it must match the data the tensor holds.
//! - Memory: a real model decodes into about its own size again (the paddle
//!   MobileFaceNet, 3.9 MiB: 8.5 MiB at the peak, the same as the
//!   hand-written reader this replaced), and initializers are converted to
//!   `f32` one at a time. Many empty messages cost more than their bytes: two
//!   bytes of an empty attribute become an 88-byte struct (about 96× the
//!   file at the peak; empty nodes 60×, as before, empty initializers 68×).
//!   Nothing here bounds that but the size of the file the caller read.
//!
//! [`Writer`] is a raw field writer kept for tests, which hand-assemble
//! models — malformed ones included — field by field.

use std::cell::Cell;
use std::collections::BTreeMap;

use prost::Message;

use super::onnx_pb::attribute_proto::AttributeType;
use super::onnx_pb::tensor_proto::{DataLocation, DataType};
use super::onnx_pb::{AttributeProto, ModelProto, NodeProto, TensorProto};

/// The most dimensions a tensor may have; ONNX Runtime's own kernels stop
/// far below (8 for most), and a dims list is printed in errors.
pub const MAX_TENSOR_RANK: usize = 64;

/// `TensorProto.DataType.FLOAT` (f32), read and written.
pub const FLOAT: i64 = DataType::Float as i64;
/// `TensorProto.DataType.INT64`: read for its shape only (no values).
pub const INT64: i64 = DataType::Int64 as i64;
/// `TensorProto.DataType.FLOAT16`, read from `raw_data` and widened to f32.
pub const FLOAT16: i64 = DataType::Float16 as i64;
/// `TensorProto.DataType.DOUBLE`, read and narrowed to f32.
pub const DOUBLE: i64 = DataType::Double as i64;
/// `TensorProto.DataType.BFLOAT16`, read from `raw_data` and widened to f32.
pub const BFLOAT16: i64 = DataType::Bfloat16 as i64;

/// A TensorProto, checked: float types become f32; other types keep only their shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor {
    /// The tensor's name (an initializer's name is what nodes read it by).
    pub name: String,
    /// The shape, outermost first; at most [`MAX_TENSOR_RANK`] dimensions.
    pub dims: Vec<usize>,
    /// The `TensorProto.DataType` value ([`FLOAT`], [`DOUBLE`], …; 0 when absent).
    pub data_type: i64,
    /// The elements in row-major order, as many as `dims` says; `None` for
    /// non-float data types.
    pub values: Option<Vec<f32>>,
}

impl Tensor {
    /// Checks a decoded TensorProto and converts its float data to f32: the
    /// data must be in the file (not external), the dims non-negative and at
    /// most [`MAX_TENSOR_RANK`] of them, and the element count they multiply
    /// to (checked) must be the number of values held.
    pub fn from_proto(tensor: TensorProto) -> Result<Tensor, String> {
        let name = tensor.name.unwrap_or_default();
        if tensor.data_location == Some(DataLocation::External as i32) {
            return Err(format!("tensor '{name}' keeps its data in an external file, which is not read"));
        }
        if tensor.dims.len() > MAX_TENSOR_RANK {
            return Err(format!("tensor '{name}' has {} dimensions, more than {MAX_TENSOR_RANK}", tensor.dims.len()));
        }
        let dims: Vec<usize> = tensor
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("tensor '{name}' has a negative dimension")))
            .collect::<Result<_, _>>()?;
        let count = dims
            .iter()
            .try_fold(1usize, |count, &dim| count.checked_mul(dim))
            .ok_or_else(|| format!("tensor '{name}' has dims {dims:?}, more elements than any file holds"))?;
        let data_type = i64::from(tensor.data_type.unwrap_or_default());
        let values: Option<Vec<f32>> = match (data_type, tensor.raw_data.as_deref()) {
            (FLOAT, Some(raw)) => Some(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            (FLOAT, None) => Some(tensor.float_data),
            (DOUBLE, Some(raw)) => Some(raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect()),
            (DOUBLE, None) => Some(tensor.double_data.into_iter().map(|v| v as f32).collect()),
            (FLOAT16, Some(raw)) => Some(raw.chunks_exact(2).map(|b| crate::state_dict::f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()),
            (BFLOAT16, Some(raw)) => Some(raw.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect()),
            _ => None,
        };
        if let Some(values) = &values {
            if values.len() != count {
                return Err(format!("tensor '{name}' has {} values for dims {dims:?} ({count})", values.len()));
            }
        }
        Ok(Tensor { name, dims, data_type, values })
    }
}

/// Decodes and checks one serialised TensorProto (see [`Tensor::from_proto`]).
pub fn read_tensor(bytes: &[u8]) -> Result<Tensor, String> {
    Tensor::from_proto(TensorProto::decode(bytes).map_err(decode_error)?)
}

/// An attribute value, as far as the layers here use them.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// `FLOAT` (a BatchNorm's `epsilon`, a Gemm's `alpha`).
    Float(f32),
    /// `INT` (a Conv's `group`, a Gemm's `transB`).
    Int(i64),
    /// `INTS` (a Conv's `strides`, `pads`, `kernel_shape`).
    Ints(Vec<i64>),
    /// `TENSOR` (a `Constant` node's `value`).
    Tensor(Tensor),
    /// Any other type, or a `TENSOR` attribute without its tensor.
    Other,
}

impl Attribute {
    /// The attribute's name and value, by its `type` (the value fields of the
    /// other types are ignored). A tensor it holds is checked as an
    /// initializer is, whatever the type says.
    fn from_proto(attribute: AttributeProto) -> Result<(String, Attribute), String> {
        let kind = attribute.r#type();
        let tensor = attribute.t.map(|tensor| Tensor::from_proto(*tensor)).transpose()?;
        let value = match kind {
            AttributeType::Float => Attribute::Float(attribute.f.unwrap_or_default()),
            AttributeType::Int => Attribute::Int(attribute.i.unwrap_or_default()),
            AttributeType::Tensor => tensor.map(Attribute::Tensor).unwrap_or(Attribute::Other),
            AttributeType::Ints => Attribute::Ints(attribute.ints),
            _ => Attribute::Other,
        };
        Ok((attribute.name.unwrap_or_default(), value))
    }
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// The operator (`Conv`, `BatchNormalization`, …).
    pub op_type: String,
    /// The node's name (may be empty); errors name the node by it.
    pub name: String,
    /// The names of the values it reads, in the operator's input order (an
    /// empty name is an omitted optional input).
    pub inputs: Vec<String>,
    /// The names of the values it writes.
    pub outputs: Vec<String>,
    /// Its attributes by name (the last one wins when a name repeats).
    pub attributes: BTreeMap<String, Attribute>,
}

impl Node {
    fn from_proto(node: NodeProto) -> Result<Node, String> {
        let attributes = node.attribute.into_iter().map(Attribute::from_proto).collect::<Result<_, _>>()?;
        Ok(Node {
            op_type: node.op_type.unwrap_or_default(),
            name: node.name.unwrap_or_default(),
            inputs: node.input,
            outputs: node.output,
            attributes,
        })
    }
}

/// The parts of a model a weight import needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// In the file's order, which ONNX requires to be topological.
    pub nodes: Vec<Node>,
    /// The graph's initializers and the tensors of its `Constant` nodes (under
    /// their output's name), by name.
    pub initializers: BTreeMap<String, Tensor>,
    /// Float values copied out of initializers so far by [`Graph::values_of`],
    /// and the float values the initializers hold (counted on first use).
    copied: Cell<usize>,
    total: Cell<Option<usize>>,
}

impl Graph {
    /// A copy of `tensor`'s float values (`None` for a non-float tensor),
    /// counted: all copies together may hold at most twice the graph's float
    /// values (and 1 Mi besides). A weight read by two layers is fine; one
    /// large initializer named by every layer of a hostile graph would
    /// otherwise be copied hundreds of times over.
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

/// Parses a serialised ModelProto into the [`Graph`] of its field 7.
///
/// Errors are text for the caller to put after the file's name: a decode
/// error gives the field path from the model down and what was wrong
/// (`ModelProto.graph: a field runs past the message end (buffer
/// underflow)`); a tensor that fails [`Tensor::from_proto`] is
/// named. Never panics. Malformed protobuf is refused even in a field the
/// import does not use (a field number 0, a known field with the wrong wire
/// type, a graph input whose name is not UTF-8), as protobuf requires.
pub fn read_model(bytes: &[u8]) -> Result<Graph, String> {
    let model = ModelProto::decode(bytes).map_err(decode_error)?;
    let graph_proto = model.graph.ok_or("no graph in the model (not an ONNX ModelProto?)")?;
    let mut graph = Graph { nodes: graph_proto.node.into_iter().map(Node::from_proto).collect::<Result<_, _>>()?, ..Graph::default() };
    // One tensor at a time: its raw bytes are dropped once it is converted.
    for tensor in graph_proto.initializer {
        let tensor = Tensor::from_proto(tensor)?;
        graph.initializers.insert(tensor.name.clone(), tensor);
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

/// prost's decode error as one line: the field path outermost first, then the
/// cause in this reader's words with prost's in parentheses.
///
/// prost's `Display` is `failed to decode Protobuf message: ` followed by
/// `Message.field: ` per level, innermost first, and the cause (the error's
/// only public form); a cause this function does not know passes through as
/// prost wrote it.
fn decode_error(error: prost::DecodeError) -> String {
    let text = error.to_string();
    let mut rest = text.strip_prefix("failed to decode Protobuf message: ").unwrap_or(&text);
    let mut path = Vec::new();
    while let Some((level, tail)) = rest.split_once(": ") {
        if level.is_empty() || !level.contains('.') || !level.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            break;
        }
        path.push(level);
        rest = tail;
    }
    path.reverse();
    let meaning = match rest {
        "buffer underflow" | "delimited length exceeded" => "a field runs past the message end",
        "invalid varint" => "a varint longer than 10 bytes, or cut off by the message end",
        "recursion limit reached" => "fields nested more than 100 deep",
        "invalid string value: data is not UTF-8 encoded" => "a string is not UTF-8",
        other => other,
    };
    let cause = if meaning == rest { rest.to_string() } else { format!("{meaning} ({rest})") };
    if path.is_empty() {
        cause
    } else {
        format!("{}: {cause}", path.join(" > "))
    }
}

/// A FLOAT TensorProto named `name` holding `values` (row-major, `dims`) as `raw_data`.
pub fn tensor_proto(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        name: Some(name.to_string()),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..TensorProto::default()
    }
}

/// Writes protobuf fields one by one into a byte buffer, whatever their
/// number, wire type or order: tests assemble models with it, including
/// malformed ones (lengths past the end, wrong types) that the generated
/// types cannot express. Export does not use it.
#[derive(Default)]
pub struct Writer {
    /// The fields written so far, serialised.
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

    /// Field `field` as a varint (wire type 0); a negative value takes 10 bytes, as protobuf's int64 does.
    pub fn varint(&mut self, field: u32, value: i64) -> &mut Self {
        self.key(field, 0);
        self.raw_varint(value as u64);
        self
    }

    /// Field `field` as a 32-bit float (wire type 5).
    pub fn float(&mut self, field: u32, value: f32) -> &mut Self {
        self.key(field, 5);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Field `field` as length-delimited bytes (wire type 2).
    pub fn bytes(&mut self, field: u32, payload: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.raw_varint(payload.len() as u64);
        self.bytes.extend_from_slice(payload);
        self
    }

    /// Field `field` as a string (UTF-8 bytes, wire type 2).
    pub fn string(&mut self, field: u32, text: &str) -> &mut Self {
        self.bytes(field, text.as_bytes())
    }

    /// Field `field` as a nested message whose fields `build` writes.
    pub fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) -> &mut Self {
        let mut inner = Writer::default();
        build(&mut inner);
        self.bytes(field, &inner.bytes)
    }
}

/// Writes [`tensor_proto`]`(name, dims, values)`, prost-encoded, as field
/// `field` of `writer` (5 in a GraphProto: an initializer).
pub fn write_tensor(writer: &mut Writer, field: u32, name: &str, dims: &[usize], values: &[f32]) {
    writer.bytes(field, &tensor_proto(name, dims, values).encode_to_vec());
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

    /// The test writer's varints are protobuf's: prost reads each back as
    /// `AttributeProto.i` (field 3, int64).
    #[test]
    fn varints_of_every_length_round_trip() {
        for value in [0i64, 1, 127, 128, 300, 1 << 35, -1] {
            let mut writer = Writer::default();
            writer.varint(3, value);
            assert_eq!(writer.bytes.len(), 1 + prost::encoding::encoded_len_varint(value as u64));
            assert_eq!(AttributeProto::decode(writer.bytes.as_slice()).unwrap().i, Some(value));
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

    #[test]
    fn decode_errors_name_the_field_path_from_the_model_down() {
        // an initializer whose raw_data declares 100 bytes and holds 2
        let mut graph = Writer::default();
        graph.message(5, |t| {
            t.string(8, "w").varint(2, FLOAT);
            t.bytes.extend_from_slice(&[0x4a, 100, 0, 0]);
        });
        let mut model = Writer::default();
        model.bytes(7, &graph.bytes);
        let message = read_model(&model.bytes).unwrap_err();
        assert!(
            message.starts_with("ModelProto.graph > GraphProto.initializer > TensorProto.raw_data: a field runs past the message end"),
            "{message}"
        );
        assert!(message.ends_with("(buffer underflow)"), "{message}");
        // a name that is not UTF-8
        let mut graph = Writer::default();
        graph.message(1, |node| {
            node.bytes(4, &[0xff, 0xfe]);
        });
        let mut model = Writer::default();
        model.bytes(7, &graph.bytes);
        assert_eq!(
            read_model(&model.bytes).unwrap_err(),
            "ModelProto.graph > GraphProto.node > NodeProto.op_type: a string is not UTF-8 (invalid string value: data is not UTF-8 encoded)"
        );
        // a known field with the wrong wire type: prost's cause passes through
        let mut model = Writer::default();
        model.float(7, 1.0);
        assert_eq!(read_model(&model.bytes).unwrap_err(), "ModelProto.graph: invalid wire type: ThirtyTwoBit (expected LengthDelimited)");
    }

    #[test]
    fn external_data_and_negative_dims_are_refused_naming_the_tensor() {
        let mut graph = Writer::default();
        graph.message(5, |t| {
            t.varint(1, 1).varint(2, FLOAT).string(8, "far").varint(14, 1);
        });
        let mut model = Writer::default();
        model.bytes(7, &graph.bytes);
        assert!(read_model(&model.bytes).unwrap_err().contains("tensor 'far' keeps its data in an external file"));
        let mut tensor = Writer::default();
        tensor.varint(1, -3).varint(2, FLOAT).string(8, "neg");
        assert_eq!(read_tensor(&tensor.bytes).unwrap_err(), "tensor 'neg' has a negative dimension");
    }
}
