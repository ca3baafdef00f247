//! Training across processes and machines: `N` copies of `visage train`
//! (nodes), each running its `[parallel] workers`, that take every step
//! together. The global world is `N × workers`.
//!
//! - **Joining.** Node 0 starts burn-collective's orchestrator on the
//!   coordinator's port; every node registers with it (one burn-collective
//!   peer per node) and opens its tensor service on its data port. A node
//!   that does not arrive within the timeout fails the others' join, each
//!   naming what it waited for.
//! - **Data.** Node `r` reads loader rank `r` of `N` with `batch_size / N`
//!   images per step and splits them over its workers interleaved
//!   ([`crate::parallel`]), so worker `k` of node `r` sees the rows that
//!   worker `r + N·k` of one process with `N × workers` workers would.
//! - **One all-reduce per step.** Each node sums its workers' gradients, and
//!   one flat tensor goes through burn-collective's global all-reduce (sum,
//!   ring): every trainable parameter's gradient (zeros where a node has
//!   none), the non-trainable floats (BatchNorm's running statistics,
//!   averaged over nodes as the workers' are within a node), and per global
//!   worker a block of numbers only that worker fills (rows, weighted loss,
//!   top-1 count, feature-norm sum, AdaFace's f64 statistics as four 16-bit
//!   pieces each, a failure flag). Adding zeros is exact, so every node reads
//!   every worker's numbers exactly and adds them up in the same order:
//!   every node computes the same loss, metrics and head state, and takes the
//!   same optimiser step on the same summed gradient, clipped after the sum.
//! - **Exactness.** Two nodes of one worker add `a + b` where one process
//!   with two workers adds `a + b`: IEEE addition commutes, so the two runs
//!   are bit-identical. With more nodes the ring adds in another order than
//!   one process does and the results agree to rounding.
//! - **Failures.** Every collective call runs under a timeout; a node that
//!   died, hangs or never arrived makes the others stop with
//!   [`TrainError::Collective`] instead of waiting for ever.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation};

use crate::error::{Result, TrainError};
use crate::parallel::ShardSummary;

/// Where this process sits among the nodes of a run, and how to reach the others.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLayout {
    /// Nodes (processes) in the run, at least 1.
    pub nodes: usize,
    /// This node's rank, `0..nodes`; node 0 hosts the orchestrator and writes
    /// the checkpoints, the metrics and the verification log.
    pub node_rank: usize,
    /// `HOST:PORT` of node 0's orchestrator, the same on every node.
    pub coordinator: String,
    /// The host other nodes reach this one at; by default the address of the
    /// interface that routes to the coordinator.
    pub node_host: Option<String>,
    /// This node's tensor-service port; by default the coordinator's port + 1 + rank.
    pub data_port: Option<u16>,
    /// How long to wait for the other nodes to join, and for each step's
    /// all-reduce to complete, before the run stops with an error.
    pub timeout: Duration,
}

impl NodeLayout {
    /// Checks the ranks and the coordinator's address; the error names the flag.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if self.node_rank >= self.nodes {
            return Err(format!("--node-rank {} must be below --nodes {}", self.node_rank, self.nodes));
        }
        if self.timeout.is_zero() {
            return Err("the collective timeout must be positive".into());
        }
        self.coordinator_address().map(|_| ())
    }

    fn coordinator_address(&self) -> std::result::Result<SocketAddr, String> {
        self.coordinator
            .to_socket_addrs()
            .map_err(|e| format!("--coordinator {}: not a HOST:PORT ({e})", self.coordinator))?
            .next()
            .ok_or_else(|| format!("--coordinator {}: resolves to no address", self.coordinator))
    }

    fn data_port(&self, coordinator: SocketAddr) -> std::result::Result<u16, String> {
        match self.data_port {
            Some(port) => Ok(port),
            None => u16::try_from(usize::from(coordinator.port()) + 1 + self.node_rank)
                .map_err(|_| format!("--coordinator port {} + 1 + rank {} is not a port; give --data-port", coordinator.port(), self.node_rank)),
        }
    }

    /// The host the other nodes reach this one at: `node_host`, or the local
    /// address of the route to the coordinator (no packet is sent).
    fn node_host(&self, coordinator: SocketAddr) -> std::result::Result<String, String> {
        if let Some(host) = &self.node_host {
            return Ok(host.clone());
        }
        let local = UdpSocket::bind(if coordinator.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
            .and_then(|socket| socket.connect(coordinator).and_then(|_| socket.local_addr()))
            .map_err(|e| format!("no route to the coordinator {coordinator} ({e}); give --node-host"))?;
        Ok(match local.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        })
    }

    fn describe(&self) -> String {
        format!("node {} of {}", self.node_rank, self.nodes)
    }
}

/// This node's membership of the run: burn-collective registered on the
/// inner backend `B` (autodiff backends all-reduce their inner tensors),
/// and on node 0 the orchestrator's runtime.
pub(crate) struct Collective<B: Backend> {
    layout: NodeLayout,
    peer: PeerId,
    /// Node 0's orchestrator; dropped (stopped) with the collective.
    _orchestrator: Option<tokio::runtime::Runtime>,
    /// Time spent in all-reduces so far.
    pub(crate) communication: Duration,
    _backend: std::marker::PhantomData<B>,
}

impl<B: Backend> Collective<B> {
    /// Starts the orchestrator (node 0), registers this node and waits for
    /// all the others, at most `layout.timeout`.
    pub(crate) fn join(layout: &NodeLayout, device: &B::Device) -> Result<Self> {
        let config_error = |message: String| TrainError::Collective { node: layout.describe(), message };
        layout.validate().map_err(config_error)?;
        let coordinator = layout.coordinator_address().map_err(config_error)?;
        let data_port = layout.data_port(coordinator).map_err(config_error)?;
        let node_host = layout.node_host(coordinator).map_err(config_error)?;
        silence_network_logs();

        // burn-communication's servers bind 0.0.0.0 inside a spawned task and
        // drop a failure to bind; bind here first so a taken port is an error.
        let free = |port: u16, what: &str| {
            TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| config_error(format!("cannot listen on {what} port {port}: {e}")))
        };
        let orchestrator = if layout.node_rank == 0 {
            free(coordinator.port(), "the coordinator's")?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("visage-orchestrator")
                .enable_all()
                .build()
                .map_err(|e| config_error(format!("cannot start the orchestrator's runtime: {e}")))?;
            runtime.spawn(burn_collective::start_global_orchestrator(coordinator.port()));
            Some(runtime)
        } else {
            None
        };
        free(data_port, "the tensor service's")?;

        let global_address = format!("ws://{coordinator}").parse().map_err(config_error)?;
        let node_address = format!("ws://{node_host}:{data_port}").parse().map_err(config_error)?;
        let config = CollectiveConfig::default()
            .with_num_devices(1)
            .with_num_nodes(layout.nodes as u32)
            .with_global_address(global_address)
            .with_node_address(node_address)
            .with_data_service_port(data_port)
            .with_global_all_reduce_strategy(AllReduceStrategy::Ring);
        let peer = PeerId(layout.node_rank as u32);
        let device = device.clone();
        let registered = within(layout.timeout, move || burn_collective::register::<B>(peer, device, config));
        match registered {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(config_error(format!("could not join the run at {coordinator}: {e:?}"))),
            Err(Waited::Timeout) => {
                return Err(config_error(format!(
                    "not all {} nodes joined at the coordinator {coordinator} within {} s; start every node with the same --nodes and --coordinator (node 0 hosts it), or raise --timeout-s",
                    layout.nodes,
                    layout.timeout.as_secs_f64()
                )))
            }
            Err(Waited::Died) => return Err(config_error(format!("the collective failed while joining at {coordinator}"))),
        }
        Ok(Self { layout: layout.clone(), peer, _orchestrator: orchestrator, communication: Duration::ZERO, _backend: std::marker::PhantomData })
    }

    /// Sums `values` over all nodes; `what` names the exchange in errors.
    pub(crate) fn all_reduce_sum(&mut self, values: Tensor<B, 1>, what: &str) -> Result<Tensor<B, 1>> {
        let started = Instant::now();
        let peer = self.peer;
        let primitive = values.into_primitive().tensor();
        let reduced = within(self.layout.timeout, move || burn_collective::all_reduce::<B>(peer, primitive, ReduceOperation::Sum));
        self.communication += started.elapsed();
        let failed = |message: String| TrainError::Collective { node: self.layout.describe(), message };
        match reduced {
            Ok(Ok(sum)) => Ok(Tensor::from_primitive(TensorPrimitive::Float(sum))),
            Ok(Err(e)) => Err(failed(format!("{what}: the all-reduce failed: {e:?}; another node has probably stopped"))),
            Err(Waited::Timeout) => Err(failed(format!(
                "{what}: the all-reduce did not complete within {} s; another node has stopped or hangs (or is slower than --timeout-s allows)",
                self.layout.timeout.as_secs_f64()
            ))),
            Err(Waited::Died) => Err(failed(format!("{what}: the collective failed; another node has probably stopped"))),
        }
    }

    /// Leaves the run; a node that cannot say goodbye within a few seconds
    /// (the orchestrator already gone with node 0) just exits.
    pub(crate) fn finish(self) {
        let peer = self.peer;
        let _ = within(Duration::from_secs(5).min(self.layout.timeout), move || burn_collective::finish_collective::<B>(peer));
    }
}

/// burn-communication installs a tracing subscriber that prints every
/// transfer on stdout; a silent global one installed first keeps the
/// CLI's output its own (a process that already has one keeps it).
fn silence_network_logs() {
    let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::none());
}

enum Waited {
    Timeout,
    Died,
}

/// Runs `job` on a thread of its own and waits at most `timeout` for it: a
/// blocked collective call cannot be cancelled, but the caller can stop
/// waiting, report and exit.
fn within<T: Send + 'static>(timeout: Duration, job: impl FnOnce() -> T + Send + 'static) -> std::result::Result<T, Waited> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("visage-collective".into())
        .spawn(move || {
            let _ = sender.send(job());
        })
        .map_err(|_| Waited::Died)?;
    receiver.recv_timeout(timeout).map_err(|e| match e {
        RecvTimeoutError::Timeout => Waited::Timeout,
        RecvTimeoutError::Disconnected => Waited::Died,
    })
}

/// Numbers per global worker in a step's exchange: present, rows, weighted
/// loss, top-1 count (−1: none), feature-norm sum, failed, and AdaFace's
/// mean and standard deviation as four 16-bit pieces each (−1: none).
const SLOT: usize = 14;

/// What all nodes agree on after a step's exchange.
pub(crate) struct Exchanged {
    /// The gradient summed over every worker of every node.
    pub grads: GradientsParams,
    /// Every global worker's summary, in global worker order.
    pub shards: Vec<ShardSummary>,
    /// The nodes whose step failed locally (non-finite features), if any.
    pub failed_nodes: Vec<usize>,
}

/// What one node brings to a step's exchange.
pub(crate) struct NodeStep<'a> {
    /// The node's gradient sum over its workers (zero-filled).
    pub grads: GradientsParams,
    /// Its workers' summaries, in worker order.
    pub shards: &'a [ShardSummary],
    /// `[parallel] workers` (the same on every node).
    pub workers: usize,
    /// Whether its step failed before its gradients (non-finite features).
    pub failed: bool,
}

/// One step's exchange (see the module docs). The model's non-trainable
/// floats become their mean over the nodes.
pub(crate) fn exchange_step<B: AutodiffBackend, M: Module<B>>(
    collective: &mut Collective<B::InnerBackend>,
    model: M,
    local: NodeStep<'_>,
    device: &B::Device,
    step: u64,
) -> Result<(M, Exchanged)> {
    let NodeStep { grads, shards, workers, failed } = local;
    let (nodes, rank) = (collective.layout.nodes, collective.layout.node_rank);
    let mut flat = Flatten::<B> { grads: &grads, parts: Vec::new(), device: device.clone() };
    model.visit(&mut flat);
    let mut slots = vec![0f32; nodes * workers * SLOT];
    for (k, shard) in shards.iter().enumerate() {
        let slot = &mut slots[(rank + nodes * k) * SLOT..][..SLOT];
        write_slot(slot, shard, failed && k == 0);
    }
    if shards.is_empty() && failed {
        slots[rank * SLOT + 5] = 1.0;
    }
    let mut parts = flat.parts;
    let model_len: usize = parts.iter().map(|t| t.dims()[0]).sum();
    parts.push(Tensor::from_data(TensorData::new(slots, [nodes * workers * SLOT]), device));
    let summed = collective.all_reduce_sum(Tensor::cat(parts, 0), &format!("step {step}"))?;

    let mut unflatten = Unflatten::<B> { flat: summed.clone().slice(0..model_len), offset: 0, grads: GradientsParams::new(), nodes: nodes as f32 };
    let model = model.map(&mut unflatten);
    let slots = summed.slice(model_len..model_len + nodes * workers * SLOT).into_data().to_vec::<f32>().map_err(|e| TrainError::Collective {
        node: collective.layout.describe(),
        message: format!("step {step}: the exchanged numbers are not f32: {e:?}"),
    })?;
    let mut summaries = Vec::new();
    let mut failed_nodes = Vec::new();
    for (g, slot) in slots.chunks(SLOT).enumerate() {
        if slot[5] != 0.0 && !failed_nodes.contains(&(g % nodes)) {
            failed_nodes.push(g % nodes);
        }
        if let Some(summary) = read_slot(slot) {
            summaries.push(summary);
        }
    }
    failed_nodes.sort_unstable();
    Ok((model, Exchanged { grads: unflatten.grads, shards: summaries, failed_nodes }))
}

/// Checks, before the first step, that every node starts at the same step
/// with the same run (the config without its paths, which may differ from
/// machine to machine); the error names the nodes that differ.
pub(crate) fn agree_on_start<B: Backend>(collective: &mut Collective<B>, steps_done: u64, fingerprint: u64, device: &B::Device) -> Result<()> {
    const START: usize = 9;
    let (nodes, rank) = (collective.layout.nodes, collective.layout.node_rank);
    let mut slots = vec![0f32; nodes * START];
    let own = &mut slots[rank * START..][..START];
    own[0] = 1.0;
    write_f64(&mut own[1..5], f64::from_bits(steps_done));
    write_f64(&mut own[5..9], f64::from_bits(fingerprint));
    let summed = collective.all_reduce_sum(Tensor::from_data(TensorData::new(slots, [nodes * START]), device), "the start")?;
    let slots = summed.into_data().to_vec::<f32>().unwrap_or_default();
    let node = collective.layout.describe();
    let mut problems = Vec::new();
    for (other, slot) in slots.chunks(START).enumerate() {
        let (their_step, their_run) = (read_f64(&slot[1..5]).to_bits(), read_f64(&slot[5..9]).to_bits());
        if slot[0] != 1.0 {
            problems.push(format!("node {other} did not report its start"));
        } else if their_step != steps_done {
            problems.push(format!("node {other} starts at step {their_step}, this node at step {steps_done}"));
        } else if their_run != fingerprint {
            problems.push(format!("node {other}'s train.toml differs from this node's"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TrainError::Collective {
            node,
            message: format!(
                "the nodes do not agree on the run: {}; every node needs the same train.toml and, with --resume, node 0's newest checkpoint (a shared out_dir, or a copy)",
                problems.join("; ")
            ),
        })
    }
}

/// FNV-1a of `bytes`: a fingerprint for [`agree_on_start`], not a security hash.
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01B3))
}

fn write_slot(slot: &mut [f32], shard: &ShardSummary, failed: bool) {
    slot[0] = 1.0;
    slot[1] = shard.rows as f32;
    slot[2] = shard.weighted_loss;
    slot[3] = shard.correct.map_or(-1.0, |c| c as f32);
    slot[4] = shard.norm_sum;
    slot[5] = if failed { 1.0 } else { 0.0 };
    match shard.adaface {
        Some(state) => {
            write_f64(&mut slot[6..10], state.batch_mean);
            write_f64(&mut slot[10..14], state.batch_std);
        }
        None => slot[6] = -1.0,
    }
}

fn read_slot(slot: &[f32]) -> Option<ShardSummary> {
    if slot[0] == 0.0 {
        return None;
    }
    let adaface = (slot[6] >= 0.0).then(|| visage_heads::AdaFaceState { batch_mean: read_f64(&slot[6..10]), batch_std: read_f64(&slot[10..14]) });
    Some(ShardSummary {
        rows: slot[1] as usize,
        weighted_loss: slot[2],
        correct: (slot[3] >= 0.0).then_some(slot[3] as usize),
        norm_sum: slot[4],
        adaface,
    })
}

/// An f64 as four 16-bit integers, each exact in an f32.
fn write_f64(out: &mut [f32], value: f64) {
    let bits = value.to_bits();
    for (i, piece) in out.iter_mut().enumerate() {
        *piece = ((bits >> (16 * i)) & 0xFFFF) as f32;
    }
}

fn read_f64(pieces: &[f32]) -> f64 {
    f64::from_bits(pieces.iter().enumerate().fold(0u64, |bits, (i, piece)| bits | ((*piece as u64) << (16 * i))))
}

/// Lays out a module's trainable gradients (zeros where missing) and its
/// non-trainable floats as one flat list of tensors, in visiting order.
struct Flatten<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<B::InnerBackend, 1>>,
    device: B::Device,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let count = param.shape().num_elements();
        let part = if param.is_require_grad() {
            match self.grads.get::<B::InnerBackend, D>(param.id) {
                Some(grad) => grad.to_device(&self.device).reshape([count]),
                None => Tensor::zeros([count], &self.device),
            }
        } else {
            param.val().inner().to_device(&self.device).reshape([count])
        };
        self.parts.push(part);
    }
}

/// Reads a flat all-reduced tensor back in [`Flatten`]'s order: gradients
/// into `grads`, non-trainable floats (divided by the node count) into the
/// module.
struct Unflatten<B: AutodiffBackend> {
    flat: Tensor<B::InnerBackend, 1>,
    offset: usize,
    grads: GradientsParams,
    nodes: f32,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Unflatten<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let shape = param.shape();
        let count = shape.num_elements();
        let part = self.flat.clone().slice(self.offset..self.offset + count).reshape(shape);
        self.offset += count;
        if param.is_require_grad() {
            self.grads.register::<B::InnerBackend, D>(param.id, part);
            param
        } else {
            let (id, tensor, mapper) = param.consume();
            let mean = Tensor::<B, D>::from_inner(part.div_scalar(self.nodes)).to_device(&tensor.device());
            Param::from_mapped_value(id, mean, mapper)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_pieces_round_trip_exactly() {
        for value in [0.0, -0.0, 1.0 / 3.0, 20.0, 100.0, f64::MIN_POSITIVE, -1e300, std::f64::consts::PI] {
            let mut pieces = [0f32; 4];
            write_f64(&mut pieces, value);
            assert!(pieces.iter().all(|p| *p >= 0.0 && *p < 65536.0 && p.fract() == 0.0));
            assert_eq!(read_f64(&pieces).to_bits(), value.to_bits());
        }
    }

    #[test]
    fn slots_round_trip_and_sum_with_zeros_exactly() {
        let shard = ShardSummary {
            rows: 17,
            weighted_loss: 0.123_456_79,
            correct: Some(5),
            norm_sum: 91.25,
            adaface: Some(visage_heads::AdaFaceState { batch_mean: 20.000_000_000_1, batch_std: 99.9 }),
        };
        let mut slot = [0f32; SLOT];
        write_slot(&mut slot, &shard, false);
        // What another node contributes to this worker's slot: zeros.
        let summed: Vec<f32> = slot.iter().map(|v| v + 0.0).collect();
        assert_eq!(read_slot(&summed), Some(shard));
        let mut empty = [0f32; SLOT];
        assert_eq!(read_slot(&empty), None);
        write_slot(&mut empty, &ShardSummary { correct: None, ..shard }, true);
        let read = read_slot(&empty).unwrap();
        assert_eq!((read.correct, empty[5]), (None, 1.0));
    }

    #[test]
    fn layout_errors_name_the_flag() {
        let layout = NodeLayout {
            nodes: 2,
            node_rank: 2,
            coordinator: "127.0.0.1:29500".into(),
            node_host: None,
            data_port: None,
            timeout: Duration::from_secs(1),
        };
        assert!(layout.validate().unwrap_err().contains("--node-rank 2"));
        let layout = NodeLayout { node_rank: 0, coordinator: "no-port".into(), ..layout };
        assert!(layout.validate().unwrap_err().contains("--coordinator no-port"));
    }
}
