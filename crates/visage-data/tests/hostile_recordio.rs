//! RecordIO files built to hurt the reader: first parts that all jump into
//! one long chain of continuation parts (quadratic for a naive walk), lying
//! `.idx` files and forged insightface headers. Each must end quickly in
//! either the records that are really there or an error naming the file.

mod common;

use std::path::Path;

use common::{copy_mxnet_fixture, scratch};
use visage_data::recordio::{frame, ImageRecord, IndexSource, RecordDataset, RecordFile};

const MEGABYTE: usize = 1 << 20;

fn part_header(flag: u32, length: usize) -> [u8; 8] {
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&frame::MAGIC.to_le_bytes());
    header[4..].copy_from_slice(&((flag << 29) | length as u32).to_le_bytes());
    header
}

/// `first_parts_bytes` of first-part headers, each (at 8-byte steps) long
/// enough to end exactly where a chain of zero-length middle parts starts;
/// the chain fills the file up to `chain_end`. A naive walk reads the whole
/// chain once per first part: (1 MB / 16)² ≈ 4·10⁹ header reads.
fn chain_trap(first_parts_bytes: usize, chain_end: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(chain_end);
    for position in (0..first_parts_bytes).step_by(8) {
        bytes.extend_from_slice(&part_header(1, first_parts_bytes - position - 8));
    }
    while bytes.len() < chain_end {
        bytes.extend_from_slice(&part_header(2, 0));
    }
    bytes
}

#[test]
fn first_parts_jumping_into_one_long_chain_are_walked_in_linear_time() {
    let dir = scratch("chain-trap");
    // Variant 1: the chain runs to the end of the file; nothing is readable.
    let rec = dir.join("trap.rec");
    std::fs::write(&rec, chain_trap(MEGABYTE / 2, MEGABYTE)).unwrap();
    // Linear: at most one header read per 4-byte position (the magic's
    // alignment) as a start and one as a continuation; a walk of the chain
    // from every first part would read (2¹⁶)² headers.
    let linear = MEGABYTE as u64 / 2;
    let before = frame::header_reads_on_this_thread();
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    let reads = frame::header_reads_on_this_thread() - before;
    assert!(reads <= linear, "1 MB walk read {reads} headers");
    assert!(err.starts_with(&format!("{}: no readable record from byte 0 to the end (1048576 bytes), truncated or corrupt", rec.display())), "{err}");

    // Variant 2: the chain is broken by 8 zero bytes, then one good record
    // follows; the walk steps over the whole trap and finds exactly that one.
    let good = ImageRecord::with_scalar_label(3.0, 1, 0, b"JPEG".to_vec()).to_bytes();
    let mut bytes = chain_trap(MEGABYTE / 2, MEGABYTE - 64);
    bytes.extend_from_slice(&[0; 8]);
    let good_at = bytes.len() as u64;
    frame::write_record(&mut bytes, &good).unwrap();
    std::fs::write(&rec, &bytes).unwrap();
    let before = frame::header_reads_on_this_thread();
    let dataset = RecordDataset::open(&rec).unwrap();
    let reads = frame::header_reads_on_this_thread() - before;
    assert!(reads <= linear, "1 MB walk read {reads} headers");
    let records = dataset.records();
    assert_eq!(records.entries().len(), 1);
    assert_eq!(records.offset_of(0), Some(good_at));
    assert_eq!(records.index_source(), &IndexSource::Scanned { corrupt_regions: 1, corrupt_bytes: good_at });
    assert_eq!(dataset.read_image(0).unwrap().label, 3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_chain_trap_between_good_records_keeps_every_good_record() {
    let dir = scratch("chain-between");
    let rec = dir.join("mixed.rec");
    let mut bytes = Vec::new();
    let mut good_offsets = Vec::new();
    for label in 0..3u8 {
        good_offsets.push(bytes.len() as u64);
        frame::write_record(&mut bytes, &ImageRecord::with_scalar_label(f32::from(label), 0, 0, vec![label; 5]).to_bytes()).unwrap();
    }
    let trap_start = bytes.len();
    let trap = chain_trap(64 * 1024, 128 * 1024);
    bytes.extend_from_slice(&trap);
    bytes.extend_from_slice(&[0; 4]);
    good_offsets.push(bytes.len() as u64);
    frame::write_record(&mut bytes, &ImageRecord::with_scalar_label(9.0, 0, 0, vec![9; 7]).to_bytes()).unwrap();
    std::fs::write(&rec, &bytes).unwrap();
    let records = RecordFile::open_scan(&rec).unwrap();
    let offsets: Vec<u64> = records.entries().iter().map(|e| e.offset).collect();
    assert_eq!(offsets, good_offsets);
    assert_eq!(records.index_source(), &IndexSource::Scanned { corrupt_regions: 1, corrupt_bytes: (trap.len() + 4) as u64 });
    assert_eq!(records.read_image_record(3).unwrap().image, vec![9; 7]);
    assert!(trap_start > 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_index_pointing_every_key_into_one_chain_reads_in_linear_time() {
    let dir = scratch("chain-idx");
    let rec = dir.join("train.rec");
    let good = ImageRecord::with_scalar_label(1.0, 0, 0, b"JPEG".to_vec()).to_bytes();
    let mut bytes = chain_trap(MEGABYTE / 2, MEGABYTE - 64);
    bytes.extend_from_slice(&[0; 8]);
    let good_at = bytes.len();
    frame::write_record(&mut bytes, &good).unwrap();
    std::fs::write(&rec, &bytes).unwrap();
    let first_parts = MEGABYTE / 2 / 8;
    // Keys in offset order, then shuffled (reversed) as im2rec may write them.
    for reversed in [false, true] {
        let mut lines: Vec<String> = (0..first_parts).map(|i| format!("{}\t{}", i, 8 * i)).collect();
        lines.push(format!("{first_parts}\t{good_at}"));
        if reversed {
            for (i, line) in lines.iter_mut().enumerate() {
                let offset = line.split('\t').nth(1).unwrap().to_string();
                *line = format!("{}\t{offset}", first_parts - i);
            }
        }
        write_idx(&dir, (lines.join("\n") + "\n").as_bytes());
        let before = frame::header_reads_on_this_thread();
        let records = RecordFile::open(&rec).unwrap();
        assert_eq!(records.len(), first_parts + 1);
        let mut refused = 0;
        for entry in records.entries() {
            match records.read(entry.key) {
                Ok(payload) => assert_eq!((entry.offset, payload), (good_at as u64, good.clone())),
                Err(err) => {
                    let err = err.to_string();
                    // The last first part has no indexed neighbour before
                    // the chain: it walks the chain once, to its break.
                    let last_first_part = entry.offset == 8 * (first_parts as u64 - 1);
                    assert!(
                        err.contains("where the next indexed record starts: overlapping records")
                            || (last_first_part && err.contains("part at byte 1048512: expected the RecordIO magic")),
                        "{err}"
                    );
                    refused += 1;
                }
            }
        }
        let reads = frame::header_reads_on_this_thread() - before;
        assert_eq!(refused, first_parts);
        // A walk of the chain per key would be 65536 × 65528 header reads;
        // each key reads its first part and the next part up to its
        // neighbour's offset, plus the one walk of the chain's tail.
        assert!(reads <= 4 * (first_parts as u64 + 1) + MEGABYTE as u64 / 8, "reading every key read {reads} headers");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn write_idx(dir: &Path, text: &[u8]) {
    std::fs::write(dir.join("train.idx"), text).unwrap();
}

#[test]
fn lying_indexes_are_refused_with_file_and_line() {
    let dir = copy_mxnet_fixture("lying-idx");
    let rec = dir.join("train.rec");
    let idx = dir.join("train.idx");
    let good_idx = std::fs::read_to_string(&idx).unwrap();
    let file_len = std::fs::metadata(&rec).unwrap().len();
    let last_line = good_idx.lines().count();

    // Two keys pointing at one record.
    let first_offset = good_idx.lines().next().unwrap().split_whitespace().nth(1).unwrap().to_string();
    write_idx(&dir, format!("{good_idx}99\t{first_offset}\n").as_bytes());
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    assert_eq!(err, format!("{}: keys 0 and 99 both point at byte {first_offset}: an index lists each record once", idx.display()));

    // An offset with no room for a record header before the end.
    let near_end = (file_len - 4) / 4 * 4;
    write_idx(&dir, format!("{good_idx}99\t{near_end}\n").as_bytes());
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:{}: offset {near_end} of key 99 leaves no room for a record header before the end of the record file ({file_len} bytes): truncated .rec, or an index for another file",
            idx.display(),
            last_line + 1
        )
    );

    // Offsets far past the end, and 2^64 − 4 (no overflow on the check).
    for offset in [1u64 << 40, u64::MAX - 3] {
        write_idx(&dir, format!("0\t{offset}\n").as_bytes());
        let err = RecordFile::open(&rec).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:1: offset {offset} of key 0 is past the end", idx.display())), "{err}");
    }

    // A line without end, binary bytes, a key listed twice.
    write_idx(&dir, &vec![b'1'; 1 << 20]);
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    assert_eq!(err, format!("{}:1: line longer than 1024 bytes: not a RecordIO index", idx.display()));
    write_idx(&dir, b"0\t0\n\xff\xfe\t8\n");
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    assert_eq!(err, format!("{}:2: not text: expected 'key<TAB>byte_offset' lines", idx.display()));
    write_idx(&dir, format!("{good_idx}0\t{first_offset}\n").as_bytes());
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    assert_eq!(err, format!("{}: key 0 is listed twice", idx.display()));

    // Keys out of order are MXNet's own output for a shuffled list: accepted.
    let reversed: String = good_idx.lines().rev().map(|l| format!("{l}\n")).collect();
    write_idx(&dir, reversed.as_bytes());
    let records = RecordFile::open(&rec).unwrap();
    assert_eq!(records.len(), last_line);

    // An offset inside a record: the open check passes (it is not the last),
    // reading that key is an error naming key and offset.
    let mut lines: Vec<String> = good_idx.lines().map(str::to_string).collect();
    let (key, offset) = {
        let mut fields = lines[2].split_whitespace();
        (fields.next().unwrap().to_string(), fields.next().unwrap().parse::<u64>().unwrap() + 4)
    };
    lines[2] = format!("{key}\t{offset}");
    write_idx(&dir, (lines.join("\n") + "\n").as_bytes());
    let records = RecordFile::open(&rec).unwrap();
    let err = records.read(key.parse().unwrap()).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: record key {key} at byte {offset}: expected the RecordIO magic", rec.display())), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_forged_header_cannot_name_more_identities_than_the_file_has_records() {
    let dir = scratch("forged-header");
    let rec = dir.join("forged.rec");
    let mut bytes = Vec::new();
    // Header (1, 16_777_215): keys 1.. are images, 16.7 M identities claimed.
    frame::write_record(&mut bytes, &ImageRecord::with_label_vector(vec![2.0, 16_777_215.0], 0, 0, Vec::new()).to_bytes()).unwrap();
    frame::write_record(&mut bytes, &ImageRecord::with_scalar_label(0.0, 1, 0, b"JPEG".to_vec()).to_bytes()).unwrap();
    std::fs::write(&rec, &bytes).unwrap();
    let err = RecordDataset::open(&rec).unwrap_err().to_string();
    assert_eq!(err, format!("{}: header record 0 names 16777213 identities (keys 2..16777215) but the file holds only 2 records", rec.display()));
    // A label vector of 2^32 − 1 floats in a 40-byte record: refused from the length.
    let mut lying = ImageRecord::with_scalar_label(0.0, 1, 0, b"JPEG".to_vec()).to_bytes();
    lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut bytes = Vec::new();
    frame::write_record(&mut bytes, &lying).unwrap();
    std::fs::write(&rec, &bytes).unwrap();
    let records = RecordFile::open(&rec).unwrap();
    let err = records.read_image_record(0).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: record key 0 at byte 0: header flag 4294967295 announces 4294967295 float labels (17179869180 bytes) but only 4 bytes follow the header",
            rec.display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_part_length_past_the_end_is_refused_before_reading() {
    let dir = scratch("long-part");
    let rec = dir.join("long.rec");
    // A whole part declaring 2^29 − 1 bytes in a 16-byte file.
    let mut bytes = part_header(0, (1 << 29) - 1).to_vec();
    bytes.extend_from_slice(b"tinydata");
    std::fs::write(&rec, &bytes).unwrap();
    let err = RecordFile::open(&rec).unwrap_err().to_string();
    assert!(err.contains("part of 536870911 bytes ends at byte 536870920, past the end of the file (16 bytes): truncated"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
