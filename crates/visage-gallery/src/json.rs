//! Reading back JSON the gallery wrote, without serde_json's fixed nesting
//! limit getting in the way.
//!
//! serde_json refuses input nested deeper than 128 levels. Metadata is
//! bounded at enrolment ([`crate::model::METADATA_MAX_DEPTH`]), but galleries
//! written before that bound may hold metadata nested up to serde_json's own
//! limit, and a log record or snapshot line wraps it in a few more levels:
//! read with the default limit, such a gallery would not open at all. So the
//! gallery's own files are read with [`from_json`]: serde_json first (fast);
//! when only the depth limit stopped it, a small parser that allows
//! [`READ_DEPTH_LIMIT`] levels — far more than any writer produced, few
//! enough that building, converting and dropping the value (all recursive)
//! stays within a thread's stack.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The deepest nesting read back from the gallery's own files.
pub const READ_DEPTH_LIMIT: usize = 256;

/// Parses `bytes` as a `T`, allowing nesting up to [`READ_DEPTH_LIMIT`].
/// The error is a message (serde_json's, or the byte offset where the
/// fallback parser stopped).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            let value = parse_value(bytes, READ_DEPTH_LIMIT)?;
            serde_json::from_value(value).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// One JSON document as a [`Value`], arrays and objects nested at most
/// `max_depth` levels. Linear in the input; the recursion is bounded by `max_depth`.
pub fn parse_value(bytes: &[u8], max_depth: usize) -> Result<Value, String> {
    let mut parser = Parser { bytes, pos: 0, max_depth };
    parser.skip_space();
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.pos != bytes.len() {
        return Err(format!("trailing characters at byte {}", parser.pos));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        match self.bytes.get(self.pos) {
            Some(b'{' | b'[') if depth >= self.max_depth => Err(self.error(&format!("nested deeper than {} levels", self.max_depth))),
            Some(b'{') => {
                self.pos += 1;
                let mut map = Map::new();
                self.skip_space();
                if self.eat(b'}') {
                    return Ok(Value::Object(map));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.skip_space();
                    self.expect(b':')?;
                    self.skip_space();
                    let value = self.value(depth + 1)?;
                    map.insert(key, value);
                    self.skip_space();
                    if !self.eat(b',') {
                        self.expect(b'}')?;
                        return Ok(Value::Object(map));
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    self.skip_space();
                    items.push(self.value(depth + 1)?);
                    self.skip_space();
                    if !self.eat(b',') {
                        self.expect(b']')?;
                        return Ok(Value::Array(items));
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(self.bytes.get(self.pos), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.pos += 1;
                }
                // The token is flat: serde_json checks its grammar and range.
                serde_json::from_slice::<serde_json::Number>(&self.bytes[start..self.pos])
                    .map(Value::Number)
                    .map_err(|e| format!("number at byte {start}: {e}"))
            }
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    /// A string token, unescaped by serde_json (escapes, UTF-8, control characters).
    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.bytes.get(self.pos) {
                None => return Err(format!("string at byte {start} is not terminated")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => break,
                Some(_) => self.pos += 1,
            }
        }
        self.pos += 1;
        serde_json::from_slice::<String>(&self.bytes[start..self.pos]).map_err(|e| format!("string at byte {start}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn agrees_with_serde_json_where_it_parses() {
        for text in [
            r#"{"a": [1, -2.5e3, true, false, null, "x\"\\\u00e9\n"], "b": {}, "c": [], "a": 7}"#,
            " 0 ",
            r#""plain""#,
            r#"[{"k": [{"k": 18446744073709551615}]}, -9223372036854775808, 1e308]"#,
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_value(text.as_bytes(), 8).unwrap(), expected, "{text}");
        }
        for bad in ["", "[1,]", "{\"a\" 1}", "[1 2]", "\"open", "01", "1e", "nul", "[\"\\x\"]", "{1: 2}", "[1] x", "\"a\u{1}\""] {
            assert!(parse_value(bad.as_bytes(), 8).is_err(), "{bad:?}");
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn depth_is_bounded_and_reported() {
        assert_eq!(parse_value(nested(8).as_bytes(), 8).unwrap().to_string(), nested(8));
        let err = parse_value(nested(9).as_bytes(), 8).unwrap_err();
        assert_eq!(err, "nested deeper than 8 levels at byte 8");
        // A million levels: an error, not a stack overflow.
        let err = parse_value(nested(1_000_000).as_bytes(), READ_DEPTH_LIMIT).unwrap_err();
        assert!(err.starts_with("nested deeper than 256 levels"), "{err}");
    }

    #[test]
    fn reads_back_what_serde_json_alone_refuses() {
        let text = format!(r#"{{"metadata": {}}}"#, nested(200));
        assert!(serde_json::from_str::<Value>(&text).unwrap_err().to_string().starts_with("recursion limit exceeded"));
        let value: Value = from_json(text.as_bytes()).unwrap();
        assert_eq!(value["metadata"].to_string(), nested(200));
        assert!(from_json::<Value>(nested(300).as_bytes()).unwrap_err().starts_with("nested deeper than 256 levels"));
        assert!(from_json::<Value>(b"[1,").unwrap_err().contains("EOF"));
    }
}
