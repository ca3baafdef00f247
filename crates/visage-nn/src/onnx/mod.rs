//! Backbone weights from and to ONNX: IResNet here, MobileFaceNet in its
//! own submodule (re-exported here).
//!
//! **Import.** PyTorch's ONNX export in eval mode (what insightface's
//! `torch2onnx.py` does) folds every conv → BatchNorm pair into the
//! convolution (weight scaled, a bias added) and names the folded tensors
//! `onnx::Conv_N`; only the BatchNorms that precede a conv (each block's
//! `bn1`, the head's `bn2`, the feature BN) keep their PyTorch names. So the
//! import goes by the graph, not by names: each `Conv` node is matched to the
//! next convolution of the model in forward order — 3×3 convolutions and the
//! 1×1 projection shortcuts kept apart, so a graph that evaluates the shortcut
//! before the residual branch (AdaFace's `net.py`) maps the same — and the
//! BatchNorm after it becomes either the `BatchNormalization` node that reads
//! the conv's output (unfolded export) or, for a folded conv, a BatchNorm
//! that adds the conv's bias (γ = 1, β = bias, mean 0, var 1 − ε: exact).
//! The remaining `BatchNormalization`, `PRelu` and `Gemm` nodes fill the
//! model's other BatchNorms, PReLUs and the FC in order. The result is a
//! [`StateDict`] under the reference keys, loaded with the usual strict checks.
//!
//! **Export.** The graph written is the unfolded network (Conv, BatchNormalization,
//! PRelu, Add, MaxPool for AdaFace's subsampling shortcut, Flatten, Gemm),
//! initializers named by the PyTorch keys, opset 13, a dynamic batch axis.
//!
//! **The file format.** [`onnx_pb`] holds prost types generated from a subset
//! of `onnx.proto` (scripts/onnx/generate.sh; the build needs no protoc);
//! [`proto`] decodes a model with them into the checked [`proto::Graph`] the
//! import reads, and export fills the same types for prost to encode.

mod mobilefacenet;
pub mod onnx_pb;
pub mod proto;

pub use mobilefacenet::{read_onnx_mobilefacenet, read_onnx_mobilefacenet_bytes};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::NnError;
use crate::iresnet::{IResNetConfig, IResNetLayout};
use crate::layers::BN_EPSILON;
use crate::state_dict::{HostTensor, StateDict};
use crate::{Backbone, BackboneShape};
use onnx_pb::attribute_proto::AttributeType;
use onnx_pb::tensor_proto::DataType;
use onnx_pb::tensor_shape_proto::{dimension, Dimension};
use onnx_pb::type_proto;
use onnx_pb::{AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto};
use proto::{Attribute, Graph, Node};

/// Reads the weights of an IResNet ONNX export (folded or not) into a state
/// dict under `config`'s reference keys.
pub fn read_onnx_iresnet(path: &Path, config: &IResNetConfig) -> Result<StateDict, NnError> {
    read_graph_state(path, |graph| iresnet_state_from_graph(graph, config))
}

/// [`read_onnx_iresnet`] of a model held in memory; `path` only names the
/// source in errors.
pub fn read_onnx_iresnet_bytes(bytes: &[u8], path: &Path, config: &IResNetConfig) -> Result<StateDict, NnError> {
    graph_state(bytes, path, |graph| iresnet_state_from_graph(graph, config))
}

/// Parses the ONNX file at `path` and maps its graph to a state dict; every
/// problem becomes an error naming the file.
fn read_graph_state(path: &Path, to_state: impl FnOnce(&Graph) -> Result<StateDict, String>) -> Result<StateDict, NnError> {
    let bytes = std::fs::read(path).map_err(|source| NnError::Io { path: path.to_path_buf(), source })?;
    graph_state(&bytes, path, to_state)
}

/// [`read_graph_state`] of bytes in memory.
fn graph_state(bytes: &[u8], path: &Path, to_state: impl FnOnce(&Graph) -> Result<StateDict, String>) -> Result<StateDict, NnError> {
    let format_error = |problem: String| NnError::Format { path: path.to_path_buf(), problem };
    let graph = proto::read_model(bytes).map_err(|e| format_error(format!("not a readable ONNX model: {e}")))?;
    to_state(&graph).map_err(format_error)
}

/// [`read_onnx_iresnet`] or [`read_onnx_mobilefacenet`], loaded into a fresh backbone of `shape`.
pub fn load_onnx_weights<B: Backend>(path: &Path, shape: &BackboneShape, device: &B::Device) -> Result<Backbone<B>, NnError> {
    let state = match shape {
        BackboneShape::IResNet(config) => read_onnx_iresnet(path, config)?,
        BackboneShape::MobileFaceNet(config) => read_onnx_mobilefacenet(path, config)?,
    };
    shape.init::<B>(device)?.load_state_dict(shape, &state).map_err(|error| NnError::Checkpoint {
        path: path.to_path_buf(),
        family: "ONNX".into(),
        source: Box::new(error),
    })
}

/// A BatchNorm of the model by its burn path (`layer1.0.bn2`).
type BnPath = String;

/// The model's layers in PyTorch forward order, by the role that finds them in a graph.
struct Slots {
    /// (conv burn path, the BN after it) for 3×3 convolutions.
    conv3: VecDeque<(String, BnPath)>,
    /// The same for the 1×1 projection shortcuts.
    conv1: VecDeque<(String, BnPath)>,
    /// BatchNorms that do not follow a convolution.
    batch_norms: VecDeque<BnPath>,
    prelus: VecDeque<String>,
    linears: VecDeque<String>,
}

impl Slots {
    fn iresnet(config: &IResNetConfig) -> Self {
        let mut slots = Slots {
            conv3: VecDeque::from([("conv1".to_string(), "bn1".to_string())]),
            conv1: VecDeque::new(),
            batch_norms: VecDeque::new(),
            prelus: VecDeque::from(["prelu".to_string()]),
            linears: VecDeque::from(["fc".to_string()]),
        };
        let mut channels = config.stem_width;
        for (stage, (&blocks, &width)) in config.blocks_per_stage.iter().zip(&config.stage_widths).enumerate() {
            for block in 0..blocks {
                let stride = if block == 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{block}", stage + 1);
                slots.batch_norms.push_back(format!("{prefix}.bn1"));
                slots.conv3.push_back((format!("{prefix}.conv1"), format!("{prefix}.bn2")));
                slots.prelus.push_back(format!("{prefix}.prelu"));
                slots.conv3.push_back((format!("{prefix}.conv2"), format!("{prefix}.bn3")));
                let project = match config.layout {
                    IResNetLayout::Insightface => stride != 1 || channels != width,
                    IResNetLayout::Adaface => channels != width,
                };
                if project {
                    slots.conv1.push_back((format!("{prefix}.downsample.conv"), format!("{prefix}.downsample.bn")));
                }
                channels = width;
            }
        }
        slots.batch_norms.push_back("bn2".to_string());
        slots.batch_norms.push_back("features".to_string());
        slots
    }
}

struct StateBuilder<'a> {
    config: &'a IResNetConfig,
    state: StateDict,
}

impl StateBuilder<'_> {
    fn put(&mut self, burn_path: &str, shape: Vec<usize>, values: Vec<f32>) -> Result<(), String> {
        match self.config.torch_key(burn_path) {
            Some(key) => {
                self.state.tensors.insert(key, HostTensor { shape, values });
                Ok(())
            }
            // AdaFace's affine-free feature BN: the graph's γ/β must be the fixed 1/0.
            None => {
                let fixed = if burn_path.ends_with("gamma") { 1.0 } else { 0.0 };
                if values.iter().all(|&v| (v - fixed).abs() < 1e-6) {
                    Ok(())
                } else {
                    Err(format!("`{burn_path}` is fixed at {fixed} in this layout, the graph's differs"))
                }
            }
        }
    }

    /// A BatchNorm from its four tensors; `epsilon` other than 1e-5 moves into the variance.
    fn batch_norm(&mut self, bn: &str, [scale, bias, mean, variance]: [Vec<f32>; 4], epsilon: f64) -> Result<(), String> {
        let channels = scale.len();
        let variance = variance_for_visage_epsilon(variance, epsilon);
        for (leaf, values) in [("gamma", scale), ("beta", bias), ("running_mean", mean), ("running_var", variance)] {
            if values.len() != channels {
                return Err(format!("BatchNorm for `{bn}` has {} values in {leaf}, {channels} in its scale", values.len()));
            }
            self.put(&format!("{bn}.{leaf}"), vec![channels], values)?;
        }
        Ok(())
    }
}

/// The dims and values of the weight `name` that `node` reads (an
/// initializer or a `Constant` node's tensor).
fn graph_initializer(graph: &Graph, name: &str, node: &Node) -> Result<(Vec<usize>, Vec<f32>), String> {
    let tensor = graph.initializers.get(name).ok_or_else(|| {
        format!("{} node '{}' reads '{name}', which is not an initializer (weights computed in the graph are not supported)", node.op_type, node.name)
    })?;
    let values = graph.values_of(tensor).ok_or_else(|| format!("initializer '{name}' is not a float tensor"))??;
    Ok((tensor.dims.clone(), values))
}

/// A `BatchNormalization` node's epsilon (the ONNX default 1e-5 when absent).
fn bn_epsilon(node: &Node) -> f64 {
    match node.attributes.get("epsilon") {
        Some(Attribute::Float(value)) => *value as f64,
        _ => 1e-5,
    }
}

/// A `BatchNormalization` node's scale, bias, mean and variance.
fn bn_tensors(graph: &Graph, node: &Node) -> Result<[Vec<f32>; 4], String> {
    if node.inputs.len() < 5 {
        return Err(format!("BatchNormalization node '{}' has {} inputs, 5 expected", node.name, node.inputs.len()));
    }
    Ok([
        graph_initializer(graph, &node.inputs[1], node)?.1,
        graph_initializer(graph, &node.inputs[2], node)?.1,
        graph_initializer(graph, &node.inputs[3], node)?.1,
        graph_initializer(graph, &node.inputs[4], node)?.1,
    ])
}

/// For each tensor name, the indices of the nodes that read it.
fn consumers_of(graph: &Graph) -> HashMap<&str, Vec<usize>> {
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        for input in &node.inputs {
            consumers.entry(input.as_str()).or_default().push(index);
        }
    }
    consumers
}

/// The BatchNorm that stands for a folded conv's bias: γ 1, β bias, mean 0,
/// var 1 − ε, so that (x − 0)/√(var + ε)·1 + bias = x + bias exactly.
fn identity_bn_with_bias(bias: Vec<f32>) -> [Vec<f32>; 4] {
    let channels = bias.len();
    [vec![1.0; channels], bias, vec![0.0; channels], vec![(1.0 - BN_EPSILON) as f32; channels]]
}

/// A BatchNorm's variance for visage's ε = 1e-5 when the graph's is `epsilon`.
/// An ε that is 1e-5 at f32 precision (graphs store it as a float) is
/// visage's: shifting by the rounding error (2.5e-13) would change the
/// variance of dead channels (≈ 0) for nothing.
fn variance_for_visage_epsilon(variance: Vec<f32>, epsilon: f64) -> Vec<f32> {
    if epsilon as f32 == BN_EPSILON as f32 {
        return variance;
    }
    let shift = (epsilon - BN_EPSILON) as f32;
    variance.into_iter().map(|v| v + shift).collect()
}

fn iresnet_state_from_graph(graph: &Graph, config: &IResNetConfig) -> Result<StateDict, String> {
    let initializer = |name: &str, node: &Node| graph_initializer(graph, name, node);
    let epsilon = bn_epsilon;
    let bn_tensors = |node: &Node| bn_tensors(graph, node);
    let consumers = consumers_of(graph);
    let mut slots = Slots::iresnet(config);
    let mut builder = StateBuilder { config, state: StateDict::default() };
    let mut folded_into_conv = vec![false; graph.nodes.len()];
    let too_many =
        |what: &str, node: &Node| format!("the graph has more {what} than the configured IResNet (node '{}'): a different architecture", node.name);
    for (index, node) in graph.nodes.iter().enumerate() {
        match node.op_type.as_str() {
            "Conv" => {
                let (dims, weight) = initializer(node.inputs.get(1).ok_or("Conv without a weight")?, node)?;
                let (queue, what) = if dims.len() == 4 && dims[2] == 1 && dims[3] == 1 {
                    (&mut slots.conv1, "projection shortcuts (1×1 convolutions)")
                } else {
                    (&mut slots.conv3, "3×3 convolutions")
                };
                let (conv, bn) = queue.pop_front().ok_or_else(|| too_many(what, node))?;
                builder.put(&format!("{conv}.weight"), dims.clone(), weight)?;
                let output = node.outputs.first().map(String::as_str).unwrap_or_default();
                let following_bn = match consumers.get(output).map(Vec::as_slice) {
                    Some(&[next]) if graph.nodes[next].op_type == "BatchNormalization" => Some(next),
                    _ => None,
                };
                if let Some(next) = following_bn {
                    folded_into_conv[next] = true;
                    builder.batch_norm(&bn, bn_tensors(&graph.nodes[next])?, epsilon(&graph.nodes[next]))?;
                } else if let Some(bias_name) = node.inputs.get(2).filter(|name| !name.is_empty()) {
                    // BN folded into the conv: a BatchNorm that only adds the bias.
                    let (_, bias) = initializer(bias_name, node)?;
                    builder.batch_norm(&bn, identity_bn_with_bias(bias), BN_EPSILON)?;
                } else {
                    return Err(format!("Conv node '{}' has neither a bias (folded BatchNorm) nor a BatchNormalization after it", node.name));
                }
            }
            "BatchNormalization" if !folded_into_conv[index] => {
                let bn = slots.batch_norms.pop_front().ok_or_else(|| too_many("BatchNorms", node))?;
                builder.batch_norm(&bn, bn_tensors(node)?, epsilon(node))?;
            }
            "PRelu" => {
                let prelu = slots.prelus.pop_front().ok_or_else(|| too_many("PReLUs", node))?;
                let (_, slopes) = initializer(node.inputs.get(1).ok_or("PRelu without a slope")?, node)?;
                // exported as [C, 1, 1] for broadcasting
                builder.put(&format!("{prelu}.alpha"), vec![slopes.len()], slopes)?;
            }
            "Gemm" => {
                let linear = slots.linears.pop_front().ok_or_else(|| too_many("fully connected layers", node))?;
                let attribute = |name: &str, default: i64| match node.attributes.get(name) {
                    Some(Attribute::Int(value)) => *value,
                    _ => default,
                };
                if attribute("transA", 0) != 0 {
                    return Err(format!("Gemm node '{}' transposes its input (transA), not a Linear layer", node.name));
                }
                for (name, expected) in [("alpha", 1.0), ("beta", 1.0)] {
                    if let Some(Attribute::Float(value)) = node.attributes.get(name) {
                        if *value != expected {
                            return Err(format!("Gemm node '{}' has {name} = {value}, a Linear layer has 1", node.name));
                        }
                    }
                }
                let (dims, weight) = initializer(node.inputs.get(1).ok_or("Gemm without a weight")?, node)?;
                if dims.len() != 2 {
                    return Err(format!("Gemm node '{}' has a weight of dims {dims:?}; a Linear layer's is 2-D", node.name));
                }
                let (dims, weight) = if attribute("transB", 0) != 0 {
                    (dims, weight)
                } else {
                    // stored [in, out]: PyTorch's Linear weight is [out, in]
                    let (rows, columns) = (dims[0], dims[1]);
                    let transposed = (0..columns * rows).map(|i| weight[(i % rows) * columns + i / rows]).collect();
                    (vec![columns, rows], transposed)
                };
                builder.put(&format!("{linear}.weight"), dims, weight)?;
                let bias_name = node.inputs.get(2).ok_or_else(|| format!("Gemm node '{}' has no bias; the FC layer has one", node.name))?;
                let (bias_dims, bias) = initializer(bias_name, node)?;
                builder.put(&format!("{linear}.bias"), vec![bias_dims.iter().product()], bias)?;
            }
            "MatMul" => return Err(format!("MatMul node '{}': a Linear layer exported as MatMul is not read (export with Gemm)", node.name)),
            _ => {}
        }
    }
    let left = [
        ("3×3 convolutions", slots.conv3.len()),
        ("projection shortcuts", slots.conv1.len()),
        ("BatchNorms", slots.batch_norms.len()),
        ("PReLUs", slots.prelus.len()),
        ("fully connected layers", slots.linears.len()),
    ];
    let missing: Vec<String> = left.iter().filter(|(_, count)| *count > 0).map(|(what, count)| format!("{count} {what}")).collect();
    if !missing.is_empty() {
        return Err(format!("the graph lacks {} of the configured IResNet: a different architecture or layout", missing.join(", ")));
    }
    Ok(builder.state)
}

/// A module's float tensors under the reference keys, in PyTorch's layout
/// (rank-2 tensors transposed back to `[out, in]`): the inverse of
/// [`crate::load_state_dict`].
pub fn state_dict_of<B: Backend, M: Module<B>>(module: &M, torch_key: impl Fn(&str) -> Option<String>) -> StateDict {
    struct Collector<F> {
        torch_key: F,
        path: Vec<String>,
        state: StateDict,
    }

    impl<B: Backend, F: Fn(&str) -> Option<String>> ModuleVisitor<B> for Collector<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some(key) = (self.torch_key)(&self.path.join(".")) else { return };
            let tensor = if D == 2 { param.val().transpose() } else { param.val() };
            let shape = tensor.dims().to_vec();
            let values = tensor.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data");
            self.state.tensors.insert(key, HostTensor { shape, values });
        }
    }

    let mut collector = Collector { torch_key, path: Vec::new(), state: StateDict::default() };
    module.visit(&mut collector);
    collector.state
}

impl<B: Backend> Backbone<B> {
    /// The weights under the reference keys (see [`state_dict_of`]).
    pub fn state_dict(&self, shape: &BackboneShape) -> StateDict {
        let key = |path: &str| shape.torch_key(path);
        match self {
            Backbone::IResNet(network) => state_dict_of(network, key),
            Backbone::MobileFaceNet(network) => state_dict_of(network, key),
        }
    }

    /// An ONNX model (serialised ModelProto) computing this backbone in eval mode.
    pub fn to_onnx(&self, shape: &BackboneShape) -> Result<Vec<u8>, NnError> {
        Ok(match shape {
            BackboneShape::IResNet(config) => export_iresnet(config, &self.state_dict(shape)),
            BackboneShape::MobileFaceNet(config) => mobilefacenet::export_mobilefacenet(config, &self.state_dict(shape)),
        })
    }
}

/// Builds the nodes and initializers of the graph.
struct GraphWriter<'a> {
    /// burn path → initializer name (the reference key); `None` for tensors
    /// the layout fixes (AdaFace's affine-free feature BN).
    torch_key: &'a dyn Fn(&str) -> Option<String>,
    state: &'a StateDict,
    graph: GraphProto,
    /// Names of initializers already written (a tensor is written once).
    written: BTreeMap<String, ()>,
    counter: usize,
}

impl GraphWriter<'_> {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Writes the initializer of burn path `burn_path`, or a constant when the
    /// layout fixes it (AdaFace's feature BN), and returns its name.
    fn initializer(&mut self, burn_path: &str, shape_override: Option<Vec<usize>>, fixed: impl FnOnce() -> HostTensor) -> String {
        let (name, tensor) = match (self.torch_key)(burn_path) {
            Some(key) => {
                let tensor = self.state.tensors.get(&key).cloned().unwrap_or_else(|| panic!("state_dict_of yields '{key}'"));
                (key, tensor)
            }
            None => (format!("{burn_path}.fixed"), fixed()),
        };
        if self.written.insert(name.clone(), ()).is_none() {
            let dims = shape_override.unwrap_or(tensor.shape.clone());
            self.graph.initializer.push(proto::tensor_proto(&name, &dims, &tensor.values));
        }
        name
    }

    fn node(&mut self, op_type: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) {
        let name = self.fresh(op_type);
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|input| input.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name),
            op_type: Some(op_type.to_string()),
            attribute,
        });
    }

    fn conv(&mut self, input: &str, burn_path: &str, stride: usize, padding: usize) -> String {
        self.grouped_conv(input, burn_path, stride, padding, 1)
    }

    fn grouped_conv(&mut self, input: &str, burn_path: &str, stride: usize, padding: usize, groups: usize) -> String {
        let weight = self.initializer(&format!("{burn_path}.weight"), None, || unreachable!("convs are stored"));
        let output = self.fresh(burn_path);
        let kernel = self.state.tensors[&weight].shape[2];
        let mut attributes = vec![
            ints_attribute_proto("kernel_shape", &[kernel, kernel]),
            ints_attribute_proto("strides", &[stride, stride]),
            ints_attribute_proto("pads", &[padding; 4]),
        ];
        if groups > 1 {
            attributes.push(int_attribute_proto("group", groups as i64));
        }
        self.node("Conv", &[input, &weight], &output, attributes);
        output
    }

    fn batch_norm(&mut self, input: &str, bn: &str, channels: usize) -> String {
        let constant = |value: f32| move || HostTensor { shape: vec![channels], values: vec![value; channels] };
        let names = [
            self.initializer(&format!("{bn}.gamma"), None, constant(1.0)),
            self.initializer(&format!("{bn}.beta"), None, constant(0.0)),
            self.initializer(&format!("{bn}.running_mean"), None, constant(0.0)),
            self.initializer(&format!("{bn}.running_var"), None, constant(1.0)),
        ];
        let output = self.fresh(bn);
        let inputs = [input, &names[0], &names[1], &names[2], &names[3]];
        let epsilon = AttributeProto {
            name: Some("epsilon".into()),
            r#type: Some(AttributeType::Float as i32),
            f: Some(BN_EPSILON as f32),
            ..AttributeProto::default()
        };
        self.node("BatchNormalization", &inputs, &output, vec![epsilon]);
        output
    }

    fn prelu(&mut self, input: &str, prelu: &str, channels: usize) -> String {
        let slope = self.initializer(&format!("{prelu}.alpha"), Some(vec![channels, 1, 1]), || unreachable!("slopes are stored"));
        let output = self.fresh(prelu);
        self.node("PRelu", &[input, &slope], &output, Vec::new());
        output
    }
}

/// An `INTS` attribute.
fn ints_attribute_proto(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.iter().map(|&value| value as i64).collect(),
        ..AttributeProto::default()
    }
}

/// An `INT` attribute.
fn int_attribute_proto(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Int as i32), i: Some(value), ..AttributeProto::default() }
}

/// A value named `name` of tensor type `[batch, dims…]` FLOAT, `batch` the symbolic first axis.
fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dimension = |value| Dimension { value: Some(value) };
    let dim = std::iter::once(dimension(dimension::Value::DimParam("batch".into())))
        .chain(dims.iter().map(|&size| dimension(dimension::Value::DimValue(size as i64))))
        .collect();
    let tensor = type_proto::Tensor { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: Some(name.into()), r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)) }) }
}

/// ONNX IR version 7 and opset 13: read by every ONNX Runtime since 1.7.
const IR_VERSION: i64 = 7;
const OPSET: i64 = 13;
/// The name of an exported graph's input: faces `[batch, 3, size, size]`,
/// normalised as the model's configuration says.
pub const INPUT_NAME: &str = "data";
/// The name of an exported graph's output: raw features `[batch, embedding size]`.
pub const OUTPUT_NAME: &str = "features";

fn export_iresnet(config: &IResNetConfig, state: &StateDict) -> Vec<u8> {
    let torch_key = |path: &str| config.torch_key(path);
    let mut writer = GraphWriter { torch_key: &torch_key, state, graph: GraphProto::default(), written: BTreeMap::new(), counter: 0 };
    let x = writer.conv(INPUT_NAME, "conv1", 1, 1);
    let x = writer.batch_norm(&x, "bn1", config.stem_width);
    let mut x = writer.prelu(&x, "prelu", config.stem_width);
    let mut channels = config.stem_width;
    for (stage, (&blocks, &width)) in config.blocks_per_stage.iter().zip(&config.stage_widths).enumerate() {
        for block in 0..blocks {
            let stride = if block == 0 { 2 } else { 1 };
            let prefix = format!("layer{}.{block}", stage + 1);
            let residual = writer.batch_norm(&x, &format!("{prefix}.bn1"), channels);
            let residual = writer.conv(&residual, &format!("{prefix}.conv1"), 1, 1);
            let residual = writer.batch_norm(&residual, &format!("{prefix}.bn2"), width);
            let residual = writer.prelu(&residual, &format!("{prefix}.prelu"), width);
            let residual = writer.conv(&residual, &format!("{prefix}.conv2"), stride, 1);
            let residual = writer.batch_norm(&residual, &format!("{prefix}.bn3"), width);
            let project = match config.layout {
                IResNetLayout::Insightface => stride != 1 || channels != width,
                IResNetLayout::Adaface => channels != width,
            };
            let shortcut = if project {
                let shortcut = writer.conv(&x, &format!("{prefix}.downsample.conv"), stride, 0);
                writer.batch_norm(&shortcut, &format!("{prefix}.downsample.bn"), width)
            } else if stride > 1 {
                // AdaFace's MaxPool2d(1, stride): subsampling
                let output = writer.fresh(&format!("{prefix}.subsample"));
                writer.node(
                    "MaxPool",
                    &[&x],
                    &output,
                    vec![ints_attribute_proto("kernel_shape", &[1, 1]), ints_attribute_proto("strides", &[stride, stride])],
                );
                output
            } else {
                x.clone()
            };
            let sum = writer.fresh(&format!("{prefix}.add"));
            writer.node("Add", &[&residual, &shortcut], &sum, Vec::new());
            x = sum;
            channels = width;
        }
    }
    let x = writer.batch_norm(&x, "bn2", channels);
    let flat = writer.fresh("flatten");
    writer.node("Flatten", &[&x], &flat, vec![int_attribute_proto("axis", 1)]);
    let weight = writer.initializer("fc.weight", None, || unreachable!("fc is stored"));
    let bias = writer.initializer("fc.bias", None, || unreachable!("fc is stored"));
    let fc = writer.fresh("fc");
    writer.node("Gemm", &[&flat, &weight, &bias], &fc, vec![int_attribute_proto("transB", 1)]);
    let features = writer.batch_norm(&fc, "features", config.embedding_size);
    writer.finish(&features, "visage-iresnet", config.input_size, config.embedding_size)
}

impl GraphWriter<'_> {
    /// Names `features` the graph's output, declares input and output and
    /// wraps the graph in a ModelProto.
    fn finish(mut self, features: &str, graph_name: &str, input_size: usize, embedding_size: usize) -> Vec<u8> {
        self.node("Identity", &[features], OUTPUT_NAME, Vec::new());
        self.graph.input.push(value_info(INPUT_NAME, &[3, input_size, input_size]));
        self.graph.output.push(value_info(OUTPUT_NAME, &[embedding_size]));
        self.graph.name = Some(graph_name.into());
        let model = ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
            producer_name: Some("visage".into()),
            graph: Some(self.graph),
        };
        prost::Message::encode_to_vec(&model)
    }
}
