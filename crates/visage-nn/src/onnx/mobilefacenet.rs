//! MobileFaceNet weights from and to ONNX.
//!
//! MobileFaceNet is one chain of convolutions (the residual adds only join a
//! unit's input back in), so the import walks the graph's `Conv` nodes in
//! order against the network's convolutions in forward order, checking each
//! one's kernel, stride, groups and padding. The BatchNorm after a conv is the
//! `BatchNormalization` node that reads its output (an unfolded export, as
//! paddle2onnx writes) or, when the exporter folded it (PyTorch in eval mode),
//! an identity BatchNorm that adds the conv's bias. The same holds for the
//! embedding layer (`Linear` + `BatchNorm1d` in insightface's code), which
//! exports as a 1×1 `Conv` (Paddle, the paper's "linear conv") or a `Gemm`.
//! `PRelu` nodes fill the PReLUs in order. Activations other than PReLU
//! (ReLU, ReLU6 as `Clip`) and pooling are refused naming the node: they are
//! a different network, not a different export of this one.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use super::onnx_pb::GraphProto;
use super::proto::{Attribute, Graph, Node};
use super::{
    bn_epsilon, bn_tensors, consumers_of, graph_initializer, graph_state, identity_bn_with_bias, int_attribute_proto, read_graph_state,
    variance_for_visage_epsilon, GraphWriter,
};
use crate::error::NnError;
use crate::layers::BN_EPSILON;
use crate::mobilefacenet::{mobilefacenet_key, MobileFaceNetConfig};
use crate::state_dict::{HostTensor, StateDict};

/// Reads the weights of a MobileFaceNet ONNX model (BatchNorms folded or not)
/// into a state dict under `config`'s reference keys (insightface's).
pub fn read_onnx_mobilefacenet(path: &Path, config: &MobileFaceNetConfig) -> Result<StateDict, NnError> {
    config.validate()?;
    read_graph_state(path, |graph| state_from_graph(graph, config))
}

/// [`read_onnx_mobilefacenet`] of a model held in memory; `path` only names
/// the source in errors.
pub fn read_onnx_mobilefacenet_bytes(bytes: &[u8], path: &Path, config: &MobileFaceNetConfig) -> Result<StateDict, NnError> {
    config.validate()?;
    graph_state(bytes, path, |graph| state_from_graph(graph, config))
}

/// One convolution of the network in forward order.
#[derive(Debug, Clone)]
struct ConvSlot {
    /// burn path of the conv (`down2.expand.conv`), or of the Linear for the embedding layer.
    path: String,
    /// burn path of the BatchNorm that follows it.
    bn: String,
    kernel: usize,
    stride: usize,
    groups: usize,
    padding: usize,
    /// Followed by a PReLU (a ConvBlock) rather than nothing (a LinearBlock).
    prelu: bool,
    /// The embedding layer: a Linear, `[out, in]` in the state dict.
    linear: bool,
    /// Ends a residual unit: its BN's output is added to the unit's input.
    closes_residual: bool,
}

impl ConvSlot {
    fn block(path: &str, kernel: usize, stride: usize, groups: usize, prelu: bool) -> Self {
        Self {
            path: format!("{path}.conv"),
            bn: format!("{path}.bn"),
            kernel,
            stride,
            groups,
            padding: kernel / 2,
            prelu,
            linear: false,
            closes_residual: false,
        }
    }
}

/// The convolutions of `config` in forward order (see the layout in
/// [`crate::mobilefacenet`]).
fn conv_slots(config: &MobileFaceNetConfig) -> Vec<ConvSlot> {
    let mut slots = vec![ConvSlot::block("stem", 3, 2, 1, true)];
    let [b1, b2, b3, b4] = config.blocks_per_stage;
    let [e1, e2, e3, e4] = config.residual_expansion;
    let [d2, d3, d4] = config.downsample_expansion;
    let depthwise = |slots: &mut Vec<ConvSlot>, prefix: &str, expansion: usize, stride: usize, residual: bool| {
        slots.push(ConvSlot::block(&format!("{prefix}.expand"), 1, 1, 1, true));
        slots.push(ConvSlot::block(&format!("{prefix}.depthwise"), 3, stride, expansion, true));
        slots.push(ConvSlot { closes_residual: residual, ..ConvSlot::block(&format!("{prefix}.project"), 1, 1, 1, false) });
    };
    let residual = |slots: &mut Vec<ConvSlot>, stage: &str, units: usize, expansion: usize| {
        for unit in 0..units {
            depthwise(slots, &format!("{stage}.blocks.{unit}"), expansion, 1, true);
        }
    };
    if b1 == 1 {
        slots.push(ConvSlot::block("stem_dw", 3, 1, config.stem_groups, true));
    } else {
        residual(&mut slots, "stage1", b1, e1);
    }
    depthwise(&mut slots, "down2", d2, 2, false);
    residual(&mut slots, "stage2", b2, e2);
    depthwise(&mut slots, "down3", d3, 2, false);
    residual(&mut slots, "stage3", b3, e3);
    depthwise(&mut slots, "down4", d4, 2, false);
    residual(&mut slots, "stage4", b4, e4);
    slots.push(ConvSlot::block("conv_sep", 1, 1, 1, true));
    slots.push(ConvSlot { padding: 0, ..ConvSlot::block("features.dw", config.feature_map_size(), 1, config.head_width, false) });
    slots.push(ConvSlot {
        path: "features.linear".into(),
        bn: "features.norm".into(),
        kernel: 1,
        stride: 1,
        groups: 1,
        padding: 0,
        prelu: false,
        linear: true,
        closes_residual: false,
    });
    slots
}

/// Ops that make a graph a different network than insightface's MobileFaceNet.
const FOREIGN_OPS: [&str; 12] =
    ["Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "MatMul"];

fn put(state: &mut StateDict, burn_path: &str, shape: Vec<usize>, values: Vec<f32>) {
    state.tensors.insert(mobilefacenet_key(burn_path), HostTensor { shape, values });
}

fn put_batch_norm(state: &mut StateDict, bn: &str, [scale, bias, mean, variance]: [Vec<f32>; 4], epsilon: f64) -> Result<(), String> {
    let channels = scale.len();
    let variance = variance_for_visage_epsilon(variance, epsilon);
    for (leaf, values) in [("gamma", scale), ("beta", bias), ("running_mean", mean), ("running_var", variance)] {
        if values.len() != channels {
            return Err(format!("BatchNorm for `{bn}` has {} values in {leaf}, {channels} in its scale", values.len()));
        }
        put(state, &format!("{bn}.{leaf}"), vec![channels], values);
    }
    Ok(())
}

fn int_attribute(node: &Node, name: &str, default: i64) -> i64 {
    match node.attributes.get(name) {
        Some(Attribute::Int(value)) => *value,
        _ => default,
    }
}

fn ints_attribute_of(node: &Node, name: &str) -> Option<Vec<i64>> {
    match node.attributes.get(name) {
        Some(Attribute::Ints(values)) => Some(values.clone()),
        _ => None,
    }
}

/// The Conv node's geometry must be the slot's, or the weights would load
/// into a layer that computes something else.
fn check_conv_geometry(node: &Node, dims: &[usize], slot: &ConvSlot) -> Result<(), String> {
    let what = |problem: String| format!("Conv node '{}' (for `{}`): {problem}", node.name, slot.path);
    if dims.len() != 4 || dims[2] != slot.kernel || dims[3] != slot.kernel {
        return Err(what(format!("weight {dims:?}, the network has a {k}×{k} kernel here", k = slot.kernel)));
    }
    let groups = int_attribute(node, "group", 1) as usize;
    if groups != slot.groups {
        return Err(what(format!("groups {groups}, the network has {}", slot.groups)));
    }
    let strides = ints_attribute_of(node, "strides").unwrap_or(vec![1, 1]);
    if strides.iter().any(|&s| s as usize != slot.stride) {
        return Err(what(format!("strides {strides:?}, the network has {}", slot.stride)));
    }
    let pads = ints_attribute_of(node, "pads").unwrap_or(vec![0; 4]);
    if pads.iter().any(|&p| p as usize != slot.padding) {
        return Err(what(format!("pads {pads:?}, the network pads {} on every side", slot.padding)));
    }
    Ok(())
}

fn state_from_graph(graph: &Graph, config: &MobileFaceNetConfig) -> Result<StateDict, String> {
    let slots = conv_slots(config);
    let expected_adds = slots.iter().filter(|slot| slot.closes_residual).count();
    let expected_prelus: VecDeque<String> =
        slots.iter().filter(|slot| slot.prelu).map(|slot| slot.path.trim_end_matches(".conv").to_string() + ".prelu").collect();
    let mut slots: VecDeque<ConvSlot> = slots.into();
    let mut prelus = expected_prelus;
    let consumers = consumers_of(graph);
    let mut state = StateDict::default();
    let mut read_as_bn_of_conv = vec![false; graph.nodes.len()];
    let mut adds = 0;
    let too_many = |what: &str, node: &Node| {
        format!("the graph has more {what} than the configured MobileFaceNet (node '{}'): a different architecture or width", node.name)
    };
    for (index, node) in graph.nodes.iter().enumerate() {
        let op = node.op_type.as_str();
        match op {
            "Conv" | "Gemm" => {
                let slot = slots.pop_front().ok_or_else(|| too_many("convolutions", node))?;
                let (dims, weight) = graph_initializer(graph, node.inputs.get(1).ok_or("a Conv/Gemm without a weight")?, node)?;
                let (shape, weight) = if op == "Gemm" {
                    if !slot.linear {
                        return Err(format!("Gemm node '{}' where the network has the convolution `{}`", node.name, slot.path));
                    }
                    if dims.len() != 2 || int_attribute(node, "transA", 0) != 0 {
                        return Err(format!("Gemm node '{}' is not a Linear layer (weight {dims:?}, transA)", node.name));
                    }
                    if int_attribute(node, "transB", 0) != 0 {
                        (dims, weight)
                    } else {
                        let (rows, columns) = (dims[0], dims[1]);
                        let transposed = (0..columns * rows).map(|i| weight[(i % rows) * columns + i / rows]).collect();
                        (vec![columns, rows], transposed)
                    }
                } else {
                    check_conv_geometry(node, &dims, &slot)?;
                    if slot.linear {
                        // a 1×1 conv over the 1×1 map: the Linear's [out, in] weight
                        (vec![dims[0], dims[1]], weight)
                    } else {
                        (dims, weight)
                    }
                };
                put(&mut state, &format!("{}.weight", slot.path), shape, weight);
                let output = node.outputs.first().map(String::as_str).unwrap_or_default();
                let following_bn = match consumers.get(output).map(Vec::as_slice) {
                    Some(&[next]) if graph.nodes[next].op_type == "BatchNormalization" => Some(next),
                    _ => None,
                };
                if let Some(next) = following_bn {
                    read_as_bn_of_conv[next] = true;
                    put_batch_norm(&mut state, &slot.bn, bn_tensors(graph, &graph.nodes[next])?, bn_epsilon(&graph.nodes[next]))?;
                } else if let Some(bias_name) = node.inputs.get(2).filter(|name| !name.is_empty()) {
                    let (_, bias) = graph_initializer(graph, bias_name, node)?;
                    put_batch_norm(&mut state, &slot.bn, identity_bn_with_bias(bias), BN_EPSILON)?;
                } else {
                    return Err(format!(
                        "{op} node '{}' (for `{}`) has neither a bias (folded BatchNorm) nor a BatchNormalization after it",
                        node.name, slot.path
                    ));
                }
            }
            "BatchNormalization" if !read_as_bn_of_conv[index] => {
                return Err(format!("BatchNormalization node '{}' does not follow a convolution; MobileFaceNet has no such BatchNorm", node.name));
            }
            "PRelu" => {
                let prelu = prelus.pop_front().ok_or_else(|| too_many("PReLUs", node))?;
                let (_, slopes) = graph_initializer(graph, node.inputs.get(1).ok_or("PRelu without a slope")?, node)?;
                put(&mut state, &format!("{prelu}.alpha"), vec![slopes.len()], slopes);
            }
            "Add" => adds += 1,
            _ if FOREIGN_OPS.contains(&op) => {
                return Err(format!(
                    "{op} node '{}': not part of insightface's MobileFaceNet (PReLU activations, no pooling, no concatenation): a different network",
                    node.name
                ));
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    if !slots.is_empty() {
        missing.push(format!("{} convolutions (next: `{}`)", slots.len(), slots[0].path));
    }
    if !prelus.is_empty() {
        missing.push(format!("{} PReLUs", prelus.len()));
    }
    if !missing.is_empty() {
        return Err(format!("the graph lacks {} of the configured MobileFaceNet: a different architecture or width", missing.join(", ")));
    }
    if adds != expected_adds {
        return Err(format!("the graph has {adds} Add nodes, the configured MobileFaceNet {expected_adds} residual units"));
    }
    Ok(state)
}

/// The unfolded MobileFaceNet graph (Conv with groups, BatchNormalization,
/// PRelu, Add; the GDC head's Linear as Flatten + Gemm), initializers under
/// insightface's keys, so [`read_onnx_mobilefacenet`] reads it back exactly.
pub(super) fn export_mobilefacenet(config: &MobileFaceNetConfig, state: &StateDict) -> Vec<u8> {
    let torch_key = |path: &str| Some(mobilefacenet_key(path));
    let mut writer = GraphWriter { torch_key: &torch_key, state, graph: GraphProto::default(), written: BTreeMap::new(), counter: 0 };
    let channels_of = |writer: &GraphWriter<'_>, conv: &str| writer.state.tensors[&mobilefacenet_key(&format!("{conv}.weight"))].shape[0];
    let mut x = super::INPUT_NAME.to_string();
    let mut unit_input = x.clone();
    for slot in conv_slots(config) {
        if slot.linear {
            let flat = writer.fresh("flatten");
            writer.node("Flatten", &[&x], &flat, vec![int_attribute_proto("axis", 1)]);
            let weight = writer.initializer(&format!("{}.weight", slot.path), None, || unreachable!("the linear is stored"));
            let linear = writer.fresh(&slot.path);
            writer.node("Gemm", &[&flat, &weight], &linear, vec![int_attribute_proto("transB", 1)]);
            x = writer.batch_norm(&linear, &slot.bn, config.embedding_size);
            continue;
        }
        if slot.path.ends_with(".expand.conv") {
            unit_input = x.clone();
        }
        let channels = channels_of(&writer, &slot.path);
        x = writer.grouped_conv(&x, &slot.path, slot.stride, slot.padding, slot.groups);
        x = writer.batch_norm(&x, &slot.bn, channels);
        if slot.prelu {
            x = writer.prelu(&x, &slot.path.replace(".conv", ".prelu"), channels);
        }
        if slot.closes_residual {
            let sum = writer.fresh(&slot.path.replace(".project.conv", ".add"));
            writer.node("Add", &[&x, &unit_input], &sum, Vec::new());
            x = sum;
        }
    }
    writer.finish(&x, "visage-mobilefacenet", config.input_size, config.embedding_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_the_papers_network() {
        // mbf at scale 1 is the paper's MobileFaceNet: 50 convolutions
        // (49 + the embedding layer), 33 PReLUs, 12 residual units — the node
        // counts of the Paddle and faceplugin exports.
        let slots = conv_slots(&MobileFaceNetConfig::mbf_scaled(1));
        assert_eq!(slots.len(), 50);
        assert_eq!(slots.iter().filter(|slot| slot.prelu).count(), 33);
        assert_eq!(slots.iter().filter(|slot| slot.closes_residual).count(), 12);
        assert_eq!(slots[1].groups, 64);
        assert_eq!(slots[48].kernel, 7);
        assert!(slots[49].linear);
    }
}
