//! `visage heads eval` cases nobody on the project wrote: deep nesting,
//! declared sizes the arrays do not back, mismatched lengths, numbers JSON
//! or float32 cannot hold. Each is refused with the field at fault (or as
//! malformed JSON), without deep recursion and without allocating from a
//! number the input merely states.

mod common;

use common::Backend;
use visage_heads::case::{CaseError, HeadCase};

fn error(text: &str) -> String {
    HeadCase::from_json(text).map(|_| ()).unwrap_err().to_string()
}

const HEAD: &str = r#""head": {"kind": "cosface"}"#;

#[test]
fn deep_nesting_is_refused_without_recursing_into_it() {
    for depth in [129, 10_000, 1_000_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        // At the top level, as the head, as a row, as a number, as a label.
        for text in [
            deep.clone(),
            format!(r#"{{"head": {deep}}}"#),
            format!(r#"{{"state": {deep}}}"#),
            format!(r#"{{"embeddings": [{deep}]}}"#),
            format!(r#"{{"embeddings": [[{deep}]]}}"#),
            format!(r#"{{"labels": [{deep}]}}"#),
        ] {
            let err = error(&text);
            assert!(err.contains("recursion limit exceeded") || err.contains("expected") || err.contains("(top level)"), "depth {depth}: {err}");
        }
    }
    // Not timed: every text above ends in an error, on the test thread's
    // stack, which a descent of 10⁶ levels would overflow (an abort, not a
    // failure), and the error is the refusal itself.
    assert_eq!(error(&format!(r#"{{"embeddings": [[{}]]}}"#, "[1]")), "field `embeddings[0][0]`: expected a number, got an array");
    assert_eq!(error(r#"{"embeddings": [[{"a": 1}]]}"#), "field `embeddings[0][0]`: expected a number, got an object");
    assert_eq!(error(r#"{"labels": [[0]]}"#), "field `labels[0]`: expected a non-negative integer, got an array");
    assert_eq!(error(r#"[1, 2]"#), "field `(top level)`: expected a JSON object");
    assert!(error("").starts_with("not valid JSON: EOF while parsing"), "{}", error(""));
}

#[test]
fn declared_sizes_are_checked_against_the_arrays_given() {
    let rest = r#""embeddings": [[1, 2]], "weights": [[1, 0], [0, 1]], "labels": [0]"#;
    // k of 10^12 sub-centres with two rows of weights: nothing sized from k.
    let err = error(&format!(r#"{{"head": {{"kind": "subcenter", "k": 1000000000000}}, {rest}}}"#));
    assert_eq!(err, "field `weights`: 2 rows is not a multiple of k = 1000000000000 (rows = classes × k)");
    let err = error(&format!(r#"{{"head": {{"kind": "subcenter", "k": 0}}, {rest}}}"#));
    assert!(err.contains("k"), "{err}");
    let err = error(&format!(r#"{{"head": {{"kind": "subcenter", "k": 18446744073709551616}}, {rest}}}"#));
    assert!(err.starts_with("field `head`: "), "{err}");
    // A label of 10^12 (there are 2 classes) and of 2^64 − 1.
    for label in ["1000000000000", "18446744073709551615"] {
        let err = error(&format!(r#"{{{HEAD}, "embeddings": [[1, 2]], "weights": [[1, 0], [0, 1]], "labels": [{label}]}}"#));
        assert_eq!(err, format!("field `labels[0]`: {label} is out of range: there are 2 classes"));
    }
    let err = error(&format!(r#"{{{HEAD}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [1e12]}}"#));
    assert_eq!(err, "field `labels[0]`: expected a non-negative integer, got 1000000000000.0");
}

#[test]
fn mismatched_lengths_and_bad_numbers_name_the_field() {
    let cases = [
        (
            r#""embeddings": [[1, 2], [3]], "weights": [[1, 0]], "labels": [0, 0]"#,
            "field `embeddings[1]`: ragged: has 1 values but embeddings[0] has 2",
        ),
        (
            r#""embeddings": [[1, 2], [3, 4, 5]], "weights": [[1, 0]], "labels": [0, 0]"#,
            "field `embeddings[1]`: ragged: has 3 values but embeddings[0] has 2",
        ),
        (r#""embeddings": [[1, 2]], "weights": [[1, 0, 0]], "labels": [0]"#, "field `weights`: rows have 3 values but embeddings rows have 2"),
        (r#""embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0, 0, 0]"#, "field `labels`: 3 labels for 1 embeddings"),
        (r#""embeddings": [], "weights": [[1, 0]], "labels": []"#, "field `embeddings`: is empty"),
        (r#""embeddings": [[]], "weights": [[1, 0]], "labels": [0]"#, "field `embeddings[0]`: is empty"),
        (r#""embeddings": {"0": [1]}, "weights": [[1, 0]], "labels": [0]"#, "field `embeddings`: expected an array of rows"),
        (r#""embeddings": [7], "weights": [[1, 0]], "labels": [0]"#, "field `embeddings[0]`: expected an array of numbers"),
        (r#""embeddings": [[1, "2"]], "weights": [[1, 0]], "labels": [0]"#, "field `embeddings[0][1]`: expected a number, got \"2\""),
        (r#""embeddings": [[1, null]], "weights": [[1, 0]], "labels": [0]"#, "field `embeddings[0][1]`: expected a number, got null"),
        (
            r#""embeddings": [[1, 2]], "weights": [[1, 1e300]], "labels": [0]"#,
            "field `weights[0][1]`: 1e300 is beyond float32's range (±3.4e38), the precision the head computes in",
        ),
        (r#""embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [-1]"#, "field `labels[0]`: expected a non-negative integer, got -1"),
        (r#""embeddings": [[1, 2]], "weights": [[1, 0]], "labels": 0"#, "field `labels`: expected an array of integers"),
        (r#""embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0], "labels": [0]"#, "field `labels`: given twice"),
        (
            r#""embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0], "classes": 1000000000000"#,
            "field `classes`: unknown field; expected one of head, embeddings, weights, labels, state, partial_fc",
        ),
        (r#""embeddings": [[1, 2]], "weights": [[1, 0]]"#, "field `labels`: missing"),
    ];
    for (rest, expected) in cases {
        assert_eq!(error(&format!("{{{HEAD}, {rest}}}")), expected, "{rest}");
    }
    // Numbers JSON cannot hold are a JSON error, with the position.
    let err = error(&format!(r#"{{{HEAD}, "embeddings": [[1, 1e400]], "weights": [[1, 0]], "labels": [0]}}"#));
    assert!(err.starts_with("not valid JSON: number out of range at line 1"), "{err}");
    let err = error(&format!(r#"{{{HEAD}, "embeddings": [[1, NaN]], "weights": [[1, 0]], "labels": [0]}}"#));
    assert!(err.starts_with("not valid JSON: "), "{err}");
    // Trailing garbage after the object.
    let err = error(&format!(r#"{{{HEAD}, "embeddings": [[1, 2]], "weights": [[1, 0]], "labels": [0]}} {{"#));
    assert!(err.starts_with("not valid JSON: trailing characters"), "{err}");
}

#[test]
fn a_valid_case_still_parses_exactly_and_evaluates() {
    let text = r#"{"head": {"kind": "cosface"}, "embeddings": [[3, -4], [0.5, 1e-3]], "weights": [[1, 0], [0, 1]], "labels": [1, 0]}"#;
    let case = HeadCase::from_json(text).unwrap();
    assert_eq!(case.embeddings, vec![vec![3.0, -4.0], vec![0.5, 1e-3]]);
    assert_eq!(case.weights, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    assert_eq!(case.labels, vec![1, 0]);
    let result = case.evaluate::<Backend>(&Default::default()).unwrap();
    assert!(result.loss.is_finite() && result.loss > 0.0, "{}", result.loss);
}

#[test]
fn values_that_overflow_float32_inside_the_head_are_an_error_not_nan() {
    // Each value fits float32, their squares do not: ‖x‖ overflows.
    let text = r#"{"head": {"kind": "cosface"}, "embeddings": [[3e38, 3e38]], "weights": [[1, 0]], "labels": [0]}"#;
    let case = HeadCase::from_json(text).unwrap();
    match case.evaluate::<Backend>(&Default::default()) {
        Ok(result) => {
            assert!(result.loss.is_finite(), "{}", result.loss);
            assert!(result.grad_embeddings.iter().chain(&result.grad_weights).flatten().all(|g| g.is_finite()));
        }
        Err(CaseError::NotFinite(message)) => assert!(message.contains("overflow float32"), "{message}"),
        // The head checks its own inputs and names the row.
        Err(other) => assert_eq!(other.to_string(), "embeddings row 0 holds a non-finite value (NaN or infinity)"),
    }
}

#[test]
fn a_large_case_costs_memory_in_proportion_to_its_numbers() {
    // 2000 × 512 numbers (≈ 4 MB of text) parse into f64 rows.
    let row = format!("[{}]", vec!["0.125"; 512].join(","));
    let rows = vec![row.as_str(); 2000].join(",");
    let labels = vec!["0"; 2000].join(",");
    let text = format!(r#"{{{HEAD}, "embeddings": [{rows}], "weights": [{row}], "labels": [{labels}]}}"#);
    let case = HeadCase::from_json(&text).unwrap();
    // Not timed (speed is the benches' job): the shape and the last value
    // read prove that all 1 025 024 numbers were parsed, and the capacities
    // that each row is a buffer of f64s at most twice its length.
    assert!(case.embeddings.iter().chain(&case.weights).all(|row| row.capacity() <= 2 * row.len()));
    assert_eq!((case.embeddings.len(), case.embeddings[1999].len(), case.embeddings[1999][511]), (2000, 512, 0.125));
}
