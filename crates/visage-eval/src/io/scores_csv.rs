//! Reader of the scores CSV (docs/spec/formats.md, "Scores CSV"):
//! header `score,label`, one comparison per line, label 1 = same identity.
//!
//! Streaming and parallel: the file is read in blocks of whole lines
//! ([`for_each_chunk_in`]), each block is parsed in chunks on rayon's
//! threads, and only the two score vectors are kept (8 bytes per pair), so
//! 10⁸ pairs need ~0.8 GB plus one 32 MiB block of text.
//!
//! A row in the form every writer produces (`-0.123456,0`: optional sign,
//! digits with at most one point, a 0/1 label, `\n` or `\r\n`) is decoded
//! straight from its bytes ([`plain_row`]); any other line — spaces, an
//! exponent, `inf`, a wrong label, a blank line, non-UTF-8 bytes — goes
//! through the general line and field checks of [`crate::io::text`], so
//! every value and every error is the one `str::parse::<f64>` and those
//! checks give.

use std::io::BufRead;
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::io::text::{examined, for_each_chunk_in, line_length, line_text, open_text, shorten, split_fields, ChunkParse, ChunkSizes, LineCtx};
use crate::roc::LabelledScores;

/// The header line a scores CSV must start with.
pub const SCORES_HEADER: &str = "score,label";

/// Reads a scores CSV; refuses a wrong header, non-numeric or NaN scores,
/// labels other than 0/1, an empty file and a file with only one class.
pub fn read_scores_csv(path: &Path) -> Result<LabelledScores> {
    read_scores_csv_from(open_text(path)?, path)
}

/// [`read_scores_csv`] over any reader; `path` names the source in errors.
pub fn read_scores_csv_from(reader: impl BufRead, path: &Path) -> Result<LabelledScores> {
    read_scores_csv_sized(reader, path, ChunkSizes::DEFAULT).map(concatenate)
}

/// [`read_scores_csv`] without joining the chunks it was parsed in: the
/// scores of the file in order, piece after piece (for
/// [`crate::roc::roc_summary_of_pieces`], which needs no single vector).
pub fn read_scores_csv_pieces(path: &Path) -> Result<Vec<LabelledScores>> {
    read_scores_csv_sized(open_text(path)?, path, ChunkSizes::DEFAULT)
}

/// The pieces' scores in one [`LabelledScores`], in order.
fn concatenate(pieces: Vec<LabelledScores>) -> LabelledScores {
    let mut scores = LabelledScores {
        genuine: Vec::with_capacity(pieces.iter().map(|p| p.genuine.len()).sum()),
        impostor: Vec::with_capacity(pieces.iter().map(|p| p.impostor.len()).sum()),
    };
    for piece in pieces {
        scores.genuine.extend_from_slice(&piece.genuine);
        scores.impostor.extend_from_slice(&piece.impostor);
    }
    scores
}

/// [`read_scores_csv_pieces`] with the block and chunk sizes given (tests
/// cut small inputs into many blocks and chunks with it).
fn read_scores_csv_sized(reader: impl BufRead, path: &Path, sizes: ChunkSizes) -> Result<Vec<LabelledScores>> {
    let mut pieces: Vec<LabelledScores> = Vec::new();
    let mut saw_header = false;
    let check_header = |line_no: usize, line: &str| {
        let header: Vec<&str> = line.split(',').map(str::trim).collect();
        if header != ["score", "label"] {
            let ctx = LineCtx { path, line: line_no };
            return Err(ctx.error(format!("expected the header `{SCORES_HEADER}`, found `{}`", shorten(line))));
        }
        saw_header = true;
        Ok(())
    };
    let merge = |chunk: LabelledScores| pieces.push(chunk);
    for_each_chunk_in(reader, path, sizes, 1, check_header, |chunk| parse_rows(chunk, path), merge)?;
    if !saw_header {
        return Err(EvalError::content(path, format!("empty file: expected the header `{SCORES_HEADER}` and rows")));
    }
    let classes = LabelledScores {
        genuine: pieces.iter().find_map(|p| p.genuine.first().copied()).into_iter().collect(),
        impostor: pieces.iter().find_map(|p| p.impostor.first().copied()).into_iter().collect(),
    };
    classes.check_both_classes().map_err(|message| EvalError::content(path, message))?;
    Ok(pieces)
}

/// The rows of one chunk (whole lines after the header); line numbers in
/// errors count from the chunk's first line.
fn parse_rows(chunk: &[u8], path: &Path) -> ChunkParse<LabelledScores> {
    let mut scores = LabelledScores::default();
    let mut line_no = 0usize;
    let mut pos = 0usize;
    // bytes examined by the plain rows, added to the thread's count once
    let mut plain_examined = 0usize;
    while pos < chunk.len() {
        line_no += 1;
        let rest = &chunk[pos..];
        if let Some(row) = plain_row(rest) {
            // as the general path counts: the line, then both fields
            plain_examined += row.line_bytes + row.field_bytes;
            if row.genuine { &mut scores.genuine } else { &mut scores.impostor }.push(row.score);
            pos += row.line_bytes;
            continue;
        }
        let n = line_length(rest);
        plain_examined += n;
        if let Some(line) = line_text(&rest[..n], path, line_no)? {
            let ctx = LineCtx { path, line: line_no };
            let fields = split_fields(&ctx, line, 2, SCORES_HEADER)?;
            let score = ctx.f64_field("score", fields[0])?;
            if ctx.label_field("label", fields[1])? { &mut scores.genuine } else { &mut scores.impostor }.push(score);
        }
        pos += n;
    }
    examined(plain_examined);
    Ok((scores, line_no))
}

/// One row decoded by [`plain_row`].
#[derive(Debug, PartialEq)]
struct PlainRow {
    score: f64,
    genuine: bool,
    /// Bytes of the line, its `\n` or `\r\n` included.
    line_bytes: usize,
    /// Bytes of its two fields (the line less its comma and line end).
    field_bytes: usize,
}

/// Longest score field [`plain_row`] decodes; longer ones take the general path.
const PLAIN_SCORE_BYTES: usize = 64;

/// 10⁰ … 10²²: the powers of ten a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/// The row at the start of `bytes` if it has the plain form
/// `[+-]digits[.digits],[01]` followed by `\n`, `\r\n` or the end of
/// `bytes` (the end of the input: a chunk never ends inside a line), with
/// at most [`PLAIN_SCORE_BYTES`] bytes of score; `None` otherwise.
///
/// The value equals `str::parse::<f64>` on the field: a mantissa of at most
/// 2⁵³ with at most 22 decimals is `m / 10ᵏ` of two exactly represented
/// doubles, which one IEEE division rounds correctly (Clinger's fast path,
/// the one `str::parse` takes for such input); any other field is handed to
/// `str::parse` itself.
#[inline]
fn plain_row(bytes: &[u8]) -> Option<PlainRow> {
    short_row(bytes).or_else(|| any_plain_row(bytes))
}

/// Bytes [`short_row`] needs in front of it: its widest row (sign, 7 + 7
/// digits, point, comma, label, `\r\n`) plus an 8-byte load past any field.
const SHORT_ROW_WINDOW: usize = 32;

/// [`plain_row`] for the rows most writers produce (`%.6f` and the like):
/// an optional sign, 1–7 integer digits, optionally a point and 1–7
/// decimals, then `,0` or `,1` and a line end, with at least
/// [`SHORT_ROW_WINDOW`] bytes of input from the row's start. Each digit run
/// is read as one 8-byte word (a digit mask finds its end, three
/// multiplications its value) instead of byte by byte; the value is the one
/// [`any_plain_row`] computes (at most 14 digits, so the mantissa is below
/// 2⁵³). `None` for any other row, which [`any_plain_row`] then decides.
#[inline]
fn short_row(bytes: &[u8]) -> Option<PlainRow> {
    if bytes.len() < SHORT_ROW_WINDOW {
        return None;
    }
    let negative = bytes[0] == b'-';
    let mut i = usize::from(negative || bytes[0] == b'+');
    let (integer_digits, integer) = digit_run(&bytes[i..i + 8]);
    if integer_digits == 0 || integer_digits == 8 {
        return None;
    }
    i += integer_digits;
    let (mut mantissa, mut decimals) = (integer, 0usize);
    if bytes[i] == b'.' {
        let (fraction_digits, fraction) = digit_run(&bytes[i + 1..i + 9]);
        if fraction_digits == 0 || fraction_digits == 8 {
            return None;
        }
        mantissa = mantissa * POWERS_OF_TEN_U64[fraction_digits] + fraction;
        decimals = fraction_digits;
        i += 1 + fraction_digits;
    }
    if bytes[i] != b',' {
        return None;
    }
    let genuine = match bytes[i + 1] {
        b'1' => true,
        b'0' => false,
        _ => return None,
    };
    let line_bytes = match (bytes[i + 2], bytes[i + 3]) {
        (b'\n', _) => i + 3,
        (b'\r', b'\n') => i + 4,
        _ => return None,
    };
    let magnitude = mantissa as f64 / EXACT_POWERS_OF_TEN[decimals];
    let score = if negative { -magnitude } else { magnitude };
    Some(PlainRow { score, genuine, line_bytes, field_bytes: i + 1 })
}

/// 10⁰ … 10⁷ as integers.
const POWERS_OF_TEN_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The leading ASCII digits of `word` (8 bytes): how many (0–8) and their
/// value, read as one little-endian word (SWAR).
#[inline]
fn digit_run(word: &[u8]) -> (usize, u64) {
    let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
    let digits = word.wrapping_sub(0x3030_3030_3030_3030);
    // a byte's high bit is set when it is not a digit (byte − '0' ≥ 10); a
    // borrow or carry only reaches the bytes after the first non-digit
    let not_digit = (digits | digits.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    let count = (not_digit.trailing_zeros() / 8) as usize;
    if count == 0 {
        return (0, 0);
    }
    // the run moved to the word's high bytes: zeros before it read as leading zeros
    let run = (digits << (8 * (8 - count))) & 0x0F0F_0F0F_0F0F_0F0F;
    let pairs = (run.wrapping_mul((10 << 8) | 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul((100 << 16) | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    (count, quads.wrapping_mul((10_000 << 32) | 1) >> 32)
}

/// [`plain_row`] byte by byte, for every row of the plain form.
#[inline]
fn any_plain_row(bytes: &[u8]) -> Option<PlainRow> {
    let negative = bytes.first() == Some(&b'-');
    let mut i = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let (mut mantissa, mut significant, mut decimals) = (0u64, 0usize, 0usize);
    let (mut any_digit, mut point) = (false, false);
    loop {
        match *bytes.get(i)? {
            digit @ b'0'..=b'9' => {
                any_digit = true;
                if mantissa != 0 || digit != b'0' {
                    significant += 1;
                    if significant <= 19 {
                        mantissa = mantissa * 10 + u64::from(digit - b'0');
                    }
                }
                decimals += usize::from(point);
            }
            b'.' if !point => point = true,
            b',' => break,
            _ => return None,
        }
        i += 1;
        if i > PLAIN_SCORE_BYTES {
            return None;
        }
    }
    if !any_digit {
        return None;
    }
    let score_bytes = i;
    let genuine = match *bytes.get(i + 1)? {
        b'1' => true,
        b'0' => false,
        _ => return None,
    };
    let line_bytes = match (bytes.get(i + 2), bytes.get(i + 3)) {
        (None, _) => i + 2,
        (Some(b'\n'), _) => i + 3,
        (Some(b'\r'), Some(b'\n')) => i + 4,
        _ => return None,
    };
    let score = if significant <= 19 && mantissa <= 1 << 53 && decimals < EXACT_POWERS_OF_TEN.len() {
        let magnitude = mantissa as f64 / EXACT_POWERS_OF_TEN[decimals];
        if negative {
            -magnitude
        } else {
            magnitude
        }
    } else {
        let parsed: f64 = std::str::from_utf8(&bytes[..score_bytes]).ok()?.parse().ok()?;
        if !parsed.is_finite() {
            return None;
        }
        parsed
    };
    Some(PlainRow { score, genuine, line_bytes, field_bytes: score_bytes + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::text::{bytes_examined_on_this_thread, for_each_line_in};
    use std::io::Cursor;

    /// The reader as it was before it went parallel: one line at a time
    /// through [`for_each_line_in`] and the field checks. The reference
    /// every result and error of the parallel reader is compared with.
    fn sequential_reference(bytes: &[u8], path: &Path) -> Result<LabelledScores> {
        let mut scores = LabelledScores::default();
        let mut saw_header = false;
        for_each_line_in(Cursor::new(bytes), path, |line_no, line| {
            let ctx = LineCtx { path, line: line_no };
            if !saw_header {
                let header: Vec<&str> = line.split(',').map(str::trim).collect();
                if header != ["score", "label"] {
                    return Err(ctx.error(format!("expected the header `{SCORES_HEADER}`, found `{}`", shorten(line))));
                }
                saw_header = true;
                return Ok(());
            }
            let fields = split_fields(&ctx, line, 2, SCORES_HEADER)?;
            let score = ctx.f64_field("score", fields[0])?;
            if ctx.label_field("label", fields[1])? {
                scores.genuine.push(score);
            } else {
                scores.impostor.push(score);
            }
            Ok(())
        })?;
        if !saw_header {
            return Err(EvalError::content(path, format!("empty file: expected the header `{SCORES_HEADER}` and rows")));
        }
        scores.check_both_classes().map_err(|message| EvalError::content(path, message))?;
        Ok(scores)
    }

    /// Same scores bit for bit (so `-0.0` and `0.0` differ), same order, or the same error text.
    fn assert_same(bytes: &[u8], sizes: ChunkSizes) {
        let path = Path::new("s.csv");
        let want = sequential_reference(bytes, path);
        let got = read_scores_csv_sized(Cursor::new(bytes), path, sizes).map(concatenate);
        match (got, want) {
            (Ok(got), Ok(want)) => {
                let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.genuine), bits(&want.genuine), "{sizes:?}");
                assert_eq!(bits(&got.impostor), bits(&want.impostor), "{sizes:?}");
            }
            (Err(got), Err(want)) => assert_eq!(got.to_string(), want.to_string(), "{sizes:?}"),
            (got, want) => panic!("{sizes:?}: got {got:?}, the sequential reader gives {want:?}"),
        }
    }

    /// Block and chunk sizes from one line per chunk up to the defaults.
    const SIZES: [ChunkSizes; 5] = [
        ChunkSizes { block: 1, min_chunk: 1 },
        ChunkSizes { block: 7, min_chunk: 3 },
        ChunkSizes { block: 64, min_chunk: 16 },
        ChunkSizes { block: 1000, min_chunk: 100 },
        ChunkSizes::DEFAULT,
    ];

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 11
        }
    }

    #[test]
    fn plain_rows_equal_str_parse() {
        let cases = [
            "0",
            "-0",
            "+0",
            "0.0",
            "-0.0",
            "5",
            "5.",
            ".5",
            "-.5",
            "+.5",
            "0.1",
            "0.2",
            "0.3",
            "-0.047238",
            "0.000001",
            "123456789.123456789",
            "9007199254740992",
            "9007199254740993",
            "9007199254740991.5",
            "0.1000000000000000055511151231257827",
            "2.2250738585072011e-308",
            "0.00000000000000000000001",
            "0.0000000000000000000001",
            "1234567890123456789",
            "12345678901234567890",
            "99999999999999999999999999999999",
            "0.49283749283749283",
            "-0.08653301275462327",
            "4.9406564584124654e-324",
            "1.7976931348623157",
            "00000000000000000000000000001.5",
            "3.14159265358979323846264338327950288",
        ];
        for text in cases {
            for label in ["0", "1"] {
                for end in ["\n", "\r\n", ""] {
                    let line = format!("{text},{label}{end}");
                    let want: Option<f64> = text.parse().ok();
                    // alone (byte by byte) and followed by more rows (the word-wise path where it applies)
                    let followed = format!("{line}{}", "0.5,1\n".repeat(6));
                    let inputs = if end.is_empty() { vec![line.clone()] } else { vec![line.clone(), followed] };
                    for input in inputs {
                        match plain_row(input.as_bytes()) {
                            Some(row) => {
                                assert_eq!(Some(row.score.to_bits()), want.map(f64::to_bits), "{input:?}");
                                assert_eq!((row.genuine, row.line_bytes, row.field_bytes), (label == "1", line.len(), text.len() + 1), "{input:?}");
                            }
                            // only the exponent forms and over-long fields take the general path
                            None => assert!(text.contains('e') || text.len() > PLAIN_SCORE_BYTES, "{input:?} refused"),
                        }
                    }
                }
            }
        }
        // the word-wise path takes the writers' rows
        let rows = "-0.123456,0\n0.5,1\r\n1234567.1234567,1\n7,0\n-0.000001,1\n";
        let mut at = 0;
        for (score, genuine) in [(-0.123456, false), (0.5, true), (1234567.1234567, true), (7.0, false), (-0.000001, true)] {
            let row = short_row(format!("{}{}", &rows[at..], "0.5,1\n".repeat(6)).as_bytes()).expect("a short row");
            assert_eq!((row.score, row.genuine), (score, genuine));
            at += row.line_bytes;
        }
        assert_eq!(at, rows.len());
        for refused in [
            ".,1\n",
            "-,0\n",
            "1.2.3,1\n",
            " 1,1\n",
            "1 ,1\n",
            "1, 1\n",
            "1,2\n",
            "1,1 \n",
            "1,10\n",
            "inf,1\n",
            "1,1\r",
            "1,1\r\r\n",
            "1e5,1\n",
            "0x1,0\n",
        ] {
            assert_eq!(plain_row(refused.as_bytes()), None, "{refused:?}");
            let followed = format!("{refused}{}", "0.5,1\n".repeat(6));
            assert_eq!(plain_row(followed.as_bytes()), None, "{followed:?}");
        }
        // random decimals of every length up to 20 digits, both signs
        let mut rng = Lcg(11);
        for _ in 0..200_000 {
            let digits = 1 + (rng.next() % 20) as usize;
            let mut text: String = (0..digits).map(|_| char::from(b'0' + (rng.next() % 10) as u8)).collect();
            let point = (rng.next() % (digits as u64 + 1)) as usize;
            if point < digits {
                text.insert(point, '.');
            }
            if rng.next().is_multiple_of(2) {
                text.insert(0, '-');
            }
            for input in [format!("{text},1\n"), format!("{text},1\n{}", "0.5,1\n".repeat(6))] {
                let row = plain_row(input.as_bytes()).unwrap_or_else(|| panic!("{text} refused"));
                assert_eq!(row.score.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{text}");
                assert_eq!((row.line_bytes, row.field_bytes), (text.len() + 3, text.len() + 1), "{text}");
            }
        }
        // every double's shortest representation and its 17-digit and 6-decimal forms
        for _ in 0..200_000 {
            let value = f64::from_bits(rng.next() << 11 | rng.next() & 0x7ff);
            if !value.is_finite() {
                continue;
            }
            for text in [format!("{value}"), format!("{value:.17}"), format!("{value:.6}")] {
                let want: f64 = text.parse().unwrap();
                for input in [format!("{text},0\n"), format!("{text},0\r\n{}", "0.5,1\n".repeat(6))] {
                    match plain_row(input.as_bytes()) {
                        Some(row) => assert_eq!(row.score.to_bits(), want.to_bits(), "{text}"),
                        None => assert!(text.len() > PLAIN_SCORE_BYTES || text.contains('e'), "{text} refused"),
                    }
                }
            }
        }
    }

    #[test]
    fn fixtures_read_as_the_sequential_reader_reads_them() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for name in ["roc_continuous.csv", "roc_imbalanced.csv", "roc_ties.csv", "erc_pairs.csv"] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            for sizes in SIZES {
                assert_same(&bytes, sizes);
            }
        }
    }

    /// Random files mixing plain rows with every other kind of line, good
    /// and bad, at random places: the same scores in the same order, or the
    /// same first error at the same line, with every block and chunk size.
    #[test]
    fn random_files_read_as_the_sequential_reader_reads_them() {
        let odd_lines = [
            "",
            "  ",
            "\u{a0}",
            " 0.5 , 1 ",
            "1e-3,0",
            "-2.5E+2,1",
            "0.5,1\r",
            "0.25,0\r\r",
            "+.5,1",
            "7,0",
            "nan,1",
            "inf,0",
            "1e999,1",
            "0.5,2",
            "0.5",
            "0.5,1,1",
            "x,0",
            "0.5,\u{a0}1",
            "\u{feff}0.5,1",
            "0.1,0 ",
            "\t0.1,0",
        ];
        let mut rng = Lcg(5);
        for case in 0..400 {
            let mut text = String::from(if case % 50 == 0 { " score , label \r\n" } else { "score,label\n" });
            let rows = 1 + rng.next() % 300;
            for _ in 0..rows {
                match rng.next() % 40 {
                    0 => text.push_str(odd_lines[(rng.next() % odd_lines.len() as u64) as usize]),
                    1..=3 => text.push_str(&format!("{},{}", (rng.next() as f64 / 1e13 - 0.5), rng.next() % 2)),
                    _ => text.push_str(&format!("{:.6},{}", (rng.next() as f64 / 1e15 - 1.0), rng.next() % 2)),
                }
                text.push_str(if rng.next().is_multiple_of(10) { "\r\n" } else { "\n" });
            }
            if rng.next().is_multiple_of(3) {
                text.pop();
            }
            let mut bytes = text.into_bytes();
            if case % 40 == 7 {
                let at = (rng.next() as usize) % bytes.len();
                bytes.insert(at, 0xff);
            }
            for sizes in SIZES {
                assert_same(&bytes, sizes);
            }
        }
    }

    #[test]
    fn long_lines_are_refused_at_the_same_line_with_small_blocks() {
        let long = "1".repeat(crate::io::text::MAX_LINE_BYTES + 5);
        for text in [
            format!("score,label\n0.5,1\n0.1,0\n{long}\n0.2,0\n"),
            format!("score,label\n0.5,1\n0.1,0\n0.{long},1\n"),
            format!("score,label\n0.5,1\n0.1,0\n{long}"),
            format!("score,label\n0.5,1\n0.{},0\n0.1,0\n", "1".repeat(crate::io::text::MAX_LINE_BYTES - 4)),
        ] {
            for sizes in [ChunkSizes { block: 4096, min_chunk: 8 }, ChunkSizes { block: 1 << 21, min_chunk: 4 }, ChunkSizes::DEFAULT] {
                assert_same(text.as_bytes(), sizes);
            }
        }
    }

    /// A file of plain rows large enough to be read in several blocks and
    /// many chunks on the default sizes; the work moved from the pool
    /// threads is counted on this thread, once per byte of line and field.
    #[test]
    fn a_large_file_is_read_in_parallel_with_its_work_counted_here() {
        let mut rng = Lcg(3);
        let mut text = String::from("score,label\n");
        while text.len() < 40 << 20 {
            text.push_str(&format!("{:.6},{}\n", rng.next() as f64 / 1e15 - 1.0, rng.next() % 2));
        }
        let before = bytes_examined_on_this_thread();
        assert_same(text.as_bytes(), ChunkSizes::DEFAULT);
        let both = bytes_examined_on_this_thread() - before;
        // The reference examines each line, then its two fields: 2·len − 12
        // (the header's fields are not parsed) − 2 per row (comma and newline).
        // The parallel reader adds at most a line per cut searched.
        let rows = text.lines().count() as u64 - 1;
        let sequential = 2 * text.len() as u64 - 12 - 2 * rows;
        let parallel = both - sequential;
        assert!(parallel >= sequential && parallel <= sequential + 64 * 40, "sequential {sequential}, parallel {parallel}");
    }
}
