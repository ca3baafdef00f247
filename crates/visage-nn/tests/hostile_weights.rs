//! Weight files built to crash, exhaust memory or hang the readers: each is
//! built here by code (a `torch.save` archive with a hand-assembled pickle,
//! safetensors headers that lie, ONNX protobuf with absurd dims), and each
//! must end in an [`NnError::Format`] that names the file and, where there
//! is one, the archive entry or tensor — never a panic or an abort.

mod common;

use std::io::{Cursor, Write};
use std::path::Path;

use visage_nn::onnx::proto::{self, Writer};
use visage_nn::onnx::read_onnx_iresnet_bytes;
use visage_nn::pytorch::read_pytorch_checkpoint_bytes;
use visage_nn::{read_pytorch_checkpoint, CheckpointFamily, IResNetLayout, NnError, StateDict};

use common::fixture;

const SOURCE: &str = "hostile.pth";

/// A pickled int as LONG1 of 8 bytes (any i64).
fn long(value: i64) -> Vec<u8> {
    let mut bytes = vec![0x8a, 8];
    bytes.extend_from_slice(&value.to_le_bytes());
    bytes
}

fn unicode(text: &str) -> Vec<u8> {
    let mut bytes = vec![b'X'];
    bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// One tensor of a state dict as `torch.save` pickles it:
/// `key: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
struct View<'a> {
    key: &'a str,
    storage_type: &'a str,
    storage_key: &'a str,
    numel: i64,
    offset: i64,
    size: &'a [i64],
    stride: &'a [i64],
}

/// A protocol-2 pickle of `{key: tensor, …}` (hand-assembled opcodes).
fn state_dict_pickle(views: &[View<'_>]) -> Vec<u8> {
    let mut bytes = b"\x80\x02}(".to_vec();
    for view in views {
        bytes.extend(unicode(view.key));
        bytes.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        bytes.push(b'(');
        bytes.extend(unicode("storage"));
        bytes.extend_from_slice(format!("ctorch\n{}\n", view.storage_type).as_bytes());
        bytes.extend(unicode(view.storage_key));
        bytes.extend(unicode("cpu"));
        bytes.extend(long(view.numel));
        bytes.extend_from_slice(b"tQ");
        bytes.extend(long(view.offset));
        for dims in [view.size, view.stride] {
            bytes.push(b'(');
            dims.iter().for_each(|&d| bytes.extend(long(d)));
            bytes.push(b't');
        }
        bytes.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    bytes.extend_from_slice(b"u.");
    bytes
}

/// A `torch.save` zip archive (entries stored, as torch writes them).
fn archive(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", options).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file("archive/byteorder", options).unwrap();
    zip.write_all(b"little").unwrap();
    for (key, bytes) in storages {
        zip.start_file(format!("archive/data/{key}"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn format_error(result: Result<impl std::fmt::Debug, NnError>) -> String {
    match result {
        Err(error @ NnError::Format { .. }) => {
            assert!(error.is_bad_input());
            let message = error.to_string();
            assert!(message.contains(SOURCE), "{message}");
            message
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

fn read(bytes: &[u8]) -> Result<visage_nn::PytorchCheckpoint, NnError> {
    read_pytorch_checkpoint_bytes(bytes, Path::new(SOURCE), CheckpointFamily::Insightface)
}

fn view<'a>(numel: i64, offset: i64, size: &'a [i64], stride: &'a [i64]) -> View<'a> {
    View { key: "w", storage_type: "FloatStorage", storage_key: "0", numel, offset, size, stride }
}

#[test]
fn the_hand_built_archive_reads_as_torch_would() {
    // the control for every case below: the same builder with honest numbers
    let bytes = archive(&state_dict_pickle(&[view(4, 1, &[3, 1], &[1, 1])]), &[("0", &floats(&[0.5, 1.0, -2.0, 4.0]))]);
    let checkpoint = read(&bytes).unwrap();
    let w = &checkpoint.state.tensors["w"];
    assert_eq!((w.shape.as_slice(), w.values.as_slice()), (&[3, 1][..], &[1.0, -2.0, 4.0][..]));
}

#[test]
fn a_storage_declaring_2_pow_62_elements_is_refused_naming_the_entry() {
    let storage = floats(&[1.0; 4]);
    let huge = 1i64 << 62;
    let bytes = archive(&state_dict_pickle(&[view(huge, 0, &[huge], &[1])]), &[("0", &storage)]);
    let message = format_error(read(&bytes));
    assert!(message.contains("archive/data/0") && message.contains(&format!("declares {huge} elements of 4 bytes")), "{message}");

    // half precision: 2⁶² · 2 bytes does not overflow, so the entry's real size refuses it
    let size = [huge];
    let half = View { storage_type: "HalfStorage", ..view(huge, 0, &size, &[1]) };
    let bytes = archive(&state_dict_pickle(&[half]), &[("0", &storage)]);
    let message = format_error(read(&bytes));
    assert!(message.contains("archive/data/0") && message.contains("has 16 bytes, 9223372036854775808 expected"), "{message}");
}

#[test]
fn sizes_offsets_and_strides_that_overflow_are_refused() {
    let storage = floats(&[1.0; 4]);
    let cases: [(View<'_>, &str); 4] = [
        (view(4, 0, &[1 << 32, 1 << 32, 1 << 32], &[1 << 40, 1 << 20, 1]), "more elements than any storage can hold"),
        (view(4, 0, &[1 << 22, 1 << 21, 1 << 21], &[1 << 42, 1 << 21, 1]), "more elements than any storage can hold"),
        (view(4, i64::MAX, &[4], &[1]), "reads elements 9223372036854775807..9223372036854775811 of a storage of 4"),
        (view(4, 0, &[1 << 21, 1 << 21, 1 << 20], &[1 << 41, 1 << 20, 1]), "reads elements 0..4611686018427387904 of a storage of 4"),
    ];
    for (view, expected) in cases {
        let bytes = archive(&state_dict_pickle(&[view]), &[("0", &storage)]);
        let message = format_error(read(&bytes));
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn views_overlapping_thousands_of_times_are_refused_before_filling_memory() {
    // 3000 tensors, each the whole 1024-float storage: 3 M floats decoded from 4 KiB
    let keys: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    let views: Vec<View<'_>> = keys.iter().map(|key| View { key, ..view(1024, 0, &[1024], &[1]) }).collect();
    let bytes = archive(&state_dict_pickle(&views), &[("0", &floats(&[0.25; 1024]))]);
    let message = format_error(read(&bytes));
    assert!(message.contains("views that overlap"), "{message}");
    // two views of one storage (tied weights) are fine
    let twice = [View { key: "a", ..view(1024, 0, &[1024], &[1]) }, View { key: "b", ..view(1024, 0, &[1024], &[1]) }];
    let bytes = archive(&state_dict_pickle(&twice), &[("0", &floats(&[0.25; 1024]))]);
    assert_eq!(read(&bytes).unwrap().state.tensors.len(), 2);
}

/// The offset of the central-directory record of entry `name` in a zip.
fn central_record(zip: &[u8], name: &str) -> usize {
    (0..zip.len() - 46).find(|&at| zip[at..].starts_with(b"PK\x01\x02") && zip[at + 46..].starts_with(name.as_bytes())).unwrap()
}

#[test]
fn an_entry_whose_header_lies_about_its_size_is_refused() {
    let good = archive(&state_dict_pickle(&[view(4, 0, &[4], &[1])]), &[("0", &floats(&[1.0; 4]))]);
    for (entry, declared) in [("archive/data.pkl", 0xffff_fff0u32), ("archive/data/0", 0x4000_0000)] {
        let mut bytes = good.clone();
        let record = central_record(&bytes, entry);
        bytes[record + 24..record + 28].copy_from_slice(&declared.to_le_bytes()); // uncompressed size
        let message = format_error(read(&bytes));
        assert!(message.contains(&format!("entry `{entry}` declares {declared} bytes, more than its")), "{message}");
    }
    // a deflated data.pkl that expands 1000-fold (a zip bomb) is refused by its declared size
    let mut pickle = b"\x80\x02}(".to_vec();
    pickle.extend(std::iter::repeat_n(b'N', 1 << 20));
    pickle.extend_from_slice(b"1.");
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("archive/data.pkl", deflated).unwrap();
    zip.write_all(&pickle).unwrap();
    let bomb = zip.finish().unwrap().into_inner();
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let message = format_error(read(&bomb));
    assert!(message.contains("more than 16 times its") && message.contains("archive/data.pkl"), "{message}");
    // cut short: every prefix is refused cleanly, none panics
    for length in (0..good.len()).step_by(7) {
        assert!(read(&good[..length]).is_err(), "prefix of {length} bytes");
    }
}

#[test]
fn a_pickle_bomb_inside_an_archive_is_refused_quickly() {
    let mut pickle = b"\x80\x02N".to_vec();
    pickle.extend(std::iter::repeat_n(*b"2\x86", 100_000).flatten());
    pickle.push(b'.');
    let message = format_error(read(&archive(&pickle, &[])));
    assert!(message.contains("archive/data.pkl") && message.contains("nested more than 1000 deep"), "{message}");
    // Not timed: refused at the TUPLE2 that makes level 1001, byte
    // 3 + 2 × 1000 + 1 of the pickle's 200 004; the offset proves it early.
    assert!(message.contains("pickle byte 2004: "), "{message}");
}

#[test]
fn the_bytes_reader_and_the_file_reader_agree() {
    let path = fixture("checkpoint_views.pth");
    let from_file = read_pytorch_checkpoint(&path, CheckpointFamily::Insightface).unwrap();
    let from_bytes = read_pytorch_checkpoint_bytes(&std::fs::read(&path).unwrap(), &path, CheckpointFamily::Insightface).unwrap();
    assert_eq!(from_file, from_bytes);
    assert_eq!(from_bytes.state.tensors["window"].values, [3.0, 4.0, 5.0, 6.0]);
}

// ---- safetensors ----

fn safetensors(header_length: u64, header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = header_length.to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn safetensors_headers_that_lie_are_refused() {
    let honest = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let control = StateDict::from_safetensors_bytes(&safetensors(honest.len() as u64, honest, &floats(&[1.5, -2.0])), Path::new(SOURCE)).unwrap();
    assert_eq!(control.tensors["w"].values, [1.5, -2.0]);
    let cases = [
        safetensors(1 << 62, honest, &[0; 8]),
        safetensors(u64::MAX, honest, &[0; 8]),
        safetensors(honest.len() as u64 + 100, honest, &[0; 8]),
        {
            let header = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,1099511627776]}}"#;
            safetensors(header.len() as u64, header, &[0; 8])
        },
        {
            let header = r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#;
            safetensors(header.len() as u64, header, &[0; 8])
        },
        {
            let header = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#;
            safetensors(header.len() as u64, header, &[0; 8])
        },
        {
            let header = format!(r#"{{"w":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
            safetensors(header.len() as u64, &header, &[])
        },
    ];
    for bytes in cases {
        format_error(StateDict::from_safetensors_bytes(&bytes, Path::new(SOURCE)));
    }
}

// ---- ONNX ----

fn model_with(graph: &Writer) -> Vec<u8> {
    let mut model = Writer::default();
    model.varint(1, 7).bytes(7, &graph.bytes);
    model.bytes
}

fn read_onnx(bytes: &[u8]) -> Result<StateDict, NnError> {
    read_onnx_iresnet_bytes(bytes, Path::new(SOURCE), &common::tiny_iresnet(IResNetLayout::Insightface))
}

#[test]
fn onnx_tensors_whose_dims_overflow_are_refused() {
    let mut graph = Writer::default();
    graph.message(5, |tensor| {
        tensor.varint(1, 1 << 32).varint(1, 1 << 32).varint(1, 1 << 32).varint(2, proto::FLOAT).string(8, "w").bytes(9, &[0; 16]);
    });
    let message = proto::read_model(&model_with(&graph)).unwrap_err();
    assert!(message.contains("tensor 'w' has dims [4294967296, 4294967296, 4294967296], more elements"), "{message}");
    let mut graph = Writer::default();
    graph.message(5, |tensor| {
        (0..65).for_each(|_| {
            tensor.varint(1, 1);
        });
        tensor.varint(2, proto::FLOAT).string(8, "w").bytes(9, &[0; 4]);
    });
    assert!(proto::read_model(&model_with(&graph)).unwrap_err().contains("65 dimensions"));
}

#[test]
fn onnx_lengths_beyond_the_message_are_refused() {
    // field 7 (the graph), length 2⁶²
    let mut bytes = vec![0x08, 0x07, 0x3a];
    let mut length = 1u64 << 62;
    while length >= 0x80 {
        bytes.push((length as u8) | 0x80);
        length >>= 7;
    }
    bytes.push(length as u8);
    bytes.extend_from_slice(&[0; 8]);
    let message = format_error(read_onnx(&bytes));
    assert!(message.contains("runs past the message end"), "{message}");
    // a varint that never ends
    let mut endless = vec![0x08];
    endless.extend([0xff; 20]);
    let message = format_error(read_onnx(&endless));
    assert!(message.contains("varint longer than 10 bytes"), "{message}");
}

#[test]
fn a_gemm_whose_weight_is_not_2d_is_refused_not_indexed() {
    for dims in [&[6][..], &[2, 3, 0]] {
        let mut graph = Writer::default();
        proto::write_tensor(&mut graph, 5, "fc_w", dims, &vec![1.0; dims.iter().product()]);
        graph.message(1, |node| {
            node.string(1, "x").string(1, "fc_w").string(1, "fc_w").string(2, "y").string(3, "fc").string(4, "Gemm");
        });
        let message = format_error(read_onnx(&model_with(&graph)));
        assert!(message.contains("Gemm node 'fc' has a weight of dims"), "{message}");
    }
}

#[test]
fn one_huge_initializer_read_by_every_layer_hits_the_copy_budget() {
    // 2 Mi floats (8 MiB), named as weight and bias by every Conv node
    let count = 2 << 20;
    let mut graph = Writer::default();
    proto::write_tensor(&mut graph, 5, "w", &[count], &vec![0.5; count]);
    for index in 0..4 {
        graph.message(1, |node| {
            node.string(1, "x").string(1, "w").string(1, "w").string(2, &format!("y{index}")).string(3, &format!("conv{index}")).string(4, "Conv");
        });
    }
    let message = format_error(read_onnx(&model_with(&graph)));
    assert!(message.contains("initializer 'w' copied once too often"), "{message}");
}

#[test]
fn deeply_nested_subgraphs_are_skipped_without_recursion() {
    // an attribute whose graph (field 6) nests 3000 graphs deep: never descended into
    let mut nested = Vec::new();
    for _ in 0..3000 {
        let mut outer = Writer::default();
        outer.bytes(6, &nested);
        nested = outer.bytes;
    }
    let mut graph = Writer::default();
    graph.message(1, |node| {
        node.string(4, "If").message(5, |attribute| {
            attribute.string(1, "then_branch").bytes(6, &nested).varint(20, 5);
        });
    });
    let bytes = model_with(&graph);
    let parsed =
        std::thread::Builder::new().stack_size(64 * 1024).spawn(move || proto::read_model(&bytes).map(|g| g.nodes.len())).unwrap().join().unwrap();
    assert_eq!(parsed, Ok(1));
}

#[test]
fn only_an_unreadable_file_is_the_environments_fault() {
    let missing = fixture("no_such_checkpoint.pth");
    let error = read_pytorch_checkpoint(&missing, CheckpointFamily::Auto).unwrap_err();
    assert!(matches!(error, NnError::Io { .. }) && !error.is_bad_input(), "{error}");
    let error = read_pytorch_checkpoint(&fixture("checkpoint_tiny.io.safetensors"), CheckpointFamily::Auto).unwrap_err();
    assert!(matches!(error, NnError::Format { .. }) && error.is_bad_input(), "{error}");
    let wrapped = NnError::Checkpoint { path: missing.clone(), family: "ONNX".into(), source: Box::new(NnError::NonFinite { key: "w".into() }) };
    assert!(wrapped.is_bad_input());
}
