//! JSON lines: one JSON object per line, as a file of records is usually written. Each record
//! keeps its line number and its text as written, so that it can be replayed byte for byte
//! and an error or a verdict can point at its line.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One record of a JSON-lines file.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLine {
    /// 1-based line number.
    pub line: u64,
    /// The line as written, without its line ending.
    pub text: String,
    /// The record (a JSON object).
    pub value: Value,
}

/// Why a JSON-lines source cannot be read; each names the source and, where there is one,
/// the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonlError {
    /// The file cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("{source_name}:{line}: cannot read")]
    Read {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not UTF-8.
    #[error("{source_name}:{line}: not UTF-8 text")]
    NotUtf8 {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
    },
    /// A line that is not JSON.
    #[error("{source_name}:{line}: not JSON: {message}")]
    NotJson {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// The parser's message (with the column).
        message: String,
    },
    /// A line that is JSON but not an object.
    #[error("{source_name}:{line}: a record must be a JSON object, not {found}")]
    NotAnObject {
        /// The source.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// What it is (`an array`, `a number`, …).
        found: &'static str,
    },
    /// No record at all.
    #[error("{source_name}: no records")]
    Empty {
        /// The source.
        source_name: String,
    },
}

/// Reads a JSON-lines file: one object per line; blank lines are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<JsonLine>, JsonlError> {
    let file = std::fs::File::open(path).map_err(|source| JsonlError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(std::io::BufReader::new(file), &path.display().to_string())
}

/// [`read_jsonl`] on any reader; `source` names it in error messages.
pub fn parse_jsonl<R: BufRead>(mut reader: R, source: &str) -> Result<Vec<JsonLine>, JsonlError> {
    let source_name = || source.to_string();
    let mut records = Vec::new();
    let mut bytes = Vec::new();
    let mut line = 0u64;
    loop {
        bytes.clear();
        line += 1;
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| JsonlError::Read {
                source_name: source_name(),
                line,
                source,
            })?;
        if read == 0 {
            break;
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| JsonlError::NotUtf8 {
            source_name: source_name(),
            line,
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text).map_err(|error| JsonlError::NotJson {
            source_name: source_name(),
            line,
            message: error.to_string(),
        })?;
        if !value.is_object() {
            return Err(JsonlError::NotAnObject {
                source_name: source_name(),
                line,
                found: kind(&value),
            });
        }
        records.push(JsonLine {
            line,
            text: text.to_string(),
            value,
        });
    }
    if records.is_empty() {
        return Err(JsonlError::Empty {
            source_name: source_name(),
        });
    }
    Ok(records)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<JsonLine>, JsonlError> {
        parse_jsonl(text.as_bytes(), "r.jsonl")
    }

    #[test]
    fn records_keep_their_line_and_text() {
        let records = parse("{\"a\": 1}\r\n\n  \n{\"b\":  [2]}").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].line, records[0].text.as_str()),
            (1, "{\"a\": 1}")
        );
        assert_eq!(
            (records[1].line, records[1].text.as_str()),
            (4, "{\"b\":  [2]}")
        );
        assert_eq!(records[1].value["b"][0], 2);
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = parse("{\"a\": 1}\n{\"a\": \n").unwrap_err();
        assert!(
            matches!(error, JsonlError::NotJson { line: 2, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("r.jsonl:2: not JSON"),
            "{error}"
        );
        let error = parse("{}\n\n[1, 2]\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "r.jsonl:3: a record must be a JSON object, not an array"
        );
        let error = parse_jsonl(&b"{}\n\xff\n"[..], "r.jsonl").unwrap_err();
        assert_eq!(error.to_string(), "r.jsonl:2: not UTF-8 text");
        assert!(matches!(parse("\n \n"), Err(JsonlError::Empty { .. })));
        let missing = read_jsonl(Path::new("/nonexistent/r.jsonl")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/r.jsonl"),
            "{missing}"
        );
    }
}
