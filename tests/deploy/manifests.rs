//! The Kubernetes manifests under deploy/spinkube/ as YAML values, one per
//! document, with small helpers to walk them.

use serde::Deserialize;
use serde_norway::Value;

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The file, for messages.
    pub file: String,
    pub value: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        str_at(&self.value, &["kind"]).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        str_at(&self.value, &["metadata", "name"]).unwrap_or_default()
    }

    /// `Kind/name in file`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}/{}", self.file, self.kind(), self.name())
    }
}

/// Every non-empty document of `text`.
pub fn parse_docs(file: &str, text: &str) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|e| format!("{file}: {e}"))?;
        if !value.is_null() {
            docs.push(Doc {
                file: file.to_owned(),
                value,
            });
        }
    }
    Ok(docs)
}

/// The value at `path` (mapping keys).
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str()
}

/// The sequence at `path`, empty if there is none.
pub fn seq_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// The string-to-string mapping at `path` (labels, selectors).
pub fn labels_at(value: &Value, path: &[&str]) -> Vec<(String, String)> {
    at(value, path)
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A scalar as text (`3001` and `"3001"` alike).
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
