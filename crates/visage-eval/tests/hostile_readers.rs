//! Every reader of visage-eval on inputs nobody on the project wrote: lying
//! `.npy` shapes, lines without end, bytes that are not text, numbers that
//! are not finite, wrong column counts and pickle bombs in a `.bin`. Each
//! must end in an error that names the file (and line where there is one),
//! without allocating what the input merely declares and with work linear in
//! the input. Nothing here reads a clock: work is counted
//! ([`bytes_examined_on_this_thread`]) or proved by which error comes back.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use visage_eval::io::embeddings::{parse_embeddings, read_embeddings};
use visage_eval::io::erc_csv::read_erc_csv_from;
use visage_eval::io::ijb_meta::{read_detector_scores_from, read_face_tid_mid_from, read_template_pairs_from, read_template_subjects_from};
use visage_eval::io::labels::read_labels_from;
use visage_eval::io::pairs::read_pair_list_from;
use visage_eval::io::scores_csv::read_scores_csv_from;
use visage_eval::io::text::{bytes_examined_on_this_thread, MAX_LINE_BYTES};
use visage_eval::io::verification_bin::{parse_verification_bin, read_verification_bin};
use visage_eval::EvalError;
use visage_pickle::{parse, Options, Value};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-eval-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Every text reader, by name, over in-memory bytes.
type TextReader = fn(&[u8], &Path) -> Result<(), EvalError>;

fn text_readers() -> Vec<(&'static str, TextReader)> {
    vec![
        ("scores.csv", |b, p| read_scores_csv_from(Cursor::new(b), p).map(drop)),
        ("erc.csv", |b, p| read_erc_csv_from(Cursor::new(b), p).map(drop)),
        ("labels.txt", |b, p| read_labels_from(Cursor::new(b), p).map(drop)),
        ("pairs.txt", |b, p| read_pair_list_from(Cursor::new(b), p).map(drop)),
        ("x_face_tid_mid.txt", |b, p| read_face_tid_mid_from(Cursor::new(b), p).map(drop)),
        ("x_template_pair_label.txt", |b, p| read_template_pairs_from(Cursor::new(b), p).map(drop)),
        ("x_name_5pts_score.txt", |b, p| read_detector_scores_from(Cursor::new(b), p).map(drop)),
        ("gallery.csv", |b, p| read_template_subjects_from(Cursor::new(b), p).map(drop)),
        ("embeddings.csv", |b, p| parse_embeddings(b, p).map(drop)),
    ]
}

#[test]
fn an_npy_declaring_2_to_the_40_rows_is_refused_from_its_size() {
    let path = scratch("huge_rows.npy");
    std::fs::write(&path, npy_bytes("<f4", "(1099511627776, 1)", &[0; 16])).unwrap();
    // This message comes only from the size check, which compares the
    // declared bytes with the file's before anything is allocated or read;
    // allocating the declared 2⁴⁰ values (8 TiB as f64) would abort the
    // process instead of returning an error.
    let err = read_embeddings(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: the header declares 1099511627776×1 values of 4 bytes (4398046511104 bytes) but 16 bytes of data follow: truncated or not this array's header",
            path.display()
        )
    );
    // A consistent shape on the same bytes reads back exactly.
    std::fs::write(&path, npy_bytes("<f4", "(2, 2)", &[1.5f32, 2.0, -3.0, 0.25].map(f32::to_le_bytes).concat())).unwrap();
    assert_eq!(read_embeddings(&path).unwrap(), ndarray::arr2(&[[1.5, 2.0], [-3.0, 0.25]]));
}

#[test]
fn lying_npy_headers_name_the_file() {
    let name = Path::new("bad.npy");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (npy_bytes("<f4", "(3, 2)", &[0; 20]), "declares 3×2 values of 4 bytes (24 bytes) but 20 bytes"),
        (npy_bytes("<f4", "(1, 2)", &[0; 12]), "declares 1×2 values of 4 bytes (8 bytes) but 12 bytes"),
        (npy_bytes("|u1", "(4, 4)", &[0; 16]), "dtype `|u1`: expected float32 or float64"),
        (npy_bytes("<f2", "(4, 4)", &[0; 32]), "dtype `<f2`: expected float32 or float64"),
        (npy_bytes("<f4", "(2, 2, 2)", &[0; 32]), "is 3-D: expected a 2-D array"),
        (npy_bytes("<f4", "()", &[0; 4]), "is 0-D: expected a 2-D array"),
        (npy_bytes("<f4", "(0, 512)", &[]), "empty matrix (0×512)"),
        (npy_bytes("<f4", "(4294967296, 4294967296)", &[]), "(more than 2^64 bytes)"),
        (b"\x93NUMPY\x07\x00\x10\x00".to_vec(), ".npy format version 7.0"),
        (b"\x93NUM".to_vec(), "shorter than a .npy preamble"),
        (b"\x93NUMPY\x01\x00\x20\x00{'descr'".to_vec(), "truncated: the header declares 32 bytes"),
        (b"\x93NUMPY\x01\x00\x0b\x00{'descr': \n".to_vec(), ".npy header: ends inside the dictionary"),
    ];
    for (bytes, expected) in cases {
        let err = parse_embeddings(&bytes, name).unwrap_err().to_string();
        assert!(err.starts_with("bad.npy: ") && err.contains(expected), "expected `{expected}` in `{err}`");
    }
    // Deeply nested shape tuples are refused at the first `(`, never descended.
    let deep = npy_bytes("<f4", &format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)), &[]);
    let err = parse_embeddings(&deep, name).unwrap_err().to_string();
    assert!(err.contains("the .npy header declares") || err.contains("expected a non-negative integer in `shape`"), "{err}");
}

#[test]
fn a_line_without_end_is_refused_after_the_cap_in_every_text_reader() {
    let mut endless = b"score,label\n".to_vec();
    endless.extend(std::iter::repeat_n(b'7', 3 * MAX_LINE_BYTES));
    // Refused after the cap: of the 3 MiB line a reader examines at most the
    // cap + 2 bytes (one over the cap, and a byte for `\r`), plus line 1
    // (12 bytes) scanned and parsed. Measured: 1 048 590 for scores.csv and
    // embeddings.csv, which take line 1 as their header; 12 (23 for
    // labels.txt, which parses it) for the formats that refuse line 1.
    // Bound 1 048 626. A reader without the cap would examine all
    // 3 145 740 bytes; one that searched its whole buffer again for each
    // byte added, ~5·10¹¹ (5·10⁵ times the bound).
    let endless_bound = MAX_LINE_BYTES as u64 + 2 + 2 * 12;
    for (name, read) in text_readers() {
        let path = Path::new(name);
        let before = bytes_examined_on_this_thread();
        let err = read(&endless, path).unwrap_err().to_string();
        let examined = bytes_examined_on_this_thread() - before;
        assert!(examined <= endless_bound, "{name}: examined {examined} bytes of a 3 MiB line");
        // Line 1 may already be wrong for this format; the long line is never accepted.
        assert!(err.starts_with(&format!("{name}:")), "{name}: {err}");
        assert!(err.len() < 400, "{name}: the message quotes the input: {} bytes", err.len());
        let alone = vec![b'9'; 2 * MAX_LINE_BYTES];
        let before = bytes_examined_on_this_thread();
        let err = read(&alone, path).unwrap_err().to_string();
        // Exactly the cap + 2 bytes of the 2 MiB line, then the error.
        assert_eq!(bytes_examined_on_this_thread() - before, MAX_LINE_BYTES as u64 + 2, "{name}");
        assert_eq!(err, format!("{name}:1: line longer than {MAX_LINE_BYTES} bytes: not a text file of this format"));
    }
}

#[test]
fn non_utf8_bytes_name_the_file_and_line_in_every_text_reader() {
    for (name, read) in text_readers() {
        let bytes = b"0\n\xff\xfe\x00binary\n";
        let err = read(bytes, Path::new(name)).unwrap_err().to_string();
        // Line 1 ("0") is refused by the formats that need a header first.
        assert!(err == format!("{name}:2: not valid UTF-8 text (byte 1 of the line)") || err.starts_with(&format!("{name}:1: ")), "{name}: {err}");
    }
    let err = read_labels_from(Cursor::new(b"3\n4\n\xc3\x28\n"), Path::new("labels.txt")).unwrap_err().to_string();
    assert_eq!(err, "labels.txt:3: not valid UTF-8 text (byte 1 of the line)");
}

#[test]
fn nan_and_infinite_numbers_are_refused_with_the_column() {
    let scores = Path::new("scores.csv");
    for (row, message) in [
        ("nan,1", "column `score`: NaN is not a valid value"),
        ("inf,1", "column `score`: `inf` is not a finite number"),
        ("-Infinity,0", "column `score`: `-Infinity` is not a finite number"),
        ("1e999,0", "column `score`: `1e999` is not a finite number"),
        ("0.5,2", "column `label`: expected 0 or 1, found `2`"),
        ("0.5", "expected 2 comma-separated fields (score,label), found 1"),
        ("0.5,1,1", "expected 2 comma-separated fields (score,label), found 3"),
    ] {
        let text = format!("score,label\n0.9,1\n{row}\n0.1,0\n");
        let err = read_scores_csv_from(Cursor::new(text), scores).unwrap_err().to_string();
        assert_eq!(err, format!("scores.csv:3: {message}"));
    }
    let err = read_erc_csv_from(Cursor::new("score,label,q_1,q_2\n0.9,1,NaN,3\n"), Path::new("erc.csv")).unwrap_err().to_string();
    assert_eq!(err, "erc.csv:2: column `q_1`: NaN is not a valid value");
    let err = read_detector_scores_from(Cursor::new("a.jpg 1 2 3 4 5 6 7 8 9 10 inf\n"), Path::new("s.txt")).unwrap_err().to_string();
    assert_eq!(err, "s.txt:1: column `detector_score`: `inf` is not a finite number");
    let err = parse_embeddings(b"0.1,0.2\n0.3,nan\n", Path::new("e.csv")).unwrap_err().to_string();
    assert_eq!(err, "e.csv:2: column `1`: NaN is not a valid value");
}

#[test]
fn wrong_column_counts_and_absurd_values_name_file_and_line() {
    let cases: Vec<(&str, &[u8], &str)> = vec![
        ("pairs.txt", b"0 1 1\n0 1\n", "pairs.txt:2: expected `index_a index_b is_same`, found 2 fields"),
        ("pairs.txt", b"0 -1 1\n", "pairs.txt:1: index_b: expected a row index ≥ 0, found -1"),
        ("pairs.txt", b"0 99999999999999999999999 1\n", "pairs.txt:1: column `index_b`: expected an integer, found `99999999999999999999999`"),
        ("x_face_tid_mid.txt", b"a.jpg 1\n", "x_face_tid_mid.txt:1: expected `image_name template_id media_id`, found 2 fields"),
        ("x_template_pair_label.txt", b"1 2 1\n3 4 7\n", "x_template_pair_label.txt:2: column `label`: expected 0 or 1, found `7`"),
        ("gallery.csv", b"TEMPLATE_ID,SUBJECT_ID\n1\n", "gallery.csv:2: expected at least 2 comma-separated fields, found 1"),
        ("erc.csv", b"score,label,q_1\n", "erc.csv:1: expected the header `score,label,<quality>_1,<quality>_2,…`, found `score,label,q_1`"),
        ("embeddings.csv", b"1,2,3\n4,5\n", "embeddings.csv:2: expected 3 values like the first row, found 2"),
        ("labels.txt", b"1\n2\n3.5\n", "labels.txt:3: column `label`: expected an integer, found `3.5`"),
    ];
    let readers = text_readers();
    for (name, bytes, expected) in cases {
        let read = readers.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(read(bytes, Path::new(name)).unwrap_err().to_string(), expected);
    }
    // A field of a megabyte is quoted shortened, not whole.
    let long_label = format!("1\n{}\n", "x".repeat(1 << 19));
    let err = read_labels_from(Cursor::new(long_label), Path::new("labels.txt")).unwrap_err().to_string();
    assert_eq!(err, format!("labels.txt:2: column `label`: expected an integer, found `{}… (524288 bytes)`", "x".repeat(64)));
}

#[test]
fn many_columns_and_many_lines_read_in_linear_time() {
    // Work, not time: a one-pass reader examines each byte at most twice
    // (once in its line, once in its field), so the bound is 2 × the input.
    // 524 287 columns on each of two lines (2 097 148 bytes): measured
    // 3 145 722 (the lines, then 1 048 574 bytes of fields), bound 4 194 296.
    // A pass that re-parsed the row so far for each field would examine
    // ~524 287² ≈ 2.7·10¹¹ bytes per line, 6·10⁴ times the bound.
    let wide: String = std::iter::repeat_n("1", (MAX_LINE_BYTES - 1) / 2).collect::<Vec<_>>().join(",");
    let wide = format!("{wide}\n{wide}\n");
    let before = bytes_examined_on_this_thread();
    let matrix = parse_embeddings(wide.as_bytes(), Path::new("wide.csv")).unwrap();
    let examined = bytes_examined_on_this_thread() - before;
    assert!(examined <= 2 * wide.len() as u64, "examined {examined} bytes of {}", wide.len());
    assert_eq!(matrix.dim(), (2, (MAX_LINE_BYTES - 1) / 2));
    // 200 000 lines of 2 bytes (400 000): measured 600 000 (the lines, then
    // one byte of field each), bound 800 000. Re-reading the input before
    // each line would examine ~200 000² = 4·10¹⁰ bytes, 5·10⁴ times the bound.
    let tall: String = (0..200_000).map(|i| format!("{}\n", i % 7)).collect();
    let before = bytes_examined_on_this_thread();
    let labels = read_labels_from(Cursor::new(&tall), Path::new("labels.txt")).unwrap();
    let examined = bytes_examined_on_this_thread() - before;
    assert!(examined <= 2 * tall.len() as u64, "examined {examined} bytes of {}", tall.len());
    assert_eq!((labels.len(), labels[199_999]), (200_000, 199_999 % 7));
}

/// PROTO 2, then `ops`, then STOP.
fn pickle(ops: &[u8]) -> Vec<u8> {
    [&[0x80, 2][..], ops, b"."].concat()
}

#[test]
fn bin_pickle_bombs_end_in_errors_naming_the_file() {
    let name = Path::new("lfw.bin");
    // NONE, then 40 × (DUP, TUPLE2): a 2^40-leaf tree if DUP copied values.
    let mut doubling = vec![b'N'];
    for _ in 0..40 {
        doubling.extend_from_slice(&[b'2', 0x86]);
    }
    let bomb = pickle(&doubling);
    assert_eq!(bomb.len(), 84);
    // The shape error, not "not a readable pickle: …", says the pickle was
    // parsed to the end within visage-pickle's budgets (at most MAX_VALUES =
    // 4 Mi values pushed, MAX_DEPTH = 1000 levels)...
    let err = parse_verification_bin(&bomb, name).unwrap_err().to_string();
    assert!(err.starts_with("lfw.bin: "), "{err}");
    assert!(err.contains("bins: expected a list of encoded images, found a tuple"), "{err}");
    // ...and the value the .bin reader was given holds 40 tuples, not the
    // 2⁴⁰ − 1 of its expansion: at every level both items are one shared
    // tuple, so parsing created 40 containers.
    let mut node = parse(&bomb, Options::PLAIN_DATA).unwrap();
    let mut tuples = 0;
    while let Value::Tuple(items) = node {
        match (&items[..], tuples) {
            ([Value::Tuple(left), Value::Tuple(right)], _) => assert!(std::ptr::eq(left.as_ptr(), right.as_ptr()), "level {tuples} copied"),
            ([Value::None, Value::None], 39) => {}
            _ => panic!("level {tuples}: not two shared items"),
        }
        tuples += 1;
        node = items[0].clone();
    }
    assert_eq!((tuples, node), (40, Value::None));

    // A million nested 1-tuples: refused by depth, never recursed into.
    let mut nested = vec![b'N'];
    nested.extend(std::iter::repeat_n(0x85, 1_000_000));
    let err = parse_verification_bin(&pickle(&nested), name).unwrap_err().to_string();
    assert!(err.starts_with("lfw.bin: not a readable pickle: "), "{err}");

    // Images that are not bytes, flags that are not bools, counts that disagree.
    let list_of = |item: &[u8], n: usize| [&[b']', b'('][..], &item.repeat(n), b"e"].concat();
    let short_bytes = [b'C', 2, b'h', b'i'];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        ([list_of(&short_bytes, 4), list_of(b"\x88", 2), vec![0x86]].concat(), ""),
        ([list_of(&short_bytes, 3), list_of(b"\x88", 2), vec![0x86]].concat(), "3 images for 2 pairs: expected exactly 2 per pair"),
        ([list_of(b"K\x07", 2), list_of(b"\x88", 1), vec![0x86]].concat(), "bins[0]: expected bytes, found a int"),
        ([list_of(&short_bytes, 2), list_of(b"K\x07", 1), vec![0x86]].concat(), "issame_list[0]: expected a bool, found a int"),
        ([list_of(&short_bytes, 0), list_of(b"\x88", 0), vec![0x86]].concat(), "no pairs"),
        (b"}".to_vec(), "expected a 2-tuple (bins, issame_list), found a dict"),
    ];
    for (ops, expected) in cases {
        match parse_verification_bin(&pickle(&ops), name) {
            Ok(set) => {
                assert_eq!(expected, "", "accepted a set that should fail with `{expected}`");
                assert_eq!((set.images.len(), set.issame.as_slice()), (4, &[true, true][..]));
            }
            Err(err) => assert_eq!(err.to_string(), format!("lfw.bin: {expected}")),
        }
    }
    let truncated = &pickle(&[list_of(&short_bytes, 4), list_of(b"\x88", 2), vec![0x86]].concat())[..20];
    let err = parse_verification_bin(truncated, name).unwrap_err().to_string();
    assert!(err.starts_with("lfw.bin: not a readable pickle: "), "{err}");
    let err = read_verification_bin(Path::new("/nonexistent/lfw.bin")).unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/lfw.bin: cannot read"), "{err}");
}
