//! conv2d as one custom operation of burn's autodiff over flex.
//!
//! burn's own conv2d records an op whose backward step calls
//! `conv2d_x_backward` and `conv2d_weight_backward` separately; this one keeps
//! the input and the weight (as burn does, by checkpointing their nodes) and
//! computes the gradients its parents need in one pass over the images.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Shape, TensorData};

use super::geometry::ConvGeometry;
use super::kernels::{self, Wanted};

/// A float tensor of `Autodiff<Flex>` (a flex tensor and its graph node).
pub(crate) type AutodiffFlexTensor = burn::tensor::ops::FloatTensor<Autodiff<Flex>>;

/// The backward step of [`conv2d`].
#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 2> for Conv2dBackward {
    /// The checkpointed input and weight, and the geometry.
    type State = (NodeId, NodeId, ConvGeometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let output_grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, geometry) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state).to_contiguous();
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state).to_contiguous();
        let output_grad = output_grad.to_contiguous();
        let wanted = Wanted { input: node_x.is_some(), weight: node_weight.is_some() };
        let (input_grad, weight_grad) =
            kernels::backward(&geometry, x.storage::<f32>(), weight.storage::<f32>(), output_grad.storage::<f32>(), wanted);
        if let (Some(node), Some(grad)) = (node_x, input_grad) {
            let [height, width] = geometry.input;
            grads.register::<Flex>(node.id, flex_tensor(grad, [geometry.batch, geometry.channels_in, height, width]));
        }
        if let (Some(node), Some(grad)) = (node_weight, weight_grad) {
            let [kernel_h, kernel_w] = geometry.kernel;
            grads.register::<Flex>(
                node.id,
                flex_tensor(grad, [geometry.channels_out, geometry.weight_len() / geometry.channels_out / geometry.taps(), kernel_h, kernel_w]),
            );
        }
    }
}

/// The forward pass on flex tensors.
pub(crate) fn flex_forward(x: FlexTensor, weight: FlexTensor, geometry: &ConvGeometry) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let output = kernels::forward(geometry, x.storage::<f32>(), weight.storage::<f32>());
    let [height, width] = geometry.output;
    flex_tensor(output, [geometry.batch, geometry.channels_out, height, width])
}

/// conv2d of `Autodiff<Flex>` tensors, tracked as one operation.
pub(crate) fn conv2d(x: AutodiffFlexTensor, weight: AutodiffFlexTensor, geometry: ConvGeometry) -> AutodiffFlexTensor {
    match Conv2dBackward.prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            prep.finish((x_state, weight_state, geometry), flex_forward(x.primitive, weight.primitive, &geometry))
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_forward(x.primitive, weight.primitive, &geometry)),
    }
}

fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, Shape::new(shape)))
}
