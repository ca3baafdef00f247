//! Streams built to exhaust memory, the stack or time, each built here by
//! code. Every one must end in a clean error (or a small value), and the
//! ones that nest deeply run on a 256 KiB thread stack, which a reader or a
//! drop that recursed once per level would overflow. Nothing here is timed:
//! an early refusal is proved by the error's offset, sharing by pointer
//! equality, and linear work by [`element_steps_on_this_thread`] against a
//! bound linear in the stream.

use visage_pickle::{element_steps_on_this_thread, parse, Options, PickleError, Value, DEBUG_ITEMS, MAX_DEPTH, MAX_MEMO, MAX_VALUES};

/// A thread stack far smaller than the 8 MiB of a main thread: recursion of
/// a few thousand frames overflows it (and aborts the test binary).
const SMALL_STACK: usize = 256 * 1024;

/// The stack for parsing and dropping a value nested to the limit: a
/// recursive drop of 1000 levels needs more than this (checked by making
/// the drop recursive: the test then dies of a stack overflow).
const TINY_STACK: usize = 32 * 1024;

/// Runs `work` on a thread with [`SMALL_STACK`] and returns its result.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    on_stack(SMALL_STACK, work)
}

fn on_stack<T: Send + 'static>(stack: usize, work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(stack).spawn(work).unwrap().join().unwrap()
}

fn parse_error(bytes: &[u8], options: Options) -> PickleError {
    match parse(bytes, options) {
        Ok(value) => panic!("expected an error, parsed a {}", value.kind()),
        Err(error) => error,
    }
}

/// An 84-byte bomb: None, then (DUP, TUPLE2) forty times — a tree
/// of 2⁴⁰ leaves if memoised values were copies.
fn dup_tuple2_bomb(levels: usize) -> Vec<u8> {
    let mut bytes = b"\x80\x02N".to_vec();
    for _ in 0..levels {
        bytes.extend_from_slice(b"2\x86");
    }
    bytes.push(b'.');
    bytes
}

#[test]
fn dup_tuple2_bomb_shares_instead_of_copying() {
    let bytes = dup_tuple2_bomb(40);
    assert_eq!(bytes.len(), 84);
    let levels = on_small_stack(move || {
        let value = parse(&bytes, Options::PLAIN_DATA).unwrap();
        // walk down the left spine: each level's two items are one shared tuple
        let mut levels = 0;
        let mut node = value.clone();
        while let Value::Tuple(items) = node {
            assert_eq!(items.len(), 2);
            match (&items[0], &items[1]) {
                (Value::Tuple(left), Value::Tuple(right)) => assert!(std::ptr::eq(left.as_ptr(), right.as_ptr())),
                (Value::None, Value::None) => {}
                other => panic!("unexpected items {:?}", (other.0.kind(), other.1.kind())),
            }
            levels += 1;
            node = items[0].clone();
        }
        assert_eq!(node, Value::None);
        // a debug print stops after DEBUG_ITEMS items instead of expanding 2⁴⁰ leaves
        let printed = format!("{value:?}");
        assert!(printed.len() < 40 * DEBUG_ITEMS && printed.contains('…'), "{} bytes", printed.len());
        drop(value);
        levels
    });
    // Not timed: the walk above proves each of the 40 levels is one shared
    // tuple (40 nodes, not 2⁴⁰ − 1), the print is bounded by DEBUG_ITEMS, and
    // the drop frees each node once (an exponential drop would never end).
    assert_eq!(levels, 40);
}

#[test]
fn dup_tuple2_bomb_deeper_than_the_limit_is_refused() {
    let error = on_small_stack(|| parse_error(&dup_tuple2_bomb(100_000), Options::PLAIN_DATA));
    assert!(error.problem.contains(&format!("nested more than {MAX_DEPTH} deep")), "{error}");
    // refused at the TUPLE2 that makes level 1001: byte 3 + 2 × 1000 + 1 of
    // 200 004 (this offset, not a clock, proves the refusal is early)
    assert_eq!(error.offset, 3 + 2 * MAX_DEPTH + 1);
}

#[test]
fn a_million_nested_tuple1_is_refused_without_recursing() {
    let mut bytes = b"\x80\x02N".to_vec();
    bytes.extend(std::iter::repeat_n(0x85u8, 1_000_000));
    bytes.push(b'.');
    let error = on_small_stack(move || parse_error(&bytes, Options::TORCH));
    assert!(error.problem.contains("nested more than 1000 deep"), "{error}");
    // refused at the 1001st TUPLE1 of 10⁶ (the offset, not a clock, proves it early)
    assert_eq!(error.offset, 3 + MAX_DEPTH);
}

#[test]
fn a_value_nested_to_the_limit_parses_and_drops_on_a_small_stack() {
    // tuples nested exactly MAX_DEPTH deep
    let mut bytes = b"\x80\x02N".to_vec();
    bytes.extend(std::iter::repeat_n(0x85u8, MAX_DEPTH));
    bytes.push(b'.');
    let depth = on_stack(TINY_STACK, move || {
        let value = parse(&bytes, Options::TORCH).unwrap();
        let mut depth = 0;
        let mut node = &value;
        while let Value::Tuple(items) = node {
            depth += 1;
            node = &items[0];
        }
        drop(value); // iterative: a recursive drop of 1000 levels overflows TINY_STACK
        depth
    });
    assert_eq!(depth, MAX_DEPTH);
}

#[test]
fn lists_deepened_after_they_were_nested_are_caught_at_stop() {
    // 1101 empty lists, each memoised; then list i.append(list i + 1) for
    // every i: each APPEND sees an empty child (depth 1), so only the walk
    // at STOP sees the chain 1101 deep
    let lists = 1101u32;
    let mut bytes = b"\x80\x02".to_vec();
    for index in 0..lists {
        bytes.push(b']');
        bytes.push(b'r');
        bytes.extend_from_slice(&index.to_le_bytes());
        bytes.push(b'0');
    }
    for index in 0..lists - 1 {
        for operand in [index, index + 1] {
            bytes.push(b'j');
            bytes.extend_from_slice(&operand.to_le_bytes());
        }
        bytes.extend_from_slice(b"a0");
    }
    bytes.extend_from_slice(b"j\x00\x00\x00\x00.");
    let stop_at = bytes.len() - 1;
    let error = on_small_stack(move || parse_error(&bytes, Options::TORCH));
    assert!(error.problem.contains("nested more than 1000 deep"), "{error}");
    assert_eq!(error.offset, stop_at);
}

#[test]
fn a_list_that_holds_itself_is_refused() {
    // l = []; l.append(l)
    let error = parse_error(b"\x80\x02]q\x00h\x00a.", Options::TORCH);
    assert!(error.problem.contains("holds itself"), "{error}");
}

#[test]
fn memo_and_dup_share_one_list_as_python_does() {
    // l = []; t = (l, l); l.append(7); t  → ([7], [7]), one list
    let value = parse(b"\x80\x02]q\x00h\x00\x86q\x01h\x00K\x07a0.", Options::TORCH).unwrap();
    let Value::Tuple(items) = value else { panic!("{value:?}") };
    let (Value::List(first), Value::List(second)) = (&items[0], &items[1]) else { panic!("{items:?}") };
    assert_eq!(first[..], [Value::Int(7)]);
    assert!(std::ptr::eq(first.as_ptr(), second.as_ptr()));
}

#[test]
fn length_fields_beyond_the_stream_are_refused_before_allocating() {
    let cases: [(&[u8], &str); 7] = [
        (b"\x80\x04X\xff\xff\xff\xffabc.", "BINUNICODE of 4 GiB"),
        (b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xffabc.", "BINUNICODE8 of 2^64-1"),
        (b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x40abc.", "BINBYTES8 of 2^62"),
        (b"\x80\x04B\xff\xff\xff\x7fabc.", "BINBYTES of 2 GiB"),
        (b"\x80\x02\x8b\xff\xff\xff\xff\x01.", "LONG4 of 4 GiB"),
        (b"\x80\x02T\xff\xff\xff\xff.", "BINSTRING of 4 GiB"),
        (b"\x80\x02cos\nsys", "GLOBAL without its newline"),
    ];
    for (bytes, what) in cases {
        let error = parse_error(bytes, Options::TORCH);
        assert!(error.problem.contains("truncated"), "{what}: {error}");
        assert_eq!(error.offset, 2, "{what}: {error}");
    }
    // FRAME's length is a hint: a lying one allocates nothing, and the stream reads on
    let value = parse(b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fK\x05.", Options::TORCH).unwrap();
    assert_eq!(value, Value::Int(5));
}

#[test]
fn a_long_string_encoded_again_and_again_hits_the_copy_budget() {
    // s = 'a' * 100_000, memoised; then 20 000 × _codecs.encode(s, 'latin1')
    let mut bytes = b"\x80\x02c_codecs\nencode\nq\x00X\xa0\x86\x01\x00".to_vec();
    bytes.extend(std::iter::repeat_n(b'a', 100_000));
    bytes.extend_from_slice(b"q\x01X\x06\x00\x00\x00latin1q\x02");
    let calls_from = bytes.len();
    for _ in 0..20_000 {
        bytes.extend_from_slice(b"h\x00h\x01h\x02\x86R0");
    }
    bytes.push(b'N');
    bytes.push(b'.');
    let error = parse_error(&bytes, Options::PLAIN_DATA);
    // the budget of 8 bytes per stream byte + 1 MiB (docs/reliability.md), charged before each copy
    let budget = 8 * bytes.len() + (1 << 20);
    assert!(error.problem.contains(&format!("copies more than {budget} bytes")), "{error}");
    // Not timed: refused at the REDUCE (byte 7 of its 9) of call number
    // budget / 100 000 + 1 = 33 of 20 000, so at most the budget (3.3 MB, not
    // 2 GB) was copied; the offset proves it.
    assert_eq!((error.offset - calls_from) % 9, 7, "{error}");
    assert_eq!((error.offset - calls_from) / 9 + 1, budget / 100_000 + 1, "{error}");
}

#[test]
fn a_huge_dict_set_one_key_at_a_time_is_linear_and_keeps_pythons_key_rules() {
    let keys = 200_000u32;
    let mut bytes = b"\x80\x02}".to_vec();
    for key in 0..keys {
        bytes.push(b'J');
        bytes.extend_from_slice(&key.to_le_bytes());
        bytes.extend_from_slice(b"Ns");
    }
    // d[1] = True through the key True (== 1 in Python), d[2.0] = True through a float
    bytes.extend_from_slice(b"\x88\x88sG\x40\x00\x00\x00\x00\x00\x00\x00\x88s.");
    let before = element_steps_on_this_thread();
    let value = parse(&bytes, Options::TORCH).unwrap();
    let steps = element_steps_on_this_thread() - before;
    let Value::Dict(pairs) = &value else { panic!("{}", value.kind()) };
    assert_eq!(pairs.len(), keys as usize);
    assert_eq!(pairs[1], (Value::Int(1), Value::Bool(true)));
    assert_eq!(pairs[2], (Value::Int(2), Value::Bool(true)));
    assert_eq!(pairs[3], (Value::Int(3), Value::None));
    // Linear, counted instead of timed: the hashed keys compare each new key
    // with about one other (and the stream clones no cell), so at most 2 steps
    // per key; a dict that scanned its keys would make ~keys²/2 = 2·10¹⁰.
    assert!(steps <= 2 * u64::from(keys), "{steps} element steps for {keys} keys");
}

#[test]
fn a_huge_memoised_tuple_passed_to_many_calls_is_not_copied() {
    // t = (None,) * 300_000, memoised; then 100 000 × OrderedDict(*t) (an opaque object)
    let mut bytes = b"\x80\x02ccollections\nOrderedDict\nq\x00(".to_vec();
    bytes.extend(std::iter::repeat_n(b'N', 300_000));
    bytes.extend_from_slice(b"tq\x01");
    for _ in 0..100_000 {
        bytes.extend_from_slice(b"h\x00h\x01R0");
    }
    bytes.extend_from_slice(b"N.");
    let before = element_steps_on_this_thread();
    assert_eq!(parse(&bytes, Options::TORCH).unwrap(), Value::None);
    let steps = element_steps_on_this_thread() - before;
    // Counted instead of timed: each call clones the two cells its GETs push
    // (plus one for the memo store), 200 001 in all, at most 3 per call here;
    // copying the tuple into each call would clone 100 000 × 300 000 = 3·10¹⁰.
    assert!(steps <= 3 * 100_000, "{steps} element steps for 100 000 calls");
}

#[test]
fn more_values_than_the_limit_are_refused() {
    // None, POP, repeated: little memory, but more work than any real file
    let mut bytes = b"\x80\x02".to_vec();
    for _ in 0..=MAX_VALUES {
        bytes.extend_from_slice(b"N0");
    }
    bytes.extend_from_slice(b"N.");
    let error = parse_error(&bytes, Options::TORCH);
    assert!(error.problem.contains(&format!("more than {MAX_VALUES} values")), "{error}");
}

#[test]
fn more_memo_entries_than_the_limit_are_refused() {
    // None, then MEMOIZE: one byte each, a new index each time
    let mut bytes = b"\x80\x04N".to_vec();
    bytes.extend(std::iter::repeat_n(0x94u8, MAX_MEMO + 1));
    bytes.push(b'.');
    let error = parse_error(&bytes, Options::TORCH);
    assert!(error.problem.contains(&format!("more than {MAX_MEMO} memo entries")), "{error}");
    assert_eq!(error.offset, 3 + MAX_MEMO);
    // storing again under an index already held is no new entry
    let mut bytes = b"\x80\x02N".to_vec();
    bytes.extend(std::iter::repeat_n(*b"q\x00", MAX_MEMO + 1).flatten());
    bytes.push(b'.');
    assert_eq!(parse(&bytes, Options::TORCH).unwrap(), Value::None);
}

#[test]
fn tensors_of_absurd_rank_are_refused() {
    // _rebuild_tensor_v2(storage, 0, (1,)*65, (1,)*65)
    let mut bytes = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    bytes.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ");
    bytes.extend_from_slice(b"K\x00(");
    bytes.extend(std::iter::repeat_n(*b"K\x01", 65).flatten());
    bytes.extend_from_slice(b"t2tR.");
    let error = parse_error(&bytes, Options::TORCH);
    assert!(error.problem.contains("65 dimensions, more than 64"), "{error}");
}

#[test]
fn stack_and_mark_misuse_are_errors() {
    for (bytes, expected) in [
        (&b"\x80\x020."[..], "stack underflow"),
        (b"\x80\x02K\x01(\x85.", "found a MARK"),
        (b"\x80\x02K\x01(2.", "expected a value"),
        (b"\x80\x021.", "no MARK"),
        (b"\x80\x02K\x01(b.", "found a MARK"),
    ] {
        let error = parse_error(bytes, Options::TORCH);
        assert!(error.problem.contains(expected), "{bytes:?}: {error}");
    }
    // POP of a MARK on top removes the mark, as Python's does
    assert_eq!(parse(b"\x80\x02K\x01(0.", Options::TORCH).unwrap(), Value::Int(1));
}
